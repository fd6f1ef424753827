"""Classification scores that do not average over batches: precision, recall, F-beta.

They accumulate per-class counts on the device and compute the score once per epoch,
matching scikit-learn on the whole validation set.
"""

from typing import Literal

import torch
from torch import Tensor

from mentor.train.metrics import SumMetric, _class_indices, _flat_pair

Average = Literal["binary", "macro", "micro", "weighted"]
MultiAverage = Literal["samples", "macro", "micro", "weighted"]


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    """num / den, with 0 where den is 0 (scikit-learn's zero_division default)."""
    return torch.where(den > 0, num / den.clamp(min=1e-300), torch.zeros_like(num))


def _fbeta(tp: Tensor, predicted: Tensor, actual: Tensor, beta: float) -> Tensor:
    """F-beta from true positives and predicted / actual positive counts."""
    b2 = beta * beta
    return _safe_div((1 + b2) * tp, b2 * actual + predicted)


def _average(
    scores: Tensor, counts: Tensor, average: str, pos_label: int, only_present: bool
) -> float:
    """Average per-class scores: 'binary', 'macro', 'weighted' ('micro' is handled earlier)."""
    _, predicted, actual = counts
    if average == "binary":
        return float(scores[pos_label])
    if average == "weighted":
        support = actual.sum()
        return float((scores * actual).sum() / support) if support > 0 else 0.0
    # scikit-learn's single-label macro average skips classes neither predicted nor present.
    present = (predicted + actual) > 0 if only_present else torch.ones_like(scores).bool()
    return float(scores[present].mean()) if present.any() else 0.0


def _class_counts(pred_cls: Tensor, targ_cls: Tensor, n_classes: int) -> Tensor:
    """[3, C] counts per class: true positives, predicted, actual; device ops only.

    scatter_add_ instead of bincount: CUDA bincount reads the max back to the host.
    """
    correct = (pred_cls == targ_cls).long()
    ones = torch.ones_like(targ_cls)
    index = torch.cat([targ_cls, pred_cls + n_classes, targ_cls + 2 * n_classes])
    counts = torch.zeros(3 * n_classes, dtype=torch.long, device=targ_cls.device)
    return counts.scatter_add_(0, index, torch.cat([correct, ones, ones])).reshape(3, n_classes)


class ClassScore(SumMetric):
    """Base of single-label classification scores built from per-class counts.

    pred holds class scores (logits or probabilities) with the classes on `axis`; targ holds
    class indices. Subclasses define `score(tp, predicted, actual)` per class.

    Args:
        name: column name.
        average: 'binary' (default; the `pos_label` class of 2), 'macro' (mean over the classes
            predicted or present), 'micro' (global counts) or 'weighted' (by class support).
        pos_label: the positive class for average='binary'; default 1.
        axis: the class axis of pred; default -1.
    """

    def __init__(
        self, name: str, average: Average = "binary", pos_label: int = 1, axis: int = -1
    ) -> None:
        super().__init__(name)
        if average not in ("binary", "macro", "micro", "weighted"):
            raise ValueError(
                f"{name}: average={average!r} is not one of 'binary', 'macro', 'micro', 'weighted'"
            )
        self.average = average
        self.pos_label = pos_label
        self.axis = axis

    def score(self, tp: Tensor, predicted: Tensor, actual: Tensor) -> Tensor:
        """The score from true positives and predicted / actual counts (per class)."""
        raise NotImplementedError(f"{type(self).__name__} must implement score()")

    def batch_sums(self, pred: Tensor, targ: Tensor) -> tuple[Tensor, int]:
        """Per-class true positive, predicted and actual counts of this batch."""
        n_classes = pred.shape[self.axis] if pred.ndim > 0 else 0
        if self.average == "binary" and (n_classes != 2 or self.pos_label not in (0, 1)):
            raise ValueError(
                f"{self.name}: average='binary' needs 2 classes and pos_label 0 "
                f"or 1, got {n_classes} classes on axis {self.axis} and "
                f"pos_label={self.pos_label}; pass average='macro', 'micro' or "
                "'weighted' for more classes"
            )
        pred_cls, targ_cls = _class_indices(self.name, pred, targ, self.axis)
        counts = _class_counts(pred_cls, targ_cls, n_classes)
        return counts.reshape(-1), targ_cls.numel()

    def compute(self, sums: Tensor, count: int) -> float:
        """Average the per-class scores as `average` says."""
        counts = sums.reshape(3, -1)
        tp, predicted, actual = counts
        if self.average == "micro":
            return float(self.score(tp.sum(), predicted.sum(), actual.sum()))
        scores = self.score(tp, predicted, actual)
        return _average(scores, counts, self.average, self.pos_label, only_present=True)


class Precision(ClassScore):
    """Precision tp / (tp + fp) for single-label classification.

    Args: average ('binary'), pos_label (1), axis (-1), name ('precision_score'); see ClassScore.
    """

    def __init__(
        self,
        average: Average = "binary",
        pos_label: int = 1,
        axis: int = -1,
        name: str = "precision_score",
    ) -> None:
        super().__init__(name, average, pos_label, axis)

    def score(self, tp: Tensor, predicted: Tensor, actual: Tensor) -> Tensor:
        """tp / predicted (0 where nothing was predicted)."""
        return _safe_div(tp, predicted)


