"""Pretrained torchvision-layout weights downloaded when nothing local is found: from a local
server, checked against the sha256 prefix in the file name, never when a file is there."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from mentor.core.download import ChecksumError
from mentor.vision import models
from mentor.vision import weights as W
from tests.fileserver import FileServer


@pytest.fixture(scope="module")
def checkpoint() -> tuple[dict[str, torch.Tensor], bytes, str]:
    """A resnet18 state dict (torchvision's key names), its bytes, and the file name torch
    hub would give it (`resnet18-<first 8 hex of its sha256>.pth`)."""
    torch.manual_seed(0)
    state = models.resnet18().state_dict()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    return state, data, f"resnet18-{hashlib.sha256(data).hexdigest()[:8]}.pth"


@pytest.fixture
def no_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty torch hub folder and no weight packages, so only a download can help."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(W, "package_weights", lambda name: None)
    return tmp_path / "hub" / "checkpoints"


@pytest.fixture
def serve_resnet18(
    file_server: FileServer, no_hub: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[bytes, str], str]:
    """`serve(data, name)`: the local server publishes `data` as resnet18's weights."""

    def serve(data: bytes, name: str) -> str:
        url = file_server.serve(name, data)
        monkeypatch.setitem(W.TORCHVISION_WEIGHTS, "resnet18", url)
        return url

    return serve


def test_weights_are_downloaded_checked_and_cached(
    file_server: FileServer,
    serve_resnet18: Callable[[bytes, str], str],
    tmp_path: Path,
    checkpoint: tuple[dict[str, torch.Tensor], bytes, str],
) -> None:
    state, data, name = checkpoint
    serve_resnet18(data, name)
    model = models.resnet18(n_out=3, pretrained=True)
    assert torch.equal(model.conv1.weight, state["conv1.weight"])
    assert model.fc.out_features == 3
    assert (tmp_path / "home" / "weights" / name).read_bytes() == data
    models.resnet18(pretrained=True)  # cached: no second request
    assert file_server.ranges(name) == [None]


def test_a_corrupt_checkpoint_fails_its_hash_and_is_deleted(
    serve_resnet18: Callable[[bytes, str], str],
    tmp_path: Path,
    checkpoint: tuple[dict[str, torch.Tensor], bytes, str],
) -> None:
    _, data, name = checkpoint
    url = serve_resnet18(data[:1000] + bytes([data[1000] ^ 1]) + data[1001:], name)
    with pytest.raises(ChecksumError) as err:
        models.resnet18(pretrained=True)
    assert url in str(err.value) and name[9:17] in str(err.value)
    assert not (tmp_path / "home" / "weights" / name).exists()


def test_local_files_come_before_any_download(
    file_server: FileServer,
    serve_resnet18: Callable[[bytes, str], str],
    no_hub: Path,
    checkpoint: tuple[dict[str, torch.Tensor], bytes, str],
) -> None:
    state, data, name = checkpoint
    serve_resnet18(data, name)
    no_hub.mkdir(parents=True)
    torch.save(state, no_hub / "resnet18-00000000.pth")
    assert W.find_weights("resnet18") == no_hub / "resnet18-00000000.pth"
    assert file_server.requests == []


def test_mirror_and_failed_download_messages(
    file_server: FileServer, no_hub: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MENTOR_WEIGHTS_URL", file_server.base)
    with pytest.raises(FileNotFoundError) as err:
        W.find_weights("resnet34")  # the mirror has no resnet34-b627a593.pth
    message = str(err.value)
    assert file_server.requests == [("/resnet34-b627a593.pth", None)]
    assert "HTTP 404" in message and file_server.url("resnet34-b627a593.pth") in message
    assert str(tmp_path / "home" / "weights" / "resnet34.pth") in message


def test_offline_no_download_is_tried_and_the_message_says_where(
    no_hub: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MENTOR_HOME", str(tmp_path / "home"))  # MENTOR_OFFLINE is set
    with pytest.raises(FileNotFoundError) as err:
        W.find_weights("resnet50")
    message = str(err.value)
    assert "MENTOR_OFFLINE" in message and W.TORCHVISION_WEIGHTS["resnet50"] in message
    assert str(tmp_path / "home" / "weights" / "resnet50.pth") in message


def test_every_torchvision_layout_model_has_a_published_file() -> None:
    registered = {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d"}
    assert set(W.TORCHVISION_WEIGHTS) == registered
    for name, url in W.TORCHVISION_WEIGHTS.items():
        assert url.startswith("https://download.pytorch.org/models/")
        assert url.rsplit("/", 1)[1].startswith(f"{name}-") and url.endswith(".pth")
