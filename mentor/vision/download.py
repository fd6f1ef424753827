"""`download_images` (lesson 2): build an image data set from a list of URLs."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from mentor.core.download import DownloadError, download_url
from mentor.core.warn import warn

MAX_IMAGE_BYTES = 50 << 20  # a bigger "image" is refused before it fills the disk
# PIL's format name -> the file extension images of that format get
EXTENSIONS = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp",
              "BMP": ".bmp", "TIFF": ".tif", "ICO": ".ico"}  # fmt: skip


@dataclass
class ImageDownloads:
    """What `download_images` did: the files it saved (in the order of the URLs) and, for
    each URL it skipped, why."""

    saved: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def download_images(
    urls: str | Path | Iterable[str],
    dest: str | Path,
    max_pics: int = 1000,
    n_workers: int = 8,
    timeout: float = 4.0,
) -> ImageDownloads:
    """Download the images at `urls` into the folder `dest`, in parallel, keeping only files
    that decode as images.

    Files are named with zero-padded numbers that follow those already in `dest` (nothing is
    overwritten) and the extension of their format (`00000003.jpg`). A URL that fails (an
    HTTP error, a timeout, not an image, more than 50 MB) is skipped: one warning sums them
    up, and the returned `ImageDownloads` lists each with the reason.

    Args:
        urls: a list of http(s) URLs, or the path of a text file with one URL per line.
        dest: the folder to save to (created if needed). max_pics: at most this many URLs
            are fetched (1000). n_workers: parallel downloads (8). timeout: seconds each
            request may wait for bytes (4).

    Example:
        >>> report = download_images("urls_grizzly.txt", path / "grizzly", max_pics=200)
        >>> verify_images(get_image_files(path))   # nothing left to remove
    """
    todo = _read_urls(urls)[:max_pics]
    folder = Path(dest)
    folder.mkdir(parents=True, exist_ok=True)
    first = 1 + max((int(f.stem) for f in folder.iterdir() if f.stem.isdigit()), default=-1)
    width = max(8, len(str(first + len(todo))))
    names = [f"{first + i:0{width}d}" for i in range(len(todo))]
    with ThreadPoolExecutor(max(1, n_workers)) as pool:
        results = list(pool.map(lambda u, n: _fetch_image(u, n, folder, timeout), todo, names))
    report = ImageDownloads()
    for url, result in zip(todo, results, strict=True):
        if isinstance(result, Path):
            report.saved.append(result)
        else:
            report.failed.append((url, result))
    if report.failed:
        shown = "; ".join(f"{url}: {why}" for url, why in report.failed[:5])
        more = f"; and {len(report.failed) - 5} more" if len(report.failed) > 5 else ""
        warn(
            f"download_images skipped {len(report.failed)} of {len(todo)} URLs (saved "
            f"{len(report.saved)} in {folder}): {shown}{more}; the returned report lists all"
        )
    return report


def _read_urls(urls: str | Path | Iterable[str]) -> list[str]:
    if isinstance(urls, str | Path):
        file = Path(urls)
        if not file.is_file():
            raise FileNotFoundError(
                f"URL file {str(file)!r} not found; pass the path of a text file with one URL "
                "per line, or a list of URLs"
            )
        lines = (line.strip() for line in file.read_text(encoding="utf-8").splitlines())
        return [line for line in lines if line and not line.startswith("#")]
    return [str(url).strip() for url in urls]


def _fetch_image(url: str, name: str, folder: Path, timeout: float) -> Path | str:
    """The saved file, or why there is none."""
    if not url.startswith(("http://", "https://")):
        return "not an http(s) URL"
    part = folder / f".{name}.download"
    part.unlink(missing_ok=True)
    try:
        download_url(url, part, timeout=timeout, retries=1, backoff=0.25, progress=False,
                     max_bytes=MAX_IMAGE_BYTES)  # fmt: skip
    except DownloadError as err:
        return err.reason
    try:
        extension = _image_extension(part)
        if extension is None:
            return "not an image (PIL cannot decode it)"
        target = folder / f"{name}{extension}"
        with open(target, "xb") as out:  # "x": never overwrite a file
            out.write(part.read_bytes())
        return target
    except FileExistsError:
        return f"{name} appeared in {folder} meanwhile; not overwritten"
    finally:
        part.unlink(missing_ok=True)


def _image_extension(path: Path) -> str | None:
    """The extension for the image in `path`, or None when it does not fully decode."""
    try:
        with Image.open(path) as img:
            image_format = img.format or ""
            img.load()
    except Exception:  # corrupt, truncated, a decompression bomb, not an image at all
        return None
    return EXTENSIONS.get(image_format, f".{image_format.lower() or 'img'}")


__all__ = ["ImageDownloads", "download_images"]
