"""Segmentation metrics summed over the whole validation set: pixel counts, never batch means.

pred holds the model's outputs `[B, C, H, W]` (class scores on `axis`, default 1) and targ the
masks `[B, H, W]` (or `[B, 1, H, W]`) of class indices. Each metric keeps pixel counts on the
device (no host sync per batch), so an epoch's value is exact whatever the batch sizes, and its
`totals()` all-reduce across processes like every `SumMetric`.

Example:
    >>> learn = Learner(dls, model, metrics=[foreground_acc, Dice(), mean_iou])
    >>> learn = Learner(dls, model, metrics=[ForegroundAcc(void_code=31), DiceMulti()])
"""

import math

import torch
from torch import Tensor

from mentor.train.metrics import SumMetric, _shape


def _check_mask_shape(name: str, pred: Tensor, targ: Tensor, axis: int) -> None:
    """Raise unless targ is pred's shape without the class axis (or with it of size 1)."""
    if pred.ndim < 2 or not -pred.ndim <= axis < pred.ndim:
        raise ValueError(
            f"{name}: predictions of shape {_shape(pred)} have no class axis {axis}; "
            "pass the model's outputs [B, C, H, W] with the classes on axis=1"
        )
    axis = axis % pred.ndim
    without_classes = pred.shape[:axis] + pred.shape[axis + 1 :]
    with_one = pred.shape[:axis] + (1,) + pred.shape[axis + 1 :]
    if targ.shape not in (without_classes, with_one):
        raise ValueError(
            f"{name}: predictions have shape {_shape(pred)} but targets have shape "
            f"{_shape(targ)}; targets must be the predictions' shape without the class "
            f"axis (axis={axis}), {list(without_classes)}: check that the masks have the "
            "images' size and that the model outputs one channel per class"
        )


def _mask_classes(name: str, pred: Tensor, targ: Tensor, axis: int) -> tuple[Tensor, Tensor]:
    """Predicted classes (argmax over `axis`) and target classes, both flattened."""
    _check_mask_shape(name, pred, targ, axis)
    return pred.argmax(dim=axis).reshape(-1), targ.reshape(-1).long()


class ForegroundAcc(SumMetric):
    """Pixel accuracy over the pixels whose target is not the background / void code.

    fastai's `foreground_acc` (and `acc_camvid`, where the void code is given): the epoch value
    is (correct non-void pixels) / (non-void pixels) over the whole validation set.

    Args:
        bkg_idx: the target code to leave out; default 0.
        axis: the class axis of pred; default 1.
        void_code: another name for `bkg_idx` (fastai's `acc_camvid`); default None.
        name: column name; default 'foreground_acc'.

    Example:
        >>> learn = Learner(dls, model, metrics=[ForegroundAcc(void_code=31)])
        >>> foreground_acc(pred, targ, bkg_idx=31)  # one batch, as a float
    """

    def __init__(
        self,
        bkg_idx: int = 0,
        axis: int = 1,
        *,
        void_code: int | None = None,
        name: str = "foreground_acc",
    ) -> None:
        super().__init__(name)
        if void_code is not None and bkg_idx not in (0, void_code):
            raise ValueError(
                f"{name}: bkg_idx={bkg_idx} and void_code={void_code} name two different "
                "codes to leave out; pass one of them"
            )
        self.bkg_idx = bkg_idx if void_code is None else void_code
        self.axis = axis

    def batch_sums(self, pred: Tensor, targ: Tensor) -> tuple[Tensor, int]:
        """Correct non-void pixels and non-void pixels of this batch."""
        pred_cls, targ_cls = _mask_classes(self.name, pred, targ, self.axis)
        kept = targ_cls != self.bkg_idx
        correct = (pred_cls == targ_cls) & kept
        return torch.stack([correct.sum(), kept.sum()]), targ_cls.numel()

    def compute(self, sums: Tensor, count: int) -> float:
        """Correct / kept pixels (nan when every pixel was void)."""
        kept = float(sums[1])
        return float(sums[0]) / kept if kept > 0 else math.nan

    def __call__(
        self, pred: Tensor, targ: Tensor, bkg_idx: int | None = None, axis: int | None = None
    ) -> float:
        """The metric on one batch (fastai's `foreground_acc(inp, targ, bkg_idx, axis)`)."""
        one_batch = ForegroundAcc(
            self.bkg_idx if bkg_idx is None else bkg_idx,
            self.axis if axis is None else axis,
            name=self.name,
        )
        return SumMetric.__call__(one_batch, pred, targ)


