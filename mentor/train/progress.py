"""`ProgressCallback`: a bar per epoch with the smoothed loss, and the epoch table."""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

from mentor.core.device import is_main_process
from mentor.train.callback import Callback


class ProgressCallback(Callback):
    """Prints a header, a live bar during each epoch (on a terminal), and a row per epoch.

    When the output is not a terminal (a log file, CI, a notebook) it prints one plain line
    per epoch and no bar.

    Args:
        show: print anything at all (default True); `learn.progress.show = False` silences it.
        refresh_secs: the least time between two redraws of the bar (default 0.2 s).
        file: where to print (default: standard output).
    """

    order = 60
    run_valid = False  # the bar follows training batches only

    def __init__(self, show: bool = True, refresh_secs: float = 0.2, file: TextIO | None = None):
        super().__init__()
        self.show, self.refresh_secs, self.file = show, refresh_secs, file
        self.widths: list[int] = []
        self.printing = False  # show, on the main process (set per fit)
        self.live = False  # draw a bar: showing, and printing to a terminal (set per fit)
        self._last_draw = 0.0
        self._bar_drawn = False

    def _out(self) -> TextIO:
        return self.file or sys.stdout

    def before_fit(self) -> None:
        """Print the table header."""
        self.printing = self.show and is_main_process()
        self.live = self.printing and self._out().isatty()
        if not self.printing:
            return
        names = self.learn.recorder.metric_names
        self.widths = [max(len(name), 10) for name in names]
        self._print("  ".join(name.ljust(w) for name, w in zip(names, self.widths)))

    def before_epoch(self) -> None:
        """Reset the redraw clock."""
        self._last_draw = time.perf_counter()

    def after_batch(self) -> None:
        """Redraw the bar at most every `refresh_secs` (terminals only)."""
        if not self.live or not self.learn.training:
            return
        now = time.perf_counter()
        if now - self._last_draw < self.refresh_secs:
            return
        self._last_draw = now
        learn = self.learn
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
        self._print("  ".join(cell.ljust(w) for cell, w in zip(cells, self.widths)))

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
        minutes, seconds = divmod(int(round(value)), 60)
        return f"{minutes:02d}:{seconds:02d}"
    return "nan" if math.isnan(value) else f"{value:.6f}"
