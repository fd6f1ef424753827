// The page of `mentor serve`: reads /info, shows the panel for the model's task, calls the API.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { info: null, key: sessionStorage.getItem("mentor-api-key") || "" };
const PALETTE = ["#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0",
  "#f032e6", "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#fffac8", "#800000",
  "#aaffc3", "#808000", "#ffd8b1", "#000075", "#808080"];

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.key) headers["X-API-Key"] = state.key;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  const body = await response.json().catch(() => ({ error: response.statusText }));
  if (response.status === 401) { $("key-panel").hidden = false; }
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function showError(err) { $("error").textContent = err ? String(err.message || err) : ""; $("error").hidden = !err; }

async function busy(button, work) {
  button.disabled = true; showError(null);
  try { await work(); } catch (err) { showError(err); } finally { button.disabled = false; }
}

function bars(target, probabilities, chosen) {
  const entries = Object.entries(probabilities).sort((a, b) => b[1] - a[1]).slice(0, 10);
  for (const [name, p] of entries) {
    const row = document.createElement("div");
    row.className = "bar" + (chosen.includes(name) ? " chosen" : "");
    row.dataset.class = name;
    row.innerHTML = `<span class="name"></span><span class="track"><span class="fill"></span></span><span class="value"></span>`;
    row.querySelector(".name").textContent = name;
    row.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    row.querySelector(".value").textContent = `${(100 * p).toFixed(1)}%`;
    target.appendChild(row);
  }
}

function showPrediction(target, prediction) {
  target.innerHTML = "";
  const title = document.createElement("p");
  title.className = "label"; title.id = "predicted-label";
  target.appendChild(title);
  if ("label" in prediction) {
    title.textContent = String(prediction.label);
    bars(target, prediction.probabilities, [String(prediction.label)]);
  } else if ("labels" in prediction) {
    title.textContent = prediction.labels.length ? prediction.labels.join(", ") : "(no label over the threshold)";
    bars(target, prediction.probabilities, prediction.labels.map(String));
  } else if ("value" in prediction || "values" in prediction) {
    const values = "value" in prediction ? [prediction.value] : prediction.values;
    title.textContent = values.map((v) => Number(v).toPrecision(4)).join(", ");
  } else if ("points" in prediction) {
    title.textContent = `${prediction.points.length} point(s)`;
    const list = document.createElement("ol");
    for (const [x, y] of prediction.points) {
      const li = document.createElement("li"); li.textContent = `(${x.toFixed(1)}, ${y.toFixed(1)})`; list.appendChild(li);
    }
    target.appendChild(list);
  } else if ("mask_png" in prediction) {
    title.textContent = "segmentation";
    const legend = document.createElement("div"); legend.className = "legend";
    const classes = state.info.classes;
    for (const [name, share] of Object.entries(prediction.shares).sort((a, b) => b[1] - a[1])) {
      const span = document.createElement("span");
      const colour = PALETTE[classes.map(String).indexOf(name) % PALETTE.length];
      span.innerHTML = `<i style="background:${colour}"></i>`;
      span.append(`${name} ${(100 * share).toFixed(1)}%`);
      legend.appendChild(span);
    }
    target.appendChild(legend);
  }
}

function drawImage(file) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => {
      const canvas = $("picture");
      const scale = Math.min(Math.max(1, 280 / Math.max(img.width, img.height)), 420 / Math.max(img.width, img.height));
      canvas.width = Math.round(img.width * scale); canvas.height = Math.round(img.height * scale);
      const ctx = canvas.getContext("2d"); ctx.imageSmoothingEnabled = scale < 1;
      ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
      canvas.dataset.scale = String(scale);
      resolve();
    };
    img.onerror = () => reject(new Error(`${file.name} can't be shown as an image`));
    img.src = URL.createObjectURL(file);
  });
}

function drawPoints(points) {
  const canvas = $("picture"), ctx = canvas.getContext("2d"), scale = Number(canvas.dataset.scale);
  ctx.fillStyle = "#e6194b"; ctx.strokeStyle = "#fff";
  for (const [x, y] of points) { ctx.beginPath(); ctx.arc(x * scale, y * scale, 5, 0, 2 * Math.PI); ctx.fill(); ctx.stroke(); }
}

function drawMask(prediction) {
  return new Promise((resolve) => {
    const mask = new Image();
    mask.onload = () => {
      const off = document.createElement("canvas"); off.width = mask.width; off.height = mask.height;
      const octx = off.getContext("2d"); octx.drawImage(mask, 0, 0);
      const data = octx.getImageData(0, 0, off.width, off.height);
      for (let i = 0; i < data.data.length; i += 4) {
        const colour = PALETTE[data.data[i] % PALETTE.length];
        data.data[i] = parseInt(colour.slice(1, 3), 16); data.data[i + 1] = parseInt(colour.slice(3, 5), 16);
        data.data[i + 2] = parseInt(colour.slice(5, 7), 16); data.data[i + 3] = 110;
      }
      octx.putImageData(data, 0, 0);
      const canvas = $("picture");
      canvas.getContext("2d").drawImage(off, 0, 0, canvas.width, canvas.height);
      resolve();
    };
    mask.src = `data:image/png;base64,${prediction.mask_png}`;
  });
}

