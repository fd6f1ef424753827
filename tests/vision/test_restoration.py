"""Image to image (lesson 7): (ImageBlock, ImageBlock) data whose pairs are one picture at
two scales, a U-Net restoring images with FeatureLoss and PSNR in the data's normalization,
and `predict` / export giving images at the raw input's size."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from mentor.cli import main
from mentor.core.seed import set_seed
from mentor.data import DataBlock
from mentor.data.external import untar_data
from mentor.data.items import get_image_files
from mentor.data.splitters import RandomSplitter
from mentor.inference.predictor import Predictor
from mentor.train import Learner
from mentor.vision import ImageBlock, Resize
from mentor.vision.feature_loss import FeatureLoss, LossMetrics
from mentor.vision.gan_learner import GANLearner
from mentor.vision.image_metrics import PSNR
from mentor.vision.learner import RestorationLearner, unet_learner
from mentor.vision.models.critic import gan_critic
from mentor.vision.resize import RandomResizedCrop
from tests.inference.roundtrip import fresh_process_predict

N_IMAGES, SIZE = 12, 64


def _pair(seed: int) -> tuple[Image.Image, Image.Image]:
    """A 96 x 64 picture of smooth colour gradients and the same at half its size."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:64, 0:96].astype(np.float32)
    channels = [np.sin(xs / rng.uniform(5, 15) + ys / rng.uniform(5, 15) + c) for c in range(3)]
    big = Image.fromarray(((np.stack(channels, -1) + 1) * 127.5).astype(np.uint8))
    return big.resize((48, 32), Image.Resampling.BILINEAR), big


@pytest.mark.parametrize("tfm", [Resize(32), Resize(32, method="pad"), RandomResizedCrop(32)])
def test_a_pair_at_two_scales_is_cropped_alike(tfm) -> None:
    small, big = _pair(0)
    for train in (True, False):
        out_small, out_big = tfm([small, big], ("image", "image"), train)
        assert out_small.size == out_big.size == (32, 32)
        diff = np.abs(np.asarray(out_small, np.float32) - np.asarray(out_big, np.float32))
        assert diff.mean() < 4  # the same part of the picture (up to resampling)


def test_a_pair_of_other_shapes_is_refused_naming_the_sizes() -> None:
    small, big = _pair(0)
    with pytest.raises(ValueError, match=r"\(48, 48\), \(96, 64\)\].*one picture at two scales"):
        Resize(32)([small.resize((48, 48)), big], ("image", "image"), False)


