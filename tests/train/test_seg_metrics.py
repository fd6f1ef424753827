"""Segmentation metrics against hand computations: whole-set pixel sums, void pixels left out."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mentor.data import DataLoaders
from mentor.train import Learner
from mentor.train.metrics import AvgMetric, as_metric
from mentor.train.seg_metrics import (
    Dice,
    DiceMulti,
    ForegroundAcc,
    JaccardCoeff,
    SegmentationIoU,
    foreground_acc,
    mean_iou,
    per_class_iou,
    pixel_confusion,
)
from tests.train.test_metrics import NoHostSync, run_epoch

# A 2 x 3 mask pair, 3 classes. Confusion (row = target, column = predicted):
#   target 0 at (0,0), (1,2): predicted 0, 0  -> [2, 0, 0]
#   target 1 at (0,1), (0,2): predicted 1, 2  -> [0, 1, 1]
#   target 2 at (1,0), (1,1): predicted 2, 1  -> [0, 1, 1]
TARG = torch.tensor([[[0, 1, 1], [2, 2, 0]]])
PRED = torch.tensor([[[0, 1, 2], [2, 1, 0]]])
CONFUSION = [[2, 0, 0], [0, 1, 1], [0, 1, 1]]
# IoU: class 0 2/(2+0+0) = 1; class 1 1/(1 + fp 1 + fn 1) = 1/3; class 2 likewise 1/3.
IOU = [1.0, 1 / 3, 1 / 3]
MEAN_IOU = 5 / 9
# Dice per class 2 TP / (|pred = c| + |targ = c|): 4/4, 2/4, 2/4 -> mean 2/3.
DICE_MULTI = 2 / 3
# Foreground (target != 0): 4 pixels, correct at (0,1) and (1,0) -> 2/4.
FOREGROUND_ACC = 0.5


def logits(pred_cls: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Scores [B, C, H, W] whose argmax over axis 1 is `pred_cls` [B, H, W]."""
    return F.one_hot(pred_cls, n_classes).permute(0, 3, 1, 2).float()


def test_a_known_confusion_gives_the_hand_computed_values() -> None:
    pred = logits(PRED, 3)
    assert pixel_confusion(pred, TARG).tolist() == CONFUSION
    assert pixel_confusion(PRED, TARG, n_classes=3).tolist() == CONFUSION
    iou = as_metric(mean_iou)
    iou.accumulate(pred, TARG)
    assert iou.value == pytest.approx(MEAN_IOU)
    assert isinstance(iou, SegmentationIoU)
    assert iou.per_class.tolist() == pytest.approx(IOU)
    assert iou.confusion.dtype == torch.int64
    assert DiceMulti()(pred, TARG) == pytest.approx(DICE_MULTI)
    assert foreground_acc(pred, TARG) == pytest.approx(FOREGROUND_ACC)
    # fastai's signature: the background code as an argument; code 2 leaves 4 pixels, 3 right
    assert foreground_acc(pred, TARG, bkg_idx=2) == pytest.approx(3 / 4)
    assert ForegroundAcc(void_code=2)(pred, TARG) == pytest.approx(3 / 4)


def test_binary_dice_and_jaccard_by_hand() -> None:
    # foreground pred {(0,0), (0,1), (1,0)}, targ {(0,1), (0,2), (1,0)}: |A| = |B| = 3, A n B = 2
    targ = torch.tensor([[[0, 1, 1], [1, 0, 0]]])
    pred_cls = torch.tensor([[[1, 1, 0], [1, 0, 0]]])
    pred = logits(pred_cls, 2)
    assert Dice()(pred, targ) == pytest.approx(2 * 2 / (3 + 3))
    assert JaccardCoeff()(pred, targ) == pytest.approx(2 / (3 + 3 - 2))
    # one channel of logits: foreground where > 0
    one_channel = (pred_cls.float() - 0.5).unsqueeze(1)
    assert Dice()(one_channel, targ) == pytest.approx(2 / 3)
    assert math.isnan(Dice()(logits(torch.zeros_like(targ), 2), torch.zeros_like(targ)))


