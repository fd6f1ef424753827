"""Lesson 6 as a student runs it: a Rossmann-style log-target tabular model with dropout and
exp_rmspe on bike rentals, augmented views of a digit, and a Grad-CAM heat map built from hooks
that must match `learn.grad_cam` (`examples/course/lesson6_tabular.py`, quick)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from examples.course import lesson6_tabular as lesson6

torch.set_num_threads(1)  # two threads on 2 shared cores contend and run several times slower


def test_lesson6_tabular_augmentation_and_heat_map(
    shared_data: Any, mnist_tiny: Path, tmp_path: Path
) -> None:
    shared_data("bike_sharing")
    found = lesson6.run(quick=True, out=tmp_path)
    # measured 0.62; always predicting one rental gets 0.97
    assert found["exp_rmspe"] <= lesson6.QUICK_RMSPE_CEILING
    # the metric sums over the whole validation set: the same as numpy on all predictions
    assert abs(found["exp_rmspe"] - found["rmspe_numpy"]) < 1e-4
    assert found["accuracy"] >= lesson6.QUICK_ACCURACY_FLOOR  # measured 0.967; chance is 0.5
    assert found["cam_difference"] <= lesson6.CAM_TOLERANCE  # hooks by hand == learn.grad_cam
    assert found["cam_spread"] > 0.05  # the map shows somewhere, it is not flat
    assert lesson6.shortfalls(found, quick=True) == []
    for figure in ("augmentations.png", "heatmap.png"):
        assert (tmp_path / figure).stat().st_size > 5000, figure
