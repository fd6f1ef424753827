"""Parameter groups: layer groups, weight decay per group, discriminative lrs, freezing."""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

from mentor.core.norm import RunningBatchNorm

Splitter = Callable[[nn.Module], Sequence[Sequence[nn.Parameter]]]

NORM_TYPES: tuple[type[nn.Module], ...] = (
    _BatchNorm,
    _InstanceNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.RMSNorm,
    RunningBatchNorm,
)
# normalization layers that keep running statistics (updated in train mode)
RUNNING_STATS_TYPES: tuple[type[nn.Module], ...] = (_BatchNorm, _InstanceNorm, RunningBatchNorm)


def norm_and_bias_params(model: nn.Module) -> set[int]:
    """Ids of the biases (params named `bias`) and normalization-layer params of `model`."""
    ids: set[int] = set()
    for module in model.modules():
        is_norm = isinstance(module, NORM_TYPES)
        for name, param in module.named_parameters(recurse=False):
            if is_norm or name == "bias":
                ids.add(id(param))
    return ids


def _norm_params(model: nn.Module) -> set[int]:
    """Ids of the parameters owned directly by normalization layers of `model`."""
    return {
        id(param)
        for module in model.modules()
        if isinstance(module, NORM_TYPES)
        for param in module.parameters(recurse=False)
    }


def _param_name(param: nn.Parameter, names: dict[int, str]) -> str:
    return names.get(id(param), f"<parameter of shape {tuple(param.shape)} not in the model>")


def _split(model: nn.Module, splitter: Splitter | None) -> list[list[nn.Parameter]]:
    """Layer groups from `splitter`, checked: no duplicates, no empty group, warn on leftovers."""
    layer_groups = (
        [list(model.parameters())]
        if splitter is None
        else [list(group) for group in splitter(model)]
    )
    if not layer_groups:
        raise ValueError("the splitter returned no layer groups; return at least one list")
    names = {id(param): name for name, param in model.named_parameters()}
    seen: dict[int, int] = {}
    for index, group in enumerate(layer_groups):
        if not group:
            raise ValueError(
                f"the splitter returned an empty layer group at index {index}; "
                "drop it or give it parameters"
            )
        for param in group:
            if id(param) in seen:
                raise ValueError(
                    f"parameter {_param_name(param, names)!r} is in layer group "
                    f"{seen[id(param)]} and again in layer group {index}; "
                    "each parameter must be in at most one group - fix the splitter"
                )
            seen[id(param)] = index
    left_out = [
        name
        for name, param in model.named_parameters()
        if param.requires_grad and id(param) not in seen
    ]
    if left_out:
        warnings.warn(
            f"the splitter left out {len(left_out)} trainable parameters (e.g. {left_out[0]!r});"
            " they will not be trained - add them to a layer group",
            stacklevel=3,
        )
    return layer_groups


def param_groups(
    model: nn.Module,
    splitter: Splitter | None = None,
    wd: float = 0.01,
    wd_bn_bias: bool = False,
) -> list[dict[str, Any]]:
    """Torch param-group dicts, one or two per layer group (key 'layer_group').

    Args: model; splitter=None (`splitter(model)` -> list of lists of parameters; default one
    group with everything); wd=0.01 for the decaying params; wd_bn_bias=False: biases and
    normalization-layer params get their own group with weight_decay 0 and 'no_wd': True.
    """
    if wd < 0:
        raise ValueError(f"wd must be >= 0, got {wd}")
    layer_groups = _split(model, splitter)
    no_wd_ids = set() if wd_bn_bias else norm_and_bias_params(model)
    groups: list[dict[str, Any]] = []
    for index, params in enumerate(layer_groups):
        decay = [param for param in params if id(param) not in no_wd_ids]
        no_decay = [param for param in params if id(param) in no_wd_ids]
        if decay:
            groups.append({"params": decay, "weight_decay": wd, "layer_group": index})
        if no_decay:
            groups.append(
                {"params": no_decay, "weight_decay": 0.0, "no_wd": True, "layer_group": index}
            )
    return groups


