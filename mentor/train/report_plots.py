"""Figures and HTML pieces of the training report: all fits of a learner drawn end to end.

A learner's `Recorder` keeps one `FitRecord` per finished fit (`fine_tune` makes two: the
frozen head, then everything). These plots put them on one axis, batch after batch, with a
dashed line where a new fit starts, so a report shows the whole run.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from mentor.train.recorder import FitRecord


def figure_html(fig: Figure, alt: str) -> str:
    """`fig` as an inline PNG `<img>` (the page needs no other file); the figure is closed."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def table_html(df: pd.DataFrame, float_format: str = "{:.4f}") -> str:
    """A data frame as an HTML table, text escaped, floats with four decimals."""
    table = df.to_html(
        index=False,
        escape=True,
        border=0,
        classes="table",
        float_format=float_format.format,
        na_rep="",
    )
    return f'<div class="scroll">{table}</div>'


def _fit_starts(fits: Sequence[FitRecord]) -> list[int]:
    """The batch offset where each fit starts on the shared axis."""
    starts, total = [], 0
    for fit in fits:
        starts.append(total)
        total += len(fit.lrs)
    return starts


def _mark_fits(ax: Axes, starts: list[int]) -> None:
    for number, start in enumerate(starts[1:], start=2):
        ax.axvline(start, color="grey", linestyle="--", linewidth=1)
        ax.annotate(f"fit {number}", (start, 1), xycoords=("data", "axes fraction"), va="top")


def plot_fit_losses(fits: Sequence[FitRecord]) -> Figure:
    """Smoothed train loss per batch and valid loss per epoch, over all fits."""
    from mentor.core.figures import subplots

    starts = _fit_starts(fits)
    fig, ax = subplots(figsize=(8, 4))
    train_x: list[int] = []
    train_y: list[float] = []
    valid: list[tuple[int, float]] = []
    for start, fit in zip(starts, fits):
        train_x += range(start, start + len(fit.smooth_losses))
        train_y += fit.smooth_losses
        ends = [start + it for it in fit.iters]
        valid += [(x, row.get("valid_loss", math.nan)) for x, row in zip(ends, fit.values)]
    ax.plot(train_x, train_y, label="train (smoothed)")
    valid = [(x, v) for x, v in valid if math.isfinite(v)]
    if valid:
        ax.plot(*zip(*valid), marker="o", label="valid")
    _mark_fits(ax, starts)
    ax.set(xlabel="batch", ylabel="loss", title="Losses")
    ax.legend()
    return fig


def plot_fit_metrics(fits: Sequence[FitRecord]) -> Figure | None:
    """Each metric per epoch over all fits (None when no metric was recorded)."""
    from mentor.core.figures import subplots

    skip = ("epoch", "time", "train_loss", "valid_loss")
    names = list(dict.fromkeys(n for fit in fits for n in fit.names if n not in skip))
    rows = [row for fit in fits for row in fit.values]
    if not names or not rows:
        return None
    fig, axes = subplots(1, len(names), figsize=(4 * len(names), 3.5), squeeze=False)
    epochs = range(1, len(rows) + 1)
    for ax, name in zip(axes[0], names):
        ax.plot(epochs, [row.get(name, math.nan) for row in rows], marker="o")
        ax.set(xlabel="epoch (all fits)", title=name)
    fig.tight_layout()
    return fig


def plot_fit_schedules(fits: Sequence[FitRecord]) -> Figure:
    """Learning rate (of the last parameter group) and momentum per batch, over all fits."""
    from mentor.core.figures import subplots

    starts = _fit_starts(fits)
    fig, (ax_lr, ax_mom) = subplots(1, 2, figsize=(10, 3.5))
    for start, fit in zip(starts, fits):
        steps = range(start, start + len(fit.lrs))
        ax_lr.plot(steps, fit.lrs, color="C0")
        ax_mom.plot(steps, fit.moms, color="C1")
    for ax in (ax_lr, ax_mom):
        _mark_fits(ax, starts)
    ax_lr.set(xlabel="batch", ylabel="learning rate", title="Learning rate")
    ax_mom.set(xlabel="batch", ylabel="momentum", title="Momentum")
    fig.tight_layout()
    return fig


def epoch_table(fits: Sequence[FitRecord]) -> pd.DataFrame:
    """The epoch tables of all fits in one frame, with a `fit` column and times as m:ss."""
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for number, fit in enumerate(fits, start=1):
        for row in fit.values:
            out: dict[str, Any] = {"fit": number, **{k: row.get(k, math.nan) for k in fit.names}}
            seconds = float(out.get("time", 0.0))
            out["time"] = f"{int(seconds // 60)}:{int(seconds % 60):02d}"
            rows.append(out)
    return pd.DataFrame(rows)


def plot_regression(preds: Any, targets: Any) -> Figure:
    """Predicted against actual values, with the line where they are equal."""
    from mentor.core.figures import subplots

    fig, ax = subplots(figsize=(4.5, 4.5))
    ax.scatter(targets, preds, s=6, alpha=0.4)
    low = float(min(targets.min(), preds.min()))
    high = float(max(targets.max(), preds.max()))
    ax.plot([low, high], [low, high], color="grey", linestyle="--")
    ax.set(xlabel="actual", ylabel="predicted", title="Predicted vs actual (validation)")
    return fig
