"""Metrics accumulated on the device during validation and read once per epoch.

The Learner calls `reset()`, then `accumulate(pred, targ)` per batch (device ops only, no
sync), then reads `value` once per epoch. Users write
``metrics=[accuracy, error_rate, rmse, r2_score, F1Score(average='macro')]``; `as_metric` wraps
a plain function ``(pred, targ) -> tensor`` in `AvgMetric`, instantiates a `Metric` class and
copies a `Metric` instance (so `rmse` can serve several learners without sharing state).
Metrics that are exact as batch-size-weighted means are functions (`accuracy`, `mse`); the
others are `Metric` classes (`RMSE`, `F1Score`), the argument-free ones also exported as ready
lowercase instances (`rmse = RMSE()`). ``accuracy(pred, targ)`` gives a tensor, ``rmse(pred,
targ)`` a float.
"""

import copy
import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

MetricFn = Callable[[Tensor, Tensor], Tensor]


def _acc_dtype(device: torch.device) -> torch.dtype:
    """Dtype for running sums: float64 where the device supports it (MPS does not)."""
    return torch.float32 if device.type == "mps" else torch.float64


def _shape(t: Tensor) -> list[int]:
    return list(t.shape)


def _check_items(name: str, n_pred: int, n_targ: int, hint: str) -> None:
    """Raise if predictions and targets hold a different number of items."""
    if n_pred != n_targ:
        raise ValueError(
            f"{name}: predictions have {n_pred} items but targets have {n_targ}; {hint}"
        )


def _flat_pair(name: str, pred: Tensor, targ: Tensor) -> tuple[Tensor, Tensor]:
    """Flatten pred and targ after checking that their shapes agree (size-1 axes aside)."""
    same = pred.shape == targ.shape or (
        [s for s in pred.shape if s != 1] == [s for s in targ.shape if s != 1]
    )
    if not same:
        raise ValueError(
            f"{name}: predictions have shape {_shape(pred)} but targets have shape "
            f"{_shape(targ)}; they must match (size-1 axes aside): check the "
            "number of outputs of the model's last layer"
        )
    return pred.reshape(-1), targ.reshape(-1).to(pred.dtype)


def _class_indices(name: str, pred: Tensor, targ: Tensor, axis: int) -> tuple[Tensor, Tensor]:
    """Argmax pred over the class axis and flatten both, checking the item counts."""
    pred_cls = pred.argmax(dim=axis).reshape(-1)
    _check_items(
        name,
        pred_cls.numel(),
        targ.numel(),
        f"pred {_shape(pred)} must be targ {_shape(targ)} plus a class axis "
        f"(axis={axis}): check the model's output and the batch's targets",
    )
    return pred_cls, targ.reshape(-1).long()


def accuracy(pred: Tensor, targ: Tensor, axis: int = -1) -> Tensor:
    """Fraction of items whose argmax over `axis` (default -1) equals the target class."""
    pred_cls, targ_cls = _class_indices("accuracy", pred, targ, axis)
    return (pred_cls == targ_cls).float().mean()


def error_rate(pred: Tensor, targ: Tensor, axis: int = -1) -> Tensor:
    """1 - accuracy: fraction of items whose argmax over `axis` (default -1) is wrong."""
    pred_cls, targ_cls = _class_indices("error_rate", pred, targ, axis)
    return (pred_cls != targ_cls).float().mean()


def top_k_accuracy(pred: Tensor, targ: Tensor, k: int = 5, axis: int = -1) -> Tensor:
    """Fraction of items whose target is among the `k` (default 5) highest scores over `axis`."""
    n_classes = pred.shape[axis]
    if k > n_classes:
        raise ValueError(
            f"top_k_accuracy: k={k} but predictions have only {n_classes} classes "
            f"on axis {axis}; pass k <= {n_classes}"
        )
    axis = axis % pred.ndim
    item_shape = pred.shape[:axis] + pred.shape[axis + 1 :]
    _check_items(
        "top_k_accuracy",
        item_shape.numel(),
        targ.numel(),
        f"pred {_shape(pred)} must be targ {_shape(targ)} plus a class axis",
    )
    top = pred.topk(k, dim=axis).indices
    hits = top == targ.reshape(item_shape).unsqueeze(axis)
    return hits.any(dim=axis).float().mean()


