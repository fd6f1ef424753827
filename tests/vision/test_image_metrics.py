"""PSNR and SSIM against scikit-image on random and real images, normalized inputs, uneven
batches, the distributed totals and the refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from mentor.data.external import untar_data
from mentor.data.items import get_image_files
from mentor.train.metrics import as_metric
from mentor.vision.image_metrics import MAX_PSNR_DB, PSNR, SSIM

IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _skimage_ssim(targ: np.ndarray, pred: np.ndarray) -> float:
    return float(structural_similarity(targ, pred, channel_axis=0, data_range=1.0,
                                       gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))  # fmt: skip


def _skimage_means(pred: torch.Tensor, targ: torch.Tensor) -> tuple[float, float]:
    """Mean PSNR and SSIM of scikit-image over the images of [B, C, H, W] float64 batches."""
    pred_np, targ_np = pred.clamp(0, 1).numpy(), targ.numpy()
    psnrs = [peak_signal_noise_ratio(t, p, data_range=1.0) for t, p in zip(targ_np, pred_np)]
    ssims = [_skimage_ssim(t, p) for t, p in zip(targ_np, pred_np)]
    return float(np.mean(psnrs)), float(np.mean(ssims))


def _scores(pred_batches: list[torch.Tensor], targ_batches: list[torch.Tensor],
            stats: tuple | None = None) -> tuple[float, float]:  # fmt: skip
    """Epoch PSNR and SSIM of our metrics over the batches."""
    psnr, ssim = PSNR(stats), SSIM(stats)
    for metric in (psnr, ssim):
        metric.reset()
        for pred, targ in zip(pred_batches, targ_batches):
            metric.accumulate(pred, targ)
    return psnr.value, ssim.value


@pytest.fixture(scope="module")
def real_pairs() -> tuple[torch.Tensor, torch.Tensor]:
    """Seven 64 x 64 crops of imagenette_small validation images (targets) and degraded copies
    (blur, noise, or both), as float64 [B, 3, 64, 64] in [0, 1]; the noisy ones leave [0, 1]."""
    try:
        root = untar_data("imagenette_small")
    except FileNotFoundError as err:
        pytest.skip(f"imagenette_small is not available: {err}")
    files = get_image_files(root / "val")[::71][:7]
    rng = np.random.default_rng(0)
    targs, preds = [], []
    for i, file in enumerate(files):
        image = Image.open(file).convert("RGB").crop((40, 50, 104, 114))
        blurred = image.filter(ImageFilter.GaussianBlur(1 + i % 2)) if i % 3 != 1 else image
        targ = np.asarray(image, dtype=np.float64).transpose(2, 0, 1) / 255
        pred = np.asarray(blurred, dtype=np.float64).transpose(2, 0, 1) / 255
        if i % 3 != 0:
            pred = pred + rng.normal(0, 0.03 * (1 + i % 3), pred.shape)
        targs.append(targ)
        preds.append(pred)
    return torch.tensor(np.stack(preds)), torch.tensor(np.stack(targs))


def test_random_images_match_scikit_image_in_uneven_batches() -> None:
    gen = torch.Generator().manual_seed(0)
    targ = torch.rand(7, 3, 23, 31, generator=gen, dtype=torch.float64)
    pred = targ + 0.15 * torch.randn(7, 3, 23, 31, generator=gen, dtype=torch.float64)
    psnr, ssim = _scores([pred[:4], pred[4:6], pred[6:]], [targ[:4], targ[4:6], targ[6:]])
    ref_psnr, ref_ssim = _skimage_means(pred, targ)
    assert psnr == pytest.approx(ref_psnr, abs=1e-6)
    assert ssim == pytest.approx(ref_ssim, abs=1e-6)
    assert 0.1 < ssim < 0.9  # a value that tells a bad window from a good one


def test_real_images_match_scikit_image(real_pairs: tuple[torch.Tensor, torch.Tensor]) -> None:
    pred, targ = real_pairs
    psnr, ssim = _scores([pred[:3], pred[3:]], [targ[:3], targ[3:]])
    ref_psnr, ref_ssim = _skimage_means(pred, targ)
    assert psnr == pytest.approx(ref_psnr, abs=1e-6)
    assert ssim == pytest.approx(ref_ssim, abs=1e-6)
    # float32 batches (what a model gives) agree with scikit-image's float64 within 1e-4
    psnr32, ssim32 = _scores([pred.float()], [targ.float()])
    assert psnr32 == pytest.approx(ref_psnr, abs=1e-4)
    assert ssim32 == pytest.approx(ref_ssim, abs=1e-4)
    assert 15 < psnr < 40 and 0.2 < ssim < 0.95


def test_normalized_inputs_give_the_values_of_the_pixels(
    real_pairs: tuple[torch.Tensor, torch.Tensor],
) -> None:
    pred, targ = (t.float() for t in real_pairs)
    mean = torch.tensor(IMAGENET_STATS[0]).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STATS[1]).view(1, 3, 1, 1)
    raw = _scores([pred], [targ])
    normalized = _scores([(pred - mean) / std], [(targ - mean) / std], IMAGENET_STATS)
    assert normalized == pytest.approx(raw, abs=1e-5)
    # stats set later by use_stats, as unet_learner does, from a Normalize's [1, C, 1, 1] tensors
    later = SSIM()
    later.use_stats(mean, std)
    assert later.stats is not None
    assert later.stats[0] == pytest.approx(IMAGENET_STATS[0])
    assert later.stats[1] == pytest.approx(IMAGENET_STATS[1])
    assert later((pred - mean) / std, (targ - mean) / std) == pytest.approx(raw[1], abs=1e-5)
    # without the stats, normalized tensors are not pixels: the values differ
    assert PSNR()((pred - mean) / std, (targ - mean) / std) != pytest.approx(raw[0], abs=0.5)


def test_psnr_by_hand_and_its_cap() -> None:
    targ = torch.zeros(2, 1, 4, 4)
    pred = targ.clone()
    pred[0, 0, 0, :2] = 0.5  # MSE 2 * 0.25 / 16 = 1 / 32: 10 log10(32) = 15.0515 dB
    assert PSNR()(pred[:1], targ[:1]) == pytest.approx(10 * math.log10(32), abs=1e-9)
    # the second image equals its target: capped at 100 dB instead of +inf
    assert PSNR()(pred[1:], targ[1:]) == MAX_PSNR_DB
    assert PSNR()(pred, targ) == pytest.approx((10 * math.log10(32) + 100) / 2)
    # the prediction is clamped to [0, 1] before comparing; the target is not
    assert PSNR()(pred[1:] - 5.0, targ[1:]) == MAX_PSNR_DB


def test_totals_round_trip_as_an_all_reduce_would() -> None:
    gen = torch.Generator().manual_seed(1)
    pred, targ = torch.rand(5, 3, 16, 16, generator=gen), torch.rand(5, 3, 16, 16, generator=gen)
    for cls in (PSNR, SSIM):
        whole, first, second = cls(), cls(), cls()
        whole.accumulate(pred, targ)
        first.accumulate(pred[:2], targ[:2])
        second.accumulate(pred[2:], targ[2:])
        assert cls().totals() == []
        summed = [a + b for a, b in zip(first.totals(), second.totals())]
        fresh = as_metric(cls())
        fresh.load_totals(summed)
        assert fresh.value == pytest.approx(whole.value, abs=1e-9)
        assert fresh.totals()[1].item() == 5


def test_bad_shapes_and_stats_are_refused_with_the_values() -> None:
    with pytest.raises(ValueError, match=r"\[2, 3, 16, 16\] and targets \[2, 3, 16, 15\]"):
        PSNR()(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 15))
    with pytest.raises(ValueError, match=r"\[3, 16, 16\]"):
        SSIM()(torch.rand(3, 16, 16), torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match="smaller than the 11 x 11"):
        SSIM()(torch.rand(1, 3, 10, 40), torch.rand(1, 3, 10, 40))
    with pytest.raises(ValueError, match="1 channels but the stats have 3"):
        PSNR(IMAGENET_STATS)(torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16))
    with pytest.raises(ValueError, match=r"stds \(0.2, 0.0\)"):
        PSNR(((0.5, 0.5), (0.2, 0.0)))
    with pytest.raises(ValueError, match="2 means and 3 stds"):
        SSIM(((0.5, 0.5), (0.2, 0.2, 0.2)))
    with pytest.raises(TypeError, match="one value per channel"):
        SSIM((0.5, 0.2))  # type: ignore[arg-type]


def test_repr_names_the_stats() -> None:
    assert repr(PSNR()) == "PSNR(stats=None, name='psnr')"
    assert "0.229" in repr(SSIM(IMAGENET_STATS, name="s"))
    # as_metric copies a metric for each learner: the copy keeps the stats
    assert as_metric(SSIM(IMAGENET_STATS)).stats == SSIM(IMAGENET_STATS).stats
