"""The figures of `ActivationStats`: layer statistics per batch, and the course's "colourful
dimension" (a histogram of each layer's activations per batch, stacked over training).

They take tensors, not the callback, so that they can draw statistics saved earlier.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from mentor.core.device import is_main_process

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def histogram(values: Tensor, n_bins: int, low: float, high: float) -> Tensor:
    """Counts of `values` in `n_bins` equal bins over [low, high] (outside: not counted), as
    float32 on the values' device, without a device-to-host sync.

    `torch.histc` has no deterministic CUDA version: under
    `torch.use_deterministic_algorithms(True)` a CUDA tensor is counted by sorting instead.

    Example:
        >>> histogram(torch.tensor([0.1, 0.2, 0.9, 5.0]), 2, 0.0, 1.0)
        tensor([2., 1.])
    """
    flat = values.detach().float().flatten()
    if flat.is_cuda and torch.are_deterministic_algorithms_enabled():
        return histogram_by_sorting(flat, n_bins, low, high)
    return torch.histc(flat, n_bins, low, high)


def histogram_by_sorting(values: Tensor, n_bins: int, low: float, high: float) -> Tensor:
    """`histogram` by sorting the values and finding the bin edges among them: slower than
    `torch.histc`, but deterministic on CUDA. Bins are [edge, next edge), the last one
    [edge, high] (a value on an inner edge may land one bin off histc's choice)."""
    ordered = values.detach().float().flatten().sort().values
    edges = torch.linspace(low, high, n_bins + 1, device=ordered.device)
    starts = torch.searchsorted(ordered, edges[:-1])  # values below each bin's lower edge
    ends = torch.cat([
        torch.searchsorted(ordered, edges[1:-1]),
        torch.searchsorted(ordered, edges[-1:], right=True),  # high itself is counted
    ])  # fmt: skip
    return (ends - starts).float()


def color_dim_image(hist: Tensor) -> Tensor:
    """One layer's histograms `[n_batches, n_bins]` as the colourful-dimension image
    `[n_bins, n_batches]`: log(1 + count), the lowest bin in row 0 (draw with origin='lower')."""
    return hist.t().float().log1p()


def low_bin_share(hist: Tensor, n_low: int = 2) -> Tensor:
    """The share of the counted activations in the lowest `n_low` bins, per batch and layer:
    `hist` is `[n_batches, n_layers, n_bins]`, the result `[n_batches, n_layers]` (0 for a
    batch with nothing in range)."""
    if not 1 <= n_low <= hist.shape[-1]:
        raise ValueError(f"n_low={n_low}: use 1 to the number of bins ({hist.shape[-1]})")
    total = hist.sum(-1)
    return hist[..., :n_low].sum(-1) / total.clamp_min(1)


def plot_layer_stats(
    names: Sequence[str],
    panels: Sequence[tuple[str, Tensor]],
    fname: str | Path | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """One panel per statistic (title, `[n_batches, n_layers]`), one line per layer."""
    from mentor.core.figures import subplots

    fig, axes = subplots(1, len(panels), figsize=figsize or (5 * len(panels), 4))
    for ax, (title, values) in zip(axes, panels):
        for layer, name in enumerate(names):
            ax.plot(values[:, layer].numpy(), label=name)
        ax.set_title(title)
        ax.set_xlabel("batch")
    if len(names) <= 12:
        axes[0].legend(fontsize=7)
    return _finish(fig, fname)


def plot_color_dim(
    names: Sequence[str],
    hist: Tensor,
    hist_range: tuple[float, float],
    n_low: int = 2,
    fname: str | Path | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """The colourful dimension: for each layer (a column), the histogram of its activations
    per batch as an image (top row: batches left to right, activation values bottom to top,
    brighter for more, log scale), and under it the share in the lowest `n_low` bins.

    Args:
        names: the layers. hist: `[n_batches, n_layers, n_bins]` counts.
        hist_range: the values the bins span. n_low: bins counted as "low" (2).
        fname: also save the figure there. figsize: default (2.5 per layer, 5).
    """
    from mentor.core.figures import subplots

    shares = low_bin_share(hist, n_low)
    n_layers = len(names)
    fig, axes = subplots(
        2, n_layers, figsize=figsize or (2.5 * n_layers, 5), squeeze=False,
        gridspec_kw={"height_ratios": (2, 1)},
    )  # fmt: skip
    low, high = hist_range
    for layer, name in enumerate(names):
        image_ax, share_ax = axes[0, layer], axes[1, layer]
        image_ax.imshow(
            color_dim_image(hist[:, layer]).numpy(), origin="lower", aspect="auto",
            extent=(0, hist.shape[0], low, high), cmap="viridis",
        )  # fmt: skip
        image_ax.set_title(name, fontsize=8)
        share_ax.plot(shares[:, layer].numpy())
        share_ax.set_ylim(0, 1)
        share_ax.set_xlabel("batch", fontsize=8)
    axes[0, 0].set_ylabel("activation")
    axes[1, 0].set_ylabel(f"share in lowest {n_low} bins", fontsize=8)
    return _finish(fig, fname)


def _finish(fig: Figure, fname: str | Path | None) -> Figure:
    fig.tight_layout()
    if fname is not None and is_main_process():
        fig.savefig(fname, dpi=80)
    return fig


__all__ = [
    "color_dim_image",
    "histogram",
    "histogram_by_sorting",
    "low_bin_share",
    "plot_color_dim",
    "plot_layer_stats",
]
