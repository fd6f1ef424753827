"""Image-restoration metrics: `PSNR` and `SSIM` of predicted images against their targets.

Both take batches `[B, C, H, W]` in the data's normalized space (the `Normalize` batch
transform ran on the target images too), undo the normalization to get pixels in [0, 1],
clamp the prediction to [0, 1], and score each image on its own; the epoch value is the mean
over the images. Their state is a device sum and an image count (`SumMetric`): no host sync
per batch, and `totals()` / `load_totals()` for an all-reduce across processes.

Example:
    >>> learn = unet_learner(dls, "efficientnet_lite0", n_out=3, metrics=[PSNR(), SSIM()])
    >>> PSNR(stats=imagenet_stats)(pred, targ)  # one batch, as a float
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from mentor.train.metrics import SumMetric, _acc_dtype

Stats = tuple[Sequence[float] | Tensor, Sequence[float] | Tensor]
"""Per-channel (mean, std) of a `Normalize` transform: sequences of floats, or tensors."""

MAX_PSNR_DB = 100.0
"""The cap on one image's PSNR: an image equal to its target would score +inf."""

SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # int(3.5 * sigma + 0.5): the 11-tap window of Wang et al. and scikit-image
SSIM_K1, SSIM_K2 = 0.01, 0.03


def _as_floats(values: Sequence[float] | Tensor, what: str) -> tuple[float, ...]:
    """Per-channel statistics as a tuple of floats (a [1, C, 1, 1] tensor is flattened)."""
    if isinstance(values, Tensor):
        return tuple(float(v) for v in values.detach().flatten().tolist())
    if isinstance(values, (int, float)):
        raise TypeError(
            f"the {what} of the stats is the number {values!r}; give one value per channel, "
            "such as (0.485, 0.456, 0.406)"
        )
    return tuple(float(v) for v in values)


class _ImageMetric(SumMetric):
    """A per-image metric on denormalized pixels: the shared checks and the stats.

    Args:
        stats: per-channel (mean, std) of the data's normalization, or None when the tensors
            already hold pixels in [0, 1].
        name: column name in the epoch table.
    """

    def __init__(self, stats: Stats | None, name: str) -> None:
        super().__init__(name)
        self.stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None
        self._stat_tensors: dict[tuple[torch.device, torch.dtype], tuple[Tensor, Tensor]] = {}
        if stats is not None:
            self.use_stats(*stats)

    def use_stats(self, mean: Sequence[float] | Tensor, std: Sequence[float] | Tensor) -> None:
        """Undo this normalization (per-channel `mean`, `std`) before comparing images.

        `unet_learner` calls it with the statistics of the data's `Normalize` transform for
        the metrics created without stats.

        Args:
            mean: one mean per channel, such as `imagenet_stats[0]`, or a tensor of them.
            std: one standard deviation per channel (all > 0).
        """
        means, stds = _as_floats(mean, "mean"), _as_floats(std, "std")
        if len(means) != len(stds) or not means:
            raise ValueError(
                f"{self.name}: the stats have {len(means)} means and {len(stds)} stds; "
                "give one of each per channel"
            )
        if not all(math.isfinite(s) and s > 0 for s in stds):
            raise ValueError(
                f"{self.name}: the stds {stds} must all be finite and > 0 (they divided the "
                "pixels); pass the statistics of the data's Normalize transform"
            )
        self.stats = (means, stds)
        self._stat_tensors = {}

    def _pixels(self, pred: Tensor, targ: Tensor) -> tuple[Tensor, Tensor]:
        """Both batches checked, denormalized (float64 where the device has it) and the
        prediction clamped to [0, 1]."""
        if pred.ndim != 4 or pred.shape != targ.shape:
            raise ValueError(
                f"{self.name}: predictions have shape {list(pred.shape)} and targets "
                f"{list(targ.shape)}; both must be image batches [B, C, H, W] of the same "
                "shape (a model for image restoration outputs the target's channels and size)"
            )
        dtype = _acc_dtype(pred.device)
        pred, targ = pred.detach().to(dtype), targ.detach().to(dtype)
        if self.stats is not None:
            mean, std = self._stats_on(pred)
            pred, targ = pred * std + mean, targ * std + mean
        return pred.clamp(0.0, 1.0), targ

    def _stats_on(self, like: Tensor) -> tuple[Tensor, Tensor]:
        """The stats as [1, C, 1, 1] tensors like `like` (made once per device and dtype)."""
        assert self.stats is not None
        means, stds = self.stats
        if len(means) != like.shape[1]:
            raise ValueError(
                f"{self.name}: the images have {like.shape[1]} channels but the stats have "
                f"{len(means)} (mean {means}); pass the statistics of the data's Normalize"
            )
        key = (like.device, like.dtype)
        if key not in self._stat_tensors:
            self._stat_tensors[key] = (
                torch.tensor(means, dtype=like.dtype, device=like.device).view(1, -1, 1, 1),
                torch.tensor(stds, dtype=like.dtype, device=like.device).view(1, -1, 1, 1),
            )
        return self._stat_tensors[key]

    def compute(self, sums: Tensor, count: int) -> float:
        """The mean of the per-image values."""
        return float(sums[0]) / count

    def __repr__(self) -> str:
        return f"{type(self).__name__}(stats={self.stats!r}, name={self.name!r})"


