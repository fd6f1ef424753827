"""Jupyter notebooks: whether code runs in one, and outputs that are updated in place.

IPython is not a dependency: nothing here imports it unless the code already runs under it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from html import escape
from typing import Any, Protocol


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Notebook, VS Code, Colab, nbclient).

    Its IPython shell is a `ZMQInteractiveShell` or derives from one; a terminal IPython
    (`TerminalInteractiveShell`) and a plain Python are not notebooks.
    """
    ipython = sys.modules.get("IPython")  # a kernel has always imported it
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and any(
        cls.__name__ == "ZMQInteractiveShell" for cls in type(shell).__mro__
    )


class LiveOutput(Protocol):
    """An output of a notebook cell that can be replaced in place."""

    def update(self, html: str, text: str) -> None:
        """Show `html` (`text` where HTML is not shown) instead of what was there."""


NewOutput = Callable[[str, str], LiveOutput]
"""Makes a `LiveOutput` showing `(html, text)`: `NotebookOutput`, or a fake in tests."""


class NotebookOutput:
    """One output of the running notebook cell: HTML, with plain text for the front ends
    that don't show HTML, replaced in place by `update` (an IPython display with an id).

    Args:
        html: what the notebook shows. text: what a text-only front end shows.

    Example:
        >>> out = NotebookOutput("<b>0%</b>", "0%")
        >>> out.update("<b>50%</b>", "50%")
    """

    def __init__(self, html: str, text: str) -> None:
        ipython = sys.modules.get("IPython")
        if ipython is None or ipython.get_ipython() is None:
            raise RuntimeError(
                "NotebookOutput shows HTML in a Jupyter notebook, but this code does not run "
                "under IPython; print text instead (a progress bar: leave notebook=None)"
            )
        from IPython.display import display

        bundle = _bundle(html, text)  # IPython's display is not annotated: hence the ignore
        self.handle: Any = display(bundle, raw=True, display_id=True)  # type: ignore[no-untyped-call]

    def update(self, html: str, text: str) -> None:
        """Replace the output with `html` (and `text`)."""
        self.handle.update(_bundle(html, text), raw=True)


def bar_html(done: int, total: int | None, text: str) -> str:
    """An HTML progress bar, `done` of `total` (None: an indeterminate bar), with `text`."""
    value = "" if total is None else f' value="{min(done, total)}" max="{max(total, 1)}"'
    return (
        '<div class="mentor-progress">'
        f'<progress{value} style="width: 300px; vertical-align: middle;"></progress> '
        f'<span style="white-space: pre;">{escape(text)}</span></div>'
    )


def _bundle(html: str, text: str) -> dict[str, str]:
    return {"text/html": html, "text/plain": text}


__all__ = ["LiveOutput", "NewOutput", "NotebookOutput", "bar_html", "in_notebook"]
