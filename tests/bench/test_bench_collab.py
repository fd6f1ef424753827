"""Smoke test of the collaborative-filtering benchmark on a slice of ml-100k."""

from __future__ import annotations

import math

import pytest
import torch

from bench.collab import QUICK_ROWS, load_ratings, main, measure
from mentor.collab import CollabDataLoaders


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: a busy machine with as many threads as cores slows runs a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def ratings_slice():
    try:
        return load_ratings(QUICK_ROWS)
    except FileNotFoundError as err:
        pytest.skip(f"ml-100k not available: {err}")


def test_collab_bench_trains_both_sides_alike(ratings_slice) -> None:
    dls = CollabDataLoaders.from_df(ratings_slice, valid_pct=0.2, seed=42, bs=64, device="cpu")
    result = measure(dls, runs=1, warmup=1, n_epoch=2)
    assert math.isfinite(result.ratio) and result.ratio > 0
    base, mentor = result.baseline[0], result.mentor[0]
    assert base.seconds > 0 and mentor.seconds > 0
    # Same weights, batch order, optimizer and loss: the same validation MSE, to rounding.
    assert math.isfinite(base.valid_mse) and base.valid_mse < 5.0
    assert abs(base.valid_mse - mentor.valid_mse) < 1e-3
    assert f"ratio {result.ratio:.3f}" in result.line()


def test_quick_run_prints_the_ratio_and_machine(
    ratings_slice, capsys: pytest.CaptureFixture[str]
) -> None:
    result = main(["--quick"])
    out = capsys.readouterr().out
    assert "machine:" in out and "load average" in out
    assert result.line() in out
    assert result.line().count("PASS") + result.line().count("MISS") == 1
