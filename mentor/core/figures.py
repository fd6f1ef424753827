"""Figures that a notebook shows once, and whether matplotlib's backend shows figures.

Import this module inside the functions that plot: it imports matplotlib.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import matplotlib
from matplotlib.figure import Figure

# the backends that only write files: a figure drawn under them is seen only once saved
FILE_BACKENDS = frozenset({"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"})


def interactive_backend() -> bool:
    """True when matplotlib's backend shows figures itself (a window, a notebook's inline
    outputs, a widget); False for the backends that only write files, such as Agg."""
    return matplotlib.get_backend().lower() not in FILE_BACKENDS


class NotebookFigure(Figure):
    """A matplotlib `Figure` that a Jupyter notebook shows once.

    With the notebook's inline backend, pyplot shows every figure it still holds at the end
    of the cell, and IPython also shows the value of the cell's last line: a plot method that
    returns its figure would appear twice. This figure, when IPython shows it, shows itself as
    a PNG and, under the inline backend, lets pyplot go of it, so that the end of the cell does
    not show it again. Under a backend with windows or widgets, which show the figure
    themselves, it shows nothing more while pyplot holds it. Everywhere else it is a plain
    `Figure`.
    """

    def _ipython_display_(self) -> None:
        """What IPython calls to show the figure (a cell's value, `display(fig)`, and the
        inline backend at the end of a cell)."""
        import matplotlib.pyplot as plt
        from IPython.display import display
        from matplotlib._pylab_helpers import Gcf  # what the inline backend reads too

        held = any(manager.canvas.figure is self for manager in Gcf.get_all_fig_managers())
        inline = "inline" in matplotlib.get_backend()
        if held and interactive_backend() and not inline:
            return  # its window or widget shows it
        display(self._mime_bundle(), raw=True)  # type: ignore[no-untyped-call]
        if held and inline:
            plt.close(self)

    def _mime_bundle(self) -> dict[str, str]:
        """The figure as a PNG (base64, as notebooks store it), with its repr as text."""
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", bbox_inches="tight")
        png = base64.b64encode(buffer.getvalue()).decode("ascii")
        return {"image/png": png, "text/plain": repr(self)}


def subplots(nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    """`matplotlib.pyplot.subplots` (the same arguments) making a `NotebookFigure`.

    Example:
        >>> fig, ax = subplots(figsize=(4, 3))
    """
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, FigureClass=NotebookFigure, **kwargs)


__all__ = ["FILE_BACKENDS", "NotebookFigure", "interactive_backend", "subplots"]