def test_void_and_ignored_pixels_are_left_out() -> None:
    targ = TARG.clone()
    targ[0, 0, 0] = 255  # a pixel predicted 0, now void
    base = logits(PRED, 3)
    other = base.clone()
    other[0, :, 0, 0] = torch.tensor([0.0, 0.0, 9.0])  # the void pixel now predicted 2
    iou = SegmentationIoU(ignore_index=255)
    for pred in (base, other):
        # class 0 keeps 1 pixel, right: the known confusion minus one target-0 pixel
        assert pixel_confusion(pred, targ, ignore_index=255).tolist() == [
            [1, 0, 0],
            [0, 1, 1],
            [0, 1, 1],
        ]
        assert iou(pred, targ) == pytest.approx(MEAN_IOU)
        assert DiceMulti(ignore_index=255)(pred, targ) == pytest.approx(DICE_MULTI)
    # foreground_acc: target code 1 as the void, predictions on it changed, value unchanged
    moved = base.clone()
    moved[0, :, 0, 1:] = torch.tensor([[9.0, 9.0], [0.0, 0.0], [0.0, 0.0]])
    void_one = ForegroundAcc(bkg_idx=1)
    assert void_one(base, TARG) == void_one(moved, TARG) == pytest.approx(3 / 4)
    # An ignore_index that is a class leaves that class out of the mean too: without the
    # target-1 pixels, class 0 has IoU 1, class 2 1/(1 + fn 1) = 1/2, and class 1 (predicted
    # once, on a target-2 pixel) would count 0: the mean is 3/4, not 1/2.
    ignore_one = as_metric(SegmentationIoU(ignore_index=1))
    ignore_one.accumulate(base, TARG)
    assert ignore_one.value == pytest.approx(3 / 4)
    assert isinstance(ignore_one, SegmentationIoU)
    assert ignore_one.confusion.tolist() == [[2, 0, 0], [0, 0, 0], [0, 1, 1]]


def test_out_of_range_codes_are_refused() -> None:
    targ = TARG.clone()
    targ[0, 1, 2] = 255
    with pytest.raises(ValueError, match=r"mean_iou: 1 pixels .* outside 0..2 .*ignore_index"):
        mean_iou(logits(PRED, 3), targ)
    with pytest.raises(ValueError, match="pixel_confusion: 1 pixels"):
        pixel_confusion(logits(PRED, 3), targ)


def test_sums_over_unequal_batches_equal_one_batch_not_the_mean_of_batches() -> None:
    gen = torch.Generator().manual_seed(0)
    sizes = (1, 4, 2)
    preds = [torch.randn(n, 3, 5, 4, generator=gen) for n in sizes]
    targs = [torch.randint(0, 3, (n, 5, 4), generator=gen) for n in sizes]
    binary_preds = [p[:, :2] for p in preds]
    binary_targs = [t.clamp(max=1) for t in targs]
    for metric, ps, ts in [
        (foreground_acc, preds, targs),
        (mean_iou, preds, targs),
        (DiceMulti(), preds, targs),
        (Dice(), binary_preds, binary_targs),
        (JaccardCoeff(), binary_preds, binary_targs),
    ]:
        whole = as_metric(metric)(torch.cat(ps), torch.cat(ts))  # type: ignore[arg-type]
        assert run_epoch(metric, ps, ts) == whole  # exact: integer pixel counts
    # A case where per-batch means differ: batch 1 has 1 foreground pixel, right (acc 1);
    # batch 2 has 4, all wrong (acc 0). Whole set: 1/5; mean of batches 1/2.
    targ1, targ2 = torch.tensor([[[1, 0]]]), torch.tensor([[[1, 1], [1, 1]]])
    pred1, pred2 = logits(torch.tensor([[[1, 1]]]), 3), logits(torch.full((1, 2, 2), 2), 3)
    assert run_epoch(foreground_acc, [pred1, pred2], [targ1, targ2]) == pytest.approx(1 / 5)
    per_batch = [foreground_acc(pred1, targ1), foreground_acc(pred2, targ2)]
    assert np.mean(per_batch) == pytest.approx(1 / 2)
    averaged = AvgMetric(lambda p, t: torch.tensor(foreground_acc(p, t)))
    assert run_epoch(averaged, [pred1, pred2], [targ1, targ2]) == pytest.approx(1 / 2)


