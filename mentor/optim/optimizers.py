"""Optimizer factories returning real `torch.optim` optimizers, and hyper-parameter access.

Every factory has the signature `opt_func(params, lr, **kw) -> torch.optim.Optimizer`, where
`params` is an iterable of tensors or a list of torch param-group dicts (such as the ones
`mentor.optim.param_groups` builds). Hyper-parameters are read and written by generic name
('lr', 'mom', 'sqr_mom', 'wd', 'eps') per *layer group* with `get_hyper` / `set_hyper`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from mentor.core.registry import OPTIMIZERS

ParamsT = Iterable[torch.Tensor] | Iterable[dict[str, Any]]
HyperValue = float | Sequence[float] | np.ndarray

HYPER_NAMES: tuple[str, ...] = ("lr", "mom", "sqr_mom", "wd", "eps")

# generic name -> (torch group key, index into a tuple value or None), tried in order
_HYPER_KEYS: dict[str, tuple[tuple[str, int | None], ...]] = {
    "lr": (("lr", None),),
    "mom": (("betas", 0), ("momentum", None)),
    "sqr_mom": (("betas", 1), ("alpha", None)),
    "wd": (("weight_decay", None),),
    "eps": (("eps", None),),
}


def _prepare_groups(params: ParamsT, wd: float) -> list[dict[str, Any]]:
    """Turn `params` into a list of param-group dicts; `wd` fills groups without weight decay."""
    if isinstance(params, torch.Tensor):
        raise TypeError(
            "params is a single tensor; pass an iterable of parameters, e.g. "
            "model.parameters() or [tensor]"
        )
    items = list(params)
    if not items:
        raise ValueError("the optimizer got no parameters; pass model.parameters() or groups")
    # copies: the caller's dicts stay untouched
    groups = [{"weight_decay": wd, **item} for item in items if isinstance(item, dict)]
    if not groups:
        return [{"params": items, "weight_decay": wd}]
    if len(groups) != len(items):
        raise TypeError(
            f"params mixes {len(groups)} group dicts with {len(items) - len(groups)} tensors; "
            "pass either only tensors or only param-group dicts"
        )
    return groups


@OPTIMIZERS.register
def SGD(  # noqa: N802 - named like the optimizer it builds
    params: ParamsT,
    lr: float = 1e-2,
    mom: float = 0.9,
    nesterov: bool = False,
    wd: float = 0.0,
    **torch_kw: Any,
) -> torch.optim.SGD:
    """SGD with momentum and L2 weight decay (`torch.optim.SGD`).

    Args: params, lr=1e-2, mom=0.9 (momentum), nesterov=False, wd=0.0 (L2, default for groups
    without a 'weight_decay' key); extra keywords (foreach, fused, ...) go to torch.
    """
    if nesterov and mom <= 0:
        raise ValueError(f"nesterov=True needs momentum > 0, got mom={mom}; set mom or nesterov")
    groups = _prepare_groups(params, wd)
    return torch.optim.SGD(
        groups, lr=lr, momentum=mom, nesterov=nesterov, weight_decay=wd, **torch_kw
    )


@OPTIMIZERS.register
def Adam(  # noqa: N802 - named like the optimizer it builds
    params: ParamsT,
    lr: float = 1e-3,
    mom: float = 0.9,
    sqr_mom: float = 0.99,
    eps: float = 1e-5,
    wd: float = 0.01,
    decouple_wd: bool = True,
    **torch_kw: Any,
) -> torch.optim.Adam:
    """Adam; with `decouple_wd` it is AdamW (`p <- p * (1 - lr * wd)`), else L2 decay.

    Args: params, lr=1e-3, mom=0.9 (beta1), sqr_mom=0.99 (beta2), eps=1e-5, wd=0.01 (default
    for groups without a 'weight_decay' key), decouple_wd=True; extra keywords go to torch.
    """
    groups = _prepare_groups(params, wd)
    opt_class = torch.optim.AdamW if decouple_wd else torch.optim.Adam
    return opt_class(groups, lr=lr, betas=(mom, sqr_mom), eps=eps, weight_decay=wd, **torch_kw)


@OPTIMIZERS.register
def AdamW(  # noqa: N802 - named like the optimizer it builds
    params: ParamsT,
    lr: float = 1e-3,
    mom: float = 0.9,
    sqr_mom: float = 0.99,
    eps: float = 1e-5,
    wd: float = 0.01,
    **torch_kw: Any,
) -> torch.optim.AdamW:
    """Adam with decoupled weight decay (`torch.optim.AdamW`).

    Args: params, lr=1e-3, mom=0.9 (beta1), sqr_mom=0.99 (beta2), eps=1e-5, wd=0.01 (default
    for groups without a 'weight_decay' key); extra keywords go to torch.
    """
    groups = _prepare_groups(params, wd)
    return torch.optim.AdamW(
        groups, lr=lr, betas=(mom, sqr_mom), eps=eps, weight_decay=wd, **torch_kw
    )


@OPTIMIZERS.register
def RMSProp(  # noqa: N802 - named like the optimizer it builds
    params: ParamsT,
    lr: float = 1e-2,
    sqr_mom: float = 0.99,
    mom: float = 0.0,
    eps: float = 1e-8,
    wd: float = 0.0,
    **torch_kw: Any,
) -> torch.optim.RMSprop:
    """RMSProp (`torch.optim.RMSprop`) with smoothing `sqr_mom` and optional momentum.

    Args: params, lr=1e-2, sqr_mom=0.99 (alpha), mom=0.0 (momentum), eps=1e-8, wd=0.0 (L2,
    default for groups without a 'weight_decay' key); extra keywords go to torch.
    """
    groups = _prepare_groups(params, wd)
    return torch.optim.RMSprop(
        groups, lr=lr, alpha=sqr_mom, momentum=mom, eps=eps, weight_decay=wd, **torch_kw
    )


def _layer_group_ids(opt: torch.optim.Optimizer) -> list[int]:
    """Layer-group id of each torch param group ('layer_group' key, else its own index)."""
    return [group.get("layer_group", i) for i, group in enumerate(opt.param_groups)]


def n_layer_groups(opt: torch.optim.Optimizer) -> int:
    """Number of layer groups of `opt` (distinct 'layer_group' ids of its param groups)."""
    return len(set(_layer_group_ids(opt)))


def _torch_key(opt: torch.optim.Optimizer, name: str) -> tuple[str, int | None]:
    """The torch group key (and tuple index) that stores hyper-parameter `name` in `opt`."""
    if name not in _HYPER_KEYS:
        raise ValueError(
            f"unknown hyper-parameter {name!r}; use one of {', '.join(map(repr, HYPER_NAMES))}"
        )
    first_group = opt.param_groups[0]
    for key, index in _HYPER_KEYS[name]:
        if key in first_group:
            return key, index
    raise ValueError(
        f"{type(opt).__name__} has no hyper-parameter {name!r} (none of the keys "
        f"{[key for key, _ in _HYPER_KEYS[name]]} in its param groups); "
        "schedule a hyper-parameter this optimizer has"
    )


def has_hyper(opt: torch.optim.Optimizer, name: str) -> bool:
    """Whether `opt` has hyper-parameter `name` (e.g. a plain SGD step has no 'mom')."""
    try:
        _torch_key(opt, name)
    except ValueError:
        return False
    return True


def _read(group: dict[str, Any], key: str, index: int | None) -> float:
    value = group[key] if index is None else group[key][index]
    return float(value)


def get_hyper(opt: torch.optim.Optimizer, name: str) -> list[float]:
    """Value of hyper-parameter `name` ('lr', 'mom', 'sqr_mom', 'wd', 'eps') per layer group.

    For 'wd' the value of the decaying group is reported (groups with `no_wd` stay at 0).
    """
    key, index = _torch_key(opt, name)
    values: dict[int, float] = {}
    for group_id, group in zip(_layer_group_ids(opt), opt.param_groups):
        if name == "wd" and group.get("no_wd", False):
            values.setdefault(group_id, 0.0)
            continue
        if group_id not in values or (name == "wd" and values[group_id] == 0.0):
            values[group_id] = _read(group, key, index)
    return [values[group_id] for group_id in sorted(values)]


def _per_group_values(value: HyperValue, name: str, n_groups: int) -> list[float]:
    """One float per layer group from a float, a sequence or a 1-D numpy array."""
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return [float(value)] * n_groups
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return [float(value)] * n_groups
        if value.ndim != 1:
            raise ValueError(
                f"{name!r} values must be a float or a 1-D array, got shape {value.shape}"
            )
    elif not isinstance(value, Sequence) or isinstance(value, str):
        raise TypeError(
            f"{name!r} must be a float or one value per layer group, got {type(value).__name__}"
        )
    if len(value) != n_groups:
        what = "learning rates" if name == "lr" else f"values of {name!r}"
        raise ValueError(
            f"got {len(value)} {what} for {n_groups} parameter groups; "
            "pass one per group or a single value"
        )
    return [float(v) for v in value]


def _write(group: dict[str, Any], key: str, index: int | None, value: float) -> None:
    if index is None:
        group[key] = value
    else:
        old = group[key]
        group[key] = (value, old[1]) if index == 0 else (old[0], value)


def set_hyper(opt: torch.optim.Optimizer, name: str, value: HyperValue) -> None:
    """Set hyper-parameter `name` ('lr', 'mom', 'sqr_mom', 'wd', 'eps') of `opt` in place.

    Args: opt, name, value: a float for all layer groups, or a sequence / 1-D numpy array with
    one value per layer group. Setting 'wd' leaves groups marked `no_wd` at 0.
    """
    key, index = _torch_key(opt, name)
    group_ids = _layer_group_ids(opt)
    ordered_ids = sorted(set(group_ids))
    values = _per_group_values(value, name, len(ordered_ids))
    by_id = dict(zip(ordered_ids, values))
    for group_id, group in zip(group_ids, opt.param_groups):
        if name == "wd" and group.get("no_wd", False):
            continue
        _write(group, key, index, by_id[group_id])
