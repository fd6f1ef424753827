"""Metrics against hand and scikit-learn computations, over whole epochs of unequal batches."""

import functools
import math

import numpy as np
import pytest
import sklearn.metrics as skm
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from mentor.train.class_metrics import F1Score, FBeta, FBetaMulti, Precision, Recall, fbeta
from mentor.train.metrics import (
    RMSE,
    AvgMetric,
    ExpRMSPE,
    Metric,
    Perplexity,
    R2Score,
    accuracy,
    accuracy_multi,
    as_metric,
    error_rate,
    exp_rmspe,
    mae,
    mse,
    r2_score,
    rmse,
    top_k_accuracy,
)

SIZES = (7, 16, 3, 10)  # unequal batch sizes, 36 items in all


def run_epoch(metric: object, preds: list[torch.Tensor], targs: list[torch.Tensor]) -> float:
    """Drive a metric exactly as the Learner does for one validation epoch."""
    m = as_metric(metric)  # type: ignore[arg-type]
    m.reset()
    for pred, targ in zip(preds, targs):
        m.accumulate(pred, targ)
    return m.value


def class_batches(n_classes: int, seed: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    preds = [torch.randn(n, n_classes, generator=gen) for n in SIZES]
    targs = [torch.randint(0, n_classes, (n,), generator=gen) for n in SIZES]
    return preds, targs


def regression_batches(seed: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    preds = [torch.randn(n, 1, generator=gen) for n in SIZES]
    targs = [torch.randn(n, generator=gen) * 2 + 1 for n in SIZES]
    return preds, targs


def test_accuracy_and_error_rate_match_numpy() -> None:
    preds, targs = class_batches(5)
    pred, targ = torch.cat(preds), torch.cat(targs)
    expected = float(np.mean(pred.numpy().argmax(-1) == targ.numpy()))
    assert accuracy(pred, targ).item() == pytest.approx(expected)
    assert error_rate(pred, targ).item() == pytest.approx(1 - expected)
    assert run_epoch(accuracy, preds, targs) == pytest.approx(expected)
    assert run_epoch(error_rate, preds, targs) == pytest.approx(1 - expected)


def test_accuracy_on_segmentation_axis_1() -> None:
    pred = torch.randn(2, 4, 3, 5)
    targ = torch.randint(0, 4, (2, 3, 5))
    expected = (pred.argmax(1) == targ).float().mean()
    assert accuracy(pred, targ, axis=1) == pytest.approx(expected.item())


def test_accuracy_shape_mismatch_names_both_counts() -> None:
    with pytest.raises(ValueError, match="accuracy: predictions have 64 items but targets have 32"):
        accuracy(torch.randn(64, 10), torch.zeros(32, dtype=torch.long))


def test_top_k_accuracy_matches_sklearn() -> None:
    preds, targs = class_batches(6)
    pred, targ = torch.cat(preds), torch.cat(targs)
    expected = skm.top_k_accuracy_score(targ.numpy(), pred.numpy(), k=3, labels=range(6))
    assert top_k_accuracy(pred, targ, k=3).item() == pytest.approx(expected)
    top3 = functools.partial(top_k_accuracy, k=3)
    assert run_epoch(top3, preds, targs) == pytest.approx(expected)
    assert top_k_accuracy(pred, targ, k=1).item() == pytest.approx(accuracy(pred, targ).item())
    with pytest.raises(ValueError, match="k=7 but predictions have only 6 classes"):
        top_k_accuracy(pred, targ, k=7)


def test_accuracy_multi_by_hand() -> None:
    pred = torch.tensor([[2.0, -1.0], [-3.0, 0.5]])
    targ = torch.tensor([[1, 1], [0, 1]])
    assert accuracy_multi(pred, targ).item() == pytest.approx(0.75)
    probs = torch.tensor([[0.9, 0.1], [0.3, 0.4]])
    assert accuracy_multi(probs, targ, thresh=0.35, sigmoid=False).item() == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("fn", "reference"),
    [
        (mse, skm.mean_squared_error),
        (mae, skm.mean_absolute_error),
        (rmse, lambda t, p: math.sqrt(skm.mean_squared_error(t, p))),
        (RMSE, lambda t, p: math.sqrt(skm.mean_squared_error(t, p))),
        (r2_score, skm.r2_score),
        (R2Score(), skm.r2_score),
    ],
)
def test_regression_epoch_equals_concatenated(fn: object, reference: object) -> None:
    preds, targs = regression_batches()
    pred, targ = torch.cat(preds).reshape(-1).numpy(), torch.cat(targs).numpy()
    assert run_epoch(fn, preds, targs) == pytest.approx(reference(targ, pred), rel=1e-5)


def test_rmse_is_not_the_mean_of_batch_rmse() -> None:
    preds, targs = regression_batches(seed=3)
    per_batch = [math.sqrt(F.mse_loss(p.reshape(-1), t).item()) for p, t in zip(preds, targs)]
    weighted = sum(r * n for r, n in zip(per_batch, SIZES)) / sum(SIZES)
    full = math.sqrt(F.mse_loss(torch.cat(preds).reshape(-1), torch.cat(targs)).item())
    assert run_epoch(rmse, preds, targs) == pytest.approx(full, rel=1e-6)
    assert weighted != pytest.approx(full, rel=1e-6)


def test_exp_rmspe_epoch_equals_formula() -> None:
    preds, targs = regression_batches(seed=1)
    pred = torch.cat(preds).reshape(-1).double().numpy()
    targ = torch.cat(targs).double().numpy()
    expected = np.sqrt(np.mean(((np.exp(targ) - np.exp(pred)) / np.exp(targ)) ** 2))
    assert run_epoch(exp_rmspe, preds, targs) == pytest.approx(expected, rel=1e-5)
    assert run_epoch(ExpRMSPE, preds, targs) == pytest.approx(expected, rel=1e-5)


def test_regression_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match=r"mse: predictions have shape \[8, 2\] but targets"):
        mse(torch.randn(8, 2), torch.randn(8, 3))
    with pytest.raises(ValueError, match="rmse: predictions have shape"):
        rmse.accumulate(torch.randn(8, 2), torch.randn(8))