def _check_lrs(lrs: list[float], given: object) -> list[float]:
    bad = [lr for lr in lrs if not (lr > 0 and math.isfinite(lr))]
    if bad:
        raise ValueError(f"learning rates must be positive and finite, got {bad} in {given!r}")
    return lrs


def lr_per_group(lr: float | slice | Sequence[float] | np.ndarray, n_groups: int) -> list[float]:
    """One learning rate per layer group.

    Args: lr: a float (same for all), one value per group (list, tuple, 1-D array),
    `slice(hi)` (last group hi, the others hi/10) or `slice(lo, hi)` (geometric from lo to hi);
    n_groups: number of layer groups. Example: `lr_per_group(slice(1e-5, 1e-3), 3)` ->
    `[1e-5, 1e-4, 1e-3]`.
    """
    if not isinstance(n_groups, int) or n_groups < 1:
        raise ValueError(f"n_groups must be a positive int, got {n_groups!r}")
    if isinstance(lr, numbers.Real) and not isinstance(lr, bool):
        return _check_lrs([float(lr)], lr) * n_groups
    if isinstance(lr, slice):
        return _lr_from_slice(lr, n_groups)
    if isinstance(lr, np.ndarray) and lr.ndim != 1:
        raise ValueError(f"an array of learning rates must be 1-D, got shape {lr.shape}")
    if not isinstance(lr, (Sequence, np.ndarray)) or isinstance(lr, str):
        raise TypeError(
            f"lr must be a float, a slice or one value per group, got {type(lr).__name__}"
        )
    if len(lr) != n_groups:
        raise ValueError(
            f"got {len(lr)} learning rates for {n_groups} parameter groups; "
            "pass one per group or a slice"
        )
    return _check_lrs([float(value) for value in lr], lr)


def _lr_from_slice(lr: slice, n_groups: int) -> list[float]:
    if lr.step is not None or lr.stop is None:
        raise ValueError(f"use slice(hi) or slice(lo, hi) for learning rates, got {lr!r}")
    hi = float(lr.stop)
    if lr.start is None:
        return _check_lrs([hi / 10] * (n_groups - 1) + [hi], lr)
    lo = float(lr.start)
    _check_lrs([lo, hi], lr)
    if n_groups == 1:
        return [hi]
    ratio = hi / lo
    lrs = [lo * ratio ** (index / (n_groups - 1)) for index in range(n_groups)]
    lrs[-1] = hi
    return lrs


def _frozen_count(n: int, n_groups: int) -> int:
    """Number of frozen layer groups for `freeze_to(..., n)`; n may be negative."""
    if not -n_groups <= n <= n_groups:
        raise ValueError(
            f"n={n} is out of range for {n_groups} layer groups; "
            f"use -{n_groups} <= n <= {n_groups} (-1 trains only the last group)"
        )
    return n + n_groups if n < 0 else n


def freeze_to(
    model: nn.Module,
    layer_groups: Sequence[Sequence[nn.Parameter]],
    n: int,
    train_bn: bool = True,
) -> None:
    """Freeze layer groups with index < n, unfreeze the rest (n < 0 counts from the end).

    Args: model, layer_groups, n (e.g. -1: only the last group trains, 0: all train);
    train_bn=True keeps normalization-layer params trainable in frozen groups.
    """
    n_frozen = _frozen_count(n, len(layer_groups))
    norm_ids = _norm_params(model) if train_bn else set()
    for index, group in enumerate(layer_groups):
        for param in group:
            param.requires_grad_(index >= n_frozen or id(param) in norm_ids)


def frozen_bn_modules(
    model: nn.Module, layer_groups: Sequence[Sequence[nn.Parameter]], n: int
) -> list[nn.Module]:
    """Batch-norm (and instance-norm) modules whose params lie in layer groups frozen by n.

    Put them in eval mode to keep their running statistics fixed while the group is frozen.
    """
    n_frozen = _frozen_count(n, len(layer_groups))
    frozen_ids = {id(param) for group in layer_groups[:n_frozen] for param in group}
    return [
        module
        for module in model.modules()
        if isinstance(module, RUNNING_STATS_TYPES)
        and any(id(param) in frozen_ids for param in module.parameters(recurse=False))
    ]
