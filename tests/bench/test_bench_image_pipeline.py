"""Smoke test of the image-pipeline benchmark on 256 images of imagenette_small."""

from __future__ import annotations

import math

import pytest
import torch

from bench.image_pipeline import BS, SIZE, main
from mentor.data.external import untar_data


@pytest.fixture(autouse=True)
def _imagenette_small() -> None:
    try:
        untar_data("imagenette_small")
    except FileNotFoundError as err:
        pytest.skip(f"imagenette_small not available: {err}")


@pytest.mark.slow
def test_quick_run_measures_both_loaders_on_alike_batches(capsys: pytest.CaptureFixture[str]):
    result = main(["--quick"])
    out = capsys.readouterr().out
    for rate in (result.baseline_rate, result.mentor_rate, result.ratio):
        assert math.isfinite(rate) and rate > 0
    for side in (result.baseline, result.mentor):
        assert len(side) == 1
        xb, yb = side[0].batch
        assert xb.shape == (BS, 3, SIZE, SIZE) and xb.dtype == torch.float32
        assert yb.shape == (BS,) and yb.dtype == torch.int64
        # Normalized with the ImageNet statistics: roughly centred, roughly unit spread.
        assert xb.mean().abs() < 0.75 and 0.6 < xb.std() < 1.8
    assert "machine:" in out
    assert f"ratio mentor/baseline {result.ratio:.3f}" in out
    assert out.count("PASS") + out.count("MISS") == 1
