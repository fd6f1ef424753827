"""Data augmentation on the device: geometric transforms composed into one resample, lighting.

Geometric augmentations (`Flip`, `Dihedral`, `Rotate`, `Zoom`, `Warp`) each draw one 3x3
matrix per item in normalized coordinates (x, y in [-1, 1], -1 = left / top edge, the
convention of `F.grid_sample(align_corners=False)`). A matrix `M` is a *sampling* matrix:
output location `u` reads the input at `M u` (homogeneous, divided by the third coordinate,
so perspective warps are 3x3 too). `AffineWarp` multiplies the matrices of its augmentations
and resamples every image and mask of the batch once; points move by `M^-1`.

Rotation convention: a positive angle turns the content counter-clockwise as displayed
(like `PIL.Image.rotate`); +90 degrees on a square image equals `torch.rot90(x, 1, (-2, -1))`.

Example:
    >>> batch_tfms = [*aug_transforms(max_rotate=15.0), Normalize.from_stats(*imagenet_stats)]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from mentor.data.transforms import IMAGE, MASK, POINTS, BatchTransform, Kinds
from mentor.vision.lighting import Lighting, check_probability, coin_flips, uniform

PAD_MODES = ("reflection", "zeros", "border")
MODES = ("bilinear", "nearest", "bicubic")
Generator = torch.Generator | None


def affine_matrices(*entries: Tensor | float) -> Tensor:
    """`[n, 3, 3]` matrices from their row-major entries, each a `[n]` tensor or a number.

    Args:
        entries: the 6 entries of the first two rows, optionally followed by the 2
            perspective entries of the last row (default 0); the last entry is always 1.
    """
    like = next(entry for entry in entries if isinstance(entry, Tensor)).float()
    full = [e.float() if isinstance(e, Tensor) else torch.full_like(like, e) for e in entries]
    full += [torch.zeros_like(like)] * (8 - len(full)) + [torch.ones_like(like)]
    return torch.stack(full, dim=-1).view(-1, 3, 3)


def flip_matrices(flip: Tensor) -> Tensor:
    """Sampling matrices that mirror left-right the items where `flip` (bool `[n]`) is True."""
    return affine_matrices(torch.where(flip, -1.0, 1.0), 0, 0, 0, 1, 0)


def dihedral_matrices(index: Tensor) -> Tensor:
    """Sampling matrices of the 8 symmetries of the square, one per `index` in 0..7.

    Bit 0 of `index` mirrors x, bit 1 mirrors y, bit 2 swaps x and y; 0 is the identity.
    On non-square images a swap stretches the image to keep all of it in view.
    """
    sign_x = 1.0 - 2.0 * (index & 1).float()
    sign_y = 1.0 - 2.0 * ((index >> 1) & 1).float()
    swap = ((index >> 2) & 1).float()
    keep = 1.0 - swap
    return affine_matrices(sign_x * keep, sign_x * swap, 0, sign_y * swap, sign_y * keep, 0)


def rotate_matrices(degrees: Tensor, height: int, width: int) -> Tensor:
    """Sampling matrices that turn the content by `degrees` (`[n]`), counter-clockwise.

    The rotation happens in pixel space (about the centre), so angles stay true on
    non-square images of `height` x `width` pixels.
    """
    radians = degrees.float() * (math.pi / 180.0)
    cos, sin = torch.cos(radians), torch.sin(radians)
    return affine_matrices(cos, -sin * (height / width), 0, sin * (width / height), cos, 0)


def zoom_matrices(scale: Tensor, centre: Tensor) -> Tensor:
    """Sampling matrices that magnify by `scale` (`[n]`) around `centre` (`[n, 2]`, x, y)."""
    inverse = 1.0 / scale.float()
    return affine_matrices(inverse, 0, centre[:, 0], 0, inverse, centre[:, 1])


def warp_matrices(tilt: Tensor) -> Tensor:
    """Perspective sampling matrices: output (x, y) reads input (x, y) / (1 + tx*x + ty*y).

    Args:
        tilt: `[n, 2]` (tx, ty); |tx| + |ty| must stay below 1 so no point goes to infinity.
    """
    return affine_matrices(1, 0, 0, 0, 1, 0, tilt[:, 0], tilt[:, 1])


class GeometricAug(BatchTransform):
    """A geometric augmentation: one random sampling matrix per item.

    Used alone in a pipeline it resamples the batch itself; put several in one `AffineWarp`
    (as `aug_transforms` does) so that they cost a single resample.
    """

    order = 20
    train_only = True

    def matrices(
        self, n: int, height: int, width: int, device: torch.device, generator: Generator = None
    ) -> Tensor:
        """`[n, 3, 3]` float32 sampling matrices for a batch of `n` `height` x `width` items."""
        raise NotImplementedError(f"{type(self).__name__} must implement matrices")

    def encode(self, batch: list[Any], kinds: Kinds) -> list[Any]:
        """Resample the batch with this augmentation alone."""
        return AffineWarp([self]).encode(batch, kinds)


class Flip(GeometricAug):
    """Mirror each item left-right with probability `p` (default 0.5)."""

    def __init__(self, p: float = 0.5) -> None:
        check_probability(p)
        self.p = p

    def matrices(
        self, n: int, height: int, width: int, device: torch.device, generator: Generator = None
    ) -> Tensor:
        """Mirror matrices for the chosen items, identities for the others."""
        return flip_matrices(coin_flips(n, self.p, device, generator))


class Dihedral(GeometricAug):
    """With probability `p` (default 1.0), one of the 8 symmetries of the square, uniformly.

    Meant for top-down images (satellite, microscopy) that have no up or down.
    """

    def __init__(self, p: float = 1.0) -> None:
        check_probability(p)
        self.p = p

    def matrices(
        self, n: int, height: int, width: int, device: torch.device, generator: Generator = None
    ) -> Tensor:
        """Symmetry matrices (identity for the items not chosen)."""
        index = torch.randint(0, 8, (n,), device=device, generator=generator)
        chosen = coin_flips(n, self.p, device, generator)
        return dihedral_matrices(torch.where(chosen, index, torch.zeros_like(index)))


class Rotate(GeometricAug):
    """Rotate by an angle uniform in [-max_deg, max_deg] with probability `p`.

    Args:
        max_deg: the largest angle in degrees (default 10); positive = counter-clockwise.
        p: probability of rotating each item (default 0.5).
    """

    def __init__(self, max_deg: float = 10.0, p: float = 0.5) -> None:
        check_probability(p)
        if max_deg < 0:
            raise ValueError(f"max_deg={max_deg} is negative; pass the largest angle, e.g. 10")
        self.max_deg, self.p = max_deg, p

    def matrices(
        self, n: int, height: int, width: int, device: torch.device, generator: Generator = None
    ) -> Tensor:
        """Rotation matrices (0 degrees for the items not chosen)."""
        degrees = uniform(n, -self.max_deg, self.max_deg, device, generator)
        degrees = degrees * coin_flips(n, self.p, device, generator)
        return rotate_matrices(degrees, height, width)


class Zoom(GeometricAug):
    """Zoom in by a factor uniform in [1, max_zoom] with probability `p`.

    The centre is random but keeps the view inside the image, so no padding shows.

    Args:
        max_zoom: the largest magnification (default 1.1), at least 1.
        p: probability of zooming each item (default 0.5).
    """

    def __init__(self, max_zoom: float = 1.1, p: float = 0.5) -> None:
        check_probability(p)
        if max_zoom < 1:
            raise ValueError(f"max_zoom={max_zoom} is below 1; pass 1 (no zoom) or more")
        self.max_zoom, self.p = max_zoom, p

    def matrices(
        self, n: int, height: int, width: int, device: torch.device, generator: Generator = None
    ) -> Tensor:
        """Zoom matrices (scale 1 for the items not chosen)."""
        scale = uniform(n, 1.0, self.max_zoom, device, generator)
        scale = torch.where(coin_flips(n, self.p, device, generator), scale, torch.ones_like(scale))
        room = (1.0 - 1.0 / scale).unsqueeze(1)
        centre = (torch.rand(n, 2, device=device, generator=generator) * 2 - 1) * room
        return zoom_matrices(scale, centre)


class Warp(GeometricAug):
    """Perspective warp (tilt the image plane) with probability `p`.

    Args:
        magnitude: the largest tilt along each axis (default 0.2), in [0, 0.5).
        p: probability of warping each item (default 0.5).
    """

    def __init__(self, magnitude: float = 0.2, p: float = 0.5) -> None:
        check_probability(p)
        if not 0 <= magnitude < 0.5:
            raise ValueError(f"magnitude={magnitude} is outside [0, 0.5); try 0.2")
        self.magnitude, self.p = magnitude, p

    def matrices(
        self, n: int, height: int, width: int, device: torch.device, generator: Generator = None
    ) -> Tensor:
        """Perspective matrices (identity for the items not chosen)."""
        tilt = torch.rand(n, 2, device=device, generator=generator) * 2 - 1
        tilt = tilt * self.magnitude * coin_flips(n, self.p, device, generator).unsqueeze(1)
        return warp_matrices(tilt)


def _pair(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    """`size` as (height, width), checked."""
    if size is None:
        return None
    height, width = (size, size) if isinstance(size, int) else size
    if height < 1 or width < 1:
        raise ValueError(f"size={size} must be positive: an int or (height, width)")
    return int(height), int(width)


def sampling_grid(matrices: Tensor, height: int, width: int) -> Tensor:
    """The `[n, height, width, 2]` grid for `F.grid_sample` that `matrices` describe.

    Output pixel centres (x = (2j + 1) / width - 1, likewise y) go through each matrix and
    are divided by their third coordinate.
    """
    device = matrices.device
    xs = (torch.arange(width, device=device, dtype=torch.float32) * 2 + 1) / width - 1
    ys = (torch.arange(height, device=device, dtype=torch.float32) * 2 + 1) / height - 1
    xs, ys = xs.view(1, 1, width), ys.view(1, height, 1)
    m = matrices.float().reshape(-1, 9, 1, 1)
    # elementwise rather than a batched matmul with an inner size of 3: twice as fast on CPU
    depth = m[:, 6] * xs + m[:, 7] * ys + m[:, 8]
    grid_x = (m[:, 0] * xs + m[:, 1] * ys + m[:, 2]) / depth
    grid_y = (m[:, 3] * xs + m[:, 4] * ys + m[:, 5]) / depth
    return torch.stack([grid_x, grid_y], dim=-1)


def transform_points(points: Tensor, matrices: Tensor) -> Tensor:
    """Move `[n, k, 2]` points the way `matrices` move the image content (by their inverse)."""
    inverse, _ = torch.linalg.inv_ex(matrices.float())
    ones = torch.ones(*points.shape[:-1], 1, device=points.device, dtype=torch.float32)
    mapped = torch.cat([points.float(), ones], dim=-1) @ inverse.transpose(1, 2)
    return (mapped[..., :2] / mapped[..., 2:]).to(points.dtype)


def apply_matrices(
    batch: list[Any],
    kinds: Kinds,
    matrices: Tensor,
    size: int | tuple[int, int] | None = None,
    mode: str = "bilinear",
    pad_mode: str = "reflection",
) -> list[Any]:
    """Resample each image and mask once with per-item sampling `matrices`; move points.

    Args:
        batch, kinds: the batch parts and their kinds; labels pass through.
        matrices: `[n, 3, 3]` sampling matrices (see the module docstring).
        size: output (height, width) or int for square (default None: keep each size).
        mode: interpolation of images (default 'bilinear'); masks always use 'nearest'.
        pad_mode: what shows outside the input: 'reflection' (default), 'zeros', 'border'.
    """
    out_size = _pair(size)
    grids: dict[tuple[int, int], Tensor] = {}
    out = []
    for part, kind in zip(batch, kinds):
        if kind in (IMAGE, MASK):
            height, width = out_size or (part.shape[-2], part.shape[-1])
            if (height, width) not in grids:
                grids[height, width] = sampling_grid(matrices, height, width)
            part = _resample(part, kind, grids[height, width], mode, pad_mode)
        elif kind == POINTS:
            part = transform_points(part, matrices)
        out.append(part)
    return out


def _resample(part: Tensor, kind: str, grid: Tensor, mode: str, pad_mode: str) -> Tensor:
    """One `grid_sample` of an image `[B, C, H, W]` or a mask `[B, H, W]`."""
    if kind == IMAGE:
        return F.grid_sample(
            part, grid.to(part.dtype), mode=mode, padding_mode=pad_mode, align_corners=False
        )
    sampled = F.grid_sample(
        part.unsqueeze(1).float(),
        grid,
        mode="nearest",
        padding_mode=pad_mode,
        align_corners=False,
    )
    return sampled.squeeze(1).round().to(part.dtype)


class AffineWarp(BatchTransform):
    """Compose geometric augmentations into one matrix per item and resample once.

    Args:
        augs: the augmentations, applied to the content in this order.
        size: output (height, width) or int (default None: keep the input size). Training
            batches only, like every augmentation: resize validation items to the same size.
        mode: interpolation for images (default 'bilinear'); masks use 'nearest'.
        pad_mode: 'reflection' (default), 'zeros' or 'border'.
        generator: a `torch.Generator` on the batch's device (default: the global RNG).

    Example:
        >>> AffineWarp([Flip(), Rotate(max_deg=20), Zoom(max_zoom=1.2)], size=224)
    """

    order = 20
    train_only = True

    def __init__(
        self,
        augs: Sequence[GeometricAug],
        size: int | tuple[int, int] | None = None,
        mode: str = "bilinear",
        pad_mode: str = "reflection",
        generator: Generator = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} is not one of {MODES}")
        if pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode={pad_mode!r} is not one of {PAD_MODES}")
        self.augs = list(augs)
        self.size = _pair(size)
        self.mode, self.pad_mode, self.generator = mode, pad_mode, generator

    def encode(self, batch: list[Any], kinds: Kinds) -> list[Any]:
        """Draw, compose and apply the matrices of every augmentation."""
        reference = next((p for p, k in zip(batch, kinds) if k in (IMAGE, MASK)), None)
        if reference is None:
            raise ValueError(f"AffineWarp needs an image or a mask in the batch; kinds={kinds}")
        n, height, width = reference.shape[0], reference.shape[-2], reference.shape[-1]
        device = reference.device
        matrices = torch.eye(3, device=device).expand(n, 3, 3)
        for aug in self.augs:
            matrices = matrices @ aug.matrices(n, height, width, device, self.generator)
        return apply_matrices(batch, kinds, matrices, self.size, self.mode, self.pad_mode)


def aug_transforms(
    do_flip: bool = True,
    flip_vert: bool = False,
    max_rotate: float = 10.0,
    max_zoom: float = 1.1,
    max_lighting: float = 0.2,
    max_warp: float = 0.2,
    p_affine: float = 0.75,
    p_lighting: float = 0.75,
    size: int | tuple[int, int] | None = None,
    mode: str = "bilinear",
    pad_mode: str = "reflection",
) -> list[BatchTransform]:
    """The usual training augmentations: one `AffineWarp`, then `Lighting` (brightness and
    contrast in one pass).

    Args:
        do_flip: mirror left-right with probability 0.5 (default True).
        flip_vert: use all 8 symmetries of the square instead (`Dihedral`; default False).
        max_rotate: largest rotation in degrees (default 10; 0 turns it off).
        max_zoom: largest zoom (default 1.1; 1 turns it off).
        max_lighting: brightness and contrast range (default 0.2; 0 turns them off).
        max_warp: largest perspective tilt (default 0.2; 0 turns it off).
        p_affine: probability of each rotation, zoom and warp (default 0.75).
        p_lighting: probability of each lighting change (default 0.75).
        size: resize training batches to this size in the same resample (default None).
        mode, pad_mode: interpolation and padding of the resample ('bilinear', 'reflection').

    Example:
        >>> DataBlock(..., batch_tfms=aug_transforms(flip_vert=True, max_warp=0.0))
    """
    augs: list[GeometricAug] = []
    if do_flip:
        augs.append(Dihedral(p=1.0) if flip_vert else Flip(p=0.5))
    if max_rotate > 0:
        augs.append(Rotate(max_deg=max_rotate, p=p_affine))
    if max_zoom > 1:
        augs.append(Zoom(max_zoom=max_zoom, p=p_affine))
    if max_warp > 0:
        augs.append(Warp(magnitude=max_warp, p=p_affine))
    tfms: list[BatchTransform] = []
    if augs or size is not None:
        tfms.append(AffineWarp(augs, size=size, mode=mode, pad_mode=pad_mode))
    if max_lighting > 0:
        tfms.append(Lighting(max_lighting, p=p_lighting))
    return tfms