def accuracy_multi(pred: Tensor, targ: Tensor, thresh: float = 0.5, sigmoid: bool = True) -> Tensor:
    """Multi-label accuracy of (sigmoid(pred) if `sigmoid` (True)) > `thresh` (0.5) vs targ."""
    pred, targ = _flat_pair("accuracy_multi", pred, targ)
    probs = pred.sigmoid() if sigmoid else pred
    return ((probs > thresh) == targ.bool()).float().mean()


def mse(pred: Tensor, targ: Tensor) -> Tensor:
    """Mean squared error; pred and targ are flattened, so [N, 1] against [N] works."""
    pred, targ = _flat_pair("mse", pred, targ)
    return F.mse_loss(pred, targ)


def mae(pred: Tensor, targ: Tensor) -> Tensor:
    """Mean absolute error; pred and targ are flattened, so [N, 1] against [N] works."""
    pred, targ = _flat_pair("mae", pred, targ)
    return (pred - targ).abs().mean()


class Metric:
    """Base class of a metric accumulated over an epoch: reset, accumulate per batch, value.

    `accumulate` must only queue device ops (no `.item()`, `.cpu()` or `bool(tensor)`); `value`
    does the one device-to-host sync per epoch. For many processes, `totals()` exposes the
    accumulated sums and counts as tensors: all-reduce them (sum) across processes and hand
    them back with `load_totals` before reading `value`.

    Args:
        name: column name in the epoch table, e.g. 'f1_score'.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def reset(self) -> None:
        """Clear the running state before a new epoch."""
        raise NotImplementedError(f"{type(self).__name__} must implement reset()")

    def accumulate(self, pred: Tensor, targ: Tensor) -> None:
        """Add one batch (model output `pred`, target `targ`) to the running state."""
        raise NotImplementedError(f"{type(self).__name__} must implement accumulate()")

    @property
    def value(self) -> float:
        """The epoch value as a float (nan when nothing was accumulated)."""
        raise NotImplementedError(f"{type(self).__name__} must implement value")

    def totals(self) -> list[Tensor]:
        """The running sums and counts as tensors, to all-reduce (sum) across processes."""
        raise NotImplementedError(f"{type(self).__name__} must implement totals()")

    def load_totals(self, totals: list[Tensor]) -> None:
        """Replace the running state with `totals` (the all-reduced output of `totals()`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement load_totals()")

    def __call__(self, pred: Tensor, targ: Tensor) -> float:
        """The metric on one batch, as a float; the running state is left untouched."""
        # A shallow copy is enough: reset() rebinds the state instead of mutating it.
        one_batch = copy.copy(self)
        one_batch.reset()
        one_batch.accumulate(pred, targ)
        return one_batch.value

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class SumMetric(Metric):
    """A Metric whose state is a vector of running sums on the device plus an item count.

    Subclasses implement `batch_sums(pred, targ) -> (sums, n_items)` with device ops only, and
    `compute(sums, count) -> float`, which gets the epoch sums as a float64 CPU tensor.

    Args:
        name: column name in the epoch table.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._sums: Tensor | None = None
        self._count = 0

    def batch_sums(self, pred: Tensor, targ: Tensor) -> tuple[Tensor, int]:
        """The sums this batch adds (1-D tensor) and its number of items."""
        raise NotImplementedError(f"{type(self).__name__} must implement batch_sums()")

    def compute(self, sums: Tensor, count: int) -> float:
        """The metric from the epoch's sums (float64 on the CPU) and item count."""
        raise NotImplementedError(f"{type(self).__name__} must implement compute()")

    def reset(self) -> None:
        """Clear the running sums and count."""
        self._sums = None
        self._count = 0

    def accumulate(self, pred: Tensor, targ: Tensor) -> None:
        """Add this batch's sums on the device (no sync)."""
        sums, n_items = self.batch_sums(pred, targ)
        sums = sums.detach()
        if self._sums is None:
            self._sums = torch.zeros(sums.shape, dtype=_acc_dtype(sums.device), device=sums.device)
        self._sums.add_(sums)
        self._count += n_items

    @property
    def value(self) -> float:
        """The epoch value (nan when nothing was accumulated); syncs once."""
        if self._sums is None or self._count == 0:
            return math.nan
        return self.compute(self._sums.cpu().double(), self._count)

    def totals(self) -> list[Tensor]:
        """[sums, count] as tensors on the metric's device; [] before the first batch."""
        if self._sums is None:
            return []
        count = torch.full((1,), self._count, dtype=self._sums.dtype, device=self._sums.device)
        return [self._sums, count]

    def load_totals(self, totals: list[Tensor]) -> None:
        """Set the state from [sums, count], e.g. after an all-reduce of `totals()`."""
        if len(totals) != 2:
            raise ValueError(
                f"{self.name}: load_totals expects [sums, count] as returned by "
                f"totals(), got {len(totals)} tensors"
            )
        self._sums = totals[0]
        self._count = int(totals[1].reshape(-1)[0].item())


def _function_name(fn: Callable[..., object]) -> str:
    """A readable name for a function, a functools.partial or a callable object."""
    if isinstance(fn, functools.partial):
        return _function_name(fn.func)
    name = getattr(fn, "__name__", None)
    return name if isinstance(name, str) else type(fn).__name__


class AvgMetric(SumMetric):
    """Batch-size-weighted epoch mean of a function `fn(pred, targ) -> scalar tensor`.

    Args:
        fn: the per-batch metric, e.g. `accuracy`.
        name: column name; default None uses `fn.__name__`.
    """

    def __init__(self, fn: MetricFn, name: str | None = None) -> None:
        super().__init__(name if name is not None else _function_name(fn))
        self.fn = fn

    def accumulate(self, pred: Tensor, targ: Tensor) -> None:
        """Add fn(pred, targ) * batch size to the running sum: one device op, no sync."""
        batch_value = self.fn(pred, targ)
        if isinstance(batch_value, Metric):
            raise TypeError(
                f"{self.name}(pred, targ) returned a Metric: it is a factory; "
                f"call it in the metrics list, e.g. metrics=[{self.name}()]"
            )
        if not isinstance(batch_value, Tensor):
            batch_value = torch.tensor(float(batch_value))
        if batch_value.numel() != 1:
            raise ValueError(
                f"{self.name}: the metric function returned a tensor of shape "
                f"{_shape(batch_value)}; it must return one number per batch "
                "(reduce it, e.g. with .mean())"
            )
        if self._sums is None:
            device = batch_value.device
            self._sums = torch.zeros(1, dtype=_acc_dtype(device), device=device)
        bs = targ.shape[0] if isinstance(targ, Tensor) and targ.ndim > 0 else 1
        self._sums.add_(batch_value.detach().reshape(1), alpha=bs)
        self._count += bs

    def compute(self, sums: Tensor, count: int) -> float:
        """Weighted sum / number of items."""
        return float(sums[0]) / count


MetricLike = Metric | type[Metric] | MetricFn


def as_metric(metric: MetricLike) -> Metric:
    """A fresh Metric from a Metric instance (copied), a Metric class or a plain function.

    Args:
        metric: e.g. `accuracy`, `rmse`, `F1Score`, `F1Score(average='macro')`.
    """
    if isinstance(metric, type):
        if not issubclass(metric, Metric):
            raise TypeError(
                f"metric {metric.__name__} is a class but not a Metric subclass; "
                "pass an instance or a function (pred, targ) -> tensor"
            )
        try:
            return metric()  # type: ignore[call-arg]  # subclasses give every argument a default
        except TypeError as err:
            raise TypeError(
                f"metric class {metric.__name__} needs arguments; pass an "
                f"instance instead, e.g. {metric.__name__}(...)"
            ) from err
    if isinstance(metric, Metric):
        fresh = copy.deepcopy(metric)
        fresh.reset()
        return fresh
    if callable(metric):
        return AvgMetric(metric)
    raise TypeError(
        f"metric {metric!r} is not a Metric, a Metric class or a function "
        "(pred, targ) -> tensor; e.g. metrics=[accuracy, rmse]"
    )


class RMSE(SumMetric):
    """Root mean squared error over the epoch: sqrt of the epoch mean of squared errors.

    Args:
        name: column name; default 'rmse'.
    """

    def __init__(self, name: str = "rmse") -> None:
        super().__init__(name)

    def batch_sums(self, pred: Tensor, targ: Tensor) -> tuple[Tensor, int]:
        """Sum of squared errors and number of elements."""
        pred, targ = _flat_pair(self.name, pred, targ)
        return (pred - targ).pow(2).sum().reshape(1), pred.numel()

    def compute(self, sums: Tensor, count: int) -> float:
        """sqrt(sum of squared errors / count)."""
        return math.sqrt(float(sums[0]) / count)


class R2Score(SumMetric):
    """Coefficient of determination R^2 over the epoch (pred and targ flattened).

    Args:
        name: column name; default 'r2_score'.
    """

    def __init__(self, name: str = "r2_score") -> None:
        super().__init__(name)

    def batch_sums(self, pred: Tensor, targ: Tensor) -> tuple[Tensor, int]:
        """Squared error, sum of targets and sum of squared targets."""
        pred, targ = _flat_pair(self.name, pred, targ)
        dtype = _acc_dtype(pred.device)
        pred, targ = pred.to(dtype), targ.to(dtype)
        sums = torch.stack([(targ - pred).pow(2).sum(), targ.sum(), targ.pow(2).sum()])
        return sums, pred.numel()

    def compute(self, sums: Tensor, count: int) -> float:
        """1 - SSE / total sum of squares (1.0 or 0.0 for constant targets, as scikit-learn)."""
        sse, targ_sum, targ_sq_sum = (float(s) for s in sums)
        total = targ_sq_sum - targ_sum * targ_sum / count
        if total <= 0.0:
            return 1.0 if sse == 0.0 else 0.0
        return 1.0 - sse / total


class ExpRMSPE(SumMetric):
    """Root mean squared percentage error of exp(pred) vs exp(targ), for log targets.

    sqrt(mean(((exp(targ) - exp(pred)) / exp(targ))^2)) over the epoch.

    Args:
        name: column name; default 'exp_rmspe'.
    """

    def __init__(self, name: str = "exp_rmspe") -> None:
        super().__init__(name)

    def batch_sums(self, pred: Tensor, targ: Tensor) -> tuple[Tensor, int]:
        """Sum of squared relative errors and number of elements."""
        pred, targ = _flat_pair(self.name, pred, targ)
        # (e^t - e^p) / e^t == 1 - e^(p - t), which cannot overflow for large log targets.
        relative = 1.0 - (pred - targ).exp()
        return relative.pow(2).sum().reshape(1), pred.numel()

    def compute(self, sums: Tensor, count: int) -> float:
        """sqrt(sum of squared relative errors / count)."""
        return math.sqrt(float(sums[0]) / count)


class Perplexity(SumMetric):
    """exp of the epoch mean cross-entropy; pred [N, C] or [B, T, C], targ [N] or [B, T].

    Args:
        ignore_index: target value to skip (padding); default -100.
        name: column name; default 'perplexity'.
    """

    def __init__(self, ignore_index: int = -100, name: str = "perplexity") -> None:
        super().__init__(name)
        self.ignore_index = ignore_index

    def batch_sums(self, pred: Tensor, targ: Tensor) -> tuple[Tensor, int]:
        """Summed cross-entropy and number of non-ignored targets, both on the device."""
        n_classes = pred.shape[-1]
        pred = pred.reshape(-1, n_classes)
        _check_items(
            self.name,
            pred.shape[0],
            targ.numel(),
            "pred must be targ's shape plus a last class axis, e.g. [B, T, C] vs [B, T]",
        )
        targ = targ.reshape(-1).long()
        loss_sum = F.cross_entropy(
            pred.float(), targ, ignore_index=self.ignore_index, reduction="sum"
        )
        kept = (targ != self.ignore_index).sum()
        return torch.stack([loss_sum, kept.to(loss_sum.dtype)]), targ.numel()

    def compute(self, sums: Tensor, count: int) -> float:
        """exp(summed loss / kept targets)."""
        if float(sums[1]) == 0.0:
            return math.nan
        return math.exp(float(sums[0]) / float(sums[1]))


rmse = RMSE()
"""Ready RMSE instance: `metrics=[rmse]` (as_metric copies it) or `rmse(pred, targ)`."""
r2_score = R2Score()
"""Ready R2Score instance: `metrics=[r2_score]` or `r2_score(pred, targ)`."""
exp_rmspe = ExpRMSPE()
"""Ready ExpRMSPE instance: `metrics=[exp_rmspe]` or `exp_rmspe(pred, targ)`."""
