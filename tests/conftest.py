"""Shared fixtures: real data from the shared folder (skipped with the reason when missing)."""

from __future__ import annotations

import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")


@pytest.fixture(scope="session")
def mnist_sample() -> tuple[torch.Tensor, ...]:
    """MNIST 3 vs 7 as tensors (x_train, y_train, x_valid, y_valid)."""
    from bench.common import mnist_sample_tensors

    try:
        return mnist_sample_tensors()
    except FileNotFoundError as err:
        pytest.skip(f"mnist_sample not available: {err}")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Keep MENTOR_HOME as the user set it, but never write models into the repository."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    if "MENTOR_DATA" not in os.environ:
        here = os.path.dirname(os.path.abspath(__file__))
        monkeypatch.setenv("MENTOR_DATA", os.path.join(here, "..", "..", "shared", "data"))
