"""ImageDataLoaders factories, image statistics, and points through the whole pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from mentor.core.seed import set_seed
from mentor.data.datablock import DataBlock
from mentor.data.splitters import RandomSplitter
from mentor.vision.augment import aug_transforms
from mentor.vision.blocks import ImageBlock, PointBlock
from mentor.vision.data import ImageDataLoaders, image_stats
from mentor.vision.resize import Resize

LOADER = dict(bs=8, num_workers=0, device="cpu")


def test_from_csv_reads_names_and_labels(mnist_tiny: Path) -> None:
    labels = pd.read_csv(mnist_tiny / "labels.csv")
    dls = ImageDataLoaders.from_csv(mnist_tiny, img_mode="L", valid_pct=0.25, seed=1, **LOADER)
    assert len(dls.train_ds) + len(dls.valid_ds) == len(labels)
    assert len(dls.valid_ds) == round(0.25 * len(labels))
    assert dls.vocab == [3, 7]  # the CSV holds the labels as numbers
    x, y = dls.one_batch()
    assert x.shape == (8, 1, 28, 28) and y.dtype == torch.int64


def test_from_df_with_a_valid_column_and_multi_labels(mnist_tiny: Path) -> None:
    labels = pd.read_csv(mnist_tiny / "labels.csv")
    labels["tags"] = labels.iloc[:, 1].astype(str) + " digit"
    labels["is_valid"] = labels.iloc[:, 0].str.startswith("valid")
    dls = ImageDataLoaders.from_df(
        labels, mnist_tiny, fn_col=0, label_col="tags", label_delim=" ", valid_col="is_valid",
        img_mode="L", **LOADER,
    )  # fmt: skip
    assert len(dls.valid_ds) == int(labels["is_valid"].sum()) > 0
    assert dls.vocab == ["3", "7", "digit"]
    assert dls.one_batch()[1].shape == (8, 3)


def named_images(folder: Path) -> list[Path]:
    """Six small images named like the pets data set: <label>_<n>.png (two breeds)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i, label in enumerate(
        ["great_pyrenees", "pug", "great_pyrenees", "pug", "pug", "great_pyrenees"]
    ):
        file = folder / f"{label}_{i}.png"
        Image.fromarray(np.full((20, 20, 3), 40 * i, dtype=np.uint8)).save(file)
        files.append(file)
    return files


def test_from_name_re_and_from_name_func(tmp_path: Path) -> None:
    files = named_images(tmp_path)
    names = [f.name for f in files]
    by_re = ImageDataLoaders.from_name_re(tmp_path, names, r"^(.+)_\d+\.png$", valid_pct=0.34,
                                          seed=0, **LOADER)  # fmt: skip
    by_func = ImageDataLoaders.from_name_func(tmp_path, names, lambda n: n.rsplit("_", 1)[0],
                                              valid_pct=0.34, seed=0, **LOADER)  # fmt: skip
    assert by_re.vocab == by_func.vocab
    assert by_re.vocab == ["great_pyrenees", "pug"]
    assert by_re.train_ds.items == by_func.train_ds.items
    assert len(by_re.valid_ds) == 2


def test_from_lists(tmp_path: Path) -> None:
    files = named_images(tmp_path)
    labels = ["big" if "pyrenees" in f.name else "small" for f in files]
    dls = ImageDataLoaders.from_lists(tmp_path, [f.name for f in files], labels, valid_pct=0.34,
                                      seed=0, **LOADER)  # fmt: skip
    assert dls.vocab == ["big", "small"]
    x, y = next(iter(dls.valid))
    item_labels = [dls.vocab[i] for i in y.tolist()]
    expected = [label for (_, label) in dls.valid_ds.items]
    assert item_labels == expected
    with pytest.raises(ValueError, match="6 file names but 5 labels"):
        ImageDataLoaders.from_lists(tmp_path, [f.name for f in files], labels[:5])


def test_image_stats_match_a_direct_computation(mnist_tiny: Path) -> None:
    dls = ImageDataLoaders.from_folder(mnist_tiny, img_mode="L", bs=64, num_workers=0,
                                       device="cpu")  # fmt: skip
    mean, std = image_stats(dls, n_batches=100)
    pixels = torch.cat([xb for xb, _ in dls.valid]).flatten()
    assert mean == pytest.approx([float(pixels.mean())], abs=1e-4)
    assert std == pytest.approx([float(pixels.std())], abs=1e-3)


def dot_images(folder: Path, n: int = 12) -> list[tuple[Path, tuple[float, float]]]:
    """Dark 64x48 images, each with a bright 3x3 dot at a known (x, y)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        x, y = int(rng.integers(12, 52)), int(rng.integers(10, 38))
        image = np.zeros((48, 64, 3), dtype=np.uint8)
        image[y - 1 : y + 2, x - 1 : x + 2] = 255
        file = folder / f"dot_{i}.png"
        Image.fromarray(image).save(file)
        items.append((file, (x + 0.5, y + 0.5)))  # the pixel centre, in pixel coordinates
    return items


def test_points_follow_resize_and_augmentation_to_the_bright_pixel(tmp_path: Path) -> None:
    items = dot_images(tmp_path)
    set_seed(3)
    block = DataBlock(
        blocks=(ImageBlock(), PointBlock()),
        get_x=lambda item: item[0],
        get_y=lambda item: [item[1]],
        splitter=RandomSplitter(0.25, seed=0),
        item_tfms=[Resize(32, method="squish")],
        batch_tfms=aug_transforms(max_rotate=20, max_zoom=1.2, max_warp=0.1, p_affine=1.0),
    )
    dls = block.dataloaders(items, bs=9, num_workers=0, device="cpu")
    images, points = dls.one_batch()
    assert points.shape == (9, 1, 2)
    for image, point in zip(images, points):
        brightest = int(image.sum(0).argmax())
        row, col = divmod(brightest, 32)
        x_pix = ((float(point[0, 0]) + 1) * 32 - 1) / 2
        y_pix = ((float(point[0, 1]) + 1) * 32 - 1) / 2
        assert abs(x_pix - col) <= 1.5 and abs(y_pix - row) <= 1.5, (x_pix, y_pix, col, row)
    fig = dls.show_batch(max_n=4, fname=tmp_path / "points.png")
    assert len(fig.axes[0].collections) == 1  # the points are drawn


def test_an_rgb_block_over_greyscale_files_gives_three_channels(mnist_tiny: Path) -> None:
    """Without any resize, the block still converts to the mode it was asked for."""
    dls = ImageDataLoaders.from_folder(mnist_tiny, img_mode="RGB", **LOADER)
    x, _ = dls.one_batch()
    assert x.shape == (8, 3, 28, 28)
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])
