"""Smoke test of the tabular benchmark on adult_sample."""

from __future__ import annotations

import math

import pytest
import torch

from bench.tabular import main


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: a busy machine with as many threads as cores slows runs a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_quick_run_prints_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    result = main(["--quick"])
    out = capsys.readouterr().out
    assert math.isfinite(result.ratio) and result.ratio > 0
    assert "machine:" in out and "preprocessing + loaders:" in out
    assert result.line() in out and "predict one row:" in out and "rows/s" in out
