"""Downloads and archives, done safely: the one downloader every part of mentor uses.

`download_url` fetches a URL into a file with a timeout on every request, retries timeouts
and dropped connections with backoff, resumes a broken download from its `.part` file (HTTP
Range), draws a progress bar on a terminal, and checks the file against a `Checksum` (its
size, its sha256 or a prefix of it, or fastai's md5 of the first MiB): a file that does not
match is deleted and refused. `extract_archive` unpacks a .tgz/.tar.gz/.tar/.zip into a new
folder, and refuses an archive with a member that would land outside it (`../`, an absolute
path, a link pointing out, a device) without leaving anything of it behind.

Environment: `MENTOR_OFFLINE=1` never downloads (the error says where to put the file
instead); `MENTOR_WEIGHTS_URL` names a mirror of the pretrained weights (see `mirrored`).

Example:
    >>> path = download_url(url, Path("data.tgz"), Checksum(sha256="9f86d081884c7d65"))
    >>> extract_archive(path, Path("data"))
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import shutil
import socket
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mentor.core.progress import Progress
from mentor.core.warn import warn

DEFAULT_TIMEOUT = 30.0  # seconds a request may wait for the next bytes
CHUNK = 1 << 20
USER_AGENT = "mentor (Python urllib)"
CHECK_URL = "check the URL"


class DownloadError(OSError):
    """A download that failed; the message names the URL, says why and what to do, and
    `reason` is the why alone, in a few words."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class ChecksumError(DownloadError):
    """A downloaded file that does not match its checksum (the file has been deleted)."""


class UnsafeArchiveError(ValueError):
    """An archive with a member that would land outside its folder (nothing is extracted)."""


class _Failed(Exception):
    """One request that failed: why, and whether trying again may help."""

    def __init__(self, why: str, retry: bool, discard: bool = False, advice: str = "") -> None:
        super().__init__(why)
        self.why, self.retry, self.discard = why, retry, discard
        self.advice = advice or (
            "check the connection (or proxy) and run again, which resumes the download"
        )


@dataclass(frozen=True)
class Checksum:
    """What a downloaded file must be: any of its size, its sha256 (the whole hex digest or,
    as in torch hub's file names such as `resnet34-b627a593.pth`, a prefix of at least 8
    digits) and `md5_head`, the md5 of its first MiB (the checks fastai publishes).

    Example:
        >>> Checksum(size=3214948, md5_head="2dbc7ec6f9259b583af0072c55816a88")
    """

    size: int | None = None
    sha256: str | None = None
    md5_head: str | None = None

    def __post_init__(self) -> None:
        if self.sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{8,64}", self.sha256):
            raise ValueError(
                f"sha256={self.sha256!r} is not a sha256 hex digest (or a prefix of at least "
                "8 hex digits); compute one with `sha256sum FILE`"
            )

    def mismatch(self, path: Path) -> str | None:
        """None when `path` matches; otherwise what was expected and what was found."""
        size = path.stat().st_size
        if self.size is not None and size != self.size:
            return f"expected {self.size} bytes, got {size}"
        if self.sha256 is not None:
            digest = file_sha256(path)
            if not digest.startswith(self.sha256.lower()):
                return f"expected sha256 {self.sha256.lower()}, got {digest}"
        if self.md5_head is not None:
            with open(path, "rb") as file:
                digest = hashlib.md5(file.read(1 << 20), usedforsecurity=False).hexdigest()
            if digest != self.md5_head:
                return f"expected md5 (first MiB) {self.md5_head}, got {digest}"
        return None


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of the file at `path`, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def offline() -> bool:
    """Whether `$MENTOR_OFFLINE` forbids downloading (set to anything but '' or '0')."""
    return os.environ.get("MENTOR_OFFLINE", "") not in ("", "0")


def mirrored(url: str) -> str:
    """`url`, or the file of the same name under `$MENTOR_WEIGHTS_URL` when that is set (a
    mirror holding `resnet34-b627a593.pth`, `wt103-fwd.tgz`, ...)."""
    base = os.environ.get("MENTOR_WEIGHTS_URL", "")
    return f"{base.rstrip('/')}/{url.rsplit('/', 1)[-1]}" if base else url


