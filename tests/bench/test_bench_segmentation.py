"""Smoke test of the segmentation benchmark on a slice of camvid_tiny."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from bench.segmentation import measure


@pytest.fixture(autouse=True)
def _one_thread():  # noqa: ANN202 (a fixture)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_segmentation_bench_trains_both_sides_alike(shared_data: Any) -> None:
    shared_data("camvid_tiny")
    result = measure((32, 48), n_images=16, runs=1, warmup=0)
    assert math.isfinite(result.ratio) and result.ratio > 0
    base, mentor = result.baseline[0], result.mentor[0]
    # the same weights, batches, optimizer and loss: the same validation loss, to rounding
    assert math.isfinite(base.valid_loss) and base.valid_loss < 5.0
    assert abs(base.valid_loss - mentor.valid_loss) < 1e-4
    assert f"ratio {result.ratio:.3f}" in result.line()