class Recall(ClassScore):
    """Recall tp / (tp + fn) for single-label classification.

    Args: average ('binary'), pos_label (1), axis (-1), name ('recall_score'); see ClassScore.
    """

    def __init__(
        self,
        average: Average = "binary",
        pos_label: int = 1,
        axis: int = -1,
        name: str = "recall_score",
    ) -> None:
        super().__init__(name, average, pos_label, axis)

    def score(self, tp: Tensor, predicted: Tensor, actual: Tensor) -> Tensor:
        """tp / actual (0 where the class never occurs)."""
        return _safe_div(tp, actual)


class FBeta(ClassScore):
    """F-beta score for single-label classification: recall weighs `beta` times precision.

    Args: beta (2.0), average ('binary'), pos_label (1), axis (-1), name ('fbeta_score'); see
    ClassScore.
    """

    def __init__(
        self,
        beta: float = 2.0,
        average: Average = "binary",
        pos_label: int = 1,
        axis: int = -1,
        name: str = "fbeta_score",
    ) -> None:
        super().__init__(name, average, pos_label, axis)
        self.beta = beta

    def score(self, tp: Tensor, predicted: Tensor, actual: Tensor) -> Tensor:
        """(1 + beta^2) tp / (beta^2 actual + predicted)."""
        return _fbeta(tp, predicted, actual, self.beta)


class F1Score(FBeta):
    """F1 score (harmonic mean of precision and recall), single-label.

    Args: average ('binary'), pos_label (1), axis (-1), name ('f1_score'); see ClassScore.
    """

    def __init__(
        self,
        average: Average = "binary",
        pos_label: int = 1,
        axis: int = -1,
        name: str = "f1_score",
    ) -> None:
        super().__init__(1.0, average, pos_label, axis, name)


class FBetaMulti(SumMetric):
    """F-beta score for multi-label classification; pred [N, L] scores, targ [N, L] in {0, 1}.

    Args:
        beta: weight of recall; default 2.
        thresh: probability above which a label is predicted; default 0.5.
        average: 'samples' (default; mean of per-item scores), 'macro' (mean over labels),
            'micro' (global counts) or 'weighted' (by label support), as scikit-learn.
        sigmoid: apply a sigmoid to pred first (pred are logits); default True.
        name: column name; default 'fbeta_score'.
    """

    def __init__(
        self,
        beta: float = 2.0,
        thresh: float = 0.5,
        average: MultiAverage = "samples",
        sigmoid: bool = True,
        name: str = "fbeta_score",
    ) -> None:
        super().__init__(name)
        if average not in ("samples", "macro", "micro", "weighted"):
            raise ValueError(
                f"{name}: average={average!r} is not one of 'samples', 'macro', 'micro', 'weighted'"
            )
        self.beta = beta
        self.thresh = thresh
        self.average = average
        self.sigmoid = sigmoid

    def batch_sums(self, pred: Tensor, targ: Tensor) -> tuple[Tensor, int]:
        """Summed per-item scores ('samples') or per-label counts (the other averages)."""
        _flat_pair(self.name, pred, targ)
        n_labels = pred.shape[-1]
        probs = pred.reshape(-1, n_labels)
        probs = probs.sigmoid() if self.sigmoid else probs
        predicted = (probs > self.thresh).float()
        actual = targ.reshape(-1, n_labels).float()
        tp = predicted * actual
        if self.average == "samples":
            per_item = _fbeta(tp.sum(1), predicted.sum(1), actual.sum(1), self.beta)
            return per_item.sum().reshape(1), per_item.numel()
        counts = torch.stack([tp.sum(0), predicted.sum(0), actual.sum(0)])
        return counts.reshape(-1), actual.shape[0]

    def compute(self, sums: Tensor, count: int) -> float:
        """The averaged score."""
        if self.average == "samples":
            return float(sums[0]) / count
        counts = sums.reshape(3, -1)
        tp, predicted, actual = counts
        if self.average == "micro":
            return float(_fbeta(tp.sum(), predicted.sum(), actual.sum(), self.beta))
        scores = _fbeta(tp, predicted, actual, self.beta)
        return _average(scores, counts, self.average, 0, only_present=False)


def fbeta(
    beta: float = 2.0, thresh: float = 0.5, average: MultiAverage = "samples", sigmoid: bool = True
) -> FBetaMulti:
    """Multi-label F-beta Metric: `metrics=[fbeta(beta=1, average='macro')]` (see FBetaMulti).

    Args:
        beta: weight of recall; default 2.
        thresh: probability above which a label is predicted; default 0.5.
        average: 'samples' (default), 'macro', 'micro' or 'weighted'.
        sigmoid: apply a sigmoid to pred first; default True.
    """
    return FBetaMulti(beta, thresh, average, sigmoid)
