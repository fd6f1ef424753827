"""Loss functions that flatten their inputs and know how to turn outputs into predictions.

Each loss here carries `activation(out)` (raw model output -> probabilities or values) and
`decodes(probs)` (activated output -> labels), so `get_preds` and `predict` return
probabilities and labels without knowing the loss. `loss_activation` and `loss_decodes` do the
same for plain PyTorch losses. Shape checks compare shapes only: they never sync the device.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mentor.core.decoding import Decoding, Sigmoid, Softmax
from mentor.core.registry import LOSSES

LossFn = nn.Module | Callable[..., Tensor]


def _shape(t: Tensor) -> list[int]:
    return list(t.shape)


def _check_same_shape(name: str, pred: Tensor, targ: Tensor) -> None:
    """Raise where PyTorch would broadcast: shapes must match, size-1 axes aside."""
    if pred.shape == targ.shape:
        return
    if [s for s in pred.shape if s != 1] != [s for s in targ.shape if s != 1]:
        raise ValueError(
            f"{name}: predictions have shape {_shape(pred)} but targets have shape "
            f"{_shape(targ)}; they must match (size-1 axes aside), or PyTorch "
            "would silently broadcast: check the number of outputs of the model's "
            "last layer"
        )


def _classes_last(name: str, pred: Tensor, targ: Tensor, axis: int) -> tuple[Tensor, Tensor]:
    """Move pred's class axis last and flatten to [items, C]; targ to [items] (or [items, C])."""
    n_classes = pred.shape[axis]
    flat_pred = pred.movedim(axis, -1).reshape(-1, n_classes)
    if targ.shape == pred.shape and targ.is_floating_point():
        # Class probabilities (soft targets, e.g. mixup) share pred's layout.
        return flat_pred, targ.movedim(axis, -1).reshape(-1, n_classes)
    if targ.numel() != flat_pred.shape[0]:
        raise ValueError(
            f"{name}: predictions {_shape(pred)} hold {flat_pred.shape[0]} items of "
            f"{n_classes} classes (class axis {axis}) but targets {_shape(targ)} "
            f"hold {targ.numel()}; targets must be pred's shape without the class "
            "axis: check `axis` and the model's output"
        )
    return flat_pred, targ.reshape(-1).long()


def _item_shape(pred: Tensor, axis: int) -> torch.Size:
    """pred's shape without the class axis."""
    axis = axis % pred.ndim
    return pred.shape[:axis] + pred.shape[axis + 1 :]