def test_perplexity_epoch_with_padding() -> None:
    gen = torch.Generator().manual_seed(0)
    preds = [torch.randn(b, 5, 11, generator=gen) for b in (2, 3, 1)]
    targs = [torch.randint(0, 11, (b, 5), generator=gen) for b in (2, 3, 1)]
    targs[1][0, :3] = -100
    pred, targ = torch.cat(preds).reshape(-1, 11), torch.cat(targs).reshape(-1)
    expected = math.exp(F.cross_entropy(pred, targ, ignore_index=-100).item())
    assert run_epoch(Perplexity(), preds, targs) == pytest.approx(expected, rel=1e-5)


CLASS_CASES = [
    (F1Score, skm.f1_score, {}),
    (Precision, skm.precision_score, {}),
    (Recall, skm.recall_score, {}),
    (functools.partial(FBeta, beta=2.0), functools.partial(skm.fbeta_score, beta=2.0), {}),
]


@pytest.mark.parametrize(("metric_cls", "sk_fn", "extra"), CLASS_CASES)
@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
def test_class_scores_match_sklearn_multiclass(metric_cls, sk_fn, extra, average) -> None:
    preds, targs = class_batches(4, seed=5)
    pred, targ = torch.cat(preds).argmax(-1).numpy(), torch.cat(targs).numpy()
    expected = sk_fn(targ, pred, average=average, zero_division=0)
    assert run_epoch(metric_cls(average=average), preds, targs) == pytest.approx(expected)


@pytest.mark.parametrize(("metric_cls", "sk_fn", "extra"), CLASS_CASES)
@pytest.mark.parametrize("pos_label", [0, 1])
def test_class_scores_match_sklearn_binary(metric_cls, sk_fn, extra, pos_label) -> None:
    preds, targs = class_batches(2, seed=6)
    pred, targ = torch.cat(preds).argmax(-1).numpy(), torch.cat(targs).numpy()
    expected = sk_fn(targ, pred, average="binary", pos_label=pos_label, zero_division=0)
    value = run_epoch(metric_cls(average="binary", pos_label=pos_label), preds, targs)
    assert value == pytest.approx(expected)