def download_url(
    url: str,
    dest: str | Path,
    checksum: Checksum | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = 3,
    backoff: float = 1.0,
    progress: bool | None = None,
    max_bytes: int | None = None,
    fix: str | None = None,
) -> Path:
    """Download `url` to the file `dest` (kept when it is there and matches `checksum`).

    Args:
        url: an http(s) URL. dest: the file to write. checksum: what the file must match
            (None: not checked).
        timeout: seconds each request may wait for bytes (30). retries: tries after the first
            on a timeout, a dropped connection or a server error (3), `backoff` (1 s) times
            1, 2, 4... apart; each resumes where the last stopped.
        progress: draw a bar on stderr, or under the cell in a notebook (None: when stderr is
            a terminal, or in a notebook).
        max_bytes: refuse a larger file (None: no limit). fix: what the user can do instead,
            for the error messages (default: put the file at `dest`).

    Raises:
        DownloadError: the URL could not be fetched (the message says why and what to do);
            ChecksumError when the file is not the one expected (it is deleted).

    Example:
        >>> download_url(URLs.MNIST_TINY, Path("mnist_tiny.tgz"))
    """
    dest = Path(dest)
    fix = fix or f"download it another way and put it at {dest}"
    if dest.exists():
        wrong = checksum.mismatch(dest) if checksum is not None else None
        if wrong is None:
            return dest
        warn(f"{dest} does not match its checksum ({wrong}): downloading it again")
        dest.unlink()
    if offline():
        raise DownloadError(
            f"not downloading {url}: MENTOR_OFFLINE is set; unset it, or {fix}",
            "not downloaded: MENTOR_OFFLINE is set",
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _fetch(url, part, timeout, progress, max_bytes)
            break
        except _Failed as failed:
            if failed.discard:
                part.unlink(missing_ok=True)
            if not failed.retry or attempt == retries:
                tries = f" ({attempt + 1} tries)" if attempt else ""
                raise DownloadError(
                    f"could not download {url}: {failed.why}{tries}; {failed.advice}, or {fix}",
                    failed.why,
                ) from None
            time.sleep(backoff * 2**attempt)
    if checksum is not None:
        wrong = checksum.mismatch(part)
        if wrong is not None:
            part.unlink()
            raise ChecksumError(
                f"the file downloaded from {url} is not the one expected ({wrong}), so it was "
                f"deleted; run again to download it anew, and if that fails too, the file "
                f"changed on the server: {fix} with a copy you trust",
                f"not the file expected ({wrong})",
            )
    part.replace(dest)
    return dest


def _fetch(url: str, part: Path, timeout: float, show: bool | None, max_bytes: int | None) -> None:
    """One request, appending to `part` from its size (the server may restart it)."""
    start = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, **({"Range": f"bytes={start}-"} if start else {})}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if start and response.status != 206:
                start = 0  # the server sends the whole file again
            total = _total_size(response, start)
            if max_bytes is not None and total is not None and total > max_bytes:
                raise _Failed(f"it is {total} bytes, {_too_big(max_bytes)}", False, True, CHECK_URL)
            done = _stream(response, part, start, total, show, max_bytes)
    except urllib.error.HTTPError as err:
        if err.code == 416 and start:  # the part does not fit the file: start again
            part.unlink()
        retry = err.code in (408, 416, 429) or err.code >= 500
        raise _Failed(
            f"HTTP {err.code} {err.reason}", retry, advice="" if retry else CHECK_URL
        ) from None
    except urllib.error.URLError as err:
        raise _reason(err.reason) from None
    except (OSError, http.client.HTTPException) as err:
        raise _reason(err) from None
    if total is not None and done < total:
        raise _Failed(f"the connection closed after {done} of {total} bytes", True)


def _stream(
    response: http.client.HTTPResponse,
    part: Path,
    start: int,
    total: int | None,
    show: bool | None,
    max_bytes: int | None,
) -> int:
    """Copy the body to `part` (appended from `start`); returns the bytes now in `part`."""
    done = start
    with open(part, "ab" if start else "wb") as out, Progress(part.stem, total, start, show) as bar:
        while chunk := response.read(CHUNK):
            out.write(chunk)
            done += len(chunk)
            bar.update(done)
            if max_bytes is not None and done > max_bytes:
                raise _Failed(f"it is {_too_big(max_bytes)}", False, True, CHECK_URL)
    return done


def _total_size(response: http.client.HTTPResponse, start: int) -> int | None:
    """The whole file's size, from Content-Range (a resumed request) or Content-Length."""
    if response.status == 206:
        whole = (response.headers.get("Content-Range") or "").rpartition("/")[2]
        return int(whole) if whole.isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) + start if length and length.isdigit() else None


