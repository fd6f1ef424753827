"""`basic_generator`: a DCGAN generator, from a noise vector to an image."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mentor.vision.models.critic import check_gan_size

GENERATOR_NORMS = ("batch", "instance", None)


def _up(c_in: int, c_out: int, norm_type: str | None, first: bool = False) -> list[nn.Module]:
    """A transposed 4x4 convolution (4 pixels from 1 when `first`, else twice the size),
    normalization and ReLU."""
    stride, padding = (1, 0) if first else (2, 1)
    conv = nn.ConvTranspose2d(c_in, c_out, 4, stride, padding, bias=norm_type is None)
    return [conv, *_norm(norm_type, c_out), nn.ReLU()]


def _norm(norm_type: str | None, channels: int) -> list[nn.Module]:
    if norm_type not in GENERATOR_NORMS:
        raise ValueError(f"norm_type={norm_type!r} is not one of {list(GENERATOR_NORMS)}")
    if norm_type == "batch":
        return [nn.BatchNorm2d(channels)]
    if norm_type == "instance":
        return [nn.InstanceNorm2d(channels, affine=True)]
    return []


class NoiseShape(nn.Module):
    """Checks that the input is a batch of noise vectors `[B, in_sz, 1, 1]` (or `[B, in_sz]`,
    given the two unit dimensions), naming the shape it got otherwise."""

    def __init__(self, in_sz: int) -> None:
        super().__init__()
        self.in_sz = in_sz

    def forward(self, x: Tensor) -> Tensor:
        """`[B, in_sz]` or `[B, in_sz, 1, 1]` -> `[B, in_sz, 1, 1]`."""
        if x.ndim == 2 and x.shape[1] == self.in_sz:
            return x[:, :, None, None]
        if x.ndim != 4 or x.shape[1:] != (self.in_sz, 1, 1):
            raise ValueError(
                f"the generator takes noise [B, {self.in_sz}, 1, 1], got {list(x.shape)}; "
                f"make it with generate_noise(bs, {self.in_sz})"
            )
        return x

    def extra_repr(self) -> str:
        return f"in_sz={self.in_sz}"


def basic_generator(
    out_size: int,
    n_channels: int,
    in_sz: int = 100,
    n_features: int = 64,
    n_extra_layers: int = 0,
    norm_type: str | None = "batch",
) -> nn.Sequential:
    """A DCGAN generator: noise `[B, in_sz, 1, 1]` -> images `[B, n_channels, out_size,
    out_size]` in [-1, 1] (tanh).

    A transposed convolution makes a 4-pixel map of `n_features * out_size / 8` channels;
    each next one doubles the size and halves the channels, the last one gives the image.

    Args:
        out_size: image height and width (a power of two, at least 8).
        n_channels: image channels. in_sz: noise size (100).
        n_features: channels before the last layer (64). n_extra_layers: 3x3 convolutions
            added before the last layer (0). norm_type: 'batch' (DCGAN), 'instance' or None.

    Example:
        >>> basic_generator(32, 1, n_features=16)(torch.randn(5, 100, 1, 1)).shape
        torch.Size([5, 1, 32, 32])
    """
    n_doublings = check_gan_size(out_size, "out_size")
    _norm(norm_type, 1)  # checks the name before building anything
    features = n_features * 2 ** (n_doublings - 1)
    layers: list[nn.Module] = [NoiseShape(in_sz), *_up(in_sz, features, norm_type, first=True)]
    for _ in range(n_doublings - 1):
        layers += _up(features, features // 2, norm_type)
        features //= 2
    for _ in range(n_extra_layers):
        conv = nn.Conv2d(features, features, 3, 1, 1, bias=norm_type is None)
        layers += [conv, *_norm(norm_type, features), nn.ReLU()]
    layers += [nn.ConvTranspose2d(features, n_channels, 4, 2, 1), nn.Tanh()]
    return nn.Sequential(*layers)


def generate_noise(n: int, in_sz: int = 100, device: torch.device | str | None = None) -> Tensor:
    """`n` noise vectors `[n, in_sz, 1, 1]` from a standard normal (PyTorch's global
    generator, so `set_seed` and checkpoints reproduce them): a generator's input."""
    return torch.randn(n, in_sz, 1, 1, device=device)


__all__ = ["NoiseShape", "basic_generator", "generate_noise"]
