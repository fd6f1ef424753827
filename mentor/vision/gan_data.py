"""Data for GANs that generate images from noise: batches `(noise, real_images)`.

`GANDataLoaders.from_folder(path, size=32, n_channels=1)` reads every image under `path`
once into memory (uint8), and each batch pairs a slice of them, scaled to [-1, 1] (a
tanh generator's range), with fresh noise `[bs, in_sz, 1, 1]` from PyTorch's global
generator (so `set_seed` and checkpoints reproduce it). The validation loader, when
`valid_pct` > 0, draws the same noise at every pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from mentor.data.items import get_image_files
from mentor.data.loaders import DataLoaders
from mentor.vision.image import open_image

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def load_images(files: Sequence[str | Path], size: int, n_channels: int = 3) -> Tensor:
    """The images `files` as one uint8 tensor `[N, n_channels, size, size]` (greyscale for
    1 channel, RGB for 3), resized (bilinear) where they are not `size` pixels square."""
    if n_channels not in (1, 3):
        raise ValueError(f"n_channels={n_channels}: GAN images are greyscale (1) or RGB (3)")
    if not files:
        raise ValueError("no image files to load; check the folder")
    mode = "L" if n_channels == 1 else "RGB"
    out = torch.empty(len(files), n_channels, size, size, dtype=torch.uint8)
    for index, file in enumerate(files):
        img = open_image(file, mode)
        if img.size != (size, size):
            img = img.resize((size, size), Image.Resampling.BILINEAR)
        array = np.array(img, dtype=np.uint8).reshape(size, size, n_channels)
        out[index] = torch.from_numpy(array).permute(2, 0, 1)
    return out


def to_unit_range(images: Tensor) -> Tensor:
    """uint8 pixels -> floats in [-1, 1]."""
    return images.float() / 127.5 - 1.0


def to_pixels(images: Tensor) -> Tensor:
    """Images in [-1, 1] (a generator's output) -> uint8 pixels (clamped)."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


class NoiseLoader:
    """Batches `(noise [bs, in_sz, 1, 1], real [bs, C, H, W] in [-1, 1])` of in-memory
    images.

    Args:
        images: uint8 `[N, C, H, W]`. bs: batch size (64). in_sz: noise size (100).
        shuffle: reshuffle every pass (True). drop_last: drop a last smaller batch (True).
        noise_seed: draw the noise from a generator seeded so at every pass (the same
            noise each time, for validation; default None: PyTorch's global generator).
    """

    def __init__(
        self,
        images: Tensor,
        bs: int = 64,
        in_sz: int = 100,
        shuffle: bool = True,
        drop_last: bool = True,
        noise_seed: int | None = None,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 [N, C, H, W], got {images.dtype} "
                             f"{list(images.shape)}; load them with load_images")  # fmt: skip
        if bs < 1 or in_sz < 1:
            raise ValueError(f"bs={bs} and in_sz={in_sz} must be at least 1")
        self.images, self.bs, self.in_sz = images, bs, in_sz
        self.shuffle, self.drop_last, self.noise_seed = shuffle, drop_last, noise_seed

    def __len__(self) -> int:
        n = len(self.images)
        return n // self.bs if self.drop_last and n >= self.bs else math.ceil(n / self.bs)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.images)
        order = torch.randperm(n) if self.shuffle else torch.arange(n)
        noise_rng = None
        if self.noise_seed is not None:
            noise_rng = torch.Generator().manual_seed(self.noise_seed)
        for index in range(len(self)):
            items = order[index * self.bs : (index + 1) * self.bs]
            noise = torch.randn(len(items), self.in_sz, 1, 1, generator=noise_rng)
            yield noise, to_unit_range(self.images[items])


class GANDataLoaders(DataLoaders):
    """Loaders of `(noise, real_images)` batches for a GAN that generates images.

    Args:
        train: the training `NoiseLoader`. valid: an optional validation one (fixed noise).
        device: where batches go (default: CUDA when available).

    Example:
        >>> dls = GANDataLoaders.from_folder(path / "train", size=32, n_channels=1, bs=64)
        >>> dls.show_batch()
    """

    application = "vision"

    def __init__(
        self,
        train: NoiseLoader,
        valid: NoiseLoader | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(train, valid, device=device)
        self.in_sz, self.bs = train.in_sz, train.bs
        self.valid_bs = valid.bs if valid is not None else None
        self.n_images = len(train.images) + (len(valid.images) if valid is not None else 0)

    @classmethod
    def from_images(
        cls,
        images: Tensor,
        in_sz: int = 100,
        bs: int = 64,
        valid_pct: float = 0.0,
        seed: int | None = None,
        device: torch.device | str | None = None,
    ) -> GANDataLoaders:
        """Loaders over uint8 images `[N, C, H, W]` (see `from_folder` for the arguments)."""
        if not 0 <= valid_pct < 1:
            raise ValueError(f"valid_pct={valid_pct} must be in [0, 1)")
        n_valid = round(len(images) * valid_pct)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        order = torch.randperm(len(images), generator=generator)
        train = NoiseLoader(images[order[n_valid:]], bs=bs, in_sz=in_sz)
        valid = None
        if n_valid:
            noise_seed = 0 if seed is None else seed
            valid = NoiseLoader(images[order[:n_valid]], bs=2 * bs, in_sz=in_sz, shuffle=False,
                                drop_last=False, noise_seed=noise_seed)  # fmt: skip
        return cls(train, valid, device=device)

    @classmethod
    def from_folder(
        cls,
        path: str | Path,
        size: int = 64,
        n_channels: int = 3,
        in_sz: int = 100,
        bs: int = 64,
        valid_pct: float = 0.0,
        seed: int | None = None,
        device: torch.device | str | None = None,
    ) -> GANDataLoaders:
        """Loaders over every image under `path` (sub-folders too), resized to `size`.

        Args:
            path: the folder. size: image height and width (64; a power of two for
                `basic_generator`). n_channels: 1 (greyscale) or 3 (RGB).
            in_sz: noise size (100). bs: batch size (64).
            valid_pct: share of the images kept for validation, where the generator loss
                is measured on fixed noise (0: no validation, as in the lesson).
            seed: the validation split's seed. device: where batches go.
        """
        files = get_image_files(path)
        if not files:
            raise ValueError(f"no images under {str(path)!r}; give the folder that holds them")
        images = load_images(files, size, n_channels)
        return cls.from_images(images, in_sz, bs, valid_pct, seed, device)

    def describe(self) -> list[str]:
        """The images and the noise size."""
        train = self.train.loader
        shape = list(train.images.shape[1:]) if isinstance(train, NoiseLoader) else "?"
        return [f"images: {self.n_images:,} of {shape}; noise [{self.in_sz}, 1, 1]"]

    def show_batch(self, max_n: int = 16, fname: str | Path | None = None) -> Figure:
        """A grid of `max_n` real images of a training batch (also saved to `fname`)."""
        return show_image_grid(self.one_batch("train")[1][:max_n], fname=fname)

    def show_results(self, batch: Sequence[Any], preds: Sequence[Any], max_n: int = 16) -> Figure:
        """A grid of `max_n` generated images (`learn.show_results()`)."""
        return show_image_grid(torch.stack([torch.as_tensor(p) for p in preds[:max_n]]))


def image_grid(images: Tensor, ncols: int | None = None, pad: int = 2) -> np.ndarray:
    """Images in [-1, 1] `[N, C, H, W]` tiled into one uint8 array `[H', W'(, 3)]`
    (`ncols` per row, default a square), `pad` black pixels between them."""
    pixels = to_pixels(images.cpu())
    n, channels, height, width = pixels.shape
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    grid = torch.zeros(channels, nrows * (height + pad) + pad, ncols * (width + pad) + pad,
                       dtype=torch.uint8)  # fmt: skip
    for index in range(n):
        top = pad + (index // ncols) * (height + pad)
        left = pad + (index % ncols) * (width + pad)
        grid[:, top : top + height, left : left + width] = pixels[index]
    array = grid.permute(1, 2, 0).numpy()
    return array[:, :, 0] if channels == 1 else array


def save_image_grid(images: Tensor, fname: str | Path, ncols: int | None = None) -> Path:
    """Write `image_grid(images, ncols)` to the PNG `fname`; returns its path."""
    fname = Path(fname)
    fname.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image_grid(images, ncols)).save(fname)
    return fname


def show_image_grid(images: Tensor, fname: str | Path | None = None) -> Figure:
    """A matplotlib figure of `image_grid(images)` (also saved to the PNG `fname`)."""
    from mentor.core.figures import subplots

    grid = image_grid(images)
    fig, ax = subplots(figsize=(6, 6))
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=255)
    ax.axis("off")
    fig.tight_layout()
    if fname is not None:
        fig.savefig(fname, dpi=80)
    return fig


__all__ = [
    "GANDataLoaders",
    "NoiseLoader",
    "image_grid",
    "load_images",
    "save_image_grid",
    "show_image_grid",
    "to_pixels",
    "to_unit_range",
]
