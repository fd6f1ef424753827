"""`untar_data`: a data set by name from the shared data folder, or by URL (`URLs.PETS`),
downloaded and extracted once into mentor's cache folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from mentor.core.download import (
    DEFAULT_TIMEOUT,
    Checksum,
    download_url,
    extract_archive,
    locked,
)
from mentor.core.paths import data_path, data_root, mentor_home
from mentor.core.warn import warn
from mentor.data.urls import CHECKSUMS, URLs

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
MARKER = ".extracted"


def cache_dir() -> Path:
    """mentor's cache folder: `$MENTOR_HOME` (default `~/.cache/mentor`)."""
    return mentor_home()


def untar_data(
    url_or_name: str,
    dest: str | Path | None = None,
    *,
    sha256: str | None = None,
    force_download: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool | None = None,
) -> Path:
    """The folder of a data set, given by name or by URL, extracted once.

    A name (`"mnist_sample"`) is looked up in the shared data folder (`$MENTOR_DATA`) only.
    A URL (`URLs.MNIST_SAMPLE`) is first looked up there by its file's stem (a folder
    `mnist_sample/` or an archive `mnist_sample.tgz`); otherwise it is downloaded into
    `$MENTOR_HOME/archive` (resumed if a download broke, checked against `sha256` or the
    checksum fastai publishes for it) and extracted. Archives (.tgz, .tar.gz, .tar, .zip)
    are extracted safely into `dest` (default `$MENTOR_HOME/data`) as a folder named after
    the data set.

    Args:
        url_or_name: a data set's name, or the URL of its archive.
        dest: where archives are extracted (default `$MENTOR_HOME/data`).
        sha256: the archive's sha256 (checked; default: fastai's published check if any).
        force_download: download and extract again even when a copy is there (False).
        timeout: seconds each request may wait (30). progress: a download bar (None: on a
            terminal).

    Raises:
        FileNotFoundError: a name that is not in the shared folder.
        DownloadError: the download failed (why, and what to do, in the message).

    Example:
        >>> path = untar_data(URLs.MNIST_SAMPLE)   # .../mnist_sample with train/ and valid/
        >>> path = untar_data("mnist_sample")      # from $MENTOR_DATA only
    """
    out = Path(dest) if dest is not None else cache_dir() / "data"
    if "://" not in url_or_name:
        return _shared(url_or_name, out)
    url = url_or_name
    file_name = url.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
    name = archive_stem(file_name)
    if not force_download and _in_shared(name) is not None:
        return _shared(name, out)
    target = out / name
    if (target / MARKER).exists() and not force_download:
        return target
    checksum = Checksum(sha256=sha256) if sha256 is not None else CHECKSUMS.get(url)
    if checksum is None:
        warn(f"no checksum is known for {url}: it is downloaded unchecked (pass sha256=...)")
    archive = cache_dir() / "archive" / file_name
    fix = (
        f"download {file_name} another way and put it at {archive}, or put the data set "
        f"as {name}/ in the shared data folder (MENTOR_DATA={data_root()})"
    )
    with locked(archive):
        if force_download:
            archive.unlink(missing_ok=True)
        elif (target / MARKER).exists():  # another process got it while this one waited
            return target
        download_url(url, archive, checksum, timeout=timeout, progress=progress, fix=fix)
        _extract(archive, target)
    return target


def archive_stem(file_name: str) -> str:
    """The name of the data set an archive holds: `mnist_sample.tgz` -> `mnist_sample`."""
    for suffix in ARCHIVE_SUFFIXES:
        if file_name.endswith(suffix):
            return file_name[: -len(suffix)]
    return Path(file_name).stem


def _in_shared(name: str) -> Path | None:
    """The folder or archive of data set `name` in the shared data folder, if there."""
    root = data_root()
    if (root / name).is_dir():
        return root / name
    return next(
        (root / f"{name}{ext}" for ext in ARCHIVE_SUFFIXES if (root / f"{name}{ext}").is_file()),
        None,
    )


def _shared(name: str, out: Path) -> Path:
    """Data set `name` from the shared data folder: its folder, or its archive extracted."""
    root = data_path()
    found = _in_shared(name)
    if found is None:
        raise FileNotFoundError(
            f"data set {name!r} not found in {str(root)!r} (as a folder or a .tgz/.tar.gz/.tar"
            "/.zip archive); set MENTOR_DATA to the folder that holds the data sets, or give "
            "untar_data the data set's URL (e.g. URLs.MNIST_SAMPLE) to download it"
        )
    if found.is_dir():
        return found
    target = out / name
    with locked(out / name):
        if not (target / MARKER).exists():
            _extract(found, target)
    return target


def _extract(archive: Path, target: Path) -> None:
    """Extract `archive` as the folder `target` (its one top folder when it is called like
    `target`; review_polarity.tar.gz holds txt_sentoken/, which lands inside it)."""
    if target.exists():  # an earlier extraction that did not finish, or force_download
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    extract_archive(archive, target, strip=target.name)
    (target / MARKER).touch()


__all__ = ["URLs", "archive_stem", "cache_dir", "untar_data"]
