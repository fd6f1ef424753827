"""The data cleaner (issue 23, part 2): ordering by loss on real digits, the decision log,
apply and undo, the `mentor clean` command, the JSON API, and the page in a real browser.

One small CNN is trained for about two seconds on 100 + 20 digits per class of mnist_tiny,
with a 7 copied into the training 3s ('mislabelled_7.png'); every test that moves files
works on its own copy of that folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from torch import nn

from mentor.cli import main
from mentor.core.seed import set_seed
from mentor.core.spec import register_spec
from mentor.inference import Predictor
from mentor.serve.clean import DatasetCleaner, apply_log, undo_log
from mentor.serve.clean_apply import journal_path
from mentor.serve.clean_log import read_log
from mentor.serve.clean_scores import score_folder
from mentor.train import Learner
from mentor.vision import ImageDataLoaders
from tests.helpers import tiny_folder
from tests.serve.live import free_port, live_server

MISLABELLED = "train/3/mislabelled_7.png"


@register_spec
def digit_cnn(n_out: int = 2) -> nn.Module:
    """Two strided convolutions with batch norm: learns 3 vs 7 in a few epochs."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, n_out),
    )  # fmt: skip


@pytest.fixture(scope="module")
def trained(mnist_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Learner, Path]:
    """A learner trained on the digits folder (with one 7 among the 3s), and its export."""
    root = tmp_path_factory.mktemp("clean")
    folder = tiny_folder(mnist_tiny, root / "digits", 100, 20)
    seven = sorted((mnist_tiny / "train" / "7").glob("*.png"))[150]
    shutil.copy(seven, folder / MISLABELLED)
    set_seed(0)
    dls = ImageDataLoaders.from_folder(folder, valid="valid", bs=16, num_workers=0, device="cpu")
    learn = Learner(dls, digit_cnn(2))
    learn.model_spec = {"factory": f"{__name__}:digit_cnn", "kwargs": {"n_out": 2}}
    learn.progress.show = False
    learn.fit_one_cycle(6, 3e-2)
    return learn, learn.export(root / "digits.mentor")