async function predictImage(file) {
  await drawImage(file);
  const form = new FormData(); form.append("file", file);
  const body = await api("/predict", { method: "POST", body: form });
  showPrediction($("image-result"), body.prediction);
  if (body.prediction.points) drawPoints(body.prediction.points);
  if (body.prediction.mask_png) await drawMask(body.prediction);
}

function setupImage() {
  $("image-panel").hidden = false;
  const zone = $("drop-zone"), input = $("file-input");
  const run = (file) => { if (file) busy(input, () => predictImage(file)); };
  input.addEventListener("change", () => run(input.files[0]));
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); run(e.dataTransfer.files[0]); });
}

function setupText(generating) {
  $("text-panel").hidden = false;
  $("generate-options").hidden = !generating;
  $("text-label").textContent = generating ? "Prompt" : "Text to classify";
  $("text-btn").textContent = generating ? "Generate" : "Predict";
  $("text-btn").addEventListener("click", () => busy($("text-btn"), async () => {
    const text = $("text-input").value;
    if (generating) {
      const body = await api("/generate", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ prompt: text, n_words: Number($("n-words").value), temperature: Number($("temperature").value) }) });
      $("text-result").innerHTML = ""; const p = document.createElement("p"); p.id = "generated"; p.textContent = body.text;
      $("text-result").appendChild(p);
    } else {
      const body = await api("/predict", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ input: text }) });
      showPrediction($("text-result"), body.prediction);
    }
  }));
}

function setupTabular(columns) {
  $("tabular-panel").hidden = false;
  const form = $("tabular-form");
  for (const column of columns) {
    const label = document.createElement("label"); label.textContent = column.name;
    let field;
    if (column.kind === "categorical") {
      field = document.createElement("select");
      for (const choice of column.choices) { const o = document.createElement("option"); o.value = JSON.stringify(choice); o.textContent = String(choice).trim(); field.appendChild(o); }
      field.value = JSON.stringify(column.default);
    } else {
      field = document.createElement("input"); field.type = "number"; field.step = "any";
      field.value = column.default === null ? "" : String(column.default);
    }
    field.name = column.name; field.dataset.kind = column.kind; field.id = `col-${column.name}`;
    label.appendChild(field); form.appendChild(label);
  }
  $("tabular-btn").addEventListener("click", () => busy($("tabular-btn"), async () => {
    const row = {};
    for (const field of form.elements) {
      row[field.name] = field.dataset.kind === "categorical" ? JSON.parse(field.value) : (field.value === "" ? null : Number(field.value));
    }
    const body = await api("/predict", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ input: row }) });
    showPrediction($("tabular-result"), body.prediction);
  }));
}

function fillSelect(select, values) {
  for (const value of values) { const o = document.createElement("option"); o.value = JSON.stringify(value); o.textContent = String(value); select.appendChild(o); }
}

function setupCollab(schema) {
  $("collab-panel").hidden = false;
  fillSelect($("user-select"), schema.users); fillSelect($("item-select"), schema.items);
  $("recommend-btn").addEventListener("click", () => busy($("recommend-btn"), async () => {
    const user = JSON.parse($("user-select").value);
    const body = await api(`/recommend?user=${encodeURIComponent(user)}&n=${Number($("top-n").value)}`);
    const list = $("recommendations"); list.innerHTML = "";
    for (const entry of body.items) { const li = document.createElement("li"); li.textContent = `${entry.item} (${entry.rating.toFixed(2)})`; list.appendChild(li); }
  }));
  $("rate-btn").addEventListener("click", () => busy($("rate-btn"), async () => {
    const pair = [JSON.parse($("user-select").value), JSON.parse($("item-select").value)];
    const body = await api("/predict", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ input: pair }) });
    $("rating").textContent = `predicted rating ${body.prediction.rating.toFixed(2)}`;
  }));
}

function showInfo(info) {
  $("title").textContent = info.file;
  const shown = Object.entries(info.metrics || {}).filter(([k]) => !["epoch", "time", "train_loss"].includes(k));
  const metrics = shown.map(([k, v]) => `${k} ${typeof v === "number" ? v.toFixed(4) : v}`).join(" · ");
  $("subtitle").textContent = `${info.task.replace("_", " ")} · version ${info.version}` + (metrics ? ` · ${metrics}` : "");
  const rows = { task: info.task, classes: info.classes.length ? info.classes.slice(0, 30).join(", ") : "-", created: info.created, version: info.version, "max batch": info.max_batch };
  for (const [k, v] of Object.entries(rows)) { const dt = document.createElement("dt"); dt.textContent = k; const dd = document.createElement("dd"); dd.textContent = String(v); $("info").append(dt, dd); }
}

async function start() {
  let info;
  try { info = await api("/info"); } catch (err) { showError(err); return; }
  state.info = info; $("key-panel").hidden = true; showInfo(info);
  if (info.input === "image") setupImage();
  else if (info.task === "language_model") setupText(true);
  else if (info.input === "text") setupText(false);
  else if (info.input === "row") setupTabular(info.schema.columns);
  else if (info.input === "pair") setupCollab(info.schema);
  else showError(new Error(`the page does not show ${info.task} models; use the API`));
  document.body.dataset.ready = "true";
}

$("key-btn").addEventListener("click", () => { state.key = $("api-key").value; sessionStorage.setItem("mentor-api-key", state.key); showError(null); start(); });
start();
