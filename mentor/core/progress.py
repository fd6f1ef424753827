"""A one-line progress bar for byte counts (downloads): on stderr on a terminal, as an HTML
output updated in place in a Jupyter notebook."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from mentor.core.notebook import LiveOutput, NewOutput, NotebookOutput, bar_html, in_notebook


class Progress:
    """`label [#####.....]  45%  12.3/27.0 MB  3.1 MB/s`, redrawn in place at most every
    `refresh_secs`; silent when `show` is False, or when it is None and `file` is not a
    terminal (a log, CI, a pipe). A context manager: leaving it ends the line. In a Jupyter
    notebook (and no `file` given) it is an HTML bar under the cell instead.

    Args:
        label: what is counted (a file name). total: the bytes expected (None: unknown).
        done: the bytes already there (a resumed download). show: None (default) shows it on
            a terminal or in a notebook only. file: where to draw (default stderr).
            refresh_secs: 0.2.

    Example:
        >>> with Progress("mnist.tgz", total=3_214_948) as bar:
        ...     bar.update(1_000_000)
    """

    def __init__(
        self,
        label: str,
        total: int | None,
        done: int = 0,
        show: bool | None = None,
        file: TextIO | None = None,
        refresh_secs: float = 0.2,
    ) -> None:
        self.label, self.total, self.done = label, total, done
        self.notebook = file is None and in_notebook()
        self.file = file or sys.stderr
        self.show = (self.notebook or self.file.isatty()) if show is None else show
        self.refresh_secs = refresh_secs
        self.start_done, self.start_time = done, time.perf_counter()
        self.last_draw = 0.0
        self.new_output: NewOutput = NotebookOutput  # the notebook's bar (tests set a fake)
        self.output: LiveOutput | None = None

    def update(self, done: int) -> None:
        """Set the count to `done` bytes, redrawing when it is time."""
        self.done = done
        now = time.perf_counter()
        if self.show and now - self.last_draw >= self.refresh_secs:
            self.last_draw = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        rate = (self.done - self.start_done) / max(now - self.start_time, 1e-6)
        megabytes = f"{self.done / 1e6:.1f}"
        if self.total:
            share = min(self.done / self.total, 1.0)
            filled = int(30 * share)
            bar = f"[{'#' * filled}{'.' * (30 - filled)}] {share:4.0%}"
            megabytes += f"/{self.total / 1e6:.1f}"
        else:
            bar = ""
        if self.notebook:
            percent = f" {min(self.done / self.total, 1.0):.0%}" if self.total else ""
            self._draw_html(f"{self.label}{percent} {megabytes} MB {rate / 1e6:.1f} MB/s")
            return
        self.file.write(f"\r{self.label} {bar} {megabytes} MB {rate / 1e6:.1f} MB/s ")
        self.file.flush()

    def _draw_html(self, text: str) -> None:
        html = bar_html(self.done, self.total, text)
        if self.output is None:
            self.output = self.new_output(html, text)
        else:
            self.output.update(html, text)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.show:
            self._draw(time.perf_counter())
            if not self.notebook:
                self.file.write("\n")
                self.file.flush()


__all__ = ["Progress"]
