"""`crappify`: degrade an image the way lesson 7 does, to train a model that restores it.

The image is shrunk (its shorter side to `low_size`), optionally marked with a random number,
saved as a JPEG of random quality and scaled back up to its size. `crappify_folder` writes a
crappified copy of every image of a folder tree, reproducibly (each file's random choices come
from the seed and its relative path) and in several processes. (The module is not named
`crappify`: importing it would then replace the function `mentor.vision.crappify`.)

Example:
    >>> crappify_folder("imagenette/train", "crappy/train", size=128, low_size=64)
    2000
"""

from __future__ import annotations

import io
import math
import os
import random
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageStat

from mentor.data.items import get_image_files

RESAMPLE = Image.Resampling.BILINEAR
REDUCING_GAP = 2.0  # the same resampling as `mentor.vision.resize.Resize`, so targets align
MAX_JPEG_QUALITY = 95  # Pillow's advice: above 95 the file grows and the image does not improve
SAVED_JPEG_QUALITY = 95  # a .jpg output: the degradation is the one drawn, not a second one
SHOWN_SKIPPED = 5


def _check_quality(quality: Sequence[int]) -> tuple[int, int]:
    """`quality` as (low, high), 1 <= low <= high <= 95, or a ValueError naming it."""
    if len(quality) != 2 or not all(isinstance(q, int) for q in quality):
        raise ValueError(
            f"quality {quality!r} must be a pair of whole numbers (low, high), such as (10, 70)"
        )
    low, high = int(quality[0]), int(quality[1])
    if not 1 <= low <= MAX_JPEG_QUALITY or not 1 <= high <= MAX_JPEG_QUALITY:
        raise ValueError(
            f"quality {quality!r} must lie in 1..{MAX_JPEG_QUALITY} (JPEG quality), "
            "such as (10, 70)"
        )
    if low > high:
        raise ValueError(f"quality {quality!r}: low {low} > high {high}; give (low, high)")
    return low, high


def _check_low_size(low_size: int, image_size: tuple[int, int] | None = None) -> None:
    """Refuse a low size that is not positive or larger than the image's shorter side."""
    if not isinstance(low_size, int) or low_size <= 0:
        raise ValueError(f"low_size {low_size!r} must be a whole number of pixels > 0, such as 64")
    if image_size is not None and low_size > min(image_size):
        raise ValueError(
            f"low_size {low_size} is larger than the image's shorter side ({min(image_size)} px "
            f"of {image_size[0]} x {image_size[1]}); give a low_size <= {min(image_size)}"
        )


