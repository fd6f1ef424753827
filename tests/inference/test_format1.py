"""`.mentor` files written by format 1 (commit 950ca7f) still load and predict the same."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from mentor.inference.learner import load_learner
from mentor.inference.predictor import Predictor

HERE = Path(__file__).resolve().parent / "format1"
EXPECTED: dict[str, Any] = json.loads((HERE / "expected.json").read_text())
TOL = 1e-6


def _inputs(name: str, items: list[Any]) -> list[Any]:
    if name.startswith("vision"):
        return [str(Path(os.environ["MENTOR_DATA"]) / item) for item in items]
    return [tuple(item) for item in items] if name == "collab" else items


@pytest.mark.filterwarnings("ignore:values not seen in training")
@pytest.mark.filterwarnings("ignore:users and items not seen in training")
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_format1_file_predicts_as_when_written(name: str) -> None:
    expected = EXPECTED[name]
    items = _inputs(name, expected["items"])
    predictor = Predictor.load(HERE / f"{name}.mentor", trusted_modules=["tests"])
    labels, probs = predictor.predict_batch(items, bs=4)
    assert float((probs - torch.tensor(expected["probs"])).abs().max()) <= TOL
    if name == "tabular_regression" or name == "collab":
        assert labels == pytest.approx(expected["labels"], abs=TOL)
    else:
        assert labels == expected["labels"]
    label, single = predictor.predict(items[0])
    assert float((single - torch.tensor(expected["single"][1])).abs().max()) <= TOL
    if "generate" in expected:
        assert predictor.generate(items[0], 12, 0.0) == expected["generate"]
    learn = load_learner(HERE / f"{name}.mentor", trusted_modules=["tests"])
    if name != "char_lm":
        got = learn.get_preds(dl=learn.dls.test_dl(items, bs=4))[0]
        assert float((got - torch.tensor(expected["probs"])).abs().max()) <= TOL


def test_format1_files_are_format_1() -> None:
    import zipfile

    for name in EXPECTED:
        with zipfile.ZipFile(HERE / f"{name}.mentor") as archive:
            assert json.loads(archive.read("meta.json"))["format_version"] == 1


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (
            "mentor.vision.learner:build_vision_model",
            "mentor.vision.models.head:build_vision_model",
        ),
        ("mentor.tabular.learner:build_tabular_model", "mentor.tabular.model:build_tabular_model"),
        ("mentor.collab.learner:build_collab_model", "mentor.collab.model:build_collab_model"),
        (
            "mentor.text.models.core:get_text_classifier",
            "mentor.text.models.core:get_text_classifier",
        ),
    ],
)
def test_format1_model_factories_are_renamed_to_registered_ones(old: str, new: str) -> None:
    from mentor.core.spec import resolve
    from mentor.inference.migrate import migrate_v1

    pipeline = {"application": "collab", "loss": {"activation": "identity"}, "target": None,
                "inputs": {"user_name": "u", "item_name": "i", "user_classes": ["#na#"],
                           "item_classes": ["#na#"]}}  # fmt: skip
    _, model = migrate_v1(pipeline, {"factory": old, "kwargs": {"n": 1}})
    assert model == {"factory": new, "kwargs": {"n": 1}}
    assert callable(resolve(new, kind="model factory"))  # registered under the new name


def test_format1_unknown_pieces_are_named() -> None:
    from mentor.inference.migrate import migrate_v1

    inputs = {"mode": "RGB", "item_tfms": [{"type": "Sharpen"}], "batch_tfms": []}
    bad = {"application": "vision", "loss": {"activation": "softmax"}, "target": None,
           "inputs": inputs}  # fmt: skip
    with pytest.raises(ValueError, match="unknown piece 'Sharpen'"):
        migrate_v1(bad, {"factory": "x:y"})
