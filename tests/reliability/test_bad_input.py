"""Bad input gives a clear result, and one bad item never costs the good ones: 16-bit PNGs,
decompression bombs, infinite and non-numeric values in tabular data, bad items under
`skip_bad` in a loaded learner, users, items and categories unseen in training."""

from __future__ import annotations

import shutil
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from bench.common import small_cnn
from mentor.core.seed import set_seed
from mentor.inference.learner import load_learner
from mentor.inference.predictor import Predictor
from mentor.tabular import (
    Categorify,
    FillMissing,
    Normalize,
    TabularDataLoaders,
    cont_cat_split,
    tabular_learner,
)
from mentor.train import Learner
from mentor.vision import ImageDataLoaders, verify_images
from mentor.vision.blocks import ImageBlock
from mentor.vision.image import BadImageError, finish_image, open_image
from mentor.vision.resize import Resize
from tests.helpers import tabular_frame

FORMAT1 = Path(__file__).resolve().parents[1] / "inference" / "format1"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(path: Path, side: int = 20_000) -> Path:
    """A few hundred bytes that declare a `side` x `side` greyscale PNG (400 Mpixels)."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    body = _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\0" * 1000))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body + _chunk(b"IEND", b""))
    return path


def sixteen_bit_png(path: Path) -> Path:
    """A 64 x 64 16-bit greyscale gradient from 0 to 65535."""
    Image.fromarray(np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)).save(path)
    return path


# ----- images -----


def test_a_16_bit_png_is_scaled_to_8_bits_not_clipped_white(tmp_path: Path) -> None:
    path = sixteen_bit_png(tmp_path / "wide.png")
    assert Image.open(path).mode == "I;16"
    whole = np.asarray(finish_image(open_image(path), "RGB"))
    resized = Resize(32)([open_image(path), 0], ("image", "label"), train=False)[0]
    in_memory = ImageBlock("L").encode(Image.open(path))
    for array in (whole, np.asarray(resized), np.asarray(in_memory)):
        # PIL's own convert clips: mean 254.9, almost every pixel 255
        assert abs(float(array.mean()) - 127.5) < 1.5
        assert array.min() <= 8 and array.max() >= 247  # the resized corners are averages


def test_a_decompression_bomb_is_a_bad_image_that_skip_bad_skips(
    tmp_path: Path, mnist_tiny: Path
) -> None:
    root = tmp_path / "digits"
    for split in ("train", "valid"):
        shutil.copytree(mnist_tiny / split, root / split)
    bomb = bomb_png(root / "train" / "3" / "huge.png")
    assert verify_images([bomb]) == [bomb]
    with pytest.raises(BadImageError, match="huge.png.*too large to decode"):
        open_image(bomb)
    set_seed(0)
    dls = ImageDataLoaders.from_folder(
        root, img_mode="L", bs=64, num_workers=0, device="cpu", skip_bad=True
    )
    learn = Learner(dls, small_cnn())
    learn.progress.show = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        learn.fit(1, 1e-2)  # raised DecompressionBombError before
    assert any("huge.png" in str(w.message) for w in caught), [str(w.message) for w in caught]
    assert np.isfinite(learn.recorder.losses).all()


# ----- tabular -----


def _tabular(df: pd.DataFrame, procs: list[object]) -> Learner:
    set_seed(0)
    dls = TabularDataLoaders.from_df(
        df, procs=procs, cat_names=["color", "size"], cont_names=["x", "z"], y_names="label",
        valid_idx=list(range(160, 200)), bs=32, device="cpu",
    )  # fmt: skip
    learn = tabular_learner(dls, layers=[8])
    learn.progress.show = False
    return learn


def test_infinite_values_are_missing_values_in_training_and_at_predict(tmp_path: Path) -> None:
    df = tabular_frame(200)
    df.loc[[3, 50], "z"] = [np.inf, -np.inf]
    with pytest.warns(UserWarning, match=r"'z' has 2 infinite value\(s\), in row\(s\) \[3, 50\]"):
        learn = _tabular(df, [Categorify, FillMissing, Normalize])
    learn.fit_one_cycle(2, 1e-2)  # trained to NaN before
    assert np.isfinite(learn.recorder.losses).all()
    assert all(torch.isfinite(p).all() for p in learn.model.parameters())
    row = df.iloc[0].copy()
    row["z"] = np.inf
    with pytest.warns(UserWarning, match="'z' is inf; it is treated as missing"):
        _, _, probs = learn.predict(row)  # ('no', tensor([nan, nan])) before
    assert torch.isfinite(probs).all()
    learn.export(tmp_path / "rows.mentor")
    predictor = Predictor.load(tmp_path / "rows.mentor")
    with pytest.warns(UserWarning, match="'z' is inf; it is treated as missing"):
        _, exported = predictor.predict(dict(row))
    assert torch.allclose(exported, probs, atol=1e-6)


def test_infinite_or_missing_values_without_fill_missing_are_refused_naming_column_and_row() -> (
    None
):
    df = tabular_frame(200)
    df["x"] = df["x"].fillna(0.0)
    df.loc[7, "z"] = np.inf
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=r"'z' is missing .* row 7"):
        _tabular(df, [Categorify, Normalize])


def test_a_word_in_a_numeric_column_is_named() -> None:
    df = pd.DataFrame({"age": [str(a) for a in range(20, 60)], "label": [0, 1] * 20})
    df.loc[12, "age"] = "forty"
    with pytest.warns(UserWarning, match=r"'age' holds numbers but for 1 value\(s\) \['forty'\]"):
        _, cat = cont_cat_split(df, dep_var="label")
    assert cat == ["age"]
    with warnings.catch_warnings():  # a column of words is not flagged
        warnings.simplefilter("error")
        cont_cat_split(pd.DataFrame({"city": ["Paris", "Rome", "1"] * 5}))


# ----- a loaded learner's test_dl(skip_bad=True) -----


def test_a_loaded_learner_skips_bad_rows_and_images_and_predicts_the_rest(
    mnist_tiny: Path, tmp_path: Path
) -> None:
    learn = load_learner(FORMAT1 / "tabular_category.mentor")
    rows = pd.DataFrame([
        {"color": "red", "size": 1, "x": 0.5, "z": 2.0},
        {"color": "blue", "size": 2, "x": "forty", "z": 1.0},
        {"color": "green", "size": 3, "x": -1.0, "z": 9.0},
    ])  # fmt: skip
    with pytest.raises(ValueError, match="forty"):
        learn.dls.test_dl(rows)
    with pytest.warns(UserWarning, match=r"left out 1 item\(s\)"):
        dl = learn.dls.test_dl(rows, skip_bad=True)  # TypeError before
    assert list(dl.skipped) == [1] and "forty" in dl.skipped[1]
    preds = learn.get_preds(dl=dl)[0]
    alone = learn.get_preds(dl=learn.dls.test_dl(rows.iloc[[0, 2]]))[0]
    assert torch.equal(preds, alone)

    images = load_learner(FORMAT1 / "vision_category.mentor", trusted_modules=["tests"])
    good = sorted((mnist_tiny / "valid" / "3").glob("*.png"))[:2]
    broken = tmp_path / "broken.png"
    broken.write_bytes(good[0].read_bytes()[:60])
    items = [good[0], broken, bomb_png(tmp_path / "huge.png"), good[1]]
    with pytest.warns(UserWarning, match=r"left out 2 item\(s\)"):
        dl = images.dls.test_dl(items, bs=2, skip_bad=True)
    assert sorted(dl.skipped) == [1, 2]
    preds = images.get_preds(dl=dl)[0]
    expected = images.get_preds(dl=images.dls.test_dl(good))[0]
    assert torch.allclose(preds, expected, atol=1e-6)


# ----- unseen users, items and categories at single predict -----


def test_unseen_categories_users_and_items_are_counted_in_a_warning() -> None:
    rows = Predictor.load(FORMAT1 / "tabular_category.mentor")
    seen = {"color": "red", "size": 1, "x": 0.5, "z": 2.0}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows.predict(seen)
    with pytest.warns(UserWarning, match=r"coded 0 \(unknown\): 1 in column\(s\) \['color'\]"):
        rows.predict({**seen, "color": "purple"})  # silent before

    ratings = Predictor.load(FORMAT1 / "collab.mentor")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ratings.predict((3, 101))
    with pytest.warns(UserWarning, match=r"1 user\(s\) \[999\] and 0 item\(s\)"):
        ratings.predict((999, 104))  # silent before
    with pytest.warns(UserWarning, match=r"2 user\(s\) \[998, 999\] and 1 item\(s\) \[1\]"):
        ratings.predict_batch([(998, 104), (999, 1), (3, 101)])


def test_every_test_dl_takes_skip_bad(mnist_tiny: Path, tmp_path: Path) -> None:
    from mentor.text import TextDataLoaders

    dls = ImageDataLoaders.from_folder(mnist_tiny, valid="valid", bs=8, device="cpu")
    good = sorted((mnist_tiny / "valid" / "7").glob("*.png"))[:3]
    broken = tmp_path / "broken.png"
    broken.write_bytes(good[0].read_bytes()[:60])
    with pytest.raises(BadImageError, match="broken.png"):
        list(dls.test_dl([good[0], broken]))
    dl = dls.test_dl([good[0], broken, good[1], good[2]], skip_bad=True)
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable item\(s\): .*broken.png"):
        batches = list(dl)
    assert sum(len(b[0]) for b in batches) == 3

    texts = TextDataLoaders.from_texts(["a good film", "a bad plot"] * 8, ["a fine cast"] * 4,
                                       ["pos", "neg"] * 8, ["pos"] * 4, min_freq=1, bs=4,
                                       device="cpu")  # fmt: skip
    with pytest.raises(TypeError, match="item 1 is a int"):
        texts.test_dl(["a good plot", 7])
    with pytest.warns(UserWarning, match=r"left out 1 item\(s\) that are not strings"):
        dl = texts.test_dl(["a good plot", 7, "a dull cast"], skip_bad=True)
    assert sum(len(b[0]) for b in dl) == 2
