"""Smoke test of the loop-overhead benchmark on a slice of MNIST 3 vs 7."""

from __future__ import annotations

import math

import pytest
import torch

from bench.overhead import CASES, QUICK_SIZES, main, measure, slice_data


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: with as many threads as cores, a busy machine (tests running in
    parallel) can slow the runs a hundredfold; a smoke test needs no speed, only sanity."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_overhead_case_trains_both_sides_alike(case, mnist_sample):
    data = slice_data(mnist_sample, *QUICK_SIZES)
    result = measure(case, data, runs=1, warmup=1)
    assert math.isfinite(result.ratio) and result.ratio > 0
    base, mentor = result.baseline[0], result.mentor[0]
    assert base.seconds > 0 and mentor.seconds > 0
    # Same weights, batch order, optimizer and loss: both sides learn the task, and alike.
    assert base.accuracy > 0.9 and mentor.accuracy > 0.9
    assert abs(base.accuracy - mentor.accuracy) < 0.02
    assert f"ratio {result.ratio:.3f}" in result.line()


@pytest.mark.slow
def test_quick_run_prints_one_line_per_case(mnist_sample, capsys: pytest.CaptureFixture[str]):
    results = main(["--quick"])
    out = capsys.readouterr().out
    assert "machine:" in out
    assert [r.case.name for r in results] == [case.name for case in CASES]
    for result in results:
        assert result.line() in out
        assert result.line().count("PASS") + result.line().count("MISS") == 1
