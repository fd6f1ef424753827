"""Prediction with a trained `Learner`: `get_preds` over a loader, `predict` for one item."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import torch

from mentor.core.device import split_batch, to_device
from mentor.train.losses import loss_activation, loss_decodes

if TYPE_CHECKING:
    from mentor.train.learner import Learner


def get_preds(
    learn: Learner,
    dl: Iterable[Any] | None = None,
    with_input: bool = False,
    with_loss: bool = False,
    act: Callable[[torch.Tensor], torch.Tensor] | bool | None = None,
) -> tuple[Any, ...]:
    """Predictions and targets over `dl` (default: the validation set), on the CPU.

    Args:
        with_input: also return the inputs (first). with_loss: also return the loss of each
            item (last; the loss must accept `reduction='none'`, as torch's and ours do).
        act: the activation applied to the outputs: None uses the loss's (softmax for
            cross-entropy, sigmoid for binary cross-entropy), False none, or a function.

    Returns:
        `(preds, targets)`, with inputs first and losses last when asked for.
    """
    loader = learn.dls.valid if dl is None else dl
    if loader is None:
        raise ValueError("there is no validation set; pass dl= to predict on other data")
    inputs: list[torch.Tensor] = []
    preds: list[torch.Tensor] = []
    targets: list[torch.Tensor] = []
    learn.model.eval()
    with torch.inference_mode(), learn.autocast:
        for batch in loader:
            xb, yb = split_batch(to_device(batch, learn.dls.device))
            preds.append(learn.model(*xb).float())
            targets.extend(yb[:1])
            if with_input:
                inputs.append(xb[0])
    out = torch.cat(preds).cpu()
    target = torch.cat(targets).cpu() if targets else None
    result: list[Any] = [_activate(learn.loss_func, out, act), target]
    if with_input:
        result.insert(0, torch.cat(inputs).cpu())
    if with_loss:
        if target is None:
            raise ValueError("with_loss=True needs targets, but the batches have none")
        result.append(_item_losses(learn.loss_func, out, target))
    return tuple(result)


def predict(learn: Learner, item: torch.Tensor) -> tuple[Any, torch.Tensor]:
    """The decoded prediction and the activated output for one item (no batch axis)."""
    learn.model.eval()
    with torch.inference_mode(), learn.autocast:
        out = learn.model(item.unsqueeze(0).to(learn.dls.device)).float()
    probs = loss_activation(learn.loss_func, out)
    return loss_decodes(learn.loss_func, probs)[0].cpu(), probs[0].cpu()


def _activate(loss_func: Any, out: torch.Tensor, act: Any) -> torch.Tensor:
    if act is False:
        return out
    if act is None or act is True:
        return loss_activation(loss_func, out)
    return act(out)


def _item_losses(loss_func: Any, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if not hasattr(loss_func, "reduction"):
        raise ValueError(
            f"with_loss=True needs a loss with a `reduction` attribute; {loss_func!r} has none"
        )
    with _no_reduction(loss_func):
        losses = loss_func(out, target)
    return losses.reshape(out.shape[0], -1).mean(1) if losses.ndim > 1 else losses


@contextlib.contextmanager
def _no_reduction(loss_func: Any) -> Iterator[None]:
    saved = loss_func.reduction
    loss_func.reduction = "none"
    try:
        yield
    finally:
        loss_func.reduction = saved
