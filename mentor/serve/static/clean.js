// The data cleaner's page: fetch the entries (most confusing first), show them as cards and
// send each decision to the server, which writes it to the log before answering.
"use strict";

const PAGE = 48;
const state = { classes: [], offset: 0, total: 0, loading: false };
const $ = (id) => document.getElementById(id);

async function api(path, options) {
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

function say(text, isError) {
  const status = $("status");
  status.textContent = text;
  status.className = isError ? "error" : "";
}

function fillSelect(select, values, name) {
  for (const value of values) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = value === "" ? `(no ${name})` : value;
    select.appendChild(option);
  }
}

async function loadSummary() {
  const summary = await api("api/summary");
  document.title = summary.title;
  $("title").textContent = summary.title;
  $("folder").textContent = summary.folder;
  state.classes = summary.classes;
  fillSelect($("split"), summary.splits, "split");
  fillSelect($("label"), summary.labels, "class");
  const log = summary.log || "LOG";
  $("apply-command").textContent = `mentor clean ${summary.folder} --apply ${log}`;
  showProgress(summary.decided, summary.total);
}

function showProgress(decided, total) {
  $("progress").textContent = `${decided} of ${total} images decided`;
}

function query(offset) {
  const params = new URLSearchParams({ offset: String(offset), limit: String(PAGE) });
  for (const id of ["split", "label"]) {
    if ($(id).value !== "*") params.set(id, $(id).value);
  }
  if ($("undecided").checked) params.set("undecided", "true");
  return `api/entries?${params}`;
}

function percent(p) {
  return p === null ? "" : `${(100 * p).toFixed(1)}%`;
}

function showDecision(card, decision) {
  const action = decision ? decision.action : "";
  card.dataset.decision = action;
  card.dataset.to = action === "relabel" ? decision.to : "";
  const badge = card.querySelector(".badge");
  badge.textContent = !decision ? "" : action === "relabel" ? `moved to ${decision.to}`
    : action === "delete" ? "deleted" : "kept";
  card.querySelector(".move").value = action === "relabel" ? decision.to : "";
}

function makeCard(entry) {
  const card = $("card").content.firstElementChild.cloneNode(true);
  card.id = `entry-${entry.id}`;
  card.dataset.id = entry.id;
  card.dataset.path = entry.path;
  card.dataset.label = entry.label;
  const img = card.querySelector("img");
  img.src = `images/${entry.id}`;
  img.alt = entry.path;
  img.addEventListener("load", () => img.classList.toggle("pixels", img.naturalWidth < 96));
  img.addEventListener("error", () => {
    img.hidden = true;
    card.querySelector(".frame").dataset.broken = "the browser cannot show this image";
  });
  card.querySelector(".path").textContent = entry.path;
  card.querySelector(".path").title = entry.path;
  card.querySelector(".label").textContent = entry.label;
  card.querySelector(".predicted").textContent = entry.predicted ?? "?";
  card.querySelector(".probability").textContent = entry.probability === null ? ""
    : `${percent(entry.probability)} sure · `;
  card.querySelector(".loss").textContent = entry.loss === null ? "loss ∞" : `loss ${entry.loss.toFixed(3)}`;
  const problem = card.querySelector(".problem");
  problem.textContent = entry.problem || "";
  problem.title = entry.problem || "";
  card.classList.toggle("has-problem", Boolean(entry.problem));
  card.classList.toggle("wrong", entry.predicted !== null && entry.predicted !== entry.label);
  const move = card.querySelector(".move");
  fillSelect(move, state.classes.filter((c) => c !== entry.label), "class");
  card.querySelector(".keep").addEventListener("click", () => decide(card, "keep"));
  card.querySelector(".delete").addEventListener("click", () => decide(card, "delete"));
  move.addEventListener("change", () => { if (move.value) decide(card, "relabel", move.value); });
  showDecision(card, entry.decision);
  return card;
}

async function decide(card, action, to) {
  card.classList.add("saving");
  try {
    const body = { id: Number(card.dataset.id), action };
    if (to) body.to = to;
    const answer = await api("api/decisions", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    showDecision(card, answer.decision);
    say(`saved: ${action} ${card.dataset.path}${to ? ` → ${to}` : ""}`);
    const summary = await api("api/summary");
    showProgress(summary.decided, summary.total);
  } catch (err) {
    const before = card.dataset.decision;
    showDecision(card, before ? { action: before, to: card.dataset.to } : null);
    say(`not saved: ${err.message}`, true);
  } finally {
    card.classList.remove("saving");
  }
}

async function loadEntries(reset) {
  if (state.loading) return;
  state.loading = true;
  try {
    if (reset) { state.offset = 0; $("grid").replaceChildren(); }
    const page = await api(query(state.offset));
    state.total = page.total;
    for (const entry of page.entries) $("grid").appendChild(makeCard(entry));
    state.offset += page.entries.length;
    $("shown").textContent = `${state.offset} of ${state.total} shown`;
    $("more").hidden = state.offset >= state.total;
    document.body.dataset.loaded = "true";
  } catch (err) {
    say(`could not load the images: ${err.message}`, true);
  } finally {
    state.loading = false;
  }
}

async function start() {
  try {
    await loadSummary();
  } catch (err) {
    say(`could not reach the cleaner: ${err.message}`, true);
    return;
  }
  for (const id of ["split", "label", "undecided"]) {
    $(id).addEventListener("change", () => loadEntries(true));
  }
  $("more").addEventListener("click", () => loadEntries(false));
  await loadEntries(true);
}

start();
