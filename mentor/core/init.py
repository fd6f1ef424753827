"""Weight initialisation: Kaiming (He) for convolutions and linear layers, and LSUV.

`kaiming_init_` draws each convolution and linear weight so that, at the start, a layer's
outputs keep the variance of its inputs through a (leaky) ReLU. `lsuv_init` (layer-sequential
unit variance, Mishkin & Matas 2015, as the course's part 2 teaches it) goes further for the
model and the batch at hand: layer after layer, it measures the output on a real batch and
shifts and scales the layer until that output has mean 0 and standard deviation 1.

Example:
    >>> model = nn.Sequential(nn.Conv2d(1, 8, 3), GeneralRelu(0.1, 0.4), nn.Flatten(), ...)
    >>> kaiming_init_(model, a=0.1)
    >>> for layer in lsuv_init(model, xb):
    ...     print(layer.name, layer.mean, layer.std)
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from mentor.core.layers import GeneralRelu

# the layers kaiming_init_ and lsuv_init set up
INIT_TYPES: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
Nonlinearity = Literal["relu", "leaky_relu", "linear", "tanh", "sigmoid", "selu"]
_NONLINEARITIES = ("relu", "leaky_relu", "linear", "tanh", "sigmoid", "selu")


def kaiming_init_(
    module: nn.Module,
    a: float = 0.0,
    nonlinearity: Nonlinearity = "leaky_relu",
    mode: Literal["fan_in", "fan_out"] = "fan_in",
    uniform: bool = False,
) -> nn.Module:
    """Kaiming-initialise every convolution and linear weight in `module`, in place; zero
    their biases. Returns `module`.

    Args:
        a: the negative slope of the leaky ReLU that follows (0.0: a ReLU; the course's
            `GeneralRelu(leak=0.1)` wants 0.1). nonlinearity: as `nn.init.kaiming_normal_`.
        mode: 'fan_in' keeps the forward variance, 'fan_out' the backward one.
        uniform: draw from a uniform distribution instead of a normal one (False).

    Example:
        >>> kaiming_init_(nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU()))
    """
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode={mode!r}: use 'fan_in' (forward variance) or 'fan_out'")
    if nonlinearity not in _NONLINEARITIES:
        raise ValueError(f"nonlinearity={nonlinearity!r} is not one of {list(_NONLINEARITIES)}")
    if a < 0:
        raise ValueError(f"a={a}: the leaky ReLU's negative slope must be >= 0")
    layers = [m for m in module.modules() if isinstance(m, INIT_TYPES)]
    if not layers:
        raise ValueError(
            f"kaiming_init_ found no convolution or linear layer in {type(module).__name__}; "
            "it initialises nn.Conv1d/2d/3d and nn.Linear weights"
        )
    draw = nn.init.kaiming_uniform_ if uniform else nn.init.kaiming_normal_
    for layer in layers:
        draw(_weight(layer), a=a, mode=mode, nonlinearity=nonlinearity)
        if isinstance(layer.bias, Tensor):
            nn.init.zeros_(layer.bias)
    return module


def _weight(layer: nn.Module) -> Tensor:
    weight = layer.weight
    if not isinstance(weight, Tensor):
        raise TypeError(f"{type(layer).__name__}.weight is not a tensor")
    return weight


def init_cnn(model: nn.Module, uniform: bool = False) -> nn.Module:
    """fastai's `init_cnn`: Kaiming-normal (or uniform) weights for a ReLU network and zero
    biases, in place; `kaiming_init_(model, uniform=uniform)`. Returns `model`."""
    return kaiming_init_(model, uniform=uniform)


@dataclass
class LSUVStats:
    """What `lsuv_init` left one layer at, on its batch.

    Attributes:
        name: the layer's name in the model. measured: the name of the module whose output
            was measured (the layer, or the `GeneralRelu` after it). mean, std: of that
            output. iterations: the shift-and-scale rounds it took. converged: within `tol`.
    """

    name: str
    measured: str
    mean: float
    std: float
    iterations: int
    converged: bool


@dataclass
class _Unit:
    """A layer LSUV scales, the module whose output it measures, and the activation whose
    `sub` moves the mean (None: the layer's bias does, when it has one)."""

    layer: nn.Module
    measured: nn.Module
    shift: GeneralRelu | None


class _Measured(Exception):
    """Raised by the measuring hook: the rest of the forward pass is not needed."""


def lsuv_init(
    model: nn.Module,
    xb: Tensor | Sequence[Tensor],
    layers: Sequence[nn.Module] | None = None,
    after_activation: bool = True,
    tol: float = 1e-3,
    max_iter: int = 10,
) -> list[LSUVStats]:
    """Layer-sequential unit variance: set up each layer, in forward order, so that its output
    on `xb` has mean 0 and std 1 (each within `tol`), in place; returns what each ended at.

    For each layer (convolution or linear) it loops: subtract the output's mean from the bias,
    divide the weight by the output's std, until both are within `tol` or `max_iter` rounds.
    When the layer's output goes straight into a `GeneralRelu` with a `sub` (and
    `after_activation`), the output measured is the activation's and its `sub` plays the bias,
    as the course's `ConvLayer` does; otherwise the layer's own output is measured. The model
    runs in training mode with dropout off; its modes and running statistics are put back.

    The output layer (the last convolution or linear layer run) is left alone unless named in
    `layers`, as the course does: its outputs are the predictions, and scaling them to std 1
    makes the first steps larger (with it, the 10-layer CNN of the course's part-2 example
    diverged at SGD lr 0.1 on 3,200 digits; without it, it reached 97%).

    Args:
        model: the model. xb: a batch of its inputs (a tensor, or a tuple for several).
        layers: the layers to set up (default: every convolution and linear layer it runs
            but the last).
        after_activation: measure after a following `GeneralRelu` with a `sub` (True).
        tol: the tolerance on |mean| and |std - 1| (1e-3). max_iter: rounds per layer (10).

    Example:
        >>> stats = lsuv_init(model, xb)
        >>> [round(s.std, 3) for s in stats]
        [1.0, 1.0, 1.0]
    """
    if not tol > 0 or max_iter < 1:
        raise ValueError(f"lsuv_init(tol={tol}, max_iter={max_iter}): need tol > 0, max_iter >= 1")
    inputs = _as_inputs(xb)
    names = {id(m): name or type(m).__name__ for name, m in model.named_modules()}
    with _lsuv_mode(model) as restore:
        calls = _forward_order(model, inputs)
        units = _units(model, calls, layers, after_activation)
        results = []
        for unit in units:
            results.append(_init_unit(model, inputs, unit, names, restore, tol, max_iter))
    return results


def _as_inputs(xb: Tensor | Sequence[Tensor]) -> tuple[Tensor, ...]:
    inputs = (xb,) if isinstance(xb, Tensor) else tuple(xb)
    if not inputs or not all(isinstance(x, Tensor) for x in inputs):
        kinds = [type(x).__name__ for x in inputs]
        raise TypeError(
            f"lsuv_init needs a batch of inputs as a tensor (or a tuple of tensors), got "
            f"{type(xb).__name__} of {kinds}; pass the x of a batch, e.g. dls.one_batch()[0]"
        )
    if inputs[0].dim() == 0 or inputs[0].shape[0] < 2:
        raise ValueError(
            f"lsuv_init needs a batch of at least 2 items, got shape {tuple(inputs[0].shape)}; "
            "statistics on one item are mostly noise: pass a training batch"
        )
    return inputs


@contextlib.contextmanager
def _lsuv_mode(model: nn.Module) -> Iterator[Callable[[], None]]:
    """Training mode with dropout off and no gradients; yields a function that puts the
    buffers (running statistics) back, and does so, with the modes, on exit.

    The `sub` buffers of `GeneralRelu`s are what LSUV sets, so they are not put back."""
    modes = [(m, m.training) for m in model.modules()]
    saved = [
        (buffer, buffer.detach().clone())
        for module in model.modules()
        if not isinstance(module, GeneralRelu)
        for buffer in module.buffers(recurse=False)
    ]

    def restore() -> None:
        for buffer, value in saved:
            buffer.copy_(value)

    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd | nn.AlphaDropout):
            module.eval()
    try:
        with torch.no_grad():
            yield restore
    finally:
        with torch.no_grad():
            restore()
        for module, mode in modes:
            module.training = mode


