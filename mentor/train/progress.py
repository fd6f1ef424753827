"""`ProgressCallback`: a bar per epoch with the smoothed loss, and the epoch table."""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

from mentor.core.device import is_main_process
from mentor.core.notebook import NewOutput, NotebookOutput, in_notebook
from mentor.train.callback import Callback
from mentor.train.notebook import NotebookProgress, column_widths, text_line


class ProgressCallback(Callback):
    """Prints a header, a live bar during each epoch (on a terminal), and a row per epoch.

    When the output is not a terminal (a log file, CI) it prints one plain line per epoch and
    no bar. In a Jupyter notebook it shows the epoch table and, under it, a bar (batches
    done, smoothed loss, time spent and left in the epoch) as two HTML outputs of the cell,
    each updated in place.

    Args:
        show: print anything at all (default True); `learn.progress.show = False` silences it.
        refresh_secs: the least time between two redraws of the bar (default 0.2 s).
        file: where to print (default: standard output); a file given here gets text.
        notebook: show HTML: None (default) in a Jupyter kernel when `file` is None, True
            always (IPython needed), False never (`learn.progress.notebook = False`).

    `new_output` makes the notebook's outputs (`NotebookOutput`; tests set a fake).
    """

    order = 60
    run_valid = False  # the bar follows training batches only

    def __init__(
        self,
        show: bool = True,
        refresh_secs: float = 0.2,
        file: TextIO | None = None,
        notebook: bool | None = None,
    ) -> None:
        super().__init__()
        self.show, self.refresh_secs, self.file = show, refresh_secs, file
        self.notebook = notebook
        self.new_output: NewOutput = NotebookOutput
        self.widths: list[int] = []
        self.printing = False  # show, on the main process (set per fit)
        self.live = False  # draw a bar: showing, and printing to a terminal (set per fit)
        self.board: NotebookProgress | None = None  # the notebook's table and bar (per fit)
        self._last_draw = 0.0
        self._epoch_start = 0.0
        self._batches_done = 0  # training batches of this epoch (for the notebook's bar)
        self._bar_drawn = False

    def _out(self) -> TextIO:
        return self.file or sys.stdout

    def _use_notebook(self) -> bool:
        if self.notebook is not None:
            return self.notebook
        return self.file is None and in_notebook()

    def before_fit(self) -> None:
        """Print the table header (in a notebook: show the empty table and the bar)."""
        self.printing = self.show and is_main_process()
        notebook = self.printing and self._use_notebook()
        self.live = self.printing and not notebook and self._out().isatty()
        self.board = None
        if not self.printing:
            return
        names = self.learn.recorder.metric_names
        if notebook:
            self.board = NotebookProgress(names, self.new_output)
            return
        self.widths = column_widths(names)
        self._print(text_line(names, self.widths))

    def before_epoch(self) -> None:
        """Reset the redraw clock."""
        self._last_draw = self._epoch_start = time.perf_counter()
        self._batches_done = 0

    def after_batch(self) -> None:
        """Redraw the bar at most every `refresh_secs` (on a terminal or in a notebook)."""
        if not self.learn.training or (not self.live and self.board is None):
            return
        self._batches_done = self.learn.iter + 1
        now = time.perf_counter()
        if now - self._last_draw < self.refresh_secs:
            return
        self._last_draw = now
        learn = self.learn
        if self.board is not None:
            self._update_board(self.board, learn.recorder.smooth_loss, now)
            return
        done, total = learn.iter + 1, learn.n_iter or learn.iter + 1
        filled = int(30 * done / total)
        bar = "#" * filled + "." * (30 - filled)
        loss = learn.recorder.smooth_loss
        text = f"epoch {learn.epoch + 1}/{learn.n_epoch} [{bar}] {done}/{total} loss {loss:.4f}"
        self._out().write("\r" + text)
        self._out().flush()
        self._bar_drawn = True

    def after_epoch(self) -> None:
        """Replace the bar with the epoch's row."""
        if not self.printing or not self.learn.recorder.values:
            return
        row = self.learn.recorder.values[-1]
        cells = [
            _format(name, row.get(name, math.nan)) for name in self.learn.recorder.metric_names
        ]
        if self.board is not None:
            self.board.add_row(cells)
            self._update_board(self.board, self.learn.recorder.smooth_loss, time.perf_counter())
            return
        self._print(text_line(cells, self.widths))

    def _update_board(self, board: NotebookProgress, loss: float, now: float) -> None:
        """The notebook's bar: the epoch, batches done, smoothed loss, time spent<left."""
        learn, done, total = self.learn, self._batches_done, self.learn.n_iter or None
        elapsed = now - self._epoch_start
        left = f"<{_duration(elapsed / done * (total - done))}" if total and done else ""
        text = (
            f"epoch {learn.epoch + 1}/{learn.n_epoch}  batch {done}/{total or '?'}  "
            f"loss {loss:.4f}  {_duration(elapsed)}{left}"
        )
        board.update_bar(done, total, text)

    def _print(self, text: str) -> None:
        out = self._out()
        if self._bar_drawn:
            out.write("\r\033[K")
            self._bar_drawn = False
        print(text, file=out, flush=True)


def _format(name: str, value: float) -> str:
    if name == "epoch":
        return str(int(value))
    if name == "time":
        return _duration(value)
    return "nan" if math.isnan(value) else f"{value:.6f}"


def _duration(seconds: float) -> str:
    """`mm:ss`."""
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes:02d}:{secs:02d}"