def test_a_class_absent_from_both_sides_is_skipped() -> None:
    pred = logits(PRED, 4)  # class 3 neither predicted nor in the targets
    iou = as_metric(SegmentationIoU(n_classes=4))
    iou.accumulate(pred, TARG)
    assert iou.value == pytest.approx(MEAN_IOU)  # not 5/12
    assert isinstance(iou, SegmentationIoU)
    assert math.isnan(float(iou.per_class[3]))
    assert DiceMulti()(pred, TARG) == pytest.approx(DICE_MULTI)  # not 1/2
    assert per_class_iou(torch.tensor(CONFUSION)).tolist() == pytest.approx(IOU)


def test_shape_errors_name_both_shapes() -> None:
    pred = torch.randn(2, 3, 4, 5)
    cases = [(foreground_acc, pred), (mean_iou, pred), (DiceMulti(), pred), (Dice(), pred[:, :2])]
    for metric, scores in cases:
        with pytest.raises(ValueError, match=r"shape \[2, \d, 4, 5\] .* shape \[2, 5, 4\]"):
            metric(scores, torch.zeros(2, 5, 4).long())
    with pytest.raises(ValueError, match=r"dice: binary segmentation needs 2 classes .* got 3"):
        Dice()(pred, torch.zeros(2, 4, 5).long())
    with pytest.raises(ValueError, match="n_classes=4"):
        SegmentationIoU(n_classes=4)(pred, torch.zeros(2, 4, 5).long())
    with pytest.raises(ValueError, match="have 3 classes on axis 1 but n_classes=4"):
        pixel_confusion(pred, torch.zeros(2, 4, 5).long(), n_classes=4)
    with pytest.raises(ValueError, match=r"class indices of shape \[2, 4, 5\] .* n_classes="):
        pixel_confusion(torch.zeros(2, 4, 5).long(), torch.zeros(2, 4, 5).long())
    with pytest.raises(ValueError, match="bkg_idx=1 and void_code=2"):
        ForegroundAcc(1, void_code=2)
    # fastai's [B, 1, H, W] masks are accepted
    assert foreground_acc(pred, torch.ones(2, 1, 4, 5).long()) == pytest.approx(
        foreground_acc(pred, torch.ones(2, 4, 5).long())
    )


@pytest.mark.parametrize(
    "metric", [foreground_acc, mean_iou, SegmentationIoU(ignore_index=2), DiceMulti(), Dice()]
)
def test_totals_round_trip_and_sum_across_processes(metric: object) -> None:
    gen = torch.Generator().manual_seed(1)
    n_classes = 2 if isinstance(metric, Dice) else 3
    preds = [torch.randn(n, n_classes, 3, 4, generator=gen) for n in (2, 3, 1)]
    targs = [torch.randint(0, n_classes, (n, 3, 4), generator=gen) for n in (2, 3, 1)]
    rank0, rank1 = as_metric(metric), as_metric(metric)  # type: ignore[arg-type]
    for rank, part in ((rank0, slice(0, 1)), (rank1, slice(1, None))):
        for pred, targ in zip(preds[part], targs[part]):
            rank.accumulate(pred, targ)
    reduced = [a + b for a, b in zip(rank0.totals(), rank1.totals())]  # an all-reduce (sum)
    resumed = as_metric(metric)  # type: ignore[arg-type]
    resumed.load_totals(reduced)  # a fresh metric, as after loading a checkpoint
    assert resumed.value == run_epoch(metric, preds, targs)
    if isinstance(resumed, SegmentationIoU):  # every pixel but the ignored ones, once
        ignored = sum(int((t == 2).sum()) for t in targs) if resumed.ignore_index == 2 else 0
        assert int(resumed.confusion.sum()) == sum(t.numel() for t in targs) - ignored