@LOSSES.register
class CrossEntropyLossFlat(nn.Module):
    """Cross-entropy with the class axis anywhere: [N, C], [B, T, C], or [B, C, H, W] (axis=1).

    Args:
        axis: the class axis of the model's output; default -1.
        weight: per-class weights [C]; default None.
        ignore_index: target value that adds no loss (padding); default -100.
        reduction: 'mean' (default), 'sum' or 'none' (per item, shaped like the targets).
        label_smoothing: share of the target mass spread over all classes; default 0.
    """

    def __init__(
        self,
        axis: int = -1,
        weight: Tensor | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.axis = axis
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.label_smoothing = label_smoothing
        self.weight: Tensor | None
        self.register_buffer("weight", weight)

    def _weight_on(self, device: torch.device) -> Tensor | None:
        """The class weights on `device`, moved there once rather than every batch."""
        if self.weight is not None and self.weight.device != device:
            self.weight = self.weight.to(device)
        return self.weight

    def forward(self, pred: Tensor, targ: Tensor) -> Tensor:
        """The loss of raw scores `pred` against class indices (or probabilities) `targ`."""
        flat_pred, flat_targ = _classes_last(type(self).__name__, pred, targ, self.axis)
        loss = F.cross_entropy(
            flat_pred,
            flat_targ,
            weight=self._weight_on(pred.device),
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )
        return loss.reshape(_item_shape(pred, self.axis)) if self.reduction == "none" else loss

    @property
    def decoding(self) -> Softmax:
        """Softmax over the class axis, then argmax (what export writes)."""
        return Softmax(self.axis)

    def activation(self, out: Tensor) -> Tensor:
        """Softmax over the class axis."""
        return self.decoding.activate(out)

    def decodes(self, probs: Tensor) -> Tensor:
        """Class indices: argmax over the class axis."""
        return self.decoding.decode(probs)


@LOSSES.register
class LabelSmoothingCrossEntropy(CrossEntropyLossFlat):
    """Cross-entropy against targets smoothed by `eps`: (1 - eps) one-hot + eps uniform.

    Args:
        eps: share of the target mass spread over all classes; default 0.1.
        axis: the class axis; default -1.
        weight: per-class weights [C]; default None.
        reduction: 'mean' (default), 'sum' or 'none'.
    """

    def __init__(
        self,
        eps: float = 0.1,
        axis: int = -1,
        weight: Tensor | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(axis=axis, weight=weight, reduction=reduction, label_smoothing=eps)
        self.eps = eps


@LOSSES.register
class FocalLoss(CrossEntropyLossFlat):
    """Focal loss: cross-entropy scaled by (1 - p_target)^gamma to focus on hard items.

    Args:
        gamma: focusing strength, 0 gives plain cross-entropy; default 2.
        axis: the class axis; default -1.
        weight: per-class weights [C]; default None.
        ignore_index: target value that adds no loss; default -100.
        reduction: 'mean' (default; over non-ignored items), 'sum' or 'none'.
    """

    def __init__(
        self,
        gamma: float = 2.0,
        axis: int = -1,
        weight: Tensor | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
    ) -> None:
        super().__init__(axis=axis, weight=weight, ignore_index=ignore_index, reduction=reduction)
        self.gamma = gamma

    def forward(self, pred: Tensor, targ: Tensor) -> Tensor:
        """The focal loss of raw scores `pred` against class indices `targ`."""
        flat_pred, flat_targ = _classes_last("FocalLoss", pred, targ, self.axis)
        if flat_targ.ndim != 1:
            raise ValueError(
                "FocalLoss: targets must be class indices, got class "
                f"probabilities of shape {_shape(targ)}; use CrossEntropyLossFlat"
            )
        kept = flat_targ != self.ignore_index
        safe_targ = flat_targ.where(kept, torch.zeros_like(flat_targ))
        log_probs = flat_pred.float().log_softmax(-1)
        target_log_prob = log_probs.gather(1, safe_targ[:, None])[:, 0]
        focus = (1 - target_log_prob.exp()).pow(self.gamma)
        loss = -focus * target_log_prob * kept
        weight = self._weight_on(pred.device)
        if weight is not None:
            loss = loss * weight[safe_targ]
        if self.reduction == "none":
            return loss.reshape(_item_shape(pred, self.axis))
        if self.reduction == "sum":
            return loss.sum()
        return loss.sum() / kept.sum().clamp(min=1)


@LOSSES.register
class BCEWithLogitsLossFlat(nn.Module):
    """Binary cross-entropy on logits for multi-label or binary targets, flattened.

    Args:
        axis: the label axis (where `pos_weight` applies); default -1.
        thresh: probability above which `decodes` predicts a label; default 0.5.
        pos_weight: weight of positives per label [L]; default None.
        weight: rescaling weight, broadcast with the label axis last; default None.
        reduction: 'mean' (default), 'sum' or 'none'.
    """

    def __init__(
        self,
        axis: int = -1,
        thresh: float = 0.5,
        pos_weight: Tensor | None = None,
        weight: Tensor | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.axis = axis
        self.thresh = thresh
        self.reduction = reduction
        self.pos_weight: Tensor | None
        self.weight: Tensor | None
        self.register_buffer("pos_weight", pos_weight)
        self.register_buffer("weight", weight)

    def forward(self, pred: Tensor, targ: Tensor) -> Tensor:
        """The loss of logits `pred` against 0/1 (or soft) targets of the same shape."""
        _check_same_shape(type(self).__name__, pred, targ)
        if self.pos_weight is not None and self.pos_weight.device != pred.device:
            self.pos_weight = self.pos_weight.to(pred.device)
        if self.weight is not None and self.weight.device != pred.device:
            self.weight = self.weight.to(pred.device)
        targ = targ.reshape(pred.shape).to(pred.dtype)
        # pos_weight broadcasts over the last axis, so the label axis goes there.
        moved = pred.ndim > 1 and self.axis % pred.ndim != pred.ndim - 1
        if moved:
            pred, targ = pred.movedim(self.axis, -1), targ.movedim(self.axis, -1)
        loss = F.binary_cross_entropy_with_logits(
            pred, targ, weight=self.weight, pos_weight=self.pos_weight, reduction=self.reduction
        )
        return loss.movedim(-1, self.axis) if moved and self.reduction == "none" else loss

    @property
    def decoding(self) -> Sigmoid:
        """Sigmoid, then `> thresh` (what export writes)."""
        return Sigmoid(self.thresh)

    def activation(self, out: Tensor) -> Tensor:
        """Sigmoid: per-label probabilities."""
        return self.decoding.activate(out)

    def decodes(self, probs: Tensor) -> Tensor:
        """Labels: probs > thresh."""
        return self.decoding.decode(probs)


@LOSSES.register
class MSELossFlat(nn.Module):
    """Mean squared error of flattened pred and targ, so [N, 1] against [N] works.

    Args:
        reduction: 'mean' (default), 'sum' or 'none'.
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, pred: Tensor, targ: Tensor) -> Tensor:
        """The loss; shapes must match apart from size-1 axes (no silent broadcasting)."""
        _check_same_shape(type(self).__name__, pred, targ)
        return F.mse_loss(
            pred.reshape(-1), targ.reshape(-1).to(pred.dtype), reduction=self.reduction
        )

    @property
    def decoding(self) -> Decoding:
        """The identity: outputs are the values (what export writes)."""
        return Decoding()

    def activation(self, out: Tensor) -> Tensor:
        """Identity: outputs are the predicted values."""
        return out

    def decodes(self, probs: Tensor) -> Tensor:
        """Identity."""
        return probs


@LOSSES.register
class L1LossFlat(MSELossFlat):
    """Mean absolute error of flattened pred and targ, so [N, 1] against [N] works.

    Args:
        reduction: 'mean' (default), 'sum' or 'none'.
    """

    def forward(self, pred: Tensor, targ: Tensor) -> Tensor:
        """The loss; shapes must match apart from size-1 axes (no silent broadcasting)."""
        _check_same_shape(type(self).__name__, pred, targ)
        return F.l1_loss(
            pred.reshape(-1), targ.reshape(-1).to(pred.dtype), reduction=self.reduction
        )


def _class_axis(out: Tensor) -> int:
    """PyTorch's class axis: 1 for batched [N, C, ...] outputs, 0 for a single [C]."""
    return 1 if out.ndim > 1 else 0


def loss_activation(loss_func: LossFn, out: Tensor) -> Tensor:
    """Raw model output -> probabilities (or values) as `loss_func` sees them.

    Uses `loss_func.activation` when present; otherwise softmax for nn.CrossEntropyLoss and
    F.cross_entropy, exp for nn.NLLLoss, sigmoid for nn.BCEWithLogitsLoss, identity else.

    Args:
        loss_func: the learner's loss.
        out: the model's output.
    """
    activation = getattr(loss_func, "activation", None)
    if callable(activation):
        return activation(out)
    if isinstance(loss_func, nn.CrossEntropyLoss) or loss_func is F.cross_entropy:
        return out.softmax(dim=_class_axis(out))
    if isinstance(loss_func, nn.NLLLoss) or loss_func is F.nll_loss:
        return out.exp()
    if (
        isinstance(loss_func, nn.BCEWithLogitsLoss)
        or loss_func is F.binary_cross_entropy_with_logits
    ):
        return out.sigmoid()
    return out


def loss_decodes(loss_func: LossFn, probs: Tensor) -> Tensor:
    """Activated output (from `loss_activation`) -> labels as `loss_func` sees them.

    Uses `loss_func.decodes` when present; otherwise argmax over the class axis for
    cross-entropy and NLL, probs > 0.5 for binary cross-entropy, identity else.

    Args:
        loss_func: the learner's loss.
        probs: the activated output.
    """
    decodes = getattr(loss_func, "decodes", None)
    if callable(decodes):
        return decodes(probs)
    class_losses = (nn.CrossEntropyLoss, nn.NLLLoss)
    if isinstance(loss_func, class_losses) or loss_func in (F.cross_entropy, F.nll_loss):
        return probs.argmax(dim=_class_axis(probs))
    if (
        isinstance(loss_func, nn.BCEWithLogitsLoss | nn.BCELoss)
        or loss_func is F.binary_cross_entropy_with_logits
    ):
        return probs > 0.5
    return probs