class _BinaryOverlap(SumMetric):
    """Intersection and |pred| + |targ| of the foreground (class 1) over the epoch.

    pred holds 2 class scores on `axis` (or 1 channel of logits, foreground where > 0);
    subclasses define `overlap(inter, sizes)`.

    Args:
        name: column name.
        axis: the class axis of pred.
    """

    def __init__(self, name: str, axis: int) -> None:
        super().__init__(name)
        self.axis = axis

    def batch_sums(self, pred: Tensor, targ: Tensor) -> tuple[Tensor, int]:
        """Foreground intersection and the two foreground sizes summed."""
        _check_mask_shape(self.name, pred, targ, self.axis)
        n_channels = pred.shape[self.axis]
        if n_channels not in (1, 2):
            raise ValueError(
                f"{self.name}: binary segmentation needs 2 classes (or 1 channel of logits) "
                f"on axis {self.axis}, got {n_channels}; use DiceMulti() or "
                "SegmentationIoU() for more classes"
            )
        if n_channels == 1:
            pred_fg = (pred > 0).reshape(-1)
        else:
            pred_fg = pred.argmax(dim=self.axis).reshape(-1) == 1
        targ_fg = targ.reshape(-1) == 1
        both = (pred_fg & targ_fg).sum()
        return torch.stack([both, pred_fg.sum() + targ_fg.sum()]), targ_fg.numel()

    def overlap(self, inter: float, sizes: float) -> float:
        """The score from the foreground intersection and |A| + |B| (> 0)."""
        raise NotImplementedError(f"{type(self).__name__} must implement overlap()")

    def compute(self, sums: Tensor, count: int) -> float:
        """The score (nan when the foreground is empty on both sides over the whole set)."""
        sizes = float(sums[1])
        return self.overlap(float(sums[0]), sizes) if sizes > 0 else math.nan


class Dice(_BinaryOverlap):
    """Dice coefficient 2|A n B| / (|A| + |B|) of the foreground (class 1), binary targets.

    Args: axis (1), name ('dice'); see `_BinaryOverlap`.
    """

    def __init__(self, axis: int = 1, name: str = "dice") -> None:
        super().__init__(name, axis)

    def overlap(self, inter: float, sizes: float) -> float:
        """2 intersection / (|A| + |B|)."""
        return 2.0 * inter / sizes


class JaccardCoeff(_BinaryOverlap):
    """Jaccard coefficient |A n B| / |A u B| of the foreground (class 1), binary targets.

    Args: axis (1), name ('jaccard_coeff'); see `_BinaryOverlap`.
    """

    def __init__(self, axis: int = 1, name: str = "jaccard_coeff") -> None:
        super().__init__(name, axis)

    def overlap(self, inter: float, sizes: float) -> float:
        """intersection / union, the union being |A| + |B| - intersection."""
        return inter / (sizes - inter)


def _confusion_bins(
    pred_cls: Tensor, targ_cls: Tensor, n_classes: int, ignore_index: int | None
) -> Tensor:
    """[C * C + 1] int64: the confusion matrix (row = target) flattened, then the number of
    pixels with a code outside [0, C) that is not `ignore_index`; device ops only.

    scatter_add_ instead of bincount: CUDA bincount reads the max back to the host.
    """
    n_cells = n_classes * n_classes
    in_range = (targ_cls >= 0) & (targ_cls < n_classes) & (pred_cls >= 0) & (pred_cls < n_classes)
    index = torch.where(in_range, targ_cls * n_classes + pred_cls, n_cells + 1)
    if ignore_index is not None:  # into a bin of their own, dropped below
        index = torch.where(targ_cls == ignore_index, n_cells, index)
    bins = torch.zeros(n_cells + 2, dtype=torch.long, device=targ_cls.device)
    bins.scatter_add_(0, index, torch.ones_like(index))
    return torch.cat([bins[:n_cells], bins[n_cells + 1 :]])


