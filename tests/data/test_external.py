"""untar_data: data sets by name from the shared folder, and by URL, downloaded from a local
server, checked, extracted once; the URLs constants and fastai's checks."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from mentor.core.download import Checksum, ChecksumError, DownloadError
from mentor.data.external import untar_data
from mentor.data.urls import CHECKSUMS, URLs
from tests.fileserver import FileServer


def tgz(files: dict[str, str]) -> bytes:
    """A .tgz holding `files` (name -> text)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    return buffer.getvalue()


TINYSET = tgz({"tinyset/train/a.txt": "A", "tinyset/valid/b.txt": "B"})


def test_a_url_is_downloaded_checked_and_extracted_once(
    file_server: FileServer, tmp_path: Path
) -> None:
    url = file_server.serve("tinyset.tgz", TINYSET)
    path = untar_data(url, sha256=hashlib.sha256(TINYSET).hexdigest())
    assert path == tmp_path / "home" / "data" / "tinyset"
    assert (path / "train" / "a.txt").read_text() == "A"
    assert (tmp_path / "home" / "archive" / "tinyset.tgz").read_bytes() == TINYSET
    assert untar_data(url) == path  # extracted already: no request, no warning
    assert file_server.ranges("tinyset.tgz") == [None]


def test_the_shared_folder_is_looked_at_first(
    file_server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    (shared / "tinyset").mkdir(parents=True)
    (shared / "flat.tar.gz").write_bytes(tgz({"x.txt": "X"}))  # no top folder
    monkeypatch.setenv("MENTOR_DATA", str(shared))
    assert untar_data(file_server.url("tinyset.tgz")) == shared / "tinyset"
    flat = untar_data(file_server.url("flat.tgz"))
    assert flat == tmp_path / "home" / "data" / "flat" and (flat / "x.txt").read_text() == "X"
    assert untar_data("flat") == flat
    assert file_server.requests == []


def test_fastai_checks_are_applied_and_a_mismatch_is_refused(
    file_server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = file_server.serve("tinyset.tgz", TINYSET)
    md5_head = hashlib.md5(TINYSET).hexdigest()
    monkeypatch.setitem(CHECKSUMS, url, Checksum(size=len(TINYSET), md5_head="0" * 32))
    with pytest.raises(ChecksumError, match=md5_head):
        untar_data(url)
    assert not (tmp_path / "home" / "archive" / "tinyset.tgz").exists()
    assert not (tmp_path / "home" / "data" / "tinyset").exists()
    monkeypatch.setitem(CHECKSUMS, url, Checksum(size=len(TINYSET), md5_head=md5_head))
    assert (untar_data(url) / "valid" / "b.txt").read_text() == "B"


def test_an_unknown_url_says_it_is_unchecked_and_zips_work(
    file_server: FileServer, tmp_path: Path
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("zipset/a.txt", "A")
    url = file_server.serve("zipset.zip", buffer.getvalue())
    with pytest.warns(UserWarning, match="no checksum is known for .*zipset.zip"):
        path = untar_data(url)
    assert (path / "a.txt").read_text() == "A"


def test_a_failed_download_says_what_where_and_how_to_fix(
    file_server: FileServer, tmp_path: Path
) -> None:
    url = file_server.url("gone.tgz")
    with pytest.raises(DownloadError) as err, pytest.warns(UserWarning):
        untar_data(url)
    message = str(err.value)
    assert url in message and "HTTP 404" in message
    assert str(tmp_path / "home" / "archive" / "gone.tgz") in message and "MENTOR_DATA" in message


def test_a_name_is_never_downloaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTOR_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"URLs\.MNIST_SAMPLE"):
        untar_data("mnist_sample")


def test_urls_are_fastai_s_and_every_check_belongs_to_one() -> None:
    assert URLs.MNIST_SAMPLE == "https://s3.amazonaws.com/fast-ai-sample/mnist_sample.tgz"
    assert URLs.PETS == "https://s3.amazonaws.com/fast-ai-imageclas/oxford-iiit-pet.tgz"
    assert URLs.IMDB == "https://s3.amazonaws.com/fast-ai-nlp/imdb.tgz"
    assert URLs.WT103_FWD == "https://s3.amazonaws.com/fast-ai-modelzoo/wt103-fwd.tgz"
    constants = {
        v for v in vars(URLs).values() if isinstance(v, str) and v.endswith((".tgz", ".zip"))
    }
    assert set(CHECKSUMS) <= constants
    for name in ("CAMVID_TINY", "CAMVID", "ML_100k", "ML_SAMPLE", "HUMAN_NUMBERS", "BIWI_SAMPLE",
                 "IMAGENETTE", "IMAGENETTE_160", "IMAGENETTE_320", "WIKITEXT_TINY", "MNIST",
                 "CIFAR", "COCO_TINY", "PLANET_TINY", "MNIST_TINY", "ADULT_SAMPLE"):  # fmt: skip
        assert getattr(URLs, name) in constants
    assert CHECKSUMS[URLs.MNIST_SAMPLE] == Checksum(
        3214948, None, "2dbc7ec6f9259b583af0072c55816a88"
    )
