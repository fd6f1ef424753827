"""Smoke test of the inference benchmark (vision, tabular and text predictors)."""

from __future__ import annotations

import math

import pytest
import torch

from bench.predict import main


@pytest.fixture(autouse=True)
def _restore_threads():
    """The benchmark sets one intra-op thread; give the other tests their setting back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_quick_run_prints_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    cases = main(["--quick"])
    out = capsys.readouterr().out
    assert "machine:" in out and "set_num_threads(1)" in out
    assert [case.name.split()[0] for case in cases] == ["vision", "tabular", "text"]
    for case in cases:
        assert math.isfinite(case.ratio) and case.ratio > 0
        assert case.batch_items_per_s > 0
        assert case.line() in out and "items/s" in out
