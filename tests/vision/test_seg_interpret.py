"""`SegmentationInterpretation` on camvid_tiny: the whole set's pixel confusion matrix, the
per-class IoU, the per-image losses, the plots, and `ignore_index`."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mentor.train.seg_metrics import pixel_confusion
from mentor.vision.learner import unet_learner
from mentor.vision.seg_interpret import SegmentationAccumulator, SegmentationInterpretation
from tests.vision.test_unet_learner import camvid

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def learn():  # noqa: ANN201 (Learner)
    dls, _ = camvid(12)  # 9 training and 3 validation images keep it quick
    learner = unet_learner(dls, "resnet18", pretrained=False)
    learner.progress.show = False
    learner.fit_one_cycle(1, 2e-3)
    return learner


@pytest.fixture(scope="module")
def interp(learn) -> SegmentationInterpretation:  # noqa: ANN001
    return SegmentationInterpretation.from_learner(learn)


def test_confusion_iou_and_losses_match_a_direct_computation(learn, interp) -> None:  # noqa: ANN001
    inputs, probs, targets = learn.get_preds(with_input=True)
    n_pixels = targets.numel()
    assert int(interp.confusion.sum()) == n_pixels == interp.targets.numel()
    assert torch.equal(interp.confusion, pixel_confusion(probs, targets, 32))
    assert torch.equal(interp.preds.long(), probs.argmax(1)) and interp.preds.shape == (3, 48, 64)
    assert torch.equal(interp.targets.long(), targets.long())
    matrix = interp.confusion.double().numpy()
    table = interp.per_class_iou()
    for row in table.itertuples():
        i = interp.codes.index(row.code)
        union = matrix[i].sum() + matrix[:, i].sum() - matrix[i, i]
        expected = matrix[i, i] / union if union else math.nan
        assert (math.isnan(row.iou) and math.isnan(expected)) or row.iou == pytest.approx(expected)
        assert row.target_pixels == matrix[i].sum() and row.predicted_pixels == matrix[:, i].sum()
    ious = table["iou"].to_numpy()
    present = ious[~np.isnan(ious)]
    assert (np.diff(present) <= 0).all() and np.isnan(ious[len(present) :]).all()
    assert interp.mean_iou == pytest.approx(present.mean())
    losses, indices = interp.top_losses()
    assert (losses[:-1] >= losses[1:]).all()
    with torch.no_grad():
        scores = learn.model.eval()(inputs)
    direct = F.cross_entropy(scores, targets.long(), reduction="none").mean((1, 2))
    assert torch.allclose(losses, direct[indices], atol=1e-5)


def test_plots_are_drawn_and_saved(interp, tmp_path: Path) -> None:  # noqa: ANN001
    fig = interp.plot_top_losses(3, fname=tmp_path / "top.png")
    image_axes = [ax for ax in fig.axes if ax.get_title()]
    assert len(image_axes) == 9 and image_axes[0].get_title().startswith("image ")
    assert f"{float(interp.top_losses(1)[0][0]):.3f}" in image_axes[0].get_title()
    legend = image_axes[2].get_legend()
    assert legend is not None and {t.get_text() for t in legend.get_texts()} <= set(interp.codes)
    assert (tmp_path / "top.png").stat().st_size > 5000
    fig = interp.plot_confusion_matrix(fname=tmp_path / "cm.png", min_pixels=1)
    shown = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    occurring = (interp.confusion.sum(0) + interp.confusion.sum(1) > 0).sum()
    assert len(shown) == occurring < 32 and shown[0] in interp.codes
    assert (tmp_path / "cm.png").stat().st_size > 5000
    full = interp.plot_confusion_matrix(normalize=False)
    assert len(full.axes[0].get_yticklabels()) == 32


def test_ignore_index_leaves_those_pixels_out(learn, interp) -> None:  # noqa: ANN001
    void = learn.dls.vocab.index("Void")
    without_void = SegmentationInterpretation.from_learner(learn, ignore_index=void)
    kept = interp.targets != void
    assert 0 < int(kept.sum()) < kept.numel() and int(without_void.confusion.sum()) == kept.sum()
    assert without_void.confusion[void].sum() == 0
    assert torch.equal(without_void.confusion, interp.confusion - _void_row(interp, void))
    table = without_void.per_class_iou()
    assert math.isnan(table.set_index("code").loc["Void", "iou"])


def test_accumulator_sums_batches_without_a_learner() -> None:
    scores = torch.zeros(2, 3, 2, 2)
    scores[:, 1] = 1.0  # every pixel predicted as class 1
    scores[1, 2, 0, 0] = 5.0  # except one, predicted as 2
    targets = torch.tensor([[[0, 1], [1, 9]], [[2, 2], [1, 1]]])
    acc = SegmentationAccumulator(3, ignore_index=9)
    acc.add(scores[:1], targets[:1], torch.tensor([0.5]))
    acc.add(scores[1:], targets[1:], torch.tensor([1.5]))
    expected = torch.tensor([[0, 1, 0], [0, 4, 0], [0, 1, 1]])
    assert torch.equal(acc.confusion, expected) and acc.preds.dtype == torch.uint8
    interp = SegmentationInterpretation(
        None, None, acc.preds, acc.targets, acc.losses, acc.confusion, ["a", "b", "c"], 9
    )
    table = interp.per_class_iou().set_index("code")
    assert table.loc["b", "iou"] == pytest.approx(4 / 6) and table.loc["a", "iou"] == 0.0
    assert table.loc["c", "iou"] == pytest.approx(1 / 2)
    assert interp.mean_iou == pytest.approx((4 / 6 + 0 + 1 / 2) / 3)
    assert interp.top_losses(1)[1].tolist() == [1]


def _void_row(interp: SegmentationInterpretation, void: int) -> torch.Tensor:
    row = torch.zeros_like(interp.confusion)
    row[void] = interp.confusion[void]
    return row
