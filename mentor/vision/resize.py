"""Geometric item transforms: `Resize`, `RandomResizedCrop`, `CenterCrop`.

Each crops and resizes in one Pillow call (decoding JPEGs at reduced size when the crop is at
least twice the target), and moves the sample's masks (nearest neighbour) and points with
the image.
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
from PIL import Image

from mentor.core.spec import InitSpec, register_spec
from mentor.data.transforms import IMAGE, MASK, POINTS, ItemTransform, Kinds
from mentor.vision.image import (
    convert_mode,
    draft_scale,
    is_lazy_jpeg,
    load_image,
    target_mode,
    turbo_decode,
)

Box = tuple[float, float, float, float]
"""A region (left, top, right, bottom) in pixel coordinates of the current image."""
Size = int | tuple[int, int]
"""An output size: one side for a square, or (height, width)."""

RESAMPLE = Image.Resampling.BILINEAR
REDUCING_GAP = 2.0
"""Shrink by whole factors first (fast) while the last resampling step still shrinks 2x or less,
which keeps the result close to a full bilinear resampling."""
PAD_MODES = ("reflection", "zeros", "border")


MAX_SIDE = 16384  # px: larger sides are a mistake or a hostile file, not a model input


def _size_hw(size: Size, name: str) -> tuple[int, int]:
    height, width = (size, size) if isinstance(size, int) else size
    if height < 1 or width < 1:
        raise ValueError(f"{name} size {size!r} must be positive: an int or (height, width)")
    if height > MAX_SIDE or width > MAX_SIDE:
        raise ValueError(f"{name} size {size!r} is larger than {MAX_SIDE} px per side; refused")
    return int(height), int(width)


def _reference_size(
    sample: list[Any], kinds: Kinds, name: str, scaled_images: bool = False
) -> tuple[int, int]:
    """(width, height) of the first image or mask of the sample; the masks must share it.
    With `scaled_images`, other images may be that size scaled (an image-to-image pair such
    as a 64 px input for a 128 px target: the transform crops the same part of each)."""
    sizes = []
    for part, kind in zip(sample, kinds):
        if kind in (IMAGE, MASK):
            if not isinstance(part, Image.Image):
                raise TypeError(
                    f"{name} needs PIL images but got {type(part).__name__} for a {kind}; "
                    "geometric item transforms must run before ToTensor (order < 100)"
                )
            sizes.append((part.size, kind))
    if not sizes:
        raise ValueError(f"{name} needs an image or a mask in the sample; kinds are {kinds}")
    reference = sizes[0][0]
    for size, kind in sizes[1:]:
        if size == reference or (scaled_images and kind == IMAGE and _same_aspect(size, reference)):
            continue
        if scaled_images and kind == IMAGE:
            raise ValueError(
                f"the images of a sample have sizes (width, height) {[s for s, _ in sizes]} "
                "of different shapes; an image-to-image pair must be one picture at two "
                "scales: check the files"
            )
        raise ValueError(
            f"the images and masks of a sample have different sizes (width, height) "
            f"{[s for s, _ in sizes]}; a mask must be the size of its image: check the label files"
        )
    return reference


def _same_aspect(size: tuple[int, int], reference: tuple[int, int]) -> bool:
    """Whether `size` is `reference` scaled, up to the rounding of a side (2%)."""
    return (
        abs(size[0] / size[1] - reference[0] / reference[1]) <= 0.02 * reference[0] / reference[1]
    )


def _scaled_box(box: Box, size: tuple[int, int], reference: tuple[int, int]) -> Box:
    """`box` in the coordinates of an image of `size` that is the reference image scaled."""
    if size == reference:
        return box
    rx, ry = size[0] / reference[0], size[1] / reference[1]
    return (box[0] * rx, box[1] * ry, box[2] * rx, box[3] * ry)


def _draft_request(img: Image.Image, box: Box, size: tuple[int, int]) -> tuple[int, int] | None:
    """The (width, height) a JPEG may be decoded at (libjpeg's 1/2, 1/4 or 1/8 scale) when
    the crop is >= 2x the output per side; None for a full decode."""
    box_w, box_h = box[2] - box[0], box[3] - box[1]
    if box_w < 2 * size[0] or box_h < 2 * size[1]:
        return None
    scale = max(size[0] / box_w, size[1] / box_h)
    return math.ceil(img.width * scale), math.ceil(img.height * scale)


def _box_in(box: Box, scale: int, decoded: tuple[int, int]) -> Box:
    """`box` in the coordinates of the image decoded at 1/`scale`, whose size is `decoded`."""
    return (
        box[0] / scale, box[1] / scale, min(box[2] / scale, decoded[0]),
        min(box[3] / scale, decoded[1]),
    )  # fmt: skip


def _draft(
    img: Image.Image, box: Box, request: tuple[int, int] | None, scale: int, mode: str | None
) -> Box:
    """Have Pillow decode a lazy JPEG at 1/`scale` (its `draft` for `request`, from
    `_draft_request`; None: full size); the crop box in the decoded image's coordinates."""
    if not is_lazy_jpeg(img):
        return box
    draft_mode = "L" if mode == "L" else img.mode
    if request is None:
        if draft_mode != img.mode:
            img.draft(draft_mode, None)
        return box
    old = img.size
    drafted = img.draft(draft_mode, request)
    if drafted is None or img.size == old:
        return box
    return _box_in(box, scale, img.size)


def _decode_for(img: Image.Image, box: Box, size: tuple[int, int]) -> tuple[Image.Image, Box]:
    """`img` decoded for a crop of `box` resized to `size` (at reduced scale where the crop
    allows: libjpeg-turbo's own binding where it applies, else Pillow's `draft`, at the same
    scale), and the box in its coordinates."""
    mode = target_mode(img)
    request = _draft_request(img, box, size) if is_lazy_jpeg(img) else None
    scale = 1 if request is None else draft_scale(img.size, request)
    turbo = turbo_decode(img, mode, scale)
    if turbo is not None:
        return turbo, _box_in(box, scale, turbo.size)
    box = _draft(img, box, request, scale, mode)
    return load_image(img), box


def _resize_image(img: Image.Image, box: Box, size: tuple[int, int]) -> Image.Image:
    mode = target_mode(img)
    if img.mode in ("1", "P", "PA"):
        # resampling a palette image resamples indices: convert to colours first
        img = load_image(img).convert(mode or ("L" if img.mode == "1" else "RGB"))
    img, box = _decode_for(img, box, size)
    out = img.resize(size, RESAMPLE, box=box, reducing_gap=REDUCING_GAP)
    return convert_mode(out, mode)


def _map_points(points: Any, box: Box, size: tuple[int, int]) -> np.ndarray:
    """p' = (p - box origin) * scale: the points in the resized crop's pixel coordinates."""
    array = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    scale = (size[0] / (box[2] - box[0]), size[1] / (box[3] - box[1]))
    return (array - np.array(box[:2], dtype=np.float32)) * np.array(scale, dtype=np.float32)


def _resize_sample(
    sample: list[Any],
    kinds: Kinds,
    box: Box,
    size: tuple[int, int],
    reference: tuple[int, int] | None = None,
) -> list[Any]:
    """Crop `box` out of every part and resize it to `size` (width, height), in one call each;
    the box is in the `reference` image's pixels (images of another scale crop it scaled)."""
    out = []
    for part, kind in zip(sample, kinds):
        if kind == IMAGE:
            part_box = box if reference is None else _scaled_box(box, part.size, reference)
            part = _resize_image(part, part_box, size)
        elif kind == MASK:
            part = load_image(part).resize(size, Image.Resampling.NEAREST, box=box)
        elif kind == POINTS:
            part = _map_points(part, box, size)
        out.append(part)
    return out


def _place(width: int, height: int, box_w: float, box_h: float, train: bool) -> Box:
    """A box_w x box_h box at a random whole-pixel position (train) or the centre."""
    if train:
        left = math.floor(random.uniform(0, width - box_w))
        top = math.floor(random.uniform(0, height - box_h))
    else:
        left, top = math.floor((width - box_w) / 2), math.floor((height - box_h) / 2)
    return (left, top, left + box_w, top + box_h)


def _pad_image(img: Image.Image, pads: tuple[int, int, int, int], pad_mode: str) -> Image.Image:
    """Pad by (left, top, right, bottom) pixels: zeros, reflection or the border repeated."""
    left, top, right, bottom = pads
    if pad_mode == "zeros":
        out = Image.new(img.mode, (img.width + left + right, img.height + top + bottom))
        palette = img.getpalette() if img.mode == "P" else None
        if palette:
            out.putpalette(palette)
        out.paste(img, (left, top))
        return out
    array = np.asarray(img)
    widths = [(top, bottom), (left, right)] + [(0, 0)] * (array.ndim - 2)
    if pad_mode == "reflection" and min(array.shape[:2]) > 1:
        return Image.fromarray(np.pad(array, widths, mode="reflect"))
    return Image.fromarray(np.pad(array, widths, mode="edge"))


@register_spec
class Resize(InitSpec, ItemTransform):
    """Resize every item to `size`, by cropping, squishing or padding.

    Args:
        size: an int for a square, or (height, width).
        method: "crop" (default): scale so the image covers `size`, then crop (at a random
            position when training, the centre otherwise); "squish": ignore the aspect ratio;
            "pad": scale so the image fits inside `size`, then pad.
        pad_mode: for "pad": "reflection" (default), "zeros" (black) or "border" (edge pixels
            repeated). Masks always pad with 0.

    Example:
        >>> Resize(224, method="pad", pad_mode="zeros")
    """

    order = 10

    def __init__(self, size: Size, method: str = "crop", pad_mode: str = "reflection") -> None:
        if method not in ("crop", "squish", "pad"):
            raise ValueError(f"method {method!r} is not one of 'crop', 'squish', 'pad'")
        if pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode {pad_mode!r} is not one of {PAD_MODES}")
        self.size = _size_hw(size, "Resize")
        self.method = method
        self.pad_mode = pad_mode
        self.random = method == "crop"  # only the crop's position is drawn

    def to_spec(self) -> dict[str, Any]:
        """Size, method and pad mode."""
        return {"size": list(self.size), "method": self.method, "pad_mode": self.pad_mode}

    def __call__(self, sample: list[Any], kinds: Kinds, train: bool) -> list[Any]:
        width, height = reference = _reference_size(sample, kinds, "Resize", scaled_images=True)
        target_h, target_w = self.size
        if self.method == "squish":
            full = (0, 0, width, height)
            return _resize_sample(sample, kinds, full, (target_w, target_h), reference)
        if self.method == "crop":
            scale = max(target_w / width, target_h / height)
            box_w, box_h = min(width, target_w / scale), min(height, target_h / scale)
            box = _place(width, height, box_w, box_h, train)
            return _resize_sample(sample, kinds, box, (target_w, target_h), reference)
        return self._pad(sample, kinds, width, height)

    def _pad(self, sample: list[Any], kinds: Kinds, width: int, height: int) -> list[Any]:
        target_h, target_w = self.size
        scale = min(target_w / width, target_h / height)
        fit_w = min(target_w, max(1, round(width * scale)))
        fit_h = min(target_h, max(1, round(height * scale)))
        full = (0, 0, width, height)
        sample = _resize_sample(sample, kinds, full, (fit_w, fit_h), (width, height))
        left, top = (target_w - fit_w) // 2, (target_h - fit_h) // 2
        pads = (left, top, target_w - fit_w - left, target_h - fit_h - top)
        out = []
        for part, kind in zip(sample, kinds):
            if kind == IMAGE:
                part = _pad_image(part, pads, self.pad_mode)
            elif kind == MASK:
                part = _pad_image(part, pads, "zeros")
            elif kind == POINTS:
                part = part + np.array([left, top], dtype=np.float32)
            out.append(part)
        return out


@register_spec
class RandomResizedCrop(InitSpec, ItemTransform):
    """Crop a random part of the image and resize it to `size` (training); a centre crop on
    validation and test items.

    Args:
        size: an int for a square, or (height, width).
        min_scale: the smallest crop, as a fraction of the image's area (default 0.08).
        ratio: the range of the crop's aspect ratio relative to the output's, drawn
            log-uniformly (default (3/4, 4/3)).
        val_xtra: on validation, the crop covers the image's centre shrunk by 1 / (1 + val_xtra)
            per side (default 0.14: like resizing to 1.14x and centre-cropping).
    """

    order = 10

    def __init__(
        self,
        size: Size,
        min_scale: float = 0.08,
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        val_xtra: float = 0.14,
    ) -> None:
        if not 0 < min_scale <= 1:
            raise ValueError(f"min_scale {min_scale!r} must be in (0, 1]")
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"ratio {ratio!r} must be (low, high) with 0 < low <= high")
        if val_xtra < 0:
            raise ValueError(f"val_xtra {val_xtra!r} must be >= 0")
        self.size = _size_hw(size, "RandomResizedCrop")
        self.min_scale, self.ratio, self.val_xtra = min_scale, ratio, val_xtra

    def to_spec(self) -> dict[str, Any]:
        """Size, scale, ratio and the validation crop's margin."""
        return {"size": list(self.size), "min_scale": self.min_scale,
                "ratio": [float(r) for r in self.ratio], "val_xtra": self.val_xtra}  # fmt: skip

    def __call__(self, sample: list[Any], kinds: Kinds, train: bool) -> list[Any]:
        reference = _reference_size(sample, kinds, "RandomResizedCrop", scaled_images=True)
        width, height = reference
        box = self._train_box(width, height) if train else self._valid_box(width, height)
        return _resize_sample(sample, kinds, box, (self.size[1], self.size[0]), reference)

    def _train_box(self, width: int, height: int) -> Box:
        target_aspect = self.size[1] / self.size[0]
        log_low, log_high = math.log(self.ratio[0]), math.log(self.ratio[1])
        for _ in range(10):
            area = width * height * random.uniform(self.min_scale, 1.0)
            aspect = target_aspect * math.exp(random.uniform(log_low, log_high))
            box_w, box_h = math.sqrt(area * aspect), math.sqrt(area / aspect)
            if box_w <= width and box_h <= height:
                return _place(width, height, box_w, box_h, train=True)
        # no draw fitted (a very long image): the largest centre crop with an allowed ratio
        low, high = target_aspect * self.ratio[0], target_aspect * self.ratio[1]
        aspect = min(max(width / height, low), high)
        box_w, box_h = min(width, height * aspect), min(height, width / aspect)
        return _place(width, height, box_w, box_h, train=False)

    def _valid_box(self, width: int, height: int) -> Box:
        target_h, target_w = self.size
        scale = max(target_w / width, target_h / height) * (1 + self.val_xtra)
        box_w, box_h = min(width, target_w / scale), min(height, target_h / scale)
        return _place(width, height, box_w, box_h, train=False)


@register_spec
class CenterCrop(InitSpec, ItemTransform):
    """Crop the centre `size` of every item without scaling; a smaller item is padded with
    zeros.

    Args:
        size: an int for a square, or (height, width).
    """

    order = 20
    random = False

    def __init__(self, size: Size) -> None:
        self.size = _size_hw(size, "CenterCrop")

    def to_spec(self) -> dict[str, Any]:
        """The size."""
        return {"size": list(self.size)}

    def __call__(self, sample: list[Any], kinds: Kinds, train: bool) -> list[Any]:
        width, height = _reference_size(sample, kinds, "CenterCrop")
        target_h, target_w = self.size
        left, top = (width - target_w) // 2, (height - target_h) // 2
        box = (left, top, left + target_w, top + target_h)
        out = []
        for part, kind in zip(sample, kinds):
            if kind == IMAGE:
                part = convert_mode(load_image(part).crop(box), target_mode(part))
            elif kind == MASK:
                part = load_image(part).crop(box)
            elif kind == POINTS:
                part = np.asarray(part, dtype=np.float32).reshape(-1, 2) - np.array(
                    [left, top], dtype=np.float32
                )
            out.append(part)
        return out
