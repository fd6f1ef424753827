"""Loading refuses what it does not understand or trust; export refuses what isn't data."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mentor.inference.export import export_learner
from mentor.inference.load import resolve_factory
from mentor.inference.predictor import Predictor
from tests.helpers import tiny_classifier


@pytest.fixture(scope="module")
def good_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid export of a tiny collab model."""
    from mentor.collab import CollabDataLoaders, collab_learner

    ratings = pd.DataFrame({"u": [1, 2, 3, 1] * 5, "i": [7, 8, 7, 9] * 5, "r": [3.0] * 20})
    dls = CollabDataLoaders.from_df(ratings, valid_pct=0.2, seed=0, bs=4, device="cpu")
    learn = collab_learner(dls, n_factors=2)
    return learn.export(tmp_path_factory.mktemp("good") / "model")


def _rewrite(source: Path, dest: Path, changes: dict[str, bytes | None]) -> Path:
    """A copy of `source` with members replaced (bytes), removed (None) or added."""
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    for name, data in changes.items():
        if data is None:
            members.pop(name)
        else:
            members[name] = data
    with zipfile.ZipFile(dest, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return dest


def _json_member(source: Path, name: str) -> dict:
    with zipfile.ZipFile(source) as archive:
        return json.loads(archive.read(name))


def test_good_file_loads_and_predicts(good_file: Path) -> None:
    predictor = Predictor.load(good_file)
    rating, value = predictor.predict((1, 7))
    assert isinstance(rating, float) and value.shape == ()


def test_refuses_an_archive_with_a_pickle(good_file: Path, tmp_path: Path) -> None:
    payload = pickle.dumps({"not": "loaded"})
    bad = _rewrite(good_file, tmp_path / "bad.mentor", {"data.pkl": payload})
    with pytest.raises(ValueError, match=r"unexpected members \['data.pkl'\].*pickle"):
        Predictor.load(bad)


def test_refuses_a_model_json_naming_os_system(good_file: Path, tmp_path: Path) -> None:
    spec = {"factory": "os:system", "kwargs": {"command": "touch " + str(tmp_path / "pwned")}}
    bad = _rewrite(good_file, tmp_path / "bad.mentor", {"model.json": json.dumps(spec).encode()})
    with pytest.raises(ValueError, match="'os:system'.*not one of mentor's model factories"):
        Predictor.load(bad)
    assert not (tmp_path / "pwned").exists()


def test_refuses_other_mentor_functions_and_odd_names(good_file: Path, tmp_path: Path) -> None:
    for factory in ("mentor.data.external:untar_data", "antigravity:fly", "os:system; rm", 3):
        spec = {"factory": factory, "kwargs": {}}
        bad = _rewrite(
            good_file, tmp_path / "bad.mentor", {"model.json": json.dumps(spec).encode()}
        )
        with pytest.raises(ValueError, match="factory"):
            Predictor.load(bad)


def test_trusted_modules_opt_in() -> None:
    with pytest.raises(ValueError, match="trusted_modules=\\['torch'\\]"):
        resolve_factory("torch.nn:Linear")
    assert resolve_factory("torch.nn:Linear", trusted_modules=["torch"]) is torch.nn.Linear


@pytest.mark.parametrize(
    ("meta_change", "message"),
    [({"format_version": 99}, "format version 99"), ({"format": "fastai"}, "not a mentor export")],
)
def test_refuses_unknown_formats(good_file: Path, tmp_path: Path, meta_change, message) -> None:
    meta = {**_json_member(good_file, "meta.json"), **meta_change}
    bad = _rewrite(good_file, tmp_path / "bad.mentor", {"meta.json": json.dumps(meta).encode()})
    with pytest.raises(ValueError, match=message):
        Predictor.load(bad)


def test_refuses_missing_members_and_non_zips(good_file: Path, tmp_path: Path) -> None:
    bad = _rewrite(good_file, tmp_path / "bad.mentor", {"pipeline.json": None})
    with pytest.raises(ValueError, match=r"missing \['pipeline.json'\]"):
        Predictor.load(bad)
    not_zip = tmp_path / "export.pkl"
    not_zip.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ValueError, match="not a zip archive"):
        Predictor.load(not_zip)


def test_refuses_weights_that_do_not_fit(good_file: Path, tmp_path: Path) -> None:
    spec = _json_member(good_file, "model.json")
    spec["kwargs"]["n_factors"] = 3
    bad = _rewrite(good_file, tmp_path / "bad.mentor", {"model.json": json.dumps(spec).encode()})
    with pytest.raises(ValueError, match="weights don't fit"):
        Predictor.load(bad)


def test_export_refuses_what_is_not_data(tmp_path: Path) -> None:
    learn = tiny_classifier(tmp_path)
    with pytest.raises(ValueError, match="cannot describe the data of type DataLoaders"):
        export_learner(learn, tmp_path / "plain")
    assert not (tmp_path / "plain.mentor").exists()


def test_export_names_a_custom_item_transform(tmp_path: Path) -> None:
    from mentor.data import DataBlock
    from mentor.data.blocks import CategoryBlock
    from mentor.data.transforms import ItemTransform
    from mentor.vision import ImageBlock, vision_learner

    class Sharpen(ItemTransform):
        def __call__(self, sample, kinds, train):
            return sample

    images = [np.full((8, 8, 3), i * 20, dtype=np.uint8) for i in range(8)]
    block = DataBlock(blocks=(ImageBlock(), CategoryBlock()), get_x=lambda i: images[i],
                      get_y=lambda i: str(i % 2), item_tfms=[Sharpen()])  # fmt: skip
    dls = block.dataloaders(list(range(8)), bs=4, num_workers=0, device="cpu")
    learn = vision_learner(dls, "resnet18", pretrained=False, lin_ftrs=(4,))
    with pytest.raises(ValueError, match="item transform Sharpen"):
        learn.export(tmp_path / "sharp")
