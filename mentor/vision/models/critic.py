"""GAN critics: `gan_critic` (spectral-norm convolutions, for image-to-image GANs) and
`basic_critic` (DCGAN-style, for GANs that generate images from noise).

Both return one score per image, a logit: `[B, C, H, W] -> [B]`.
"""

from __future__ import annotations

import math

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

CRITIC_NORMS = ("batch", "instance", None)


class SumScore(nn.Module):
    """Sums a map of scores `[B, 1, h, w]` (one per patch) into one per image, `[B]`.

    A sum, not a mean: spectral norm caps each layer's gain at 1, so each patch's score
    moves little; summed over the patches (as SN-GAN's discriminator sums its features) the
    logits reach the range a binary cross-entropy needs. Averaged, the critic stayed at
    chance (loss ln 2) telling restored from real images, even noisy from clean ones. The
    logits, and the adversarial gradient, grow with the image's area: weigh the adversarial
    loss accordingly (`GANLearner.from_learners`' default is for 128 px images).
    """

    def forward(self, x: Tensor) -> Tensor:
        """`[B, ...]` -> `[B]`."""
        return x.flatten(1).sum(1)


def sn_conv(c_in: int, c_out: int, ks: int, stride: int = 1, bias: bool = True) -> nn.Module:
    """A convolution whose weight is divided by its spectral norm (the largest singular
    value, estimated by one power iteration per training forward pass), which keeps the
    critic 1-Lipschitz-ish and its training stable. Stride 2 with `ks=4` halves the size."""
    conv = nn.Conv2d(c_in, c_out, ks, stride=stride, padding=(ks - 1) // 2, bias=bias)
    return spectral_norm(conv)


def gan_critic(n_channels: int = 3, nf: int = 128, n_blocks: int = 1, p: float = 0.15) -> nn.Module:
    """A critic of spectral-norm convolutions: one score per image (a logit, real > fake).

    A strided convolution halves the image, then `n_blocks` blocks each refine (3x3) and
    halve it again while doubling the channels, with leaky ReLU and dropout; a last
    convolution gives a map of one score per patch, averaged into one per image.

    Args:
        n_channels: input channels (3). nf: channels after the first convolution (128).
        n_blocks: halving blocks after the first (1; fastai's critic has 3 and a dense
            residual block): images must be at least `2 ** (n_blocks + 1)` pixels high and
            wide. Each spectral-norm layer in series shrinks the signal: with 2 blocks the
            critic learned restored-from-real slowly, with 3 not at all (chance after 500
            steps). p: dropout (0.15; half of it on the input).

    Example:
        >>> gan_critic(nf=16)(torch.zeros(2, 3, 64, 64)).shape
        torch.Size([2])
    """
    if n_blocks < 0 or nf < 1 or n_channels < 1:
        raise ValueError(f"gan_critic needs n_blocks >= 0, nf >= 1 and n_channels >= 1; got "
                         f"n_blocks={n_blocks}, nf={nf}, n_channels={n_channels}")  # fmt: skip
    if not 0 <= p < 1:
        raise ValueError(f"dropout p={p} must be in [0, 1)")
    layers: list[nn.Module] = [
        nn.Dropout2d(p / 2),
        sn_conv(n_channels, nf, 4, stride=2),
        nn.LeakyReLU(0.2),
    ]
    for _ in range(n_blocks):
        layers += [
            sn_conv(nf, nf, 3),
            nn.LeakyReLU(0.2),
            nn.Dropout2d(p),
            sn_conv(nf, nf * 2, 4, stride=2),
            nn.LeakyReLU(0.2),
        ]
        nf *= 2
    layers += [sn_conv(nf, 1, 3, bias=False), SumScore()]
    return nn.Sequential(*layers)


def check_gan_size(size: int, what: str) -> int:
    """The number of halvings from `size` down to 4 pixels; `size` must be a power of two,
    at least 8."""
    if size < 8 or size & (size - 1):
        raise ValueError(f"{what}={size}: DCGAN-style models need a power of two, at least 8 "
                         "(resize the images, e.g. 28 px digits to 32)")  # fmt: skip
    return int(math.log2(size)) - 2


def _norm(norm_type: str | None, channels: int) -> list[nn.Module]:
    if norm_type not in CRITIC_NORMS:
        raise ValueError(f"norm_type={norm_type!r} is not one of {list(CRITIC_NORMS)}")
    if norm_type == "batch":
        return [nn.BatchNorm2d(channels)]
    if norm_type == "instance":
        return [nn.InstanceNorm2d(channels, affine=True)]
    return []


def basic_critic(
    in_size: int,
    n_channels: int,
    n_features: int = 64,
    n_extra_layers: int = 0,
    norm_type: str | None = "batch",
) -> nn.Sequential:
    """A DCGAN critic: strided 4x4 convolutions halve the image down to 4 pixels while the
    channels double, then a 4x4 convolution gives one score per image (a logit), `[B]`.

    Args:
        in_size: image height and width (a power of two, at least 8).
        n_channels: image channels. n_features: channels after the first convolution (64).
        n_extra_layers: 3x3 convolutions added after the first (0).
        norm_type: 'batch' (DCGAN), 'instance' or None (for WGAN-GP: the gradient penalty
            treats each image on its own, batch norm mixes them).

    Example:
        >>> basic_critic(32, 1, n_features=16)(torch.zeros(5, 1, 32, 32)).shape
        torch.Size([5])
    """
    n_halvings = check_gan_size(in_size, "in_size")
    _norm(norm_type, 1)  # checks the name before building anything
    bias = norm_type is None
    layers: list[nn.Module] = [
        nn.Conv2d(n_channels, n_features, 4, 2, 1, bias=bias),
        nn.LeakyReLU(0.2),
    ]
    for _ in range(n_extra_layers):
        layers += [nn.Conv2d(n_features, n_features, 3, 1, 1, bias=bias)]
        layers += [*_norm(norm_type, n_features), nn.LeakyReLU(0.2)]
    features = n_features
    for _ in range(n_halvings - 1):
        layers += [nn.Conv2d(features, features * 2, 4, 2, 1, bias=bias)]
        layers += [*_norm(norm_type, features * 2), nn.LeakyReLU(0.2)]
        features *= 2
    layers += [nn.Conv2d(features, 1, 4, 1, 0), nn.Flatten(0)]
    return nn.Sequential(*layers)


__all__ = ["SumScore", "basic_critic", "check_gan_size", "gan_critic", "sn_conv"]
