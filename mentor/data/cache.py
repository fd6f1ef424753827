"""Decode once: a data set's samples held in memory after their first decode.

When every item transform of a split is deterministic (a validation split, or a training split
whose item transforms draw nothing, e.g. small images used at their own size with the
augmentation done as batch transforms), the uint8 tensors a worker makes from an item are the
same every epoch. `SampleCache` makes them once, in one pass of the loader's worker processes
writing into shared memory, and from then on a batch is an index into those tensors: no file
read, no decode, no worker start-up, no collation.

The batches are the ones the loader would have yielded, in the same order, with the same draws
from PyTorch's global generator (so seeds and exact resume hold): the cache walks the loader's
own batch sampler and makes the one draw the loader makes for its workers' seed.

The cache stays off (and the loader runs as before) when a sample is not tensors or numbers of
one shape for every item, when an item fails to decode (the normal pass then raises or skips it
as it always did), or when the samples would take more than `cache_budget()`: a quarter of the
memory available, and half of the free shared memory through which workers write.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from numbers import Number
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

SHM = "/dev/shm"


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def cache_budget() -> int:
    """Bytes a sample cache may take now: a quarter of the available memory (the physical
    memory where that is unknown; 0, so no cache, where neither can be read), and at most
    half of the free space in /dev/shm, where loader workers write it (a small Docker default
    would otherwise end in a bus error)."""
    available = _meminfo_available()
    if available is None:
        try:
            available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, ValueError, OSError):  # no sysconf (Windows): no cache
            return 0
    budget = available // 4
    if os.path.isdir(SHM):
        stat = os.statvfs(SHM)
        budget = min(budget, stat.f_bavail * stat.f_frsize // 2)
    return budget


def _as_tensor(part: Any) -> torch.Tensor | None:
    """A sample part as the tensor `default_collate` would stack, or None (strings, lists)."""
    if isinstance(part, torch.Tensor):
        return part
    if isinstance(part, Number | np.ndarray):
        try:
            return torch.as_tensor(part)
        except (TypeError, RuntimeError):  # complex objects, object arrays
            return None
    return None


class _Writer(Dataset[int]):
    """Runs in the fill pass's workers: makes sample `i` and writes it into the shared store."""

    def __init__(self, ds: Dataset[Any], store: Sequence[torch.Tensor], filled: torch.Tensor):
        self.ds, self.store, self.filled = ds, store, filled

    def __len__(self) -> int:
        return len(self.filled)

    def __getitem__(self, index: int) -> int:
        sample = self.ds[index]
        if not isinstance(sample, tuple | list) or len(sample) != len(self.store):
            return 0  # a skipped item: left unfilled, so the cache stays off
        parts = [_as_tensor(part) for part in sample]
        for part, slot in zip(parts, self.store):
            if part is None or part.shape != slot.shape[1:] or part.dtype != slot.dtype:
                return 0
        for part, slot in zip(parts, self.store):
            slot[index] = part  # type: ignore[assignment]
        self.filled[index] = True
        return 1


def _count(results: list[int]) -> int:
    return sum(results)


class SampleCache:
    """The samples of one split, decoded once (see the module docstring).

    `state` is "empty" until the first pass, then "ready" or "off" (`reason` says why).
    """

    def __init__(self) -> None:
        self.state = "empty"
        self.reason = ""
        self.store: list[torch.Tensor] = []

    @property
    def nbytes(self) -> int:
        """Memory the cached samples take."""
        return sum(t.numel() * t.element_size() for t in self.store)

    def _off(self, reason: str) -> bool:
        self.state, self.reason, self.store = "off", reason, []
        return False

    def ready(self, loader: DataLoader[Any]) -> bool:
        """Whether batches can come from the cache; fills it on the first call."""
        if self.state == "empty":
            self.fill(loader)
        return self.state == "ready"

    def fill(self, loader: DataLoader[Any]) -> bool:
        """Decode every item of `loader.dataset` once, with the loader's workers."""
        ds = loader.dataset
        n = len(ds)  # type: ignore[arg-type]
        try:
            first = ds[0] if n else None
        except Exception as err:  # the normal pass raises it where it always did
            return self._off(f"the first item failed ({type(err).__name__})")
        parts = [_as_tensor(p) for p in first] if isinstance(first, tuple | list) else [None]
        if any(part is None for part in parts):
            return self._off("a sample holds something other than tensors and numbers")
        shapes = [(part.shape, part.dtype) for part in parts if part is not None]
        nbytes = n * sum(shape.numel() * dtype.itemsize for shape, dtype in shapes)
        if nbytes > cache_budget():
            return self._off(f"{nbytes / 2**20:.0f} MiB is over the memory budget")
        shared = loader.num_workers > 0
        store = [torch.empty((n, *shape), dtype=dtype) for shape, dtype in shapes]
        filled = torch.zeros(n, dtype=torch.bool)
        if shared:
            store, filled = [t.share_memory_() for t in store], filled.share_memory_()
        writer = DataLoader(
            _Writer(ds, store, filled), batch_size=max(loader.batch_size or 1, 1),
            num_workers=loader.num_workers, collate_fn=_count,
            worker_init_fn=loader.worker_init_fn, generator=torch.Generator(),
            multiprocessing_context=loader.multiprocessing_context,
        )  # fmt: skip
        try:
            for _ in writer:
                pass
        except Exception as err:
            return self._off(f"an item failed ({type(err).__name__})")
        if not bool(filled.all()):
            return self._off("some items were skipped or had another shape")
        self.store, self.state = store, "ready"
        return True

    def batches(self, loader: DataLoader[Any]) -> Iterator[list[torch.Tensor]]:
        """The batches `loader` yields, from the cache: its batch sampler's indices, after the
        global-generator draw its iterator makes for the workers' base seed."""
        torch.empty((), dtype=torch.int64).random_(generator=loader.generator)
        if loader.batch_sampler is None:
            raise TypeError("a sample cache needs a loader with a batch size")
        for index in loader.batch_sampler:
            rows = torch.as_tensor(index, dtype=torch.int64)
            yield [part[rows] for part in self.store]