class PSNR(_ImageMetric):
    """Peak signal-to-noise ratio in dB (peak 1.0), per image, averaged over the images.

    Each image's value is 10 log10(1 / MSE), its MSE taken over its pixels and channels in
    [0, 1]; it is capped at 100 dB (`MAX_PSNR_DB`), the value an image equal to its target
    gets instead of +inf.

    Args:
        stats: per-channel (mean, std) of the data's normalization (default None: the
            tensors are pixels in [0, 1]); `use_stats` sets them later.
        name: column name; default 'psnr'.

    Example:
        >>> PSNR(stats=imagenet_stats)(pred, targ)
        27.3
    """

    def __init__(self, stats: Stats | None = None, name: str = "psnr") -> None:
        super().__init__(stats, name)

    def batch_sums(self, pred: Tensor, targ: Tensor) -> tuple[Tensor, int]:
        """The sum of the batch's per-image PSNRs and its number of images."""
        pred, targ = self._pixels(pred, targ)
        mse = (pred - targ).pow(2).flatten(1).mean(dim=1)
        floor = 10.0 ** (-MAX_PSNR_DB / 10.0)  # an MSE this small or smaller scores the cap
        psnr = -10.0 * torch.log10(mse.clamp_min(floor))
        return psnr.sum().reshape(1), pred.shape[0]


def _gaussian_taps(dtype: torch.dtype, device: torch.device) -> Tensor:
    """The 11 normalized taps of a Gaussian of sigma 1.5 (as scipy's gaussian_filter)."""
    offsets = torch.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=dtype, device=device)
    taps = torch.exp(-0.5 * (offsets / SSIM_SIGMA) ** 2)
    return taps / taps.sum()


class SSIM(_ImageMetric):
    """Mean structural similarity per image, averaged over the images (Wang et al. 2004).

    Gaussian window of sigma 1.5 (11 x 11), K1 = 0.01, K2 = 0.03, data range 1, population
    (co)variances; per channel, averaged over the positions whose window lies inside the image,
    then over the channels. Equals `skimage.metrics.structural_similarity(targ, pred,
    channel_axis=0, data_range=1.0, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)` on each image. Images need both sides >= 11 px.

    Args:
        stats: per-channel (mean, std) of the data's normalization (default None: the
            tensors are pixels in [0, 1]); `use_stats` sets them later.
        name: column name; default 'ssim'.

    Example:
        >>> SSIM(stats=imagenet_stats)(pred, targ)
        0.81
    """

    def __init__(self, stats: Stats | None = None, name: str = "ssim") -> None:
        super().__init__(stats, name)

    def batch_sums(self, pred: Tensor, targ: Tensor) -> tuple[Tensor, int]:
        """The sum of the batch's per-image SSIMs and its number of images."""
        pred, targ = self._pixels(pred, targ)
        n_images, n_channels, height, width = pred.shape
        window = 2 * SSIM_RADIUS + 1
        if height < window or width < window:
            raise ValueError(
                f"{self.name}: images of {height} x {width} px are smaller than the "
                f"{window} x {window} SSIM window; score images of at least {window} px a side"
            )
        ssim_map = _ssim_map(pred.flatten(0, 1).unsqueeze(1), targ.flatten(0, 1).unsqueeze(1))
        per_image = ssim_map.reshape(n_images, -1).mean(dim=1)
        return per_image.sum().reshape(1), n_images


def _ssim_map(pred: Tensor, targ: Tensor) -> Tensor:
    """SSIM at every position whose window lies inside the image, for [N, 1, H, W] planes."""
    taps = _gaussian_taps(pred.dtype, pred.device)
    planes = torch.cat([pred, targ, pred * pred, targ * targ, pred * targ], dim=1)
    n, five, height, width = planes.shape
    # a separable Gaussian without padding: rows then columns, each plane on its own
    flat = planes.reshape(n * five, 1, height, width)
    flat = F.conv2d(flat, taps.view(1, 1, 1, -1))
    flat = F.conv2d(flat, taps.view(1, 1, -1, 1))
    mu_p, mu_t, mean_pp, mean_tt, mean_pt = flat.reshape(n, five, *flat.shape[2:]).unbind(1)
    var_p, var_t = mean_pp - mu_p * mu_p, mean_tt - mu_t * mu_t
    cov = mean_pt - mu_p * mu_t
    c1, c2 = SSIM_K1**2, SSIM_K2**2  # (K * data range)^2 with a data range of 1
    numerator = (2 * mu_p * mu_t + c1) * (2 * cov + c2)
    denominator = (mu_p * mu_p + mu_t * mu_t + c1) * (var_p + var_t + c2)
    return numerator / denominator
