"""Shared fixtures: real data from the shared folder (skipped with the reason when missing)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
import pytest
import torch

matplotlib.use("Agg")

# the shared data sets sit beside the repository; set once, before any fixture resolves them
_HERE = os.path.dirname(os.path.abspath(__file__))
os.environ.setdefault("MENTOR_DATA", os.path.join(_HERE, "..", "..", "shared", "data"))

# `make test` runs one pytest-xdist worker per core: each worker, and every process a test
# starts, gets one thread, so the workers don't fight over the cores
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    """`--screenshot DIR`: the browser tests save a PNG of each page they drive there."""
    parser.addoption(
        "--screenshot",
        default=None,
        metavar="DIR",
        help="save screenshots of the pages the browser tests drive to DIR",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The benchmarks' smoke runs train both sides, some in processes of their own: they are
    end-to-end runs, so `make test-fast` (`-m "not slow"`) leaves them out; CI runs them.
    Files with end-to-end runs are run first."""
    long_runs = (Path(_HERE) / "bench", Path(_HERE) / "course")  # the lessons train too
    for item in items:
        if any(folder in Path(item.path).parents for folder in long_runs):
            item.add_marker(pytest.mark.slow)
    # the files with end-to-end runs go first (each file's tests keep their order): with one
    # xdist worker per core, the long files start early and the short ones fill in at the end
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.fixture(scope="session")
def shared_data() -> Any:
    """`shared_data(name)`: skip the test, with the reason, when data set `name` (a folder or
    an archive) is not in the shared folder."""
    from mentor.core.paths import data_path

    def needs(name: str) -> None:
        root = data_path()
        if not any((root / f"{name}{ext}").exists() for ext in ("", ".tar", ".tar.gz")):
            pytest.skip(f"data set {name!r} is not in {str(root)!r} (set MENTOR_DATA)")

    return needs


@pytest.fixture(scope="session")
def mnist_sample() -> tuple[torch.Tensor, ...]:
    """MNIST 3 vs 7 as tensors (x_train, y_train, x_valid, y_valid)."""
    from bench.common import mnist_sample_tensors

    try:
        return mnist_sample_tensors()
    except FileNotFoundError as err:
        pytest.skip(f"mnist_sample not available: {err}")


@pytest.fixture(scope="session")
def mnist_tiny() -> Path:
    """The mnist_tiny folder (train/valid/test of 3s and 7s, labels.csv)."""
    from mentor.data.external import untar_data

    try:
        return untar_data("mnist_tiny")
    except FileNotFoundError as err:
        pytest.skip(f"mnist_tiny is not available: {err}")


@pytest.fixture(scope="session")
def imdb_texts() -> pd.DataFrame:
    """imdb_sample's texts.csv (label, text, is_valid; 800 train / 200 valid reviews)."""
    from mentor.data.external import untar_data

    try:
        return pd.read_csv(untar_data("imdb_sample") / "texts.csv")
    except FileNotFoundError as err:
        pytest.skip(f"imdb_sample is not available: {err}")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Run each test in a fresh folder, so nothing (models, plots) is written into the repo."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reaches the internet: downloads are refused (`MENTOR_OFFLINE`), except in the
    download tests, which lift it and fetch from a server of their own on 127.0.0.1."""
    monkeypatch.setenv("MENTOR_OFFLINE", "1")


@pytest.fixture
def file_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """A web server of the test's own on 127.0.0.1 (see `tests/fileserver.py`); downloads
    are allowed, bypass any proxy, and land in a fresh MENTOR_HOME (`tmp_path / "home"`)."""
    from tests.fileserver import FileServer

    monkeypatch.delenv("MENTOR_OFFLINE", raising=False)
    monkeypatch.delenv("MENTOR_WEIGHTS_URL", raising=False)
    monkeypatch.setenv("MENTOR_HOME", str(tmp_path / "home"))
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    with FileServer() as server:
        yield server