def _run(model: nn.Module, inputs: tuple[Tensor, ...]) -> None:
    """Run the model on the batch; an error says the batch does not fit it."""
    try:
        model(*inputs)
    except _Measured:
        raise
    except (RuntimeError, ValueError, TypeError, IndexError) as err:
        shapes = ", ".join(f"{tuple(x.shape)} {x.dtype} on {x.device}" for x in inputs)
        device = next((p.device for p in model.parameters()), "cpu")
        raise ValueError(
            f"lsuv_init could not run {type(model).__name__} (on {device}) on the batch "
            f"[{shapes}]: {err}; pass a batch the model takes, e.g. the inputs of "
            "dls.one_batch(), on the model's device"
        ) from err


def _forward_order(model: nn.Module, inputs: tuple[Tensor, ...]) -> list[nn.Module]:
    """The modules without children, in the order the forward pass calls them (a module
    called twice, such as one activation shared by several layers, is listed twice)."""
    called: list[nn.Module] = []

    def record(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        called.append(module)

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(record) for m in leaves]
    try:
        _run(model, inputs)
    finally:
        for handle in handles:
            handle.remove()
    return called


def _units(
    model: nn.Module,
    calls: list[nn.Module],
    layers: Sequence[nn.Module] | None,
    after_activation: bool,
) -> list[_Unit]:
    """The layers to set up, in forward order, each with what it measures and shifts."""
    order = list({id(m): m for m in calls}.values())  # in the order of their first calls
    wanted = [m for m in order if isinstance(m, INIT_TYPES)]
    if layers is None:
        wanted = wanted[:-1]  # not the output layer: see lsuv_init
    else:
        bad = [type(m).__name__ for m in layers if all(m is not w for w in wanted)]
        if bad:
            raise ValueError(
                f"lsuv_init sets up the convolution and linear layers the model runs on the "
                f"batch; {bad} are not among them: pass layers of the model, or layers=None"
            )
        wanted = [m for m in wanted if any(m is layer for layer in layers)]
    if not wanted:
        raise ValueError(
            f"lsuv_init found no convolution or linear layer before the output layer that "
            f"{type(model).__name__} runs on the batch; it sets up nn.Conv1d/2d/3d and "
            "nn.Linear layers (pass layers=[...] to include the output layer)"
        )
    units = []
    for layer in wanted:
        index = next(i for i, m in enumerate(calls) if m is layer)
        after = calls[index + 1] if index + 1 < len(calls) else None
        once = sum(m is after for m in calls) == 1  # a shared activation is not this layer's
        if after_activation and isinstance(after, GeneralRelu) and after.sub is not None and once:
            units.append(_Unit(layer, after, after))
        else:
            units.append(_Unit(layer, layer, None))
    return units


