"""Smoke test of the language-model benchmark: every side runs in its own process."""

from __future__ import annotations

import math

import pytest

from bench.text_lm import SIDES, main


def test_quick_run_prints_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    runs = main(["--quick"])
    out = capsys.readouterr().out
    assert set(runs) == set(SIDES) and all(len(runs[side]) == 1 for side in SIDES)
    losses = {side: runs[side][0].valid_loss for side in SIDES}
    assert all(math.isfinite(loss) and loss > 0 for loss in losses.values())
    # the hand-written loop does what the learner does: same weights, batches and dropout
    assert losses["mentor"] == pytest.approx(losses["baseline"], rel=1e-4)
    assert losses["baseline+kept"] == pytest.approx(losses["baseline"], rel=1e-6)
    assert "machine:" in out and "mentor / baseline:" in out and "mentor / baseline+kept:" in out
