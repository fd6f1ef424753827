"""`FeatureLoss`: the perceptual loss of lesson 7, for image-to-image models.

A restored image is compared with its target three ways: pixel by pixel (L1), by the
activations a frozen pretrained network computes from each (L1 per chosen layer: do they
show the same edges, textures and parts?), and by the Gram matrices of those activations
(which features occur together: the style). The course used VGG-16; its weights are not
available offline here, so the default network is EfficientNet-Lite0 with its ImageNet
weights, and any registered architecture with metadata can take its place.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mentor.core.decoding import Decoding
from mentor.core.registry import MODELS
from mentor.data.block_loaders import BlockDataLoaders
from mentor.data.loaders import DataLoaders
from mentor.data.transforms import Normalize
from mentor.train.metrics import Metric, SumMetric
from mentor.vision.models.head import create_body, model_name
from mentor.vision.models.unet import encoder_sizes

EPS = 1e-6


def gram_matrix(x: Tensor) -> Tensor:
    """The channels' correlations `[B, C, C]` of feature maps `[B, C, H, W]`, divided by
    `C * H * W` so that layers of any size compare."""
    b, c, h, w = x.shape
    flat = x.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


class FeatureLoss(nn.Module):
    """Pixel L1 plus L1 between activations of layers of a frozen pretrained network, plus
    L1 between their Gram matrices (style), each weighted per layer.

    Each layer's feature (and Gram) term is relative: the L1 difference divided by the mean
    absolute value of the target's activations (Gram matrix), so that layers and networks
    of any scale weigh as their weights say. The network sees images in the normalization
    its weights expect: the data's (the `stats` the images were normalized with;
    `unet_learner` sets them from the data's `Normalize`) is undone first. Only the layers
    up to the deepest chosen one run. The last batch's parts are kept in `parts` (on the
    device) and `LossMetrics(loss)` shows them in the epoch table.

    Default layers: the last activation at each of the resolutions 1/4, 1/8 and 1/16 of
    the input (for EfficientNet-Lite0: the ends of its 24-, 40- and 112-channel stages:
    edges and small textures, parts of objects, whole parts). Coarser layers see little
    of a 128 px image; finer ones repeat the pixel term. Default weights: the course's
    20 : 70 : 10 between the layers, scaled so that for a photo shrunk to half its size
    and saved as a poor JPEG the feature terms and the Gram terms each weigh about as much
    as the pixel term (measured on EfficientNet-Lite0: relative errors of 0.6-0.8 per
    layer against a pixel L1 of 0.09 in [-1, 1] units).

    Args:
        arch: a registered architecture ('efficientnet_lite0').
        layers: indices of the children of the network's body (as `unet_learner` cuts it)
            whose outputs are compared (default: as above).
        layer_wgts: one weight per layer for the feature terms ((0.04, 0.14, 0.02)).
        style_wgts: one per layer for the Gram terms (default: `layer_wgts`).
        pixel_wgt: the weight of the pixel L1 term (1).
        stats: `(mean, std)` per channel the images were normalized with (None: set later
            with `use_stats`; until then the images are taken as the network expects them).
        pretrained, weights: the network's ImageNet weights (True) or a weights file.

    Example:
        >>> loss = FeatureLoss("efficientnet_lite0")
        >>> learn = unet_learner(dls, "efficientnet_lite0", loss_func=loss,
        ...                      metrics=[PSNR(), *LossMetrics(loss)])
    """

    def __init__(
        self,
        arch: str = "efficientnet_lite0",
        layers: Sequence[int] | None = None,
        layer_wgts: Sequence[float] = (0.04, 0.14, 0.02),
        style_wgts: Sequence[float] | None = None,
        pixel_wgt: float = 1.0,
        stats: tuple[Sequence[float], Sequence[float]] | None = None,
        pretrained: bool = True,
        weights: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.arch = model_name(arch)
        meta = MODELS.meta.get(self.arch)
        if meta is None:
            raise KeyError(
                f"FeatureLoss needs an architecture with metadata, got {arch!r}; "
                f"known: {', '.join(sorted(MODELS.meta))}"
            )
        model = MODELS.create(self.arch, n_out=1000, pretrained=pretrained, weights=weights)
        body = create_body(model, meta)
        self.layers = list(layers) if layers is not None else default_layers(body)
        self.layer_wgts = [float(w) for w in layer_wgts]
        if style_wgts is None:
            style_wgts = self.layer_wgts
        self.style_wgts = [float(w) for w in style_wgts]
        self.pixel_wgt = float(pixel_wgt)
        _check_layers(self.layers, self.layer_wgts, self.style_wgts, len(body))
        self.net = nn.Sequential(*list(body.children())[: max(self.layers) + 1]).eval()
        self.net.requires_grad_(False)
        self.net_stats = (tuple(meta.mean), tuple(meta.std))
        self.stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None
        if stats is not None:
            self.use_stats(*stats)
        self.parts: dict[str, Tensor] = {}
        self.parts_of: Tensor | None = None  # the prediction `parts` were computed from

    @property
    def part_names(self) -> list[str]:
        """The names of the parts, in the order `parts` holds them."""
        names = ["pixel"] + [f"feat_{i}" for i in range(len(self.layers))]
        return names + [f"gram_{i}" for i in range(len(self.layers))]

    @property
    def decoding(self) -> Decoding:
        """The identity: the outputs are the images (what export writes)."""
        return Decoding()

    def use_stats(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """The per-channel `mean` and `std` the images were normalized with."""
        if len(mean) != len(std) or not all(s > 0 for s in std):
            raise ValueError(f"stats need one mean and one positive std per channel: {mean}, {std}")
        self.stats = (tuple(float(m) for m in mean), tuple(float(s) for s in std))

    def train(self, mode: bool = True) -> FeatureLoss:
        """The network stays in eval mode (its batch-norm statistics are the pretrained)."""
        super().train(mode)
        self.net.eval()
        return self

    def forward(self, pred: Tensor, targ: Tensor) -> Tensor:
        """The weighted sum of the parts for images `pred` and `targ` `[B, C, H, W]`."""
        if pred.shape != targ.shape or pred.ndim != 4:
            raise ValueError(
                f"FeatureLoss compares images [B, C, H, W] of one shape; got predictions "
                f"{list(pred.shape)} and targets {list(targ.shape)}"
            )
        targ = targ.to(pred.dtype)
        with torch.no_grad():
            targ_feats = self.features(targ)
        pred_feats = self.features(pred)
        grams = [(gram_matrix(p), gram_matrix(t)) for p, t in zip(pred_feats, targ_feats)]
        parts = [F.l1_loss(pred, targ)]
        parts += [relative_l1(p, t) for p, t in zip(pred_feats, targ_feats)]
        parts += [relative_l1(p, t) for p, t in grams]
        weights = [self.pixel_wgt, *self.layer_wgts, *self.style_wgts]
        self.parts = {
            name: part.detach() * w for name, part, w in zip(self.part_names, parts, weights)
        }
        self.parts_of = pred
        return sum(
            (w * part for w, part in zip(weights, parts)), torch.zeros((), device=pred.device)
        )

    def features(self, images: Tensor) -> list[Tensor]:
        """The chosen layers' activations for `images` in the data's normalization."""
        self.net.to(images.device)
        x = self._to_net_space(images)
        feats: list[Tensor] = []
        for i, layer in enumerate(self.net):
            x = layer(x)
            if i in self.layers:
                feats.append(x.float())
        return [feats[sorted(self.layers).index(i)] for i in self.layers]

    def _to_net_space(self, images: Tensor) -> Tensor:
        if self.stats is None:
            return images
        mean, std = (torch.tensor(s, device=images.device, dtype=images.dtype) for s in self.stats)
        net_mean, net_std = (
            torch.tensor(s, device=images.device, dtype=images.dtype) for s in self.net_stats
        )
        if images.shape[1] != len(mean):
            raise ValueError(
                f"FeatureLoss got images of {images.shape[1]} channels, but the data's stats "
                f"have {len(mean)}"
            )
        scale = (std / net_std).reshape(1, -1, 1, 1)
        shift = ((mean - net_mean) / net_std).reshape(1, -1, 1, 1)
        return images * scale + shift


def relative_l1(pred: Tensor, targ: Tensor) -> Tensor:
    """The mean absolute difference divided by the mean absolute target value."""
    return F.l1_loss(pred, targ) / (targ.abs().mean() + EPS)


def default_layers(body: nn.Sequential, img_size: tuple[int, int] = (128, 128)) -> list[int]:
    """The last child of `body` at each of the resolutions 1/4, 1/8 and 1/16 that it has."""
    sizes = encoder_sizes(body, 3, img_size)
    ends = {img_size[0] // size[1]: i for i, size in enumerate(sizes)}  # the last at each
    found = [ends[f] for f in (4, 8, 16) if f in ends]
    if not found:
        raise ValueError("the network has no layer at 1/4, 1/8 or 1/16 of the input; pass layers=")
    return found


def _check_layers(
    layers: Sequence[int], layer_wgts: Sequence[float], style_wgts: Sequence[float], n: int
) -> None:
    if not layers or any(not 0 <= i < n for i in layers):
        raise ValueError(
            f"FeatureLoss layers must be indices 0 to {n - 1} of the body, got {layers}"
        )
    if len(layer_wgts) != len(layers) or len(style_wgts) != len(layers):
        raise ValueError(
            f"FeatureLoss needs one weight per layer: {len(layers)} layers {list(layers)}, "
            f"layer_wgts {list(layer_wgts)}, style_wgts {list(style_wgts)}"
        )


class LossPart(SumMetric):
    """One part of a `FeatureLoss` (its weighted value) as a metric: the mean over the
    validation images. It reads the parts the loss kept for this batch's predictions (the
    loss runs first), or runs the loss when they are for another tensor.

    Args:
        loss: the FeatureLoss. part: one of `loss.part_names`.
    """

    def __init__(self, loss: FeatureLoss, part: str) -> None:
        if part not in loss.part_names:
            raise ValueError(f"FeatureLoss has no part {part!r}; it has {loss.part_names}")
        super().__init__(part)
        self.loss, self.part = loss, part

    def batch_sums(self, pred: Tensor, targ: Tensor) -> tuple[Tensor, int]:
        """The part times the batch size."""
        if self.loss.parts_of is not pred:
            with torch.no_grad():
                self.loss(pred, targ)
        return self.loss.parts[self.part].reshape(1) * len(pred), len(pred)

    def compute(self, sums: Tensor, count: int) -> float:
        """The mean over the images."""
        return float(sums[0]) / count


def LossMetrics(loss: FeatureLoss) -> list[Metric]:  # noqa: N802 (fastai's name)
    """A metric for each part of `loss` (pixel, feat_0.., gram_0..), for the epoch table.

    Example:
        >>> learn = unet_learner(dls, "efficientnet_lite0", loss_func=loss,
        ...                      metrics=LossMetrics(loss))
    """
    return [LossPart(loss, name) for name in loss.part_names]


@runtime_checkable
class UsesStats(Protocol):
    """A loss or metric that compares pixels, so needs the data's normalization undone:
    `stats` (None until known) and `use_stats(mean, std)`."""

    stats: Any

    def use_stats(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """The per-channel statistics the images were normalized with."""
        ...


def normalize_stats(dls: DataLoaders) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The `(mean, std)` of the data's `Normalize` batch transform (0-1 pixels), if any."""
    if not isinstance(dls, BlockDataLoaders):
        return None
    for tfm in dls.block.batch_tfms:
        if isinstance(tfm, Normalize):
            return tuple(tfm.mean.reshape(-1).tolist()), tuple(tfm.std.reshape(-1).tolist())
    return None


__all__ = [
    "FeatureLoss", "LossMetrics", "LossPart", "UsesStats", "default_layers", "gram_matrix",
    "normalize_stats", "relative_l1",
]  # fmt: skip
