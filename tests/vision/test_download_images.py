"""download_images against a local server: good images saved under numbered names with the
right extension, failures (404, not an image, a hanging host) skipped and reported."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from PIL import Image

from mentor.vision import download_images
from tests.fileserver import FileServer


def image_bytes(fmt: str, color: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), color).save(buffer, fmt)
    return buffer.getvalue()


def test_images_are_saved_numbered_and_failures_reported(
    file_server: FileServer, tmp_path: Path
) -> None:
    png, jpeg = image_bytes("PNG", "red"), image_bytes("JPEG", "blue")
    urls = [
        file_server.serve("a.png", png),
        file_server.serve("photo?id=3", jpeg),  # no extension in the URL
        file_server.url("missing.jpg"),
        file_server.serve("page.jpg", b"<html>not an image</html>"),
        file_server.serve("slow.jpg", hang=True),
        "ftp://example.com/x.jpg",
    ]
    url_file = tmp_path / "urls.txt"
    url_file.write_text("\n".join(["# bears", *urls, ""]))
    dest = tmp_path / "bears"
    dest.mkdir()
    (dest / "00000004.jpg").write_bytes(b"mine")  # numbering goes on after it
    start = time.perf_counter()
    with pytest.warns(UserWarning, match="skipped 4 of 6 URLs .saved 2"):
        report = download_images(url_file, dest, timeout=0.3)
    assert time.perf_counter() - start < 5
    assert [p.name for p in report.saved] == ["00000005.png", "00000006.jpg"]
    assert (dest / "00000005.png").read_bytes() == png
    assert Image.open(dest / "00000006.jpg").format == "JPEG"
    assert (dest / "00000004.jpg").read_bytes() == b"mine"
    why = dict(report.failed)
    assert "404" in why[urls[2]] and "not an image" in why[urls[3]]
    assert "timed out" in why[urls[4]] and "http" in why[urls[5]]
    assert sorted(p.name for p in dest.iterdir()) == [
        "00000004.jpg",
        "00000005.png",
        "00000006.jpg",
    ]


def test_a_list_of_urls_and_max_pics(file_server: FileServer, tmp_path: Path) -> None:
    urls = [file_server.serve(f"{i}.png", image_bytes("PNG", "green")) for i in range(4)]
    report = download_images(urls, tmp_path / "out", max_pics=3, n_workers=2)
    assert [p.name for p in report.saved] == ["00000000.png", "00000001.png", "00000002.png"]
    assert report.failed == [] and len(file_server.requests) == 3
    with pytest.raises(FileNotFoundError, match="one URL per line"):
        download_images(tmp_path / "nope.txt", tmp_path / "out")
