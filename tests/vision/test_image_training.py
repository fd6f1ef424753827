"""End to end: training on images from the data block loaders, and bad files in the data."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from bench.common import small_cnn
from mentor.core.seed import set_seed
from mentor.data.external import untar_data
from mentor.train import Learner, accuracy
from mentor.vision.data import ImageDataLoaders
from mentor.vision.image import verify_images


def cnn(*widths: int) -> nn.Module:
    """Stride-2 convolutions with batch norm, then average pooling and a linear layer."""
    layers: list[nn.Module] = []
    c_in = 1
    for width in widths:
        layers += [nn.Conv2d(c_in, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
        c_in = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 2))


@pytest.mark.slow
def test_small_cnn_on_mnist_sample_reaches_98_5_percent() -> None:
    try:
        path = untar_data("mnist_sample")
    except FileNotFoundError as err:
        pytest.skip(f"mnist_sample is not available: {err}")
    set_seed(0)
    dls = ImageDataLoaders.from_folder(path, img_mode="L", bs=64, device="cpu")
    learn = Learner(dls, cnn(16, 32, 64), metrics=[accuracy])
    learn.progress.show = False
    learn.fit_one_cycle(1, 1e-2)
    acc = learn.recorder.values[-1]["accuracy"]
    assert acc >= 0.985, f"validation accuracy {acc:.4f} < 0.985"


def bad_folder(tmp_path: Path) -> tuple[Path, list[Path]]:
    """mnist_tiny's train/valid folders plus a truncated JPEG and a text file named .jpg."""
    source = untar_data("mnist_tiny")
    root = tmp_path / "mnist_bad"
    for split in ("train", "valid"):
        shutil.copytree(source / split, root / split)
    good = next((source / "train" / "3").glob("*.png"))
    from PIL import Image

    Image.open(good).convert("RGB").save(tmp_path / "full.jpg", quality=95)
    truncated = root / "train" / "3" / "truncated.jpg"
    data = (tmp_path / "full.jpg").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    text = root / "train" / "7" / "notes.jpg"
    text.write_text("this is not an image\n")
    return root, [truncated, text]


def test_verify_images_finds_both_bad_files(tmp_path: Path) -> None:
    root, bad = bad_folder(tmp_path)
    from mentor.data.items import get_image_files

    assert sorted(verify_images(get_image_files(root))) == sorted(bad)


def test_training_stops_naming_the_bad_file(tmp_path: Path) -> None:
    root, bad = bad_folder(tmp_path)
    dls = ImageDataLoaders.from_folder(root, img_mode="L", bs=64, num_workers=0, device="cpu")
    learn = Learner(dls, small_cnn(), metrics=[accuracy])
    learn.progress.show = False
    with pytest.raises(Exception) as info:
        learn.fit(1)
    message = str(info.value)
    assert any(path.name in message for path in bad), message
    assert "verify_images" in message


def test_skip_bad_skips_both_and_lists_them_once(tmp_path: Path) -> None:
    root, bad = bad_folder(tmp_path)
    set_seed(0)
    dls = ImageDataLoaders.from_folder(
        root, img_mode="L", bs=64, num_workers=2, device="cpu", skip_bad=True
    )
    learn = Learner(dls, small_cnn(), metrics=[accuracy])
    learn.progress.show = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        learn.fit(2, 1e-2)
    skipped = [w for w in caught if "skipped" in str(w.message)]
    assert len(skipped) == 1, [str(w.message) for w in caught]
    assert all(path.name in str(skipped[0].message) for path in bad)
    # nothing else is lost: every good training image was seen (two epochs, drop_last aside)
    n_good = len(dls.train_ds) - 2
    seen = sum(int(n) for n in learn.recorder.iters[:1]) * 64
    assert n_good - 64 < seen <= n_good
    assert learn.recorder.values[-1]["accuracy"] > 0.9
    assert torch.isfinite(torch.tensor(learn.recorder.losses)).all()