def _out_of_range_error(name: str, n_bad: int, n_classes: int, ignore_index: int | None) -> str:
    return (
        f"{name}: {n_bad} pixels have a class code outside 0..{n_classes - 1} that is not "
        f"ignore_index={ignore_index}; pass ignore_index= for the void code (e.g. 255) or "
        "check the masks' codes against the model's number of classes"
    )


def pixel_confusion(
    pred: Tensor,
    targ: Tensor,
    n_classes: int | None = None,
    ignore_index: int | None = None,
    axis: int = 1,
) -> Tensor:
    """The pixel confusion matrix [C, C] (int64; row = target class, column = predicted).

    Pixels whose target is `ignore_index` are left out. Reads one number back from the device
    to refuse codes outside [0, C).

    Args:
        pred: class scores [B, C, H, W] (floating; argmax over `axis`) or class indices of
            targ's shape (integer).
        targ: class indices [B, H, W].
        n_classes: C; default None takes pred's size on `axis` (needed for class indices).
        ignore_index: target code to leave out (void); default None.
        axis: the class axis of scores; default 1.
    """
    if pred.is_floating_point():
        pred_cls, targ_cls = _mask_classes("pixel_confusion", pred, targ, axis)
        if n_classes not in (None, pred.shape[axis]):
            raise ValueError(
                f"pixel_confusion: scores of shape {_shape(pred)} have {pred.shape[axis]} "
                f"classes on axis {axis} but n_classes={n_classes}"
            )
        n_classes = pred.shape[axis]
    else:
        if n_classes is None or pred.shape != targ.shape:
            raise ValueError(
                f"pixel_confusion: class indices of shape {_shape(pred)} need targets of the "
                f"same shape (got {_shape(targ)}) and n_classes= (got {n_classes})"
            )
        pred_cls, targ_cls = pred.reshape(-1).long(), targ.reshape(-1).long()
    bins = _confusion_bins(pred_cls, targ_cls, n_classes, ignore_index)
    n_bad = int(bins[-1])
    if n_bad:
        raise ValueError(_out_of_range_error("pixel_confusion", n_bad, n_classes, ignore_index))
    return bins[:-1].reshape(n_classes, n_classes)


def per_class_iou(confusion: Tensor, ignore_index: int | None = None) -> Tensor:
    """IoU = TP / (TP + FP + FN) per class from a confusion matrix (row = target), float64;
    nan for a class absent from both targets and predictions, and for `ignore_index`."""
    matrix = confusion.double()
    tp = matrix.diagonal()
    union = matrix.sum(0) + matrix.sum(1) - tp
    return _present_only(tp / union.clamp(min=1), union, ignore_index)


def _present_only(scores: Tensor, union: Tensor, ignore_index: int | None) -> Tensor:
    """scores with nan where the class never occurs (union 0) or is the ignored code."""
    scores = torch.where(union > 0, scores, torch.full_like(scores, math.nan))
    if ignore_index is not None and 0 <= ignore_index < scores.numel():
        scores[ignore_index] = math.nan
    return scores


def _nanmean(scores: Tensor) -> float:
    """Mean of the non-nan scores (nan when there are none)."""
    present = ~scores.isnan()
    return float(scores[present].mean()) if bool(present.any()) else math.nan