def _measure(
    model: nn.Module, inputs: tuple[Tensor, ...], module: nn.Module, name: str
) -> tuple[float, float]:
    """The mean and std of `module`'s output on the batch (the pass stops there)."""
    stats: list[tuple[float, float]] = []

    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        values = output.detach().float()
        stats.append((values.mean().item(), values.std().item()))
        raise _Measured

    handle = module.register_forward_hook(hook)
    try:
        _run(model, inputs)
    except _Measured:
        pass
    finally:
        handle.remove()
    mean, std = stats[0]
    if not (math.isfinite(std) and std > 1e-8):
        raise ValueError(
            f"lsuv_init: the output of {name!r} on the batch has std {std:g} (mean {mean:g}), "
            "so it cannot be scaled to 1; check the layers before it and the batch (inputs "
            "all equal, dead units)"
        )
    return mean, std


def _init_unit(
    model: nn.Module,
    inputs: tuple[Tensor, ...],
    unit: _Unit,
    names: dict[int, str],
    restore: Callable[[], None],
    tol: float,
    max_iter: int,
) -> LSUVStats:
    """Shift and scale one layer until its measured output has mean 0 and std 1."""
    name, measured = names[id(unit.layer)], names[id(unit.measured)]
    can_shift = unit.shift is not None or isinstance(getattr(unit.layer, "bias", None), Tensor)

    def measure() -> tuple[float, float]:
        restore()  # every pass sees the same running statistics (running batch norm)
        return _measure(model, inputs, unit.measured, measured)

    def done(mean: float, std: float) -> bool:
        return abs(std - 1) <= tol and (abs(mean) <= tol or not can_shift)

    mean, std = measure()
    iterations = 0
    while iterations < max_iter and not done(mean, std):
        iterations += 1
        if can_shift and abs(mean) > tol:
            _shift(unit, mean)
            mean, std = measure()
        _weight(unit.layer).div_(std)
        mean, std = measure()
    if not done(mean, std):
        warnings.warn(
            f"lsuv_init: {measured!r} ended at mean {mean:.4f}, std {std:.4f} after "
            f"{max_iter} rounds (tol {tol:g}); raise max_iter or tol",
            RuntimeWarning,
            stacklevel=3,
        )
    return LSUVStats(name, measured, mean, std, iterations, done(mean, std))


def _shift(unit: _Unit, mean: float) -> None:
    """Move the measured output's mean down by `mean`."""
    if unit.shift is not None and unit.shift.sub is not None:
        unit.shift.sub.add_(mean)  # the course's `bias` of a ConvLayer is `-relu.sub`
    else:
        bias = unit.layer.bias
        assert isinstance(bias, Tensor)
        bias.sub_(mean)


__all__ = ["INIT_TYPES", "LSUVStats", "init_cnn", "kaiming_init_", "lsuv_init"]
