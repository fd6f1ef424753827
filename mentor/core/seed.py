"""Seeding and the random-number-generator state that exact resume saves and restores."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def set_seed(seed: int, reproducible: bool = True) -> None:
    """Seed Python, NumPy and PyTorch (all devices).

    Args:
        seed: the seed.
        reproducible: also ask cuDNN and PyTorch for deterministic algorithms (slower on GPU;
            operations without a deterministic version warn instead of failing).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if reproducible:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
        # Deterministic mode also fills every new tensor's memory, a guard against ops that
        # read it uninitialised; none of ours do, and the fill (of a text classifier's 200 MB
        # LSTM workspace at every call, among others) made the ULMFiT example 5% slower.
        torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]


def get_rng_state() -> dict[str, Any]:
    """Every generator's state, as tensors and plain values (loadable without pickle)."""
    np_state: tuple[Any, ...] = np.random.get_state()  # type: ignore[assignment]
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy_key": torch.from_numpy(np.array(np_state[1], dtype=np.int64)),
        "numpy_rest": [np_state[2], np_state[3], np_state[4]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore generator states saved by `get_rng_state`."""
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    pos, has_gauss, cached = state["numpy_rest"]
    key = state["numpy_key"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", key, int(pos), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
