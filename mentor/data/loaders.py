"""`DataLoaders` (train, valid, optional test, on a device) and a fast in-memory loader."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch.utils.data import DataLoader, Dataset

from mentor.core.device import default_device, split_batch, to_cpu, to_device
from mentor.data.shard import Shard, shard_loader, shard_of

if TYPE_CHECKING:
    from mentor.data.encoders import ItemEncoder


ROW_STEPS = 64  # training steps an epoch keeps when `rows_batch_size` grows the batch


def rows_batch_size(n_train: int, low: int = 64, high: int = 1024) -> int:
    """The default batch size for `n_train` cheap items (a table's rows): the power of two
    nearest `n_train / 64` in log scale, kept between `low` and `high`.

    A row costs microseconds of compute, so a step's fixed cost (the optimizer update over
    every parameter, the loop's Python) dominates small batches: growing the batch is nearly
    free per row, and an epoch takes fewer steps. It grows only while an epoch keeps about
    64 steps, enough for a one-cycle schedule to warm up and anneal within a few epochs; 64
    rows (fastai's default) is the floor for small tables, 1024 the ceiling past which large
    batches generalise worse.

    Example:
        >>> rows_batch_size(26_000), rows_batch_size(80_000), rows_batch_size(3_000)
        (512, 1024, 64)
    """
    exponent = round(math.log2(max(n_train / ROW_STEPS, 1)))
    return max(low, min(high, 2**exponent))


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
        self.shard_info: Shard | None = None

    def __len__(self) -> int:
        shard = self.shard_info
        if shard is None:
            return self.n // self.bs if self.drop_last else -(-self.n // self.bs)
        if shard.train:
            group = self.bs * shard.world
            return self.n // group if self.drop_last and self.n >= group else -(-self.n // group)
        block = shard.block(range(self.n))
        return -(-(block.stop - block.start) // self.bs)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        if self.shard_info is not None:
            yield from self._shard_batches(self.shard_info)
            return
        n_batches = len(self)
        if self.shuffle:
            order = torch.randperm(self.n, device=self.tensors[0].device)
            tensors = tuple(t[order] for t in self.tensors)
        else:
            tensors = self.tensors
        for i in range(n_batches):
            start = i * self.bs
            yield tuple(t[start : start + self.bs] for t in tensors)

    def shard(self, shard: Shard) -> TensorLoader:
        """A copy that reads only `shard` of a distributed run (see `mentor.data.shard`)."""
        out = copy.copy(self)
        out.shard_info = shard
        return out

    def _shard_batches(self, shard: Shard) -> Iterator[tuple[torch.Tensor, ...]]:
        device = self.tensors[0].device
        if self.shuffle:  # drawn as in one process, so the ranks' pieces make its batches
            order = torch.randperm(self.n, device=device)
        else:
            order = torch.arange(self.n, device=device)
        if shard.train:
            batches = shard.train_batches(order, self.bs, self.drop_last)
        else:
            batches = list(order[shard.block(order)].split(self.bs))
        for index in batches:
            yield tuple(t[index] for t in self.tensors)


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
        return self.iter_from(0)

    def iter_from(self, skip: int, on_skipped: Callable[[], None] | None = None) -> Iterator[Any]:
        """The batches after the first `skip` (a resumed epoch): those are fetched, so the
        data order and the item transforms' random draws stay as they were, but not moved or
        transformed; `on_skipped` runs after them, before the next batch is fetched."""
        device, non_blocking, after_batch = self.device, self.non_blocking, self.after_batch
        batches = iter(self.loader)
        for _ in range(skip):
            next(batches, None)
        if on_skipped is not None:
            on_skipped()
        for batch in batches:
            batch = to_device(batch, device, non_blocking)
            yield batch if after_batch is None else after_batch(batch)

    def has_len(self) -> bool:
        """Whether the wrapped loader knows its number of batches."""
        return isinstance(self.loader, Sized)

    @property
    def shard_info(self) -> Shard | None:
        """The shard of a distributed run the wrapped loader reads (None: all of it)."""
        return shard_of(self.loader)

    def shard(self, shard: Shard) -> DeviceLoader:
        """The same loader reading only `shard` (see `mentor.data.shard`)."""
        return DeviceLoader(shard_loader(self.loader, shard), self.device, self.after_batch)


class TargetBlock(Protocol):
    """What the loop, interpretation, the report and export read from a data set's target
    (`CategoryBlock` and the other blocks, `TabularTarget`)."""

    vocab: list[Any]
    needs_geometry: bool

    @property
    def n_out(self) -> int | None:
        """Outputs a model needs for this target."""
        ...

    def decode(self, value: Any) -> Any:
        """A target or decoded prediction in a person's terms."""
        ...

    def decode_in_input(self, value: Any, geometry: Any) -> Any:
        """A decoded prediction on the raw input (masks and points map back onto it)."""
        ...

    def to_spec(self) -> dict[str, Any]:
        """Its settings as JSON data (export)."""
        ...


def _n_batches(loader: Iterable[Any]) -> str:
    """`len(loader)` as text, '?' for an iterable without a length."""
    return str(len(loader)) if isinstance(loader, Sized) else "?"


class DataLoaders:
    """The training and validation loaders (and an optional test loader) on one device.

    Any iterables of batches work: our loaders, plain `torch.utils.data.DataLoader`s, lists.

    The attributes and methods below are the contract the rest of mentor reads (the loop,
    `get_preds` and `predict`, interpretation, the report, export): every loader class
    (DataBlock, tabular, collab, text) overrides the ones its data can do better, and
    the defaults here serve plain loaders.

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

    def __repr__(self) -> str:
        """The splits' sizes, the batch size, the target and its classes, and what the
        loader class adds (`describe`)."""
        splits = ", ".join(
            f"{name} {_n_batches(loader)} batches"
            for name, loader in (("train", self.train), ("valid", self.valid))
            if loader is not None
        )
        lines = [f"{type(self).__name__} ({self.application}) on {self.device}: {splits}"]
        lines.append(f"  batch size: {self.bs} (valid {self.valid_bs})")
        target = self.target_block
        if target is not None:
            vocab = self.vocab
            shown = f": {vocab[:10]}{' ...' if len(vocab) > 10 else ''}" if vocab else ""
            lines.append(f"  target: {type(target).__name__}, {self.c} output(s){shown}")
        return "\n".join([*lines, *("  " + line for line in self.describe())])

    def describe(self) -> list[str]:
        """Lines about the data for `repr` (items, blocks, columns...); none by default."""
        return []

    application = "custom"
    """What kind of data this is, for people ('vision', 'tabular', 'collab', 'text', ...)."""
    bs: int | None = None
    """The training batch size, when the loaders were built with one."""
    valid_bs: int | None = None
    """The validation batch size, when the loaders were built with one."""
    shuffle = True
    """Whether the training loader reshuffles every epoch."""

    @property
    def n_inp(self) -> int | None:
        """How many tensors of a batch are model inputs (the rest are targets); None for
        plain loaders: every part of a batch but the last."""
        return None

    @property
    def target_block(self) -> TargetBlock | None:
        """The block that encodes the targets and decodes predictions (None: unknown)."""
        return None

    @property
    def vocab(self) -> list[Any]:
        """The target's classes ([] for targets without classes)."""
        return [] if self.target_block is None else list(self.target_block.vocab)

    @property
    def c(self) -> int | None:
        """Outputs a model needs for the target (None: unknown)."""
        return None if self.target_block is None else self.target_block.n_out

    @property
    def loss_spec(self) -> tuple[str, dict[str, Any]] | None:
        """The loss the data implies, as a registry name and arguments (None: unknown)."""
        return None

    def item_encoder(self) -> ItemEncoder:
        """How raw items become model inputs outside a loader (what export writes and
        `Predictor` runs): the validation-time blocks, transforms or procs of the data."""
        raise ValueError(
            f"export cannot describe the data of type {type(self).__name__}: it can't say how "
            "raw items become model inputs. Build the data with a DataBlock or an "
            "application's DataLoaders, or define item_encoder() on your DataLoaders"
        )

    def test_dl(
        self,
        items: Sequence[Any],
        with_labels: bool = False,
        bs: int | None = None,
        skip_bad: bool = False,
    ) -> Iterable[Any]:
        """A loader over new raw items with the validation-time processing, for `get_preds`.

        Args:
            items: the raw items (image paths, rows, texts, (user, item) pairs, ...).
            with_labels: the items carry targets too (yielded after the inputs).
            bs: batch size (default: the data's validation batch size).
            skip_bad: leave out the items that cannot be read (a broken image, a row with a
                bad value), with one warning naming them, instead of failing on the first;
                the predictions are then those of the other items, in order.
        """
        raise ValueError(
            f"{type(self).__name__}.test_dl cannot build a loader from raw items: it does not "
            "know how they become model inputs; pass your own loader as get_preds(dl=...)"
        )

    def decode_batch(self, batch: Sequence[Any]) -> list[list[Any]]:
        """A batch as people read it: per item, its parts on the CPU (the target decoded by
        the target block)."""
        parts = list(to_cpu(tuple(batch)))
        n_items = len(parts[0]) if parts else 0
        n_inp = self.inputs_of(parts)
        target = self.target_block if len(parts) > n_inp else None
        return [
            [
                target.decode(part[i]) if target is not None and j >= n_inp else part[i]
                for j, part in enumerate(parts)
            ]
            for i in range(n_items)
        ]

    def inputs_of(self, batch: Sequence[Any]) -> int:
        """How many parts of `batch` are inputs: `n_inp`, or all but the last one."""
        return len(split_batch(tuple(batch), self.n_inp)[0])  # the loop's own rule

    def show_batch(self, max_n: int = 9) -> Any:
        """Show `max_n` items of a training batch: a figure or a table (here: a table of
        the inputs and the decoded targets)."""
        return self._items_table(self.one_batch("train"), max_n)

    def show_results(self, batch: Sequence[Any], preds: Sequence[Any], max_n: int = 9) -> Any:
        """Show `max_n` items of `batch` beside the model's decoded outputs `preds` (class
        indices, label flags, values, masks: what the loss decodes), as
        `Learner.show_results` passes them: a figure or a table."""
        table = self._items_table(batch, max_n)
        table["prediction"] = self.decode_preds(preds[: len(table)])
        return table

    def decode_preds(self, preds: Sequence[Any]) -> list[Any]:
        """Decoded outputs read by the target block (labels, numbers), as people read them."""
        target = self.target_block
        return [p if target is None else target.decode(p) for p in preds]

    def _items_table(self, batch: Sequence[Any], max_n: int) -> Any:
        import pandas as pd

        n_inp = self.inputs_of(batch)
        rows = []
        for item in self.decode_batch(batch)[:max_n]:
            row = {f"x{j}": _short(part) for j, part in enumerate(item[:n_inp])}
            row.update({f"y{j}": _short(part) for j, part in enumerate(item[n_inp:])})
            rows.append(row)
        return pd.DataFrame(rows)

    def decode_rows(self, indices: Iterable[int], split: str = "valid") -> Any:
        """Items `indices` of `split` as table rows (reports show the items with the highest
        losses so); None when the data has no table view (images)."""
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


def _short(value: Any) -> Any:
    """A batch part for a table: small tensors as values, larger ones by their shape."""
    if isinstance(value, torch.Tensor):
        return value.tolist() if value.numel() <= 6 else f"tensor {list(value.shape)}"
    return value


def _on_device(loader: Iterable[Any], device: torch.device) -> DeviceLoader:
    """`loader` yielding on `device`; a DeviceLoader is re-targeted, never wrapped twice."""
    if isinstance(loader, DeviceLoader):
        return DeviceLoader(loader.loader, device, loader.after_batch)
    return DeviceLoader(loader, device)
