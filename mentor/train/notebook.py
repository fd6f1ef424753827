"""The progress of a fit in a Jupyter notebook: a bar and the epoch table, each one HTML output
of the cell, updated in place (`ProgressCallback` uses it when it runs in a notebook)."""

from __future__ import annotations

import html
from collections.abc import Sequence

from mentor.core.notebook import LiveOutput, NewOutput, NotebookOutput, bar_html


class NotebookProgress:
    """The epoch table (shown first, growing a row per epoch) and under it the progress bar
    of one fit, as two outputs of the running cell.

    Args:
        names: the table's columns (`learn.recorder.metric_names`).
        new_output: makes an output from `(html, text)` (default `NotebookOutput`, an IPython
            display; tests pass a fake).

    Example:
        >>> board = NotebookProgress(["epoch", "train_loss", "time"])
        >>> board.update_bar(3, 10, "epoch 1/2  batch 3/10  loss 0.6931  00:01<00:02")
        >>> board.add_row(["0", "0.693147", "00:03"])
    """

    def __init__(self, names: Sequence[str], new_output: NewOutput = NotebookOutput) -> None:
        self.names = list(names)
        self.rows: list[list[str]] = []
        self.table: LiveOutput = new_output(table_html(self.names, []), self._table_text())
        self.bar: LiveOutput = new_output(bar_html(0, None, "starting"), "starting")

    def update_bar(self, done: int, total: int | None, text: str) -> None:
        """Show `done` of `total` steps (None: unknown) and `text` beside the bar."""
        self.bar.update(bar_html(done, total, text), text)

    def add_row(self, cells: Sequence[str]) -> None:
        """Add an epoch's row (its formatted cells, in the order of `names`) to the table."""
        self.rows.append(list(cells))
        self.table.update(table_html(self.names, self.rows), self._table_text())

    def _table_text(self) -> str:
        """The table as a terminal shows it, for the front ends that don't show HTML."""
        widths = column_widths(self.names)
        return "\n".join(text_line(cells, widths) for cells in [self.names, *self.rows])


def column_widths(names: Sequence[str]) -> list[int]:
    """The widths of the text table's columns: their names', at least 10."""
    return [max(len(name), 10) for name in names]


def text_line(cells: Sequence[str], widths: Sequence[int]) -> str:
    """One line of the text table: each cell padded to its column's width."""
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths))


def table_html(names: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML table with a header of `names` and one row of cells per entry of `rows`."""
    header = "".join(f"<th>{html.escape(name)}</th>" for name in names)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + "</tr>"
        for cells in rows
    )
    return (
        '<table class="mentor-epochs" border="1">'
        f'<thead><tr style="text-align: left;">{header}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


__all__ = ["NotebookProgress", "column_widths", "table_html", "text_line"]