def test_macro_f1_skips_classes_never_seen_like_sklearn() -> None:
    pred = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [5.0, 0, 0]])  # class 2: never seen
    targ = torch.tensor([0, 1, 1])
    expected = skm.f1_score([0, 1, 1], [0, 1, 0], average="macro")
    assert F1Score(average="macro")(pred, targ) == pytest.approx(expected)


def test_binary_average_with_many_classes_is_explained() -> None:
    with pytest.raises(ValueError, match="average='binary' needs 2 classes"):
        F1Score().accumulate(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="average='samples' is not one of"):
        F1Score(average="samples")  # type: ignore[arg-type]


@pytest.mark.parametrize("average", ["samples", "macro", "micro", "weighted"])
@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_fbeta_multi_label_matches_sklearn(average: str, beta: float) -> None:
    gen = torch.Generator().manual_seed(2)
    preds = [torch.randn(n, 5, generator=gen) for n in SIZES]
    targs = [(torch.rand(n, 5, generator=gen) > 0.6).float() for n in SIZES]
    pred = (torch.cat(preds).sigmoid() > 0.5).numpy()
    targ = torch.cat(targs).numpy()
    expected = skm.fbeta_score(targ, pred, beta=beta, average=average, zero_division=0)
    metric = fbeta(beta=beta, average=average)  # type: ignore[arg-type]
    assert isinstance(metric, FBetaMulti)
    assert run_epoch(metric, preds, targs) == pytest.approx(expected)


def test_as_metric_handles_functions_classes_and_instances() -> None:
    wrapped = as_metric(accuracy)
    assert isinstance(wrapped, AvgMetric) and wrapped.name == "accuracy"
    assert as_metric(functools.partial(top_k_accuracy, k=2)).name == "top_k_accuracy"
    assert as_metric(AvgMetric(mse, name="my_mse")).name == "my_mse"
    from_class = as_metric(RMSE)
    assert isinstance(from_class, RMSE) and from_class.name == "rmse"
    assert [as_metric(m).name for m in (rmse, r2_score, exp_rmspe, F1Score)] == [
        "rmse",
        "r2_score",
        "exp_rmspe",
        "f1_score",
    ]


def test_as_metric_copies_instances_so_learners_do_not_share_state() -> None:
    first, second = as_metric(rmse), as_metric(rmse)
    assert first is not rmse and first is not second
    first.reset()
    second.reset()
    first.accumulate(torch.zeros(4), torch.ones(4))
    second.accumulate(torch.zeros(4), torch.full((4,), 3.0))
    assert (first.value, second.value) == (pytest.approx(1.0), pytest.approx(3.0))
    assert math.isnan(as_metric(rmse).value)


def test_as_metric_rejects_what_it_cannot_use() -> None:
    with pytest.raises(TypeError, match="metric 42 is not a Metric"):
        as_metric(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="metric dict is a class but not a Metric"):
        as_metric(dict)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Metric needs arguments"):
        as_metric(Metric)
    factory = as_metric(fbeta)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"metrics=\[fbeta\(\)\]"):
        factory.accumulate(torch.randn(2, 3), torch.ones(2, 3))


def test_avg_metric_rejects_non_scalar_values() -> None:
    per_item = AvgMetric(lambda p, t: (p - t).abs(), name="per_item")
    with pytest.raises(ValueError, match=r"per_item: .* shape \[4\]; it must return one number"):
        per_item.accumulate(torch.zeros(4), torch.ones(4))


def test_calling_a_metric_leaves_its_state_alone() -> None:
    metric = as_metric(RMSE)
    metric.accumulate(torch.zeros(2), torch.ones(2))
    assert metric(torch.zeros(3), torch.full((3,), 2.0)) == pytest.approx(2.0)
    assert metric.value == pytest.approx(1.0)