def _too_big(max_bytes: int) -> str:
    return f"more than the {max_bytes} bytes allowed"


def _reason(err: object) -> _Failed:
    """Why a request failed, in a few words, and whether to try again."""
    if isinstance(err, TimeoutError):
        return _Failed("the server did not answer in time (timed out)", True)
    if isinstance(err, socket.gaierror):
        return _Failed(f"its host name could not be resolved ({err}): no network?", False)
    if isinstance(err, ConnectionError | http.client.HTTPException):
        return _Failed(f"the connection failed ({type(err).__name__}: {err})", True)
    advice = "check the connection (or proxy), and that there is room to write the file"
    return _Failed(f"{type(err).__name__}: {err}", False, advice=advice)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` + '.lock' (POSIX; nothing elsewhere), so that the
    processes fetching one file (every rank of a distributed run) take turns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if sys.platform == "win32":
        yield
        return
    import fcntl

    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def extract_archive(archive: Path, dest: Path, strip: str | None = None) -> Path:
    """Extract `archive` (a tar, compressed or not, or a zip: told from its content) into the
    new folder `dest`, refusing any member that would land outside it.

    Members go to a hidden folder beside `dest`, renamed to `dest` once all are out: `dest`
    never holds half an archive, and a refused or broken archive leaves nothing behind.

    Args:
        archive: the file. dest: the folder to create (it must not exist).
        strip: when the archive holds just one folder and it has this name, that folder's
            contents become `dest`'s (`mnist_sample.tgz` holds `mnist_sample/`).

    Raises:
        UnsafeArchiveError: a member is an absolute path, climbs out with `..`, is a link
            pointing out, or a device; ValueError: the file is not an archive.
    """
    scratch = dest.with_name(f".{dest.name}.extracting")
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, scratch)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, scratch)
        else:
            raise ValueError(f"{archive} is not a .tgz, .tar.gz, .tar or .zip archive")
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    entries = list(scratch.iterdir())
    if strip is not None and len(entries) == 1 and entries[0].name == strip and entries[0].is_dir():
        entries[0].rename(dest)
        scratch.rmdir()
    else:
        scratch.rename(dest)
    return dest


def _extract_tar(archive: Path, root: Path) -> None:
    base = os.path.realpath(root)
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:  # one pass, in order: a .tgz is decompressed once
            if member.issym():
                link = os.path.join(os.path.dirname(member.name), member.linkname)
                _check_name(archive, base, member.name, link, member.linkname)
            elif member.islnk():
                _check_name(archive, base, member.name, member.linkname, member.linkname)
            elif not (member.isfile() or member.isdir()):
                raise _unsafe(archive, member.name, "a device or a pipe")
            else:
                _check_name(archive, base, member.name)
            try:
                tar.extract(member, root, filter="data")
            except tarfile.FilterError as err:  # the standard library's own checks, as well
                raise _unsafe(archive, member.name, str(err)) from None


def _extract_zip(archive: Path, root: Path) -> None:
    base = os.path.realpath(root)
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():  # zipfile writes a link's target as a plain file
            _check_name(archive, base, info.filename)
        zipped.extractall(root)


def _check_name(
    archive: Path, base: str, name: str, link: str | None = None, shown: str = ""
) -> None:
    """Refuse `name` (and the target `link` of a link, relative to the archive's root)
    unless both stay inside `base`."""
    for path, what in ((name, "a path"), (link, f"a link to {shown!r}")):
        if path is None:
            continue
        if os.path.isabs(path) or path.startswith(("/", "\\")):
            raise _unsafe(archive, name, f"{what} that is absolute")
        full = os.path.normpath(os.path.join(base, path))
        if os.path.commonpath([base, full]) != base:
            raise _unsafe(archive, name, f"{what} outside the folder it is extracted to")


def _unsafe(archive: Path, name: str, why: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(
        f"refusing to extract {archive}: its member {name!r} is {why}, so nothing of it was "
        "extracted; delete the file and download it again from a source you trust"
    )


__all__ = [
    "DEFAULT_TIMEOUT",
    "Checksum",
    "ChecksumError",
    "DownloadError",
    "UnsafeArchiveError",
    "download_url",
    "extract_archive",
    "file_sha256",
    "locked",
    "mirrored",
    "offline",
]
