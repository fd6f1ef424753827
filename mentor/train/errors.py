"""Checks and messages for the mistakes users make most: empty data, losses that don't fit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from mentor.core.registry import LOSSES
from mentor.data.loaders import DataLoaders
from mentor.train.losses import CrossEntropyLossFlat, MSELossFlat


def check_data(dls: DataLoaders) -> int:
    """The number of training batches per epoch (0 when unknown); fails on an empty train set."""
    if not dls.train.has_len():
        return 0
    n_batches = len(dls.train)
    if n_batches == 0:
        raise ValueError(
            "the training set is empty (0 batches): check the data path and the split, and "
            "that the batch size is not larger than the data set when drop_last=True"
        )
    return n_batches


def default_loss(dls: DataLoaders) -> Callable[..., torch.Tensor]:
    """The loss the data implies (`dls.loss_spec`), else one for the first batch's targets:
    cross-entropy for integers, MSE for floats."""
    if dls.loss_spec is not None:
        name, kwargs = dls.loss_spec
        return LOSSES.create(name, **kwargs)
    batch = dls.one_batch()
    target = batch[-1] if isinstance(batch, tuple | list) and len(batch) > 1 else None
    if not isinstance(target, torch.Tensor):
        raise ValueError("cannot infer a loss: batches have no target tensor; pass loss_func=...")
    if target.is_floating_point():
        return MSELossFlat()
    return CrossEntropyLossFlat()


def explain_loss_error(
    loss_func: Callable[..., Any], pred: Any, yb: tuple[Any, ...], err: Exception
) -> str:
    """A message naming the shapes the loss got and the likely fix."""
    name = getattr(loss_func, "__name__", type(loss_func).__name__)
    shapes = f"predictions {_describe(pred)} and targets {', '.join(_describe(y) for y in yb)}"
    hint = _hint(loss_func, pred, yb)
    return f"loss {name} failed on {shapes}: {err}" + (f"\n{hint}" if hint else "")


def _hint(loss_func: Callable[..., Any], pred: Any, yb: tuple[Any, ...]) -> str:
    if len(yb) != 1 or not isinstance(pred, torch.Tensor) or not isinstance(yb[0], torch.Tensor):
        return ""
    target = yb[0]
    is_ce = isinstance(loss_func, nn.CrossEntropyLoss | CrossEntropyLossFlat)
    if is_ce and not target.is_floating_point() and target.numel():
        n_out = (
            pred.shape[-1]
            if isinstance(loss_func, nn.CrossEntropyLoss)
            else pred.shape[getattr(loss_func, "axis", -1)]
        )
        top = int(target.max())
        if top >= n_out:
            return (
                f"the model outputs {n_out} values per item but a target is class {top}: "
                f"the data has at least {top + 1} classes; give the model's last layer "
                f"{top + 1} outputs (n_out={top + 1})"
            )
    if is_ce and target.is_floating_point():
        return (
            "cross-entropy wants integer class indices as targets; for several labels per "
            "item use BCEWithLogitsLossFlat, for numbers MSELossFlat"
        )
    if is_ce and target.ndim == pred.ndim:
        return (
            f"cross-entropy wants targets of shape {list(pred.shape[:-1])} (one class index "
            f"per item), got {list(target.shape)}; squeeze the extra axis of the targets"
        )
    return ""


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"of shape {list(value.shape)} ({str(value.dtype).removeprefix('torch.')})"
    return type(value).__name__
