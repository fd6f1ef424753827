"""Smoke test of the image-pipeline benchmark on 256 images of imagenette_small."""

from __future__ import annotations

import math

import pytest
import torch

from bench.image_pipeline import BS, EPOCHS, QUICK_ITEMS, SIZE, main
from mentor.data.external import untar_data


@pytest.fixture(autouse=True)
def _imagenette_small() -> None:
    try:
        untar_data("imagenette_small")
    except FileNotFoundError as err:
        pytest.skip(f"imagenette_small not available: {err}")


@pytest.mark.slow
def test_quick_run_measures_both_loaders_on_alike_batches(capsys: pytest.CaptureFixture[str]):
    training, evaluation = main(["--quick"])
    out = capsys.readouterr().out
    for result in (training, evaluation):
        for rate in (result.baseline_rate, result.mentor_rate, result.ratio, result.ratio_before):
            assert math.isfinite(rate) and rate > 0
        for side in (result.baseline, result.mentor, result.before):
            assert len(side) == 1
            xb, yb = side[0].batch
            assert xb.shape[1:] == (3, SIZE, SIZE) and xb.dtype == torch.float32
            assert yb.dtype == torch.int64
            # Normalized with the ImageNet statistics: roughly centred, roughly unit spread.
            assert xb.mean().abs() < 0.75 and 0.6 < xb.std() < 1.8
        assert f"ratio mentor/baseline {result.ratio:.3f}" in out
        assert f"ratio {result.ratio_before:.3f}" in out
    assert training.mentor[0].images == training.baseline[0].images == QUICK_ITEMS // BS * BS
    # five passes over every image, on each side
    assert evaluation.mentor[0].images == evaluation.baseline[0].images == EPOCHS * QUICK_ITEMS
    # the evaluation sides see the same pixels: same Resize and normalization
    mentor_x, baseline_x = evaluation.mentor[0].batch[0], evaluation.baseline[0].batch[0]
    assert torch.allclose(mentor_x.mean(dim=(0, 2, 3)), baseline_x.mean(dim=(0, 2, 3)), atol=0.05)
    assert "machine:" in out
    assert out.count("PASS") + out.count("MISS") == 1