@pytest.mark.parametrize(
    "metric",
    [foreground_acc, mean_iou, SegmentationIoU(ignore_index=255), DiceMulti(), Dice()],
)
def test_accumulate_never_syncs(metric: object) -> None:
    n_classes = 2 if isinstance(metric, Dice) else 3
    pred, targ = torch.randn(2, n_classes, 3, 4), torch.randint(0, n_classes, (2, 3, 4))
    m = as_metric(metric)  # type: ignore[arg-type]
    with NoHostSync():
        m.accumulate(pred, targ)
        m.accumulate(pred[:1], targ[:1])
    assert math.isfinite(m.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.cuda
@pytest.mark.parametrize(
    "metric", [foreground_acc, SegmentationIoU(ignore_index=255), DiceMulti(), Dice()]
)
def test_accumulate_never_syncs_on_cuda(metric: object) -> None:
    n_classes = 2 if isinstance(metric, Dice) else 3
    pred = torch.randn(2, n_classes, 3, 4, device="cuda")
    targ = torch.randint(0, n_classes, (2, 3, 4), device="cuda")
    m = as_metric(metric)  # type: ignore[arg-type]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        m.accumulate(pred, targ)
        m.accumulate(pred[:1], targ[:1])
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert math.isfinite(m.value)


def numpy_reference(preds: np.ndarray, targs: np.ndarray, void: int) -> dict[str, float]:
    """Foreground accuracy, mean IoU and multi-class Dice over all pixels, written in numpy."""
    pred_cls, targ = preds.argmax(1).ravel(), targs.ravel()
    kept = targ != void
    confusion = np.zeros((3, 3), dtype=np.int64)
    np.add.at(confusion, (targ[kept], pred_cls[kept]), 1)
    tp = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - tp
    sizes = confusion.sum(0) + confusion.sum(1)
    return {
        "foreground_acc": float((pred_cls == targ)[kept].mean()),
        "mean_iou": float(np.mean(tp[union > 0] / union[union > 0])),
        "dice_multi": float(np.mean(2 * tp[sizes > 0] / sizes[sizes > 0])),
    }


def test_learner_validate_reports_whole_set_values() -> None:
    torch.manual_seed(0)
    x = torch.randn(13, 2, 6, 5)
    y = torch.randint(0, 3, (13, 6, 5))
    y[:, 0, :2] = 255  # void pixels, left out by the loss and every metric
    dls = DataLoaders.from_tensors((x[:6], y[:6]), (x[6:], y[6:]), bs=2, valid_bs=3, device="cpu")
    model = nn.Conv2d(2, 3, kernel_size=1)
    metrics = [
        ForegroundAcc(void_code=255),
        SegmentationIoU(ignore_index=255),
        DiceMulti(ignore_index=255),
    ]
    learn = Learner(dls, model, nn.CrossEntropyLoss(ignore_index=255), metrics=metrics)
    result = learn.validate()  # 7 validation images in batches of 3, 3, 1
    with torch.no_grad():
        expected = numpy_reference(model(x[6:]).numpy(), y[6:].numpy(), void=255)
    assert {name: result[name] for name in expected} == pytest.approx(expected, abs=1e-12)
    names = Learner(dls, model, metrics=[foreground_acc, Dice, JaccardCoeff, mean_iou])
    assert names.recorder.metric_names[-5:-1] == [
        "foreground_acc",
        "dice",
        "jaccard_coeff",
        "mean_iou",
    ]
