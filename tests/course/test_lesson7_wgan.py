"""Lesson 7's GAN as a student runs it: a generator and a critic trained in turns on the
mnist_sample digits, judged by a classifier of the real ones
(`examples/course/lesson7_wgan.py`, quick)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from examples.course import lesson7_wgan as lesson7


@pytest.mark.slow
def test_lesson7_gan_moves_its_samples_towards_the_digits(shared_data: Any, tmp_path: Path) -> None:
    shared_data("mnist_sample")
    found = lesson7.run(quick=True, out=tmp_path)
    assert found["classifier_accuracy"] >= 0.9  # the judge itself (99.6% on all the digits)
    # the untrained generator's tanh outputs sit near 0 (grey): no dark pixels; real digits
    # are 84% dark background. A GAN that does not train (a frozen generator, a critic
    # trained on the wrong batch, a sign flipped) stays grey
    assert found["untrained_dark_pixels"] < 0.05
    assert found["dark_pixels"] >= lesson7.QUICK_DARK_FLOOR
    assert lesson7.shortfalls(found, quick=True) == []
    with Image.open(tmp_path / "samples.png") as grid:  # 8 x 8 tiles of 32 px, 2 px apart
        assert grid.size == (8 * 34 + 2, 8 * 34 + 2) and grid.mode == "L"