@pytest.mark.parametrize(
    "metric",
    [accuracy, rmse, R2Score, Perplexity, F1Score(average="macro"), fbeta(average="macro")],
)
def test_totals_sum_across_processes_gives_the_full_epoch(metric: object) -> None:
    preds, targs = class_batches(3, seed=4)
    if metric in (rmse, R2Score):
        preds, targs = regression_batches(seed=4)
    if isinstance(metric, FBetaMulti):
        targs = [(p > 0.3).float() for p in preds]
        preds = [p + 0.5 * torch.randn_like(p) for p in preds]
    rank0, rank1 = as_metric(metric), as_metric(metric)  # type: ignore[arg-type]
    for rank, part in ((rank0, slice(0, 2)), (rank1, slice(2, None))):
        rank.reset()
        for pred, targ in zip(preds[part], targs[part]):
            rank.accumulate(pred, targ)
    # What an all-reduce (sum) across the two processes would hand back.
    reduced = [a + b for a, b in zip(rank0.totals(), rank1.totals())]
    rank0.load_totals(reduced)
    assert rank0.value == pytest.approx(run_epoch(metric, preds, targs))


class NoHostSync(TorchFunctionMode):
    """Fail on the tensor methods that would sync a GPU with the host."""

    FORBIDDEN = {
        torch.Tensor.item,
        torch.Tensor.tolist,
        torch.Tensor.cpu,
        torch.Tensor.numpy,
        torch.Tensor.__bool__,
        torch.Tensor.__float__,
        torch.Tensor.__int__,
        torch.Tensor.nonzero,
        torch.nonzero,
        torch.bincount,
        torch.Tensor.bincount,
        torch.masked_select,
        torch.Tensor.masked_select,
        torch.unique,
    }

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        if func in self.FORBIDDEN:
            raise AssertionError(f"host sync in the per-batch path: {func.__name__}")
        if func is torch.Tensor.__getitem__ and _has_bool_mask(args[1]):
            raise AssertionError("host sync in the per-batch path: boolean-mask indexing")
        return func(*args, **(kwargs or {}))


def _has_bool_mask(index: object) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, torch.Tensor) and p.dtype == torch.bool for p in parts)


@pytest.mark.parametrize(
    "metric",
    [
        accuracy,
        error_rate,
        top_k_accuracy,
        mse,
        mae,
        rmse,
        r2_score,
        exp_rmspe,
        Perplexity(),
        F1Score(average="macro"),
        Precision(average="weighted"),
        Recall(average="micro"),
        fbeta(),
        fbeta(average="macro"),
    ],
)
def test_accumulate_never_syncs(metric: object) -> None:
    preds, targs = class_batches(6)
    if metric in (mse, mae, rmse, r2_score, exp_rmspe):
        preds, targs = regression_batches()
    if isinstance(metric, FBetaMulti):
        targs = [(p > 0).float() for p in preds]
    m = as_metric(metric)  # type: ignore[arg-type]
    m.reset()
    with NoHostSync():
        for pred, targ in zip(preds, targs):
            m.accumulate(pred, targ)
    assert math.isfinite(m.value)


@pytest.mark.parametrize(
    "sync",
    [
        lambda t: t.item(),
        lambda t: bool(t.sum()),
        lambda t: t[t > 0],
        lambda t: torch.bincount(t.long()),
    ],
)
def test_no_sync_guard_catches_a_sync(sync: object) -> None:
    with pytest.raises(AssertionError, match="host sync"), NoHostSync():
        sync(torch.ones(3))  # type: ignore[operator]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.cuda
@pytest.mark.parametrize(
    "metric",
    [
        accuracy,
        rmse,
        r2_score,
        exp_rmspe,
        Perplexity(),
        F1Score(average="macro"),
        fbeta(average="micro"),
    ],
)
def test_accumulate_never_syncs_on_cuda(metric: object) -> None:
    preds, targs = class_batches(6)
    if metric in (rmse, r2_score, exp_rmspe):
        preds, targs = regression_batches()
    if isinstance(metric, FBetaMulti):
        targs = [(p > 0).float() for p in preds]
    preds, targs = [p.cuda() for p in preds], [t.cuda() for t in targs]
    m = as_metric(metric)  # type: ignore[arg-type]
    m.reset()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for pred, targ in zip(preds, targs):
            m.accumulate(pred, targ)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert math.isfinite(m.value)