@pytest.fixture
def digits(trained: tuple[Learner, Path], tmp_path: Path) -> Path:
    """A copy of the learner's folder, to move files in."""
    return Path(shutil.copytree(trained[0].dls.train_ds.items[0].parents[2], tmp_path / "digits"))


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under `folder`: relative path -> content hash ('dir' for folders)."""
    return {
        p.relative_to(folder).as_posix(): "dir" if p.is_dir() else
        hashlib.sha1(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
    }  # fmt: skip


# ----- ordering -----


def test_the_learners_cleaner_puts_the_mislabelled_seven_first(
    trained: tuple[Learner, Path],
) -> None:
    learn, _ = trained
    cleaner = DatasetCleaner(learn)
    paths = [entry.path for entry in cleaner.entries]
    assert MISLABELLED in paths[:3], cleaner.entries[:5]
    assert len(cleaner) == len(learn.dls.train_ds) + len(learn.dls.valid_ds) == 241
    losses = [entry.loss for entry in cleaner.entries]
    assert losses == sorted(losses, reverse=True) and [e.id for e in cleaner.entries] == list(
        range(241)
    )
    worst = cleaner.entry(MISLABELLED)
    assert worst.label == "3" and worst.predicted == "7" and worst.probability > 0.5
    assert worst.loss == pytest.approx(-math.log(1 - worst.probability), rel=1e-4)
    assert cleaner.splits == ["train", "valid"] and cleaner.classes == ["3", "7"]
    valid_sevens = cleaner.filter(split="valid", label="7")
    assert len(valid_sevens) == 20 and all(e.path.startswith("valid/7/") for e in valid_sevens)


def test_the_folder_cleaner_scores_as_the_learner_and_lists_problems_first(
    trained: tuple[Learner, Path], digits: Path
) -> None:
    learn, model = trained
    (digits / "train" / "7" / "broken.png").write_bytes(b"\x89PNG not really")
    (digits / "valid" / "9").mkdir()
    shutil.copy(sorted((digits / "valid" / "3").iterdir())[0], digits / "valid/9/nine.png")
    cleaner = DatasetCleaner.from_folder(digits, Predictor.load(model), bs=32)
    first, second = cleaner.entries[:2]
    assert {first.path, second.path} == {"train/7/broken.png", "valid/9/nine.png"}
    broken, nine = cleaner.entry("train/7/broken.png"), cleaner.entry("valid/9/nine.png")
    assert (
        broken.loss == math.inf and broken.problem.startswith("unreadable") and not broken.predicted
    )
    assert nine.loss == math.inf and "'9' is not a class of the model" in nine.problem
    assert (
        nine.predicted in ("3", "7")
        and cleaner.entries[2].path == DatasetCleaner(learn).entries[0].path
    )
    by_learner = {e.path: e.loss for e in DatasetCleaner(learn).entries}
    for entry in cleaner.entries[2:]:
        assert entry.loss == pytest.approx(by_learner[entry.path], rel=1e-3, abs=1e-5)
    only_valid = score_folder(digits, Predictor.load(model), splits=["valid"])
    assert {e.split for e in only_valid.entries} == {"valid"} and len(only_valid.entries) == 41


def test_the_learners_unreadable_images_are_listed_first_not_a_crash(digits: Path) -> None:
    (digits / "valid" / "3" / "broken.png").write_bytes(b"\x89PNG cut")
    dls = ImageDataLoaders.from_folder(digits, valid="valid", bs=16, num_workers=0, device="cpu")
    learn = Learner(dls, digit_cnn(2))
    learn.progress.show = False
    cleaner = DatasetCleaner(learn)
    assert cleaner.entries[0].path == "valid/3/broken.png" and len(cleaner) == 242
    assert (
        cleaner.entries[0].problem.startswith("unreadable") and cleaner.entries[0].loss == math.inf
    )
    assert all(entry.problem is None for entry in cleaner.entries[1:])


# ----- decisions -----


def test_decisions_are_logged_as_made_and_reopening_restores_them(
    trained: tuple[Learner, Path], tmp_path: Path
) -> None:
    learn, _ = trained
    log = tmp_path / "log.jsonl"
    cleaner = DatasetCleaner(learn, log=log)
    a, b, c = (entry.path for entry in cleaner.entries[:3])
    cleaner.relabel(a, "7")
    assert len(log.read_text().splitlines()) == 2  # the header and the decision, on disk now
    cleaner.delete(b)
    cleaner.keep(c)
    cleaner.delete(a)  # the last decision for a file wins
    with pytest.raises(ValueError, match="not a class of the model"):
        cleaner.relabel(b, "9")
    with pytest.raises(ValueError, match="already in class"):
        cleaner.relabel(cleaner.entry(b).id, cleaner.entry(b).label)
    with pytest.raises(KeyError, match="not an image the cleaner lists"):
        cleaner.delete("../etc/passwd")
    reopened = DatasetCleaner(learn, log=log)
    assert [(d.path, d.action) for d in reopened.decisions] == [
        (b, "delete"), (c, "keep"), (a, "delete"),
    ]  # fmt: skip
    assert reopened.deleted() == [b, a] and reopened.changed() == []
    frame = reopened.to_frame()
    assert list(frame.loc[frame["path"] == c, "decision"]) == ["keep"]
    assert frame["decision"].notna().sum() == 3


def test_a_last_line_cut_short_by_a_crash_is_dropped_and_the_log_goes_on(
    trained: tuple[Learner, Path], tmp_path: Path
) -> None:
    learn, _ = trained
    log = tmp_path / "log.jsonl"
    cleaner = DatasetCleaner(learn, log=log)
    cleaner.delete(cleaner.entries[0].id)
    with open(log, "a") as stream:
        stream.write('{"path": "train/3/x.png", "act')  # the crash
    with pytest.warns(UserWarning, match="cut short"):
        reopened = DatasetCleaner(learn, log=log)
    reopened.keep(cleaner.entries[1].id)
    assert [d.action for d in read_log(log)] == ["delete", "keep"]
    not_a_log = tmp_path / "notes.txt"
    not_a_log.write_text("hello\n")
    with pytest.raises(ValueError, match="is not a cleaner's log"):
        DatasetCleaner(learn, log=not_a_log)


# ----- apply and undo -----


def _decide(digits: Path, model: Path, log: Path) -> tuple[str, str]:
    """Relabel the mislabelled 7 and delete the second most confusing image."""
    cleaner = DatasetCleaner.from_folder(digits, Predictor.load(model), log=log)
    other = next(e.path for e in cleaner.entries if e.path != MISLABELLED)
    cleaner.relabel(MISLABELLED, "7")
    cleaner.delete(other)
    return MISLABELLED, other


def test_apply_moves_files_without_deleting_twice_applying_moves_nothing_and_undo_restores(
    trained: tuple[Learner, Path], digits: Path, tmp_path: Path
) -> None:
    before = _snapshot(digits)
    log = tmp_path / "log.jsonl"
    relabelled, deleted = _decide(digits, trained[1], log)
    moves = apply_log(digits, log, verbose=False)
    assert [(m.action, m.src, m.dst) for m in moves] == [
        ("relabel", relabelled, "train/7/mislabelled_7.png"),
        ("delete", deleted, f"_removed/{deleted}"),
    ]
    assert (digits / "train/7/mislabelled_7.png").is_file() and not (digits / relabelled).exists()
    source = trained[0].dls.train_ds.items[0].parents[2]
    assert (digits / "_removed" / deleted).read_bytes() == (source / deleted).read_bytes()
    contents = sorted(v for v in _snapshot(digits).values() if v != "dir")
    assert contents == sorted(v for v in before.values() if v != "dir")  # moved, none deleted
    again = apply_log(digits, log, verbose=False)
    assert [m.action for m in again] == ["skip", "skip"] and "already applied" in again[0].note
    assert journal_path(log).is_file()
    undone = undo_log(digits, log, verbose=False)
    assert [m.action for m in undone] == ["restore", "restore"]
    assert _snapshot(digits) == before  # the same files and folders, _removed/ gone
    assert undo_log(digits, log, verbose=False) == []  # nothing left to undo


def test_apply_never_overwrites_a_taken_name(
    trained: tuple[Learner, Path], digits: Path, tmp_path: Path
) -> None:
    log = tmp_path / "log.jsonl"
    taken = digits / "train/7/mislabelled_7.png"
    shutil.copy(next((digits / "valid/7").iterdir()), taken)  # another 7 of the same name
    content = taken.read_bytes()
    _decide(digits, trained[1], log)
    moves = apply_log(digits, log, verbose=False)
    assert moves[0].dst == "train/7/mislabelled_7_1.png" and "renamed" in moves[0].note
    assert taken.read_bytes() == content
    undo_log(digits, log, verbose=False)
    assert (digits / MISLABELLED).is_file() and taken.read_bytes() == content
    assert not (digits / "train/7/mislabelled_7_1.png").exists()


def _write_log(path: Path, *decisions: dict[str, Any]) -> Path:
    lines = [{"format": "mentor-clean-log", "version": 1}, *decisions]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.mark.parametrize("bad", ["../outside.png", "/etc/hostname", "train/3/link.png"])
def test_apply_refuses_paths_that_leave_the_folder_and_moves_nothing(
    bad: str, digits: Path, tmp_path: Path
) -> None:
    (tmp_path / "outside.png").write_bytes(b"outside")
    (digits / "train/3/link.png").symlink_to(tmp_path / "outside.png")
    good = next((digits / "valid/7").iterdir()).relative_to(digits).as_posix()
    log = _write_log(tmp_path / "log.jsonl", {"path": good, "action": "delete"},
                     {"path": bad, "action": "delete"})  # fmt: skip
    before = _snapshot(digits)
    with pytest.raises(
        ValueError, match="nothing was moved.*(leaves|leads out of) the data folder"
    ):
        apply_log(digits, log, verbose=False)
    assert _snapshot(digits) == before and (tmp_path / "outside.png").read_bytes() == b"outside"
    escape = _write_log(tmp_path / "escape.jsonl",
                        {"path": good, "action": "relabel", "to": "../../x"})  # fmt: skip
    with pytest.raises(ValueError, match="line 2 of the log.*is not one folder name"):
        apply_log(digits, escape, verbose=False)


# ----- the command -----


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mentor: error: "), err
    return err[0]


def test_mentor_clean_apply_and_undo_print_one_line_per_move(
    trained: tuple[Learner, Path], digits: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "log.jsonl"
    relabelled, deleted = _decide(digits, trained[1], log)
    assert main(["clean", str(digits), "--apply", str(log)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"relabel  {relabelled} -> train/7/mislabelled_7.png"
    assert lines[1] == f"delete   {deleted} -> _removed/{deleted}"
    assert lines[2].startswith("mentor: moved 2 file(s), skipped 0; undo with: mentor clean")
    assert main(["clean", str(digits), "--undo", str(log)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == [f"restore  _removed/{deleted} -> {deleted}",
                         f"restore  train/7/mislabelled_7.png -> {relabelled}"]  # fmt: skip
    assert (digits / relabelled).is_file() and not (digits / "_removed").exists()


def test_mentor_clean_refuses_bad_input_with_one_line(
    trained: tuple[Learner, Path], digits: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["clean", str(tmp_path / "nowhere"), "--model", str(trained[1])]) == 1
    assert "the data folder" in _error_line(capsys)
    assert main(["clean", str(digits)]) == 1
    assert "needs --model MODEL.mentor" in _error_line(capsys)
    assert main(["clean", str(digits), "--model", str(tmp_path / "none.mentor")]) == 1
    assert "none.mentor" in _error_line(capsys)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a log\n")
    assert main(["clean", str(digits), "--apply", str(notes)]) == 1
    assert "is not a cleaner's log" in _error_line(capsys)
    assert main(["clean", str(digits), "--undo", str(tmp_path / "missing.jsonl")]) == 1
    assert "does not exist" in _error_line(capsys)


def test_mentor_clean_scores_the_folder_and_serves_the_page(
    trained: tuple[Learner, Path], digits: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    import uvicorn
    from fastapi.testclient import TestClient

    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app, **kw))
    port = free_port()
    args = ["clean", str(digits), "--model", str(trained[1]), "--port", str(port),
            "--split", "valid", "--open-browser", "no"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"on http://127.0.0.1:{port}/" in out and f"--apply {digits / 'clean_log.jsonl'}" in out
    assert served["host"] == "127.0.0.1" and served["port"] == port
    summary = TestClient(served["app"]).get("/api/summary").json()
    assert summary["splits"] == ["valid"] and summary["total"] == 40
    assert summary["log"] == str(digits / "clean_log.jsonl")


# ----- the API -----


@pytest.fixture
def client(trained: tuple[Learner, Path], tmp_path: Path) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from mentor.serve.clean_app import create_clean_app

    cleaner = DatasetCleaner(trained[0], log=tmp_path / "log.jsonl")
    with TestClient(create_clean_app(cleaner)) as test_client:
        yield test_client


def test_the_api_lists_pages_of_entries_by_split_and_class(client: Any) -> None:
    summary = client.get("/api/summary").json()
    assert summary["total"] == 241 and summary["classes"] == ["3", "7"]
    assert {"split": "valid", "label": "7", "n": 20} in summary["counts"]
    first = client.get("/api/entries", params={"limit": 5}).json()
    second = client.get("/api/entries", params={"limit": 5, "offset": 5}).json()
    assert first["total"] == 241 and [e["id"] for e in first["entries"]] == [0, 1, 2, 3, 4]
    assert [e["id"] for e in second["entries"]] == [5, 6, 7, 8, 9]
    valid_3 = client.get("/api/entries", params={"split": "valid", "label": "3", "limit": 500})
    assert valid_3.json()["total"] == 20
    assert all(e["path"].startswith("valid/3/") for e in valid_3.json()["entries"])
    assert client.get("/api/entries", params={"limit": 0}).status_code == 422
    page = client.get("/")
    assert page.status_code == 200 and 'id="grid"' in page.text
    assert "fetch(" in client.get("/static/clean.js").text
    assert client.get("/static/app.py").status_code == 404


def test_the_api_records_decisions_in_the_log_and_refuses_bad_ones(
    client: Any, tmp_path: Path
) -> None:
    answer = client.post("/api/decisions", json={"id": 0, "action": "relabel", "to": "7"})
    assert answer.status_code == 200 and answer.json()["entry"]["decision"]["to"] == "7"
    assert read_log(tmp_path / "log.jsonl")[-1].action == "relabel"
    path = client.get("/api/entries", params={"limit": 2}).json()["entries"][1]["path"]
    assert client.post("/api/decisions", json={"path": path, "action": "delete"}).status_code == 200
    made = client.get("/api/decisions").json()
    assert made["counts"] == {"relabel": 1, "delete": 1} and made["decisions"][1]["path"] == path
    for body, status, words in [
        ({"id": 99999, "action": "delete"}, 404, "no image with id 99999"),
        ({"id": 0, "action": "burn"}, 400, "not one of"),
        ({"id": 0, "action": "relabel", "to": "9"}, 400, "not a class of the model"),
        ({"action": "delete"}, 400, "send {"),
        ({"id": True, "action": "delete"}, 400, "must be a number"),
    ]:
        refused = client.post("/api/decisions", json=body)
        assert refused.status_code == status and words in refused.json()["error"], refused.text
    assert client.post("/api/decisions", content=b"{not json").status_code == 400
    assert client.post("/api/decisions", content=b"x" * 5000).status_code == 413
    assert len(read_log(tmp_path / "log.jsonl")) == 2  # nothing refused was logged


def test_the_api_serves_only_the_images_it_lists(
    client: Any, trained: tuple[Learner, Path]
) -> None:
    entry = client.get("/api/entries", params={"limit": 1}).json()["entries"][0]
    image = client.get(f"/images/{entry['id']}")
    folder = trained[0].dls.train_ds.items[0].parents[2]
    assert image.status_code == 200 and image.content == (folder / entry["path"]).read_bytes()
    assert image.headers["content-type"] == "image/png"
    assert client.get("/images/100000").status_code == 404
    assert client.get("/images/..%2F..%2Fetc%2Fpasswd").status_code in (404, 422)
    assert client.get("/images/-1").status_code == 404


# ----- the page in a browser -----


def _card(browser: Any, path: str) -> Any:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.CSS_SELECTOR, f'.card[data-path="{path}"]')


def _wait(browser: Any, condition: Any, what: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 10).until(lambda _: condition(), message=what)


def test_the_page_relabels_and_deletes_by_clicking_then_apply_and_undo_move_the_files(
    trained: tuple[Learner, Path], digits: Path, tmp_path: Path, browser: Any,
    screenshots: Path | None,
) -> None:  # fmt: skip
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from mentor.serve.clean_app import create_clean_app

    before = _snapshot(digits)
    log = tmp_path / "log.jsonl"
    cleaner = DatasetCleaner.from_folder(digits, Predictor.load(trained[1]), log=log)
    with live_server(create_clean_app(cleaner)) as url:
        browser.get(f"{url}/")
        _wait(browser, lambda: browser.find_element(By.TAG_NAME, "body").get_attribute(
            "data-loaded") == "true", "the cards to load")  # fmt: skip
        cards = browser.find_elements(By.CSS_SELECTOR, "#grid .card")
        assert len(cards) == 48 and cards[0].get_attribute("data-path") == MISLABELLED
        other = cards[1].get_attribute("data-path")
        Select(
            _card(browser, MISLABELLED).find_element(By.CSS_SELECTOR, "select.move")
        ).select_by_value("7")
        _card(browser, other).find_element(By.CSS_SELECTOR, "button.delete").click()
        _wait(browser, lambda: _card(browser, other).get_attribute("data-decision") == "delete",
              "the delete to show")  # fmt: skip
        relabelled = _card(browser, MISLABELLED)
        assert relabelled.get_attribute("data-decision") == "relabel"
        assert "moved to 7" in relabelled.find_element(By.CSS_SELECTOR, ".badge").text
        assert "2 of 241 images decided" in browser.find_element(By.ID, "progress").text
        _wait(browser, lambda: browser.execute_script(
            "return document.images[0].naturalWidth") == 28, "the first image to show")  # fmt: skip
        if screenshots is not None:
            browser.save_screenshot(str(screenshots / "clean.png"))
        Select(browser.find_element(By.ID, "split")).select_by_value("valid")
        _wait(browser, lambda: browser.find_element(By.ID, "shown").text == "40 of 40 shown",
              "the valid split to show")  # fmt: skip
    assert [(d.path, d.action, d.to) for d in read_log(log)] == [
        (MISLABELLED, "relabel", "7"), (other, "delete", None),
    ]  # fmt: skip
    apply_log(digits, log, verbose=False)
    assert (digits / "train/7/mislabelled_7.png").is_file() and (
        digits / "_removed" / other
    ).is_file()
    assert not (digits / MISLABELLED).exists() and not (digits / other).exists()
    undo_log(digits, log, verbose=False)
    assert _snapshot(digits) == before
