"""The progress of a fit in a notebook (`mentor.train.notebook`, `ProgressCallback`'s notebook
mode) with fake outputs in place of IPython's displays, and the terminal bar it must leave as
it was. tests/examples/test_quickstart_notebook.py runs the real thing in a Jupyter kernel."""

from __future__ import annotations

import io
import re

import pytest

import mentor.train.progress as progress_module
from mentor.core.notebook import bar_html
from mentor.train.notebook import NotebookProgress, table_html
from tests.helpers import tiny_classifier

NAMES = ["epoch", "train_loss", "valid_loss", "accuracy", "time"]


class FakeOutput:
    """An output of a cell: every `(html, text)` it showed, in order."""

    made: list[FakeOutput] = []

    def __init__(self, html: str, text: str) -> None:
        self.history = [(html, text)]
        FakeOutput.made.append(self)

    def update(self, html: str, text: str) -> None:
        self.history.append((html, text))


@pytest.fixture
def outputs() -> list[FakeOutput]:
    FakeOutput.made = []
    return FakeOutput.made


def rows_of(table: str) -> list[list[str]]:
    body = table.split("<tbody>")[1]
    return [re.findall(r"<td>(.*?)</td>", row) for row in body.split("</tr>") if "<td>" in row]


def test_table_html_has_the_header_and_a_row_per_epoch_escaped() -> None:
    table = table_html(["epoch", "a<b"], [["0", "1.0"], ["1", "0.5"]])
    assert re.findall(r"<th>(.*?)</th>", table) == ["epoch", "a&lt;b"]
    assert rows_of(table) == [["0", "1.0"], ["1", "0.5"]]
    assert rows_of(table_html(NAMES, [])) == []


def test_bar_html_fills_to_done_of_total() -> None:
    assert 'value="3" max="10"' in bar_html(3, 10, "epoch 1/2")
    assert 'value="10" max="10"' in bar_html(12, 10, "x")  # never past the end
    unknown = bar_html(3, None, "a < b")
    assert "<progress style" in unknown and "a &lt; b" in unknown


def test_notebook_progress_updates_its_two_outputs_in_place(outputs: list[FakeOutput]) -> None:
    board = NotebookProgress(NAMES, FakeOutput)
    table, bar = outputs
    board.update_bar(2, 4, "epoch 1/1  batch 2/4")
    board.add_row(["0", "0.693147", "0.600000", "0.750000", "00:01"])
    assert len(outputs) == 2  # updated, never added to
    assert rows_of(table.history[-1][0]) == [["0", "0.693147", "0.600000", "0.750000", "00:01"]]
    assert table.history[-1][1].splitlines() == [
        "epoch       train_loss  valid_loss  accuracy    time      ",
        "0           0.693147    0.600000    0.750000    00:01     ",
    ]  # the text a front end without HTML shows: the terminal's table
    assert bar.history[-1] == (bar_html(2, 4, "epoch 1/1  batch 2/4"), "epoch 1/1  batch 2/4")


def test_a_fit_in_a_notebook_shows_a_live_table_and_bar_and_prints_nothing(
    outputs: list[FakeOutput], capsys: pytest.CaptureFixture[str]
) -> None:
    learn = tiny_classifier()  # 4 training batches per epoch
    learn.progress.show, learn.progress.notebook = True, True
    learn.progress.new_output, learn.progress.refresh_secs = FakeOutput, 0
    learn.fit(2, 1e-2)
    assert capsys.readouterr().out == ""
    table, bar = outputs
    assert re.findall(r"<th>(.*?)</th>", table.history[0][0]) == NAMES
    assert [len(rows_of(html)) for html, _ in table.history] == [0, 1, 2]
    for cells, row in zip(rows_of(table.history[-1][0]), learn.recorder.values):
        assert cells[:4] == [str(row["epoch"]), f"{row['train_loss']:.6f}",
                             f"{row['valid_loss']:.6f}", f"{row['accuracy']:.6f}"]  # fmt: skip
    texts = [text for _, text in bar.history[1:]]
    assert len(texts) == 2 * 4 + 2  # every batch (refresh_secs=0), then each epoch's end
    assert texts[0].startswith("epoch 1/2  batch 1/4  loss ")
    assert re.fullmatch(r"epoch 2/2  batch 4/4  loss \d+\.\d{4}  \d\d:\d\d<00:00", texts[-1])
    assert 'value="4" max="4"' in bar.history[-1][0]


def test_the_bar_waits_refresh_secs_between_redraws(outputs: list[FakeOutput]) -> None:
    learn = tiny_classifier()
    learn.progress.show, learn.progress.notebook = True, True
    learn.progress.new_output, learn.progress.refresh_secs = FakeOutput, 60  # none mid-epoch
    learn.fit(2, 1e-2)
    assert [text.split("  loss")[0] for _, text in outputs[1].history[1:]] == [
        "epoch 1/2  batch 4/4", "epoch 2/2  batch 4/4",
    ]  # fmt: skip


@pytest.mark.parametrize("kernel", [True, False])
def test_notebook_mode_follows_the_kernel_unless_a_file_is_given(
    kernel: bool, outputs: list[FakeOutput], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setattr(progress_module, "in_notebook", lambda: kernel)
    learn = tiny_classifier()
    learn.progress.show, learn.progress.new_output = True, FakeOutput
    learn.fit(1, 1e-2)
    assert len(outputs) == (2 if kernel else 0)
    assert (capsys.readouterr().out == "") is kernel
    log = io.StringIO()
    learn.progress.file = log  # a file always gets text
    learn.fit(1, 1e-2)
    assert len(outputs) == (2 if kernel else 0) and log.getvalue().startswith("epoch ")


def test_the_terminal_bar_is_redrawn_in_place_then_replaced_by_the_row() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    learn = tiny_classifier()
    terminal = Terminal()
    learn.progress.show, learn.progress.file, learn.progress.refresh_secs = True, terminal, 0
    learn.fit(1, 1e-2)
    out = terminal.getvalue()
    assert out.startswith("epoch       train_loss  valid_loss  accuracy    time      \n")
    bars = re.findall(r"\r(epoch 1/1 \[[#.]{30}\] \d/4 loss \d+\.\d{4})", out)
    assert len(bars) == 4 and bars[-1].startswith("epoch 1/1 [" + "#" * 30 + "] 4/4")
    assert "\r\033[K0           " in out and out.endswith("\n")
