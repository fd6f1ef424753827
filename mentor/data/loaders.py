"""`DataLoaders` (train, valid, optional test, on a device) and a fast in-memory loader."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sized
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from mentor.core.device import default_device, to_device


class TensorLoader:
    """Batches that are slices of tensors held in memory: no per-item Python, no collation.

    Shuffling draws from PyTorch's global generator when iteration starts, so `set_seed` makes
    the order reproducible and a checkpoint's RNG state reproduces it on resume.

    Args:
        *tensors: tensors with the same first dimension (e.g. inputs and targets).
        bs: batch size (default 64).
        shuffle: reshuffle at the start of every pass (default False).
        drop_last: drop the last, smaller batch (default False).

    Example:
        >>> train = TensorLoader(x_train, y_train, bs=128, shuffle=True)
    """

    def __init__(
        self, *tensors: torch.Tensor, bs: int = 64, shuffle: bool = False, drop_last: bool = False
    ) -> None:
        if not tensors:
            raise ValueError("TensorLoader needs at least one tensor")
        sizes = {t.shape[0] for t in tensors}
        if len(sizes) != 1:
            raise ValueError(
                f"tensors must have the same number of items, got sizes {sorted(sizes)}"
            )
        if bs < 1:
            raise ValueError(f"batch size must be at least 1, got bs={bs}")
        self.tensors = tensors
        self.n = sizes.pop()
        self.bs = bs
        self.shuffle = shuffle
        self.drop_last = drop_last

    def __len__(self) -> int:
        return self.n // self.bs if self.drop_last else -(-self.n // self.bs)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        n_batches = len(self)
        if self.shuffle:
            order = torch.randperm(self.n, device=self.tensors[0].device)
            tensors = tuple(t[order] for t in self.tensors)
        else:
            tensors = self.tensors
        for i in range(n_batches):
            start = i * self.bs
            yield tuple(t[start : start + self.bs] for t in tensors)


class DeviceLoader:
    """Wraps any iterable of batches and yields them on `device`, after `after_batch` (the
    batch transforms, e.g. augmentation and normalization, which run on the device)."""

    def __init__(
        self,
        loader: Iterable[Any],
        device: torch.device,
        after_batch: Callable[[Any], Any] | None = None,
    ) -> None:
        self.loader = loader
        self.device = device
        self.after_batch = after_batch
        self.non_blocking = device.type == "cuda"

    def __len__(self) -> int:
        if not isinstance(self.loader, Sized):
            raise TypeError(f"{type(self.loader).__name__} has no length")
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        device, non_blocking, after_batch = self.device, self.non_blocking, self.after_batch
        for batch in self.loader:
            batch = to_device(batch, device, non_blocking)
            yield batch if after_batch is None else after_batch(batch)

    def has_len(self) -> bool:
        """Whether the wrapped loader knows its number of batches."""
        return isinstance(self.loader, Sized)


class DataLoaders:
    """The training and validation loaders (and an optional test loader) on one device.

    Any iterables of batches work: our loaders, plain `torch.utils.data.DataLoader`s, lists.

    Args:
        train: the training batches.
        valid: the validation batches (None or empty: train without validation).
        test: optional test batches.
        device: where batches go (default: CUDA when available, else the CPU).

    Example:
        >>> dls = DataLoaders(DataLoader(train_ds, 64, shuffle=True), DataLoader(valid_ds, 128))
    """

    def __init__(
        self,
        train: Iterable[Any],
        valid: Iterable[Any] | None = None,
        test: Iterable[Any] | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        self.device = torch.device(device) if device is not None else default_device()
        self.train = _on_device(train, self.device)
        self.valid = _on_device(valid, self.device) if valid is not None else None
        self.test = _on_device(test, self.device) if test is not None else None

    @classmethod
    def from_dsets(
        cls,
        train_ds: Dataset[Any],
        valid_ds: Dataset[Any] | None = None,
        bs: int = 64,
        valid_bs: int | None = None,
        num_workers: int = 0,
        device: torch.device | str | None = None,
        **loader_kw: Any,
    ) -> DataLoaders:
        """Loaders over any map-style datasets: shuffled training, ordered validation.

        Args:
            train_ds, valid_ds: `torch.utils.data.Dataset`s returning `(x, y)` items.
            bs: training batch size; valid_bs: validation batch size (default 2 * bs).
            num_workers: worker processes for loading; **loader_kw go to `DataLoader`
                (`sampler=` replaces the training set's shuffling, e.g. to shard it).
        """
        dev = torch.device(device) if device is not None else default_device()
        pin = dev.type == "cuda"
        sampler = loader_kw.pop("sampler", None)  # e.g. a DistributedSampler: it orders itself
        train = DataLoader(
            train_ds,
            bs,
            shuffle=sampler is None,
            sampler=sampler,
            num_workers=num_workers,
            pin_memory=pin,
            **loader_kw,
        )
        valid = None
        if valid_ds is not None:
            valid = DataLoader(
                valid_ds, valid_bs or 2 * bs, num_workers=num_workers, pin_memory=pin, **loader_kw
            )
        return cls(train, valid, device=dev)

    @classmethod
    def from_tensors(
        cls,
        train: tuple[torch.Tensor, ...],
        valid: tuple[torch.Tensor, ...] | None = None,
        bs: int = 64,
        valid_bs: int | None = None,
        device: torch.device | str | None = None,
    ) -> DataLoaders:
        """In-memory loaders from `(x, y)` tensor tuples; batches are tensor slices.

        Example:
            >>> dls = DataLoaders.from_tensors((x_train, y_train), (x_valid, y_valid), bs=128)
        """
        dev = torch.device(device) if device is not None else default_device()
        train_dl = TensorLoader(*(t.to(dev) for t in train), bs=bs, shuffle=True)
        valid_dl = None
        if valid is not None:
            valid_dl = TensorLoader(*(t.to(dev) for t in valid), bs=valid_bs or 2 * bs)
        return cls(train_dl, valid_dl, device=dev)

    @property
    def loss_spec(self) -> tuple[str, dict[str, Any]] | None:
        """The loss the data implies, as a registry name and arguments (None: unknown)."""
        return None

    def one_batch(self, split: str = "train") -> Any:
        """The first batch of `split` ('train', 'valid' or 'test'), on the device."""
        loader = {"train": self.train, "valid": self.valid, "test": self.test}.get(split)
        if loader is None:
            raise ValueError(f"no {split!r} loader; this DataLoaders has train/valid/test as built")
        for batch in loader:
            return batch
        raise ValueError(f"the {split!r} loader is empty: it yielded no batch")

    def __getitem__(self, index: int) -> DeviceLoader:
        loaders = [self.train, self.valid]
        loader = loaders[index]
        if loader is None:
            raise IndexError(f"no loader at index {index}")
        return loader


def _on_device(loader: Iterable[Any], device: torch.device) -> DeviceLoader:
    """`loader` yielding on `device`; a DeviceLoader is re-targeted, never wrapped twice."""
    if isinstance(loader, DeviceLoader):
        return DeviceLoader(loader.loader, device, loader.after_batch)
    return DeviceLoader(loader, device)
