"""Lesson 4 as a student runs it: a tabular model on adult and a collaborative filter on the
MovieLens sample, each predicting one raw item (`examples/course/lesson4_tabular_collab.py`)."""

from __future__ import annotations

from typing import Any

import pytest

from examples.course import lesson4_tabular_collab as lesson4


def test_lesson4_tabular_and_collab_reach_their_floors(
    shared_data: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    shared_data("adult_sample")
    shared_data("movie_lens_sample")
    found = lesson4.run(quick=True)
    assert found["tabular_accuracy"] >= lesson4.ACCURACY_FLOOR  # the majority class is 0.76
    assert found["collab_mse"] <= lesson4.MSE_CEILING  # the ratings' variance is 0.93
    printed = capsys.readouterr().out
    assert "row 0 (<50k): predicted" in printed and "predicted" in printed.split("movie")[-1]