def resize_shorter(image: Image.Image, shorter: int) -> Image.Image:
    """`image` scaled (bilinear) so that its shorter side is `shorter` px, aspect kept.

    Args:
        image: a PIL image.
        shorter: the shorter side wanted, in pixels.
    """
    width, height = image.size
    scale = shorter / min(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size == image.size:
        return image.copy()
    return image.resize(size, RESAMPLE, reducing_gap=REDUCING_GAP)


def _draw_number(image: Image.Image, rng: random.Random) -> None:
    """Draw a random number (0-99) at a random size and place, in a colour that stands out
    from what lies under it."""
    width, height = image.size
    font_size = rng.randint(max(6, min(width, height) // 8), max(8, min(width, height) // 3))
    font = ImageFont.load_default(size=font_size)
    text = str(rng.randint(0, 99))
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = (math.ceil(v) for v in draw.textbbox((0, 0), text, font=font))
    x = rng.randint(0, max(0, width - right)) - left
    y = rng.randint(0, max(0, height - bottom)) - top
    box = (max(0, x + left), max(0, y + top), min(width, x + right), min(height, y + bottom))
    under = ImageStat.Stat(image.convert("L").crop(box)).mean[0] if box[2] > box[0] else 128.0
    channel = (lambda: rng.randint(200, 255)) if under < 128 else (lambda: rng.randint(0, 55))
    fill: int | tuple[int, int, int] = (
        channel() if image.mode == "L" else (channel(), channel(), channel())
    )
    draw.text((x, y), text, font=font, fill=fill)


def crappify(
    image: Image.Image,
    low_size: int = 64,
    quality: Sequence[int] = (10, 70),
    text: bool = False,
    rng: random.Random | None = None,
) -> Image.Image:
    """A degraded copy of `image`, of the same size: shrunk, JPEG-compressed, scaled back up.

    The image is scaled (bilinear) so that its shorter side is `low_size`, optionally marked
    with a random number (0-99) at a random place and size, saved as a JPEG of a random
    quality in `quality`, reopened and scaled back (bilinear) to its size. Images that are
    neither RGB nor greyscale are converted to RGB first.

    Args:
        image: a PIL image.
        low_size: the shorter side of the shrunk image, in pixels (default 64); at most the
            image's shorter side.
        quality: (low, high) JPEG quality, both included, in 1..95 (default (10, 70)).
        text: draw a random number on the image, as lesson 7 does (default False).
        rng: the source of the random choices (default None: a fresh unseeded one); pass
            `random.Random(seed)` to reproduce a result.

    Example:
        >>> crappify(Image.open("dog.jpg"), low_size=64, rng=random.Random(0))
    """
    _check_low_size(low_size, image.size)
    low, high = _check_quality(quality)
    rng = rng if rng is not None else random.Random()
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    small = resize_shorter(image, low_size)
    if text:
        _draw_number(small, rng)
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=rng.randint(low, high))
    buffer.seek(0)
    with Image.open(buffer) as reopened:
        degraded = reopened.convert(image.mode)
    return degraded.resize(image.size, RESAMPLE)


@dataclass(frozen=True)
class _Settings:
    """What every file of a folder is crappified with (sent to the worker processes)."""

    src: Path
    dst: Path
    size: int | None
    low_size: int
    quality: tuple[int, int]
    text: bool
    seed: int


def _save(image: Image.Image, path: Path) -> None:
    """Write `image` in the format its suffix means, without a second loss where possible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix in (".jpg", ".jpeg", ".jpe", ".jfif"):
        image.save(path, format="JPEG", quality=SAVED_JPEG_QUALITY)
    elif suffix == ".webp":
        image.save(path, format="WEBP", lossless=True)
    else:
        image.save(path)


def _crappify_file(rel: str, settings: _Settings) -> str | None:
    """Crappify `src/rel` into `dst/rel`; None when written, else why it was skipped."""
    try:
        with Image.open(settings.src / rel) as opened:
            image = opened.convert("RGB" if opened.mode not in ("RGB", "L") else opened.mode)
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        return f"{rel} ({type(err).__name__})"
    if settings.size is not None:
        image = resize_shorter(image, settings.size)
    if settings.low_size > min(image.size):
        return f"{rel} (shorter side {min(image.size)} px < low_size {settings.low_size})"
    rng = random.Random(f"{settings.seed}:{rel}")  # a str seed is hashed by SHA-512: stable
    out = crappify(image, settings.low_size, settings.quality, settings.text, rng)
    _save(out, settings.dst / rel)
    return None


def _crappify_files(rels: list[str], settings: _Settings) -> list[str | None]:
    """`_crappify_file` over a chunk of files (one task per chunk keeps the pool's overhead
    low)."""
    return [_crappify_file(rel, settings) for rel in rels]


def _check_folders(src: Path, dst: Path) -> list[str]:
    """The image files of `src` as relative POSIX paths, after refusing bad folders."""
    if not src.is_dir():
        raise FileNotFoundError(f"the source folder {str(src)!r} does not exist or is not a folder")
    src_full, dst_full = src.resolve(), dst.resolve()
    if dst_full == src_full or src_full in dst_full.parents:
        raise ValueError(
            f"the destination {str(dst)!r} is inside the source {str(src)!r} (or is it): the "
            "copies would mix with the originals; write them to a folder outside the source"
        )
    rels = [path.relative_to(src).as_posix() for path in get_image_files(src)]
    if not rels:
        raise ValueError(
            f"the source folder {str(src)!r} holds no image files (looked for suffixes such "
            "as .jpg, .png under it, in every sub-folder)"
        )
    return rels


def default_workers() -> int:
    """The number of CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def crappify_folder(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    size: int | None = None,
    low_size: int = 64,
    quality: Sequence[int] = (10, 70),
    text: bool = False,
    seed: int = 0,
    workers: int | None = None,
) -> int:
    """Write a crappified copy of every image under `src` to the same relative path in `dst`.

    Outputs keep their names and are written in the format their suffix means (PNG for .png,
    JPEG at quality 95 for .jpg and .jpeg). Each file's random choices come from `seed` and
    its relative path, so the output does not depend on the order or the number of workers.
    Files that Pillow cannot open are skipped, with one warning.

    Args:
        src: the folder of originals, searched recursively.
        dst: where the copies go (created; not `src` nor inside it).
        size: first scale each image so its shorter side is `size` (default None: keep the
            size); `Resize(size)` of the original is then the aligned target.
        low_size: shorter side of the shrunk image (default 64).
        quality: (low, high) JPEG quality range, both included (default (10, 70)).
        text: draw a random number on each image (default False).
        seed: seed of the random choices (default 0).
        workers: processes (default None: one per CPU); 1 works in this process.

    Returns:
        The number of files written.

    Example:
        >>> crappify_folder("imagenette/val", "crappy/val", size=128, low_size=64)
    """
    src, dst = Path(src), Path(dst)
    _check_low_size(low_size)
    if size is not None and (not isinstance(size, int) or size < low_size):
        raise ValueError(f"size {size!r} must be a whole number >= low_size ({low_size})")
    settings = _Settings(src, dst, size, low_size, _check_quality(quality), text, seed)
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers {workers!r} must be at least 1")
    rels = _check_folders(src, dst)
    workers = min(workers, len(rels))
    if workers == 1:
        results = _crappify_files(rels, settings)
    else:
        chunk = max(1, min(64, len(rels) // (4 * workers)))
        chunks = [rels[i : i + chunk] for i in range(0, len(rels), chunk)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = pool.map(_crappify_files, chunks, [settings] * len(chunks))
            results = [result for part in parts for result in part]
    skipped = [why for why in results if why is not None]
    if skipped:
        shown = ", ".join(skipped[:SHOWN_SKIPPED])
        more = ", ..." if len(skipped) > SHOWN_SKIPPED else ""
        warnings.warn(
            f"crappify_folder skipped {len(skipped)} file(s) it could not use: {shown}{more}",
            stacklevel=2,
        )
    return len(rels) - len(skipped)
