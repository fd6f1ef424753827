"""The downloader against a local server: checksums, resume, retries, timeouts, errors that
say what to do, the progress bar, and safe extraction of hostile archives."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from mentor.core.download import (
    Checksum,
    ChecksumError,
    DownloadError,
    UnsafeArchiveError,
    download_url,
    extract_archive,
    mirrored,
)
from mentor.core.progress import Progress
from tests.fileserver import FileServer


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_checks_the_file_and_keeps_it(file_server: FileServer, tmp_path: Path) -> None:
    body = os.urandom(300_000)
    url = file_server.serve("data.bin", body)
    dest = tmp_path / "out" / "data.bin"
    checksum = Checksum(size=len(body), sha256=sha(body))
    assert download_url(url, dest, checksum) == dest
    assert dest.read_bytes() == body
    assert not dest.with_name("data.bin.part").exists()
    download_url(url, dest, checksum)  # already there and matching: no second request
    assert file_server.ranges("data.bin") == [None]


def test_a_corrupt_download_fails_its_hash_and_is_deleted(
    file_server: FileServer, tmp_path: Path
) -> None:
    good = b"x" * 5000
    bad = good[:-1] + b"y"
    url = file_server.serve("set.tgz", bad)
    dest = tmp_path / "set.tgz"
    with pytest.raises(ChecksumError) as err:
        download_url(url, dest, Checksum(sha256=sha(good)))
    message = str(err.value)
    assert url in message and sha(good) in message and sha(bad) in message
    assert "deleted" in message and "run again" in message
    assert not dest.exists() and not (tmp_path / "set.tgz.part").exists()


def test_a_404_fails_at_once_naming_the_url_and_the_fix(
    file_server: FileServer, tmp_path: Path
) -> None:
    url = file_server.url("missing.tgz")
    with pytest.raises(DownloadError) as err:
        download_url(url, tmp_path / "missing.tgz", fix="put it at /some/where")
    message = str(err.value)
    assert url in message and "HTTP 404" in message and "put it at /some/where" in message
    assert file_server.ranges("missing.tgz") == [None]  # a 404 is not retried


def test_a_hanging_server_times_out_is_retried_then_fails_clearly(
    file_server: FileServer, tmp_path: Path
) -> None:
    url = file_server.serve("slow.tgz", hang=True)
    start = time.perf_counter()
    with pytest.raises(DownloadError) as err:
        download_url(url, tmp_path / "slow.tgz", timeout=0.3, retries=1, backoff=0.05)
    assert time.perf_counter() - start < 5
    message = str(err.value)
    assert url in message and "timed out" in message and "2 tries" in message
    assert "check the connection" in message
    assert len(file_server.ranges("slow.tgz")) == 2


def test_an_interrupted_download_resumes_with_a_range_request(
    file_server: FileServer, tmp_path: Path
) -> None:
    body = os.urandom(200_000)
    url = file_server.serve("big.bin", body, drop_after=70_000)
    dest = tmp_path / "big.bin"
    download_url(url, dest, Checksum(sha256=sha(body)), backoff=0.01)
    assert dest.read_bytes() == body
    assert file_server.ranges("big.bin") == [None, "bytes=70000-"]


def test_a_part_file_left_by_an_earlier_run_is_resumed(
    file_server: FileServer, tmp_path: Path
) -> None:
    body = os.urandom(50_000)
    url = file_server.serve("big.bin", body)
    (tmp_path / "big.bin.part").write_bytes(body[:1234])
    download_url(url, tmp_path / "big.bin", Checksum(sha256=sha(body)))
    assert (tmp_path / "big.bin").read_bytes() == body
    assert file_server.ranges("big.bin") == ["bytes=1234-"]


def test_a_server_that_ignores_range_restarts_the_file(
    file_server: FileServer, tmp_path: Path
) -> None:
    body = os.urandom(50_000)
    url = file_server.serve("big.bin", body, ignore_range=True)
    (tmp_path / "big.bin.part").write_bytes(b"stale bytes")
    download_url(url, tmp_path / "big.bin", Checksum(sha256=sha(body)))
    assert (tmp_path / "big.bin").read_bytes() == body


def test_offline_and_oversized_downloads_are_refused(
    file_server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = file_server.serve("big.bin", b"z" * 2000)
    with pytest.raises(DownloadError, match="more than the 1000 bytes allowed"):
        download_url(url, tmp_path / "big.bin", max_bytes=1000)
    assert not (tmp_path / "big.bin.part").exists()
    monkeypatch.setenv("MENTOR_OFFLINE", "1")
    with pytest.raises(DownloadError, match="MENTOR_OFFLINE is set"):
        download_url(url, tmp_path / "other.bin")
    assert len(file_server.requests) == 1


def test_progress_bar_on_a_terminal_only(
    file_server: FileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    shown = Terminal()
    with Progress("f.tgz", 2_000_000, file=shown, refresh_secs=0) as bar:
        bar.update(1_000_000)
    assert "f.tgz" in shown.getvalue() and "50%" in shown.getvalue()
    quiet = io.StringIO()
    with Progress("f.tgz", 2_000_000, file=quiet) as bar:
        bar.update(1_000_000)
    assert quiet.getvalue() == ""
    download_url(file_server.serve("a.bin", b"a" * 1000), tmp_path / "a.bin", progress=True)
    assert "100%" in capsys.readouterr().err


def test_mirror_and_bad_checksum_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "https://download.pytorch.org/models/resnet18-f37072fd.pth"
    assert mirrored(url) == url
    monkeypatch.setenv("MENTOR_WEIGHTS_URL", "http://mirror.local/w/")
    assert mirrored(url) == "http://mirror.local/w/resnet18-f37072fd.pth"
    with pytest.raises(ValueError, match="sha256"):
        Checksum(sha256="abc")


def _tar(path: Path, *members: tuple[str, str, str]) -> Path:
    """A .tgz of (name, kind, content or link target) members; kind: file, sym, hard, dir."""
    kinds = {"file": tarfile.REGTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
             "dir": tarfile.DIRTYPE}  # fmt: skip
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, content in members:
            info = tarfile.TarInfo(name)
            info.type = kinds[kind]
            data = content.encode() if kind == "file" else b""
            if kind in ("sym", "hard"):
                info.linkname = content
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize(
    ("member", "why"),
    [
        (("data/../../evil.txt", "file", "owned"), "outside the folder"),
        (("/tmp/mentor-evil.txt", "file", "owned"), "absolute"),
        (("data/link", "sym", "../../outside"), "a link to '../../outside'"),
        (("data/abs", "sym", "/etc/passwd"), "absolute"),
        (("data/hard", "hard", "../evil"), "outside the folder"),
    ],
)
def test_hostile_tar_members_are_refused_and_nothing_is_extracted(
    tmp_path: Path, member: tuple[str, str, str], why: str
) -> None:
    archive = _tar(tmp_path / "evil.tgz", ("data/ok.txt", "file", "fine"), member)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UnsafeArchiveError) as err:
        extract_archive(archive, out / "data", strip="data")
    assert why in str(err.value) and member[0] in str(err.value)
    assert list(out.iterdir()) == []  # not even ok.txt, nor the scratch folder
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/mentor-evil.txt").exists()


def test_safe_tar_and_zip_extract_with_inner_links(tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "data.tgz",
        ("data/sub", "dir", ""),
        ("data/sub/ok.txt", "file", "fine"),
        ("data/link.txt", "sym", "sub/ok.txt"),
    )
    out = extract_archive(archive, tmp_path / "x" / "data", strip="data")
    assert (out / "sub" / "ok.txt").read_text() == "fine"
    assert (out / "link.txt").read_text() == "fine"
    zipped = tmp_path / "flat.zip"
    with zipfile.ZipFile(zipped, "w") as archive_zip:
        archive_zip.writestr("a.txt", "A")
        archive_zip.writestr("b/c.txt", "C")
    flat = extract_archive(zipped, tmp_path / "flat", strip="flat")
    assert (flat / "a.txt").read_text() == "A" and (flat / "b" / "c.txt").read_text() == "C"


def test_hostile_zip_is_refused_and_not_an_archive_is_named(tmp_path: Path) -> None:
    zipped = tmp_path / "evil.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("ok.txt", "fine")
        archive.writestr("../evil.txt", "owned")
    with pytest.raises(UnsafeArchiveError, match="'../evil.txt'"):
        extract_archive(zipped, tmp_path / "out" / "evil")
    assert not (tmp_path / "evil.txt").exists() and list((tmp_path / "out").iterdir()) == []
    text = tmp_path / "notes.tgz"
    text.write_text("not an archive")
    with pytest.raises(ValueError, match="not a .tgz"):
        extract_archive(text, tmp_path / "notes")
