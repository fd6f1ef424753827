"""The same DataBlock API on five real data sets: counts, vocab, shapes and dtypes of a batch,
and a readable `show_batch` picture of each (written to $MENTOR_SHOW_DIR when set)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from examples.coco_multilabel import coco_labels
from examples.imagenette import IMAGENETTE_NAMES, imagenette_label
from mentor.core.paths import data_path
from mentor.data.blocks import CategoryBlock, MultiCategoryBlock
from mentor.data.datablock import DataBlock
from mentor.data.external import untar_data
from mentor.data.items import get_image_files
from mentor.data.labels import parent_label
from mentor.data.splitters import GrandparentSplitter, RandomSplitter
from mentor.vision.augment import aug_transforms
from mentor.vision.blocks import ImageBlock, MaskBlock
from mentor.vision.data import ImageDataLoaders
from mentor.vision.resize import RandomResizedCrop, Resize


def shared(name: str) -> Path:
    try:
        return untar_data(name)
    except FileNotFoundError as err:
        pytest.skip(f"{name} is not available: {err}")


def show(dls, name: str, tmp_path: Path) -> None:
    """show_batch writes a PNG (kept in $MENTOR_SHOW_DIR for a person to look at)."""
    folder = Path(os.environ.get("MENTOR_SHOW_DIR", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    dls.show_batch(max_n=9, fname=folder / f"{name}.png")
    assert (folder / f"{name}.png").stat().st_size > 5_000


def test_mnist_tiny_from_folders(tmp_path: Path) -> None:
    path = shared("mnist_tiny")
    block = DataBlock(
        blocks=(ImageBlock("L"), CategoryBlock),
        get_items=get_image_files,
        get_y=parent_label,
        splitter=GrandparentSplitter(),
    )
    dls = block.dataloaders(path, bs=32, num_workers=0, device="cpu")
    assert (len(dls.train_ds), len(dls.valid_ds)) == (709, 699)
    assert dls.vocab == ["3", "7"] and dls.c == 2
    x, y = dls.one_batch()
    assert x.shape == (32, 1, 28, 28) and x.dtype == torch.float32
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    assert y.shape == (32,) and y.dtype == torch.int64 and set(y.tolist()) <= {0, 1}
    show(dls, "mnist_tiny", tmp_path)


def test_mnist_sample_from_the_tar_with_the_folder_factory(tmp_path: Path) -> None:
    path = shared("mnist_sample")
    dls = ImageDataLoaders.from_folder(path, img_mode="L", bs=64, num_workers=0, device="cpu")
    assert (len(dls.train_ds), len(dls.valid_ds)) == (12396, 2038)
    assert dls.vocab == ["3", "7"]
    x, y = dls.one_batch()
    assert x.shape == (64, 1, 28, 28) and y.dtype == torch.int64
    show(dls, "mnist_sample", tmp_path)


def test_imagenette_small_with_readable_names(tmp_path: Path) -> None:
    path = shared("imagenette_small")
    block = DataBlock(
        blocks=(ImageBlock(), CategoryBlock),
        get_items=get_image_files,
        get_y=imagenette_label,
        splitter=GrandparentSplitter(valid_name="val"),
        item_tfms=[RandomResizedCrop(128, min_scale=0.35)],
        batch_tfms=aug_transforms(),
    )
    dls = block.dataloaders(path, bs=16, num_workers=2, device="cpu")
    assert (len(dls.train_ds), len(dls.valid_ds)) == (2000, 500)
    assert dls.vocab == sorted(IMAGENETTE_NAMES.values(), key=str) and dls.c == 10
    x, y = dls.one_batch()
    assert x.shape == (16, 3, 128, 128) and x.dtype == torch.float32
    assert y.shape == (16,) and y.dtype == torch.int64
    xv, _ = next(iter(dls.valid))
    assert xv.shape == (32, 3, 128, 128)
    show(dls, "imagenette_small", tmp_path)


def test_coco_tiny_multi_label(tmp_path: Path) -> None:
    path = data_path("coco_tiny")
    block = DataBlock(
        blocks=(ImageBlock(), MultiCategoryBlock),
        get_items=get_image_files,
        get_y=coco_labels(path),
        splitter=RandomSplitter(0.2, seed=42),
        item_tfms=[Resize(128)],
    )
    dls = block.dataloaders(path, bs=8, num_workers=0, device="cpu")
    assert len(dls.train_ds) + len(dls.valid_ds) == 200 and len(dls.valid_ds) == 40
    assert dls.vocab == ["book", "chair", "couch", "remote", "tv", "vase"] and dls.c == 6
    x, y = dls.one_batch()
    assert x.shape == (8, 3, 128, 128)
    assert y.shape == (8, 6) and y.dtype == torch.float32 and set(y.unique().tolist()) <= {0, 1}
    assert float(y.sum(1).min()) >= 1  # every image has a box, so a label
    assert dls.loss_spec == ("BCEWithLogitsLossFlat", {})
    show(dls, "coco_tiny", tmp_path)


def test_camvid_tiny_segmentation(tmp_path: Path) -> None:
    path = data_path("camvid_tiny")
    codes = (path / "codes.txt").read_text().split()
    block = DataBlock(
        blocks=(ImageBlock(), MaskBlock(codes)),
        get_items=get_image_files,
        get_y=lambda p: path / "labels" / f"{p.stem}_P{p.suffix}",
        splitter=RandomSplitter(0.2, seed=42),
        item_tfms=[Resize((96, 128))],
        batch_tfms=aug_transforms(),
    )
    dls = block.dataloaders(path / "images", bs=4, num_workers=0, device="cpu")
    assert (len(dls.train_ds), len(dls.valid_ds)) == (80, 20)
    assert len(codes) == 32 and dls.c == 32
    x, mask = dls.one_batch()
    assert x.shape == (4, 3, 96, 128) and x.dtype == torch.float32
    assert mask.shape == (4, 96, 128) and mask.dtype == torch.int64
    assert int(mask.min()) >= 0 and int(mask.max()) < 32
    show(dls, "camvid_tiny", tmp_path)


def test_segmentation_dataloaders_from_label_func_as_in_fastai() -> None:
    from mentor.vision.data import SegmentationDataLoaders

    path = data_path("camvid_tiny")
    codes = (path / "codes.txt").read_text().split()
    fnames = get_image_files(path / "images")
    dls = SegmentationDataLoaders.from_label_func(
        path, fnames, lambda o: path / "labels" / f"{o.stem}_P{o.suffix}", codes=codes,
        valid_pct=0.2, seed=42, item_tfms=Resize((96, 128)), bs=4, num_workers=0, device="cpu",
    )  # fmt: skip
    assert (len(dls.train_ds), len(dls.valid_ds)) == (80, 20) and dls.vocab == codes
    x, mask = dls.one_batch()
    assert x.shape == (4, 3, 96, 128) and mask.shape == (4, 96, 128)
    assert mask.dtype == torch.int64 and int(mask.min()) >= 0 and int(mask.max()) < 32
    with pytest.raises(ValueError, match="no image files given"):
        SegmentationDataLoaders.from_label_func(path, [], lambda o: o, codes=codes)
