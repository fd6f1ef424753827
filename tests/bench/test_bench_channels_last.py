"""Smoke test of the channels-last benchmark: both sides train, every figure is printed."""

from __future__ import annotations

import math

import pytest

from bench.channels_last import CASES, main


@pytest.mark.slow
def test_quick_run_prints_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    results = main(["--quick"])
    out = capsys.readouterr().out
    assert len(results) == len(CASES)
    for case, result in zip(CASES, results):
        assert case.channels_last and case.name in out
        assert math.isfinite(result.ratio) and result.ratio > 0
        assert len(result.baseline) == len(result.mentor) == 1
    assert out.count("ratio") == 2 * len(CASES)  # the ratio and the fastest-run ratio