@pytest.fixture(scope="module")
def restoration(tmp_path_factory: pytest.TempPathFactory, shared_data):
    """A pretrained U-Net fitted one epoch to undo halving and JPEG at quality 20 on 12
    imagenette images (the crappified inputs at half the size of their targets)."""
    shared_data("imagenette_small.tar")
    folder = tmp_path_factory.mktemp("crappy")
    originals = sorted(get_image_files(untar_data("imagenette_small") / "val"))[::40][:N_IMAGES]
    for i, file in enumerate(originals):
        image = Image.open(file).convert("RGB")
        buffer = io.BytesIO()
        image.resize((image.width // 2, image.height // 2)).save(buffer, "JPEG", quality=20)
        Image.open(buffer).save(folder / f"{i}.png")
    set_seed(0)
    dblock = DataBlock(
        blocks=(ImageBlock, ImageBlock), get_items=get_image_files,
        get_y=lambda p: originals[int(p.stem)], splitter=RandomSplitter(0.25, seed=0),
        item_tfms=Resize(SIZE),
    )  # fmt: skip
    dls = dblock.dataloaders(folder, bs=4, num_workers=0)
    loss = FeatureLoss("efficientnet_lite0")
    learn = unet_learner(
        dls, "efficientnet_lite0", loss_func=loss, metrics=[PSNR(), *LossMetrics(loss)]
    )
    learn.progress.show = False
    learn.fit_one_cycle(1, 1e-3)
    return learn, loss, folder


@pytest.mark.slow
def test_unet_learner_for_images_outputs_images_in_the_datas_normalization(restoration) -> None:
    learn, loss, _ = restoration
    assert isinstance(learn, RestorationLearner)
    kwargs = learn.model_spec["kwargs"]
    assert kwargs["n_out"] == 3 and kwargs["residual"] and kwargs["y_range"] is None
    assert loss.stats == ((0.5,) * 3, (0.5,) * 3) and learn.metrics[0].stats == loss.stats
    row = learn.recorder.values[-1]
    assert 5 < row["psnr"] < 40  # a PSNR in dB of 0-255 pixels, not of normalized values
    assert row["pixel"] > 0 and row["gram_1"] > 0


def test_an_untrained_residual_unet_returns_its_input_and_others_stay_in_range() -> None:
    from mentor.vision.models.unet import unet_model

    x = torch.randn(2, 3, 32, 32)
    residual = unet_model("resnet18", n_out=3, img_size=(32, 32), residual=True).eval()
    assert torch.equal(residual(x), x)
    ranged = unet_model("resnet18", n_out=3, img_size=(32, 32), y_range=(-1.0, 1.0)).eval()
    out = ranged(x)
    assert out.min() >= -1 and out.max() <= 1 and not torch.allclose(out, x)
    with pytest.raises(ValueError, match=r"n_out \(2\) must equal the input's channels \(3\)"):
        unet_model("resnet18", n_out=2, img_size=(32, 32), residual=True)


@pytest.mark.slow
def test_predict_and_the_exported_model_give_the_image_at_the_raw_size(
    restoration, tmp_path: Path
) -> None:
    learn, _, folder = restoration
    item = sorted(folder.iterdir())[0]
    raw = Image.open(item)
    image, pixels, out = learn.predict(item)
    assert image.shape == (raw.height, raw.width, 3) and image.dtype == np.uint8
    assert pixels.shape == (3, SIZE, SIZE) and pixels.dtype == torch.uint8
    expected = ((out * 0.5 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
    assert torch.equal(pixels, expected)  # the output with the normalization undone
    exported = learn.export(tmp_path / "restore.mentor")
    [(fresh_image, fresh_out)] = fresh_process_predict(exported, [item], tmp_path)
    assert torch.allclose(fresh_out, out, atol=1e-5)
    assert np.array_equal(fresh_image, image)
    images, outs = Predictor.load(tmp_path / "restore.mentor").predict_batch([item, item])
    assert torch.allclose(outs[0], out, atol=1e-5)  # a batch of two: rounding may differ by 1
    assert np.abs(images[1].astype(int) - image.astype(int)).max() <= 1
    written = tmp_path / "restored"
    args = ["predict", str(tmp_path / "restore.mentor"), str(item), "--out-dir", str(written)]
    assert main(args) == 0
    assert np.array_equal(np.asarray(Image.open(written / f"{item.stem}.png")), image)


@pytest.mark.slow
def test_a_gan_of_pretrained_models_exports_its_generator(restoration, tmp_path: Path) -> None:
    learn, _, folder = restoration
    set_seed(0)
    gen_learn = unet_learner(learn.dls, "efficientnet_lite0", loss_func=nn.L1Loss(), path=tmp_path)
    crit_learn = Learner(learn.dls, gan_critic(nf=8, n_blocks=1), loss_func=nn.BCEWithLogitsLoss())
    gan = GANLearner.from_learners(gen_learn, crit_learn, weights_gen=(1.0, 5.0))
    gan.progress.show = False
    item = sorted(folder.iterdir())[0]
    untrained = gan.predict(item)[2]
    gan.fit(1, 1e-3, wd=0)
    image, _, out = gan.predict(item)
    assert not torch.allclose(out, untrained, atol=1e-4)  # the GAN trained the generator
    file = gan.export()
    assert file == tmp_path / "export.mentor"
    [(fresh_image, fresh_out)] = fresh_process_predict(file, [item], tmp_path)
    assert torch.allclose(fresh_out, out, atol=1e-5)
    assert np.array_equal(fresh_image, image)
    assert gan.show_results(max_n=2) is not None