class _ConfusionMetric(SumMetric):
    """Base of the metrics read from the whole set's pixel confusion matrix (int64 sums).

    Subclasses define `score(confusion) -> float`.
    """

    def __init__(
        self, name: str, n_classes: int | None, ignore_index: int | None, axis: int
    ) -> None:
        super().__init__(name)
        self.n_classes = n_classes
        self.ignore_index = ignore_index
        self.axis = axis

    def score(self, confusion: Tensor) -> float:
        """The metric from the epoch's confusion matrix [C, C] (float64, row = target)."""
        raise NotImplementedError(f"{type(self).__name__} must implement score()")

    def batch_sums(self, pred: Tensor, targ: Tensor) -> tuple[Tensor, int]:
        """This batch's confusion matrix, flattened, and its out-of-range pixel count."""
        pred_cls, targ_cls = _mask_classes(self.name, pred, targ, self.axis)
        n_classes = pred.shape[self.axis]
        if self.n_classes is not None and n_classes != self.n_classes:
            raise ValueError(
                f"{self.name}: predictions of shape {_shape(pred)} have {n_classes} classes "
                f"on axis {self.axis} but the metric was made for n_classes={self.n_classes}"
            )
        return _confusion_bins(pred_cls, targ_cls, n_classes, self.ignore_index), targ_cls.numel()

    def accumulate(self, pred: Tensor, targ: Tensor) -> None:
        """Add this batch's pixel counts on the device, as int64 so that they stay exact."""
        bins, n_pixels = self.batch_sums(pred, targ)
        if self._sums is None:
            self._sums = torch.zeros_like(bins)
        elif self._sums.shape != bins.shape:
            raise ValueError(
                f"{self.name}: this batch's predictions {_shape(pred)} have another number of "
                "classes than the earlier batches'; every batch must have the same classes"
            )
        self._sums.add_(bins)
        self._count += n_pixels

    @property
    def confusion(self) -> Tensor:
        """The epoch's pixel confusion matrix [C, C] on the CPU (int64, row = target class)."""
        if self._sums is None:
            raise ValueError(f"{self.name}: no batch was accumulated yet; validate first")
        n_classes = math.isqrt(self._sums.numel() - 1)
        return self._sums[:-1].reshape(n_classes, n_classes).cpu().long()

    def compute(self, sums: Tensor, count: int) -> float:
        """Refuse out-of-range codes, then score the confusion matrix."""
        n_classes = math.isqrt(sums.numel() - 1)
        n_bad = int(sums[-1])
        if n_bad:
            raise ValueError(_out_of_range_error(self.name, n_bad, n_classes, self.ignore_index))
        return self.score(sums[:-1].reshape(n_classes, n_classes))


class SegmentationIoU(_ConfusionMetric):
    """Mean intersection over union over the classes; `per_class` holds each class's IoU.

    IoU_c = TP / (TP + FP + FN) from the whole set's pixel confusion matrix; the mean skips
    classes absent from both targets and predictions. Pixels whose target is `ignore_index`
    are left out (and that class from the mean, when it is a class index).

    Args:
        n_classes: the number of classes C; default None takes it from pred's class axis.
        ignore_index: target code to leave out (void, e.g. 255); default None.
        axis: the class axis of pred; default 1.
        name: column name; default 'mean_iou'.

    Example:
        >>> iou = SegmentationIoU(ignore_index=255)
        >>> learn = Learner(dls, model, metrics=[iou]); learn.validate()
        >>> learn.metrics[0].per_class  # one IoU per class, nan where a class never occurs
    """

    def __init__(
        self,
        n_classes: int | None = None,
        ignore_index: int | None = None,
        axis: int = 1,
        name: str = "mean_iou",
    ) -> None:
        super().__init__(name, n_classes, ignore_index, axis)

    @property
    def per_class(self) -> Tensor:
        """IoU of each class over the epoch (float64, CPU; nan for absent or ignored classes)."""
        return per_class_iou(self.confusion, self.ignore_index)

    def score(self, confusion: Tensor) -> float:
        """Mean of the per-class IoUs of the classes present."""
        return _nanmean(per_class_iou(confusion, self.ignore_index))


class DiceMulti(_ConfusionMetric):
    """Mean over classes of each class's Dice 2 TP / (|pred = c| + |targ = c|), whole-set sums.

    Classes absent from both targets and predictions are skipped, as in fastai.

    Args:
        ignore_index: target code to leave out (void); default None.
        axis: the class axis of pred; default 1.
        name: column name; default 'dice_multi'.
    """

    def __init__(
        self, ignore_index: int | None = None, axis: int = 1, name: str = "dice_multi"
    ) -> None:
        super().__init__(name, None, ignore_index, axis)

    def score(self, confusion: Tensor) -> float:
        """Mean of the per-class Dice scores of the classes present."""
        tp = confusion.diagonal()
        sizes = confusion.sum(0) + confusion.sum(1)
        return _nanmean(_present_only(2 * tp / sizes.clamp(min=1), sizes, self.ignore_index))


foreground_acc = ForegroundAcc()
"""Ready ForegroundAcc (background code 0): `metrics=[foreground_acc]` or
`foreground_acc(pred, targ, bkg_idx=0, axis=1)` on one batch."""
mean_iou = SegmentationIoU()
"""Ready SegmentationIoU (classes from pred, no ignored code): `metrics=[mean_iou]`."""
