"""Notebook detection and live outputs (`mentor.core.notebook`), and the figures a notebook
shows once (`mentor.core.figures`), without a Jupyter kernel: IPython's shell and display are
replaced by fakes. tests/examples/test_quickstart_notebook.py runs them in a real kernel."""

from __future__ import annotations

import base64
import io
import sys
import types
from collections.abc import Iterator
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure

import mentor.core.progress as progress_module
from mentor.core.figures import NotebookFigure, interactive_backend, subplots
from mentor.core.notebook import NotebookOutput, in_notebook
from mentor.core.progress import Progress

INLINE = "module://matplotlib_inline.backend_inline"


class ZMQInteractiveShell:  # named as ipykernel's shell: what in_notebook looks for
    pass


class ColabShell(ZMQInteractiveShell):
    pass


class TerminalInteractiveShell:
    pass


def fake_ipython(monkeypatch: pytest.MonkeyPatch, shell: object | None) -> None:
    module = types.ModuleType("IPython")
    module.get_ipython = lambda: shell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", module)


@pytest.mark.parametrize(
    "shell, expected",
    [(ZMQInteractiveShell(), True), (ColabShell(), True),
     (TerminalInteractiveShell(), False), (None, False)],
)  # fmt: skip
def test_in_notebook_means_a_kernel_shell(
    monkeypatch: pytest.MonkeyPatch, shell: object | None, expected: bool
) -> None:
    fake_ipython(monkeypatch, shell)
    assert in_notebook() is expected


def test_in_notebook_does_not_import_ipython(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert in_notebook() is False
    assert "IPython" not in sys.modules


def test_notebook_output_outside_ipython_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_ipython(monkeypatch, None)
    with pytest.raises(RuntimeError, match="does not run under IPython.*notebook=None"):
        NotebookOutput("<b>x</b>", "x")


class FakeOutput:
    """An output of a cell: every `(html, text)` it showed, in order."""

    def __init__(self, html: str, text: str) -> None:
        self.history = [(html, text)]

    def update(self, html: str, text: str) -> None:
        self.history.append((html, text))


def test_a_download_bar_in_a_notebook_is_html_updated_in_place(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(progress_module, "in_notebook", lambda: True)
    made: list[FakeOutput] = []

    def new_output(html: str, text: str) -> FakeOutput:
        made.append(FakeOutput(html, text))
        return made[-1]

    with Progress("f.tgz", 2_000_000, refresh_secs=0) as bar:
        bar.new_output = new_output
        bar.update(1_000_000)
        bar.update(2_000_000)
    assert len(made) == 1 and len(made[0].history) == 3  # shown, updated, finished
    html, text = made[0].history[0]
    assert text.startswith("f.tgz 50% 1.0/2.0 MB ")
    assert html.startswith('<div class="mentor-progress">')
    assert 'value="1000000" max="2000000"' in html
    assert made[0].history[-1][1].startswith("f.tgz 100% 2.0/2.0 MB ")
    assert capsys.readouterr().err == ""  # nothing on stderr
    with Progress("f.tgz", 2_000_000, file=io.StringIO()) as quiet:  # a file: no notebook
        assert not quiet.notebook and not quiet.show


# ----- figures -----
@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """What the figures hand to IPython's `display` (a fake that records it)."""
    display_module = pytest.importorskip("IPython.display")
    published: list[dict[str, Any]] = []

    def display(obj: dict[str, Any], raw: bool = False) -> None:
        assert raw
        published.append(obj)

    monkeypatch.setattr(display_module, "display", display)
    yield published
    plt.close("all")


def test_subplots_makes_a_notebook_figure() -> None:
    fig, axes = subplots(1, 2, figsize=(4, 2))
    assert isinstance(fig, NotebookFigure) and isinstance(fig, Figure)
    assert len(axes) == 2 and tuple(fig.get_size_inches()) == (4, 2)
    assert not interactive_backend()  # the tests draw with Agg
    plt.close(fig)


def test_inline_backend_shows_a_held_figure_once_then_lets_it_go(
    shown: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(matplotlib, "get_backend", lambda: INLINE)
    fig, ax = subplots()
    ax.plot([1, 2])
    fig._ipython_display_()  # the cell's value: shown now...
    assert len(shown) == 1 and plt.fignum_exists(fig.number) is False  # ...not at the cell's end
    assert base64.b64decode(shown[0]["image/png"]).startswith(b"\x89PNG")
    assert shown[0]["text/plain"].startswith("<NotebookFigure size")
    fig._ipython_display_()  # shown again in a later cell: a PNG again
    assert len(shown) == 2


def test_a_window_backend_shows_a_held_figure_itself(
    shown: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(matplotlib, "get_backend", lambda: "QtAgg")
    fig, _ = subplots()
    fig._ipython_display_()
    assert shown == [] and plt.fignum_exists(fig.number)
    plt.close(fig)
    fig._ipython_display_()  # closed: nothing else shows it
    assert len(shown) == 1


def test_a_file_backend_figure_shows_as_png_and_stays_open(shown: list[dict[str, Any]]) -> None:
    fig, _ = subplots()
    fig._ipython_display_()
    assert len(shown) == 1 and "image/png" in shown[0]
    assert plt.fignum_exists(fig.number)
