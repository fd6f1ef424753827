"""Lesson 1 end to end on imagenette_small at 160 px: a pretrained EfficientNet-Lite0 (its
head starting from the ImageNet classifier's rows for the ten classes) fine-tuned with
`fine_tune(2)`, then tta, interpretation with Grad-CAM, predict, and the same
with `precompute=True` (about 4 minutes on 2 cores)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from examples.imagenette import FitTimer, fine_tuned, imagenette_label, tta_accuracy
from mentor.data.external import untar_data
from mentor.train.interpret import ClassificationInterpretation
from mentor.vision.learner import VisionLearner

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tuned() -> Iterator[tuple[VisionLearner, FitTimer]]:
    try:
        untar_data("imagenette_small")
    except FileNotFoundError as err:
        pytest.skip(f"imagenette_small is not available: {err}")
    yield fine_tuned(size=160, epochs=2, bs=32)


def test_fine_tune_reaches_the_mark_and_tta_does_no_harm(
    tuned: tuple[VisionLearner, FitTimer],
) -> None:
    learn, timer = tuned
    plain, tta = tta_accuracy(learn)
    # the mark; measured 0.978 (frozen epoch 0.980), tta 0.982; a new head: 0.962
    assert plain >= 0.97, f"accuracy {plain:.4f}"
    assert plain == pytest.approx(timer.fits[-1][1], abs=1e-6)  # get_preds agrees with fit
    assert tta >= plain - 0.002, f"tta {tta:.4f} vs plain {plain:.4f}"


def test_interpretation_agrees_with_itself_and_draws_heat_maps(
    tuned: tuple[VisionLearner, FitTimer], tmp_path: Path
) -> None:
    learn, _ = tuned
    interp = ClassificationInterpretation.from_learner(learn)
    matrix = interp.confusion_matrix()
    assert matrix.sum() == len(learn.dls.valid_ds) == 500
    vocab = learn.dls.vocab
    for actual, predicted, count in interp.most_confused(min_val=1):
        assert matrix[vocab.index(actual), vocab.index(predicted)] == count
    off_diagonal = matrix - np.diag(np.diag(matrix))
    assert sum(c for *_, c in interp.most_confused(min_val=1)) == off_diagonal.sum()
    interp.plot_top_losses(9, heatmap=True, fname=tmp_path / "top_losses.png")
    assert (tmp_path / "top_losses.png").stat().st_size > 50_000
    losses, _ = interp.top_losses(9)
    assert bool((losses[:-1] >= losses[1:]).all())


def test_grad_cam_and_predict_on_a_file(tuned: tuple[VisionLearner, FitTimer]) -> None:
    learn, _ = tuned
    path = learn.dls.valid_ds.items[0]
    label, index, probs = learn.predict(path)
    assert label == learn.dls.vocab[int(index)] == imagenette_label(path)
    assert float(probs.sum()) == pytest.approx(1.0, abs=1e-5)
    cam = learn.grad_cam(path)
    assert cam.shape == (160, 160) and float(cam.max()) == pytest.approx(1.0)
    assert float(cam.min()) >= 0.0 and float(cam.std()) > 0.05  # not flat
    assert torch.isfinite(cam).all()


def test_precompute_trains_the_frozen_epoch_faster_to_the_same_place(
    tuned: tuple[VisionLearner, FitTimer],
) -> None:
    _, timer = tuned
    learn, pre_timer = fine_tuned(size=160, epochs=2, bs=32, precompute=True)
    frozen_s, pre_frozen_s = timer.fits[0][0], pre_timer.fits[0][0]
    # measured 29.6 s against 0.1 s (features computed before the fit: 17 s)
    assert pre_frozen_s * 3 <= frozen_s, (pre_frozen_s, frozen_s)
    final, pre_final = timer.fits[-1][1], pre_timer.fits[-1][1]
    assert abs(final - pre_final) <= 0.01, (final, pre_final)
    assert len(learn.model) == 2 and learn.feature_cache is not None  # full model is back
