"""Hooks on modules: keep a layer's output (or its gradient), and `ActivationStats`.

`hook_output(module)` keeps what `module` returned in its last forward pass; with `grad=True`
it keeps the gradient of that output instead (what Grad-CAM needs). Both are context
managers that remove their hooks on exit.

Example:
    >>> with hook_output(model[0]) as hook:
    ...     model(xb)
    >>> hook.stored.shape
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from mentor.callbacks.activation_plots import (
    color_dim_image,
    histogram,
    low_bin_share,
    plot_color_dim,
    plot_layer_stats,
)
from mentor.train.callback import Callback

if TYPE_CHECKING:
    from matplotlib.figure import Figure

HookFunc = Callable[[nn.Module, tuple[Any, ...], Any], Any]

# the layers ActivationStats watches when no modules are given
_WATCHED = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Linear,
)


def _detached(value: Any) -> Any:
    """`value` with every tensor in it (a tensor, or a tuple / list of them) detached."""
    if isinstance(value, Tensor):
        return value.detach()
    if isinstance(value, tuple | list):
        return type(value)(_detached(v) for v in value)
    return value


class Hook:
    """A forward hook on `module` that keeps its output in `.stored` (None until it runs).

    Args:
        module: the module to watch.
        detach: keep the output detached from the graph (True); False keeps the graph, so
            gradients can flow to it (e.g. with `torch.autograd.grad`).
        grad: keep the gradient of the output instead (False); it arrives in the backward
            pass, and only for outputs that require grad.
        func: `func(module, inputs, output) -> value` to keep instead of the output
            (e.g. statistics); with grad=True it receives the gradient as `output`.

    Example:
        >>> with Hook(model[0]) as hook:
        ...     model(xb)
        >>> features = hook.stored
    """

    def __init__(
        self,
        module: nn.Module,
        detach: bool = True,
        grad: bool = False,
        func: HookFunc | None = None,
    ) -> None:
        self.module, self.detach, self.grad, self.func = module, detach, grad, func
        self.stored: Any = None
        self.removed = False
        self._handle = module.register_forward_hook(self._on_forward)

    def _on_forward(self, module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        if self.grad:
            self._watch_grad(module, inputs, output)
            return
        value = _detached(output) if self.detach else output
        self.stored = self.func(module, inputs, value) if self.func else value

    def _watch_grad(self, module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        if not isinstance(output, Tensor):
            raise TypeError(
                f"hook_output(grad=True) needs a module that returns a tensor, but "
                f"{type(module).__name__} returned {type(output).__name__}; hook a layer "
                "inside it instead"
            )
        if not output.requires_grad:
            return  # no graph (e.g. under torch.no_grad): no gradient will come

        def keep(grad: Tensor) -> None:
            value = grad.detach() if self.detach else grad
            self.stored = self.func(module, inputs, value) if self.func else value

        output.register_hook(keep)

    def remove(self) -> None:
        """Remove the hook (safe to call twice); `.stored` is kept."""
        if not self.removed:
            self._handle.remove()
            self.removed = True

    def __enter__(self) -> Hook:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.remove()

    def __repr__(self) -> str:
        state = "removed" if self.removed else ("grad" if self.grad else "output")
        return f"Hook({type(self.module).__name__}, {state})"


class Hooks:
    """One `Hook` per module; `.stored` lists what each kept, in the modules' order.

    Args:
        modules: the modules to watch. detach, grad, func: as for `Hook`.
    """

    def __init__(
        self,
        modules: Iterable[nn.Module],
        detach: bool = True,
        grad: bool = False,
        func: HookFunc | None = None,
    ) -> None:
        self.hooks = [Hook(m, detach=detach, grad=grad, func=func) for m in modules]

    @property
    def stored(self) -> list[Any]:
        """What each hook kept (None for hooks that have not run)."""
        return [hook.stored for hook in self.hooks]

    def remove(self) -> None:
        """Remove every hook."""
        for hook in self.hooks:
            hook.remove()

    def __len__(self) -> int:
        return len(self.hooks)

    def __getitem__(self, index: int) -> Hook:
        return self.hooks[index]

    def __iter__(self) -> Iterator[Hook]:
        return iter(self.hooks)

    def __enter__(self) -> Hooks:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.remove()


def hook_output(module: nn.Module, detach: bool = True, grad: bool = False) -> Hook:
    """A `Hook` keeping `module`'s output, or with `grad=True` the output's gradient.

    Args:
        module: the module to watch. detach: keep values detached from the graph (True).
        grad: keep the gradient of the output (filled in by `backward`) instead (False).
    """
    return Hook(module, detach=detach, grad=grad)


def hook_outputs(modules: Iterable[nn.Module], detach: bool = True, grad: bool = False) -> Hooks:
    """`Hooks` keeping each module's output (or its gradient with `grad=True`).

    Args:
        modules: the modules to watch. detach, grad: as for `hook_output`.
    """
    return Hooks(modules, detach=detach, grad=grad)


@dataclass
class LayerStats:
    """Activation statistics, each a `[n_batches, n_layers]` tensor on the CPU.

    Attributes:
        mean, std: of each layer's output. near_zero: the share of outputs with |a| <= eps.
    """

    mean: Tensor
    std: Tensor
    near_zero: Tensor


class ActivationStats(Callback):
    """Records, for each training batch, the mean, std and near-zero share of layer outputs,
    and a histogram of them: the course's "colourful dimension".

    Healthy training keeps the means near 0 and the stds near 1; a rising near-zero share
    means units that stopped firing. The histograms, stacked over batches, show how each
    layer's activations spread out or collapse as training goes (`plot_color_dim`). Everything
    stays on the device while training (no sync per batch) and is stacked when read; the
    record restarts with each `fit`.

    Args:
        modules: the modules to watch (default: every convolution and linear layer of
            `learn.model`).
        eps: an output counts as near zero when |a| <= eps (1e-2); eps=0 counts exact
            zeros, e.g. dead units when the watched modules are ReLUs.
        with_hist: also record histograms (True). n_bins: their bins (40).
        hist_range: the values they span, (-7, 7) for the outputs of convolutions and linear
            layers; for ReLU outputs fastai's (0, 10) makes the lowest bins the dead units.

    Example:
        >>> stats = ActivationStats()
        >>> learn.fit(1, cbs=[stats])
        >>> stats.stats.mean.shape  # [n_batches, n_layers]
        >>> stats.plot_color_dim("color_dim.png")
    """

    order = -20  # record the forward pass before other callbacks change the batch
    run_valid = False

    def __init__(
        self,
        modules: Sequence[nn.Module] | None = None,
        eps: float = 1e-2,
        with_hist: bool = True,
        n_bins: int = 40,
        hist_range: tuple[float, float] = (-7.0, 7.0),
    ) -> None:
        super().__init__()
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got eps={eps}")
        if n_bins < 1 or not hist_range[0] < hist_range[1]:
            raise ValueError(
                f"n_bins={n_bins}, hist_range={hist_range}: need at least one bin and "
                "hist_range=(low, high) with low < high, e.g. (0, 10) for ReLU outputs"
            )
        self.modules = list(modules) if modules is not None else None
        self.eps, self.with_hist = eps, with_hist
        self.n_bins, self.hist_range = n_bins, (float(hist_range[0]), float(hist_range[1]))
        self.names: list[str] = []
        self.hooks: Hooks | None = None
        self.recording = False
        self._batches: list[Tensor] = []

    def _layer_stats(self, module: nn.Module, inputs: tuple[Any, ...], output: Any) -> Any:
        if not self.recording or not isinstance(output, Tensor):
            return None
        values = output.detach().float()
        near_zero = (values.abs() <= self.eps).float().mean()
        stats = torch.stack([values.mean(), values.std(), near_zero])
        if not self.with_hist:
            return stats
        return torch.cat([stats, histogram(values, self.n_bins, *self.hist_range)])

    def _watched(self) -> list[nn.Module]:
        if self.modules is not None:
            return self.modules
        found: list[nn.Module] = [m for m in self.learn.model.modules() if isinstance(m, _WATCHED)]
        if not found:
            raise ValueError(
                f"ActivationStats found no convolution or linear layer in "
                f"{type(self.learn.model).__name__}; pass modules=[...] to watch"
            )
        return found

    def before_fit(self) -> None:
        """Hook the watched modules and start a new record."""
        modules = self._watched()
        module_names = {id(m): name for name, m in self.learn.model.named_modules()}
        self.names = [module_names.get(id(m), type(m).__name__) for m in modules]
        self.hooks = Hooks(modules, func=self._layer_stats)
        self._batches = []

    def before_train(self) -> None:
        """Record during training only."""
        self.recording = True

    def after_train(self) -> None:
        """Stop recording for validation."""
        self.recording = False

    def before_batch(self) -> None:
        """Forget the last batch's values, so a cancelled forward pass records nothing."""
        if self.hooks is not None:
            for hook in self.hooks:
                hook.stored = None

    def after_batch(self) -> None:
        """Keep this batch's statistics, as one device tensor `[n_layers, 3]`."""
        if not self.recording or self.hooks is None:
            return
        stored = self.hooks.stored
        if all(value is not None for value in stored):
            self._batches.append(torch.stack(stored))

    def after_fit(self) -> None:
        """Remove the hooks."""
        self.recording = False
        if self.hooks is not None:
            self.hooks.remove()
            self.hooks = None

    def _stacked(self) -> Tensor:
        """Every batch's record, `[n_batches, n_layers, 3 (+ n_bins)]`, on the CPU."""
        if not self._batches:
            return torch.zeros(0, len(self.names), 3 + self.n_bins * self.with_hist)
        return torch.stack(self._batches).float().cpu()

    @property
    def stats(self) -> LayerStats:
        """The statistics so far: mean, std, near-zero share, each `[n_batches, n_layers]`."""
        stacked = self._stacked()
        return LayerStats(stacked[..., 0], stacked[..., 1], stacked[..., 2])

    @property
    def hist(self) -> Tensor:
        """The histograms so far, `[n_batches, n_layers, n_bins]` counts of the values in
        `hist_range` (values outside are not counted)."""
        if not self.with_hist:
            raise ValueError("this ActivationStats records no histograms; use with_hist=True")
        return self._stacked()[..., 3:]

    def color_dim(self, layer: int | str) -> Tensor:
        """One layer's colourful-dimension image, `[n_bins, n_batches]` of log(1 + count),
        the lowest values in row 0; `layer` is its index or its name in `names`."""
        if isinstance(layer, str) and layer not in self.names:
            raise ValueError(f"no watched layer {layer!r}; the layers are {self.names}")
        index = self.names.index(layer) if isinstance(layer, str) else layer
        return color_dim_image(self.hist[:, index])

    def low_share(self, n_low: int = 2) -> Tensor:
        """The share of each layer's counted activations in the lowest `n_low` bins, per
        batch: `[n_batches, n_layers]` (with hist_range=(0, 10) on ReLU outputs, the share
        of dead units, as in the course)."""
        return low_bin_share(self.hist, n_low)

    def _recorded(self) -> None:
        if not self._batches:
            raise ValueError("ActivationStats has recorded nothing yet; fit with it first")

    def plot_layer_stats(
        self, fname: str | Path | None = None, figsize: tuple[float, float] | None = None
    ) -> Figure:
        """Plot mean, std and near-zero share per training batch, one line per layer.

        Args:
            fname: also save the figure there (a PNG). figsize: default (15, 4).
        """
        self._recorded()
        stats = self.stats
        panels = (
            ("mean", stats.mean),
            ("std", stats.std),
            (f"|a| <= {self.eps:g}", stats.near_zero),
        )
        return plot_layer_stats(self.names, panels, fname, figsize)

    def plot_color_dim(
        self,
        fname: str | Path | None = None,
        n_low: int = 2,
        figsize: tuple[float, float] | None = None,
    ) -> Figure:
        """Plot the colourful dimension: per layer, its histograms over the batches as an
        image (log scale), and under it the share in the lowest `n_low` bins.

        Args:
            fname: also save the figure there (a PNG). n_low: the low bins (2).
            figsize: default (2.5 per layer, 5).
        """
        self._recorded()
        return plot_color_dim(self.names, self.hist, self.hist_range, n_low, fname, figsize)
