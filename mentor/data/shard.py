"""Sharding loaders over the processes of a distributed run.

A training loader is sharded so that at every step the batches of all ranks together are the
batch the single-process loader would yield with `bs * world` items: the order of a pass is
drawn as in one process (the same generator state on every rank), each global batch is cut
into `world` consecutive pieces, and rank `r` reads piece `r`. A last global batch too small
to give every rank an item is padded with items from the start of the pass (as PyTorch's
`DistributedSampler` pads), so every rank takes the same number of steps.

An evaluation loader (validation, `get_preds`, `tta`) is sharded without padding: rank `r`
reads one contiguous block of the items, so no item is counted twice, and concatenating the
ranks' outputs in rank order gives the items in their order.

Every loader kind shards: `TensorLoader` (tabular, collab, in-memory tensors), a DataBlock's
loaders and plain `torch.utils.data.DataLoader`s over map-style datasets (through
`ShardSampler`), the text loaders (they implement `ShardableLoader`), and other sized
iterables of batches (whole batches are dealt out).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass
from typing import Any, Protocol, Self, runtime_checkable

import torch
from torch.utils.data import DataLoader, IterableDataset, Sampler


@dataclass(frozen=True)
class Shard:
    """This process's part of a loader in a run on `world` processes.

    Args:
        rank: this process (0 .. world - 1). world: the number of processes.
        train: a training loader (global batches cut in pieces, padded so every rank steps
            as often) or an evaluation one (one contiguous block per rank, no padding).
    """

    rank: int
    world: int
    train: bool

    def train_batches(self, order: torch.Tensor, bs: int, drop_last: bool) -> list[torch.Tensor]:
        """This rank's batches (item indices) of a training pass whose single-process order
        is `order`, with `bs` items per rank and step."""
        group = bs * self.world
        n = len(order)
        if drop_last and n >= group:
            n -= n % group
        return [
            self.piece(order[start : min(start + group, n)], order) for start in range(0, n, group)
        ]

    def piece(self, batch: torch.Tensor, pad_from: torch.Tensor) -> torch.Tensor:
        """This rank's consecutive piece of a global `batch`, padded from `pad_from` when the
        batch has fewer than `world` items per rank."""
        size = -(-len(batch) // self.world)
        missing = size * self.world - len(batch)
        if missing:
            batch = torch.cat([batch, pad_from[torch.arange(missing) % len(pad_from)]])
        return batch[self.rank * size : (self.rank + 1) * size]

    def block(self, order: Sequence[int] | torch.Tensor) -> slice:
        """The slice of `order` this rank evaluates: nearly equal contiguous blocks."""
        base, extra = divmod(len(order), self.world)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))

    def n_train_items(self, n: int, bs: int, drop_last: bool) -> int:
        """How many items (padding included) this rank reads in a training pass of `n`."""
        group = bs * self.world
        if drop_last and n >= group:
            return n // group * bs
        full, rest = divmod(n, group)
        return full * bs + -(-rest // self.world)


@runtime_checkable
class ShardableLoader(Protocol):
    """A loader that knows how to read only its shard (`DeviceLoader`, `TensorLoader`, the
    DataBlock's and the text loaders); `shard_info` is the shard it reads (None: all)."""

    shard_info: Shard | None

    def shard(self, shard: Shard) -> Self:
        """A copy of the loader that reads only `shard`."""
        ...


class ShardSampler(Sampler[int]):
    """The indices of one shard of another sampler's order, re-drawn at every pass (so a
    `RandomSampler` reshuffles every epoch from the generator, identically on every rank).

    Args:
        base: the single-process sampler (e.g. `RandomSampler`, `SequentialSampler`).
        shard: this rank's part. bs: items per batch and rank. drop_last: as the
            single-process loader's (training shards only).
    """

    def __init__(self, base: Iterable[Any], shard: Shard, bs: int, drop_last: bool) -> None:
        self.base, self.shard, self.bs, self.drop_last = base, shard, bs, drop_last
        if not isinstance(base, Sized):
            raise TypeError(f"cannot shard a sampler without a length ({type(base).__name__})")

    def __len__(self) -> int:
        n = len(self.base)  # type: ignore[arg-type]
        if self.shard.train:
            return self.shard.n_train_items(n, self.bs, self.drop_last)
        block = self.shard.block(range(n))
        return block.stop - block.start

    def __iter__(self) -> Iterator[int]:
        order = torch.as_tensor(list(iter(self.base)), dtype=torch.int64)
        if self.shard.train:
            yield from torch.cat(self.shard.train_batches(order, self.bs, self.drop_last)).tolist()
        else:
            yield from order[self.shard.block(order)].tolist()


class BatchShards:
    """Whole batches of any sized iterable dealt out to the ranks (the fallback for loaders
    that hold no items, e.g. a list of batches): a training rank reads batches `rank, rank +
    world, ...` up to a multiple of `world` (every rank steps as often); an evaluation rank
    reads one contiguous block of batches."""

    def __init__(self, loader: Iterable[Any], shard: Shard) -> None:
        if not isinstance(loader, Sized):
            raise TypeError(
                f"cannot shard a {type(loader).__name__} over processes: it has no length; use "
                "a torch.utils.data.DataLoader over a map-style dataset, or mentor's loaders"
            )
        n = len(loader)
        if shard.train and n < shard.world:
            raise ValueError(
                f"the training loader has {n} batch(es), fewer than the {shard.world} processes; "
                "use a smaller batch size or fewer processes"
            )
        self.loader, self.shard = loader, shard
        if shard.train:
            self.picks = range(shard.rank, n - n % shard.world, shard.world)
        else:
            block = shard.block(range(n))
            self.picks = range(block.start, block.stop)

    def __len__(self) -> int:
        return len(self.picks)

    def __iter__(self) -> Iterator[Any]:
        wanted = set(self.picks)
        for i, batch in enumerate(self.loader):
            if i in wanted:
                yield batch


def shard_dataloader(loader: DataLoader[Any], shard: Shard) -> DataLoader[Any]:
    """The same `torch.utils.data.DataLoader` reading only `shard` (map-style datasets)."""
    if isinstance(loader.dataset, IterableDataset) or loader.batch_size is None:
        raise TypeError(
            "cannot shard a DataLoader over an IterableDataset or with a batch_sampler: give "
            "each process its own part of the stream, or use a map-style dataset and batch_size"
        )
    sampler = ShardSampler(loader.sampler, shard, loader.batch_size, loader.drop_last)
    extra: dict[str, Any] = {}
    if loader.num_workers > 0:
        extra.update(
            prefetch_factor=loader.prefetch_factor, persistent_workers=loader.persistent_workers
        )
    return DataLoader(
        loader.dataset, batch_size=loader.batch_size, sampler=sampler,
        num_workers=loader.num_workers, collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory, drop_last=False, timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context, generator=loader.generator,
        **extra,
    )  # fmt: skip


def shard_loader(loader: Iterable[Any], shard: Shard) -> Iterable[Any]:
    """`loader` reading only `shard`: mentor's loaders shard themselves, a
    `torch.utils.data.DataLoader` gets a `ShardSampler`, anything else sized is dealt out by
    whole batches."""
    if isinstance(loader, ShardableLoader):
        return loader.shard(shard)
    if isinstance(loader, DataLoader):
        return shard_dataloader(loader, shard)
    return BatchShards(loader, shard)


def shard_of(loader: Any) -> Shard | None:
    """The shard a loader (or the loader it wraps) reads; None when it reads everything."""
    if isinstance(loader, ShardableLoader):
        return loader.shard_info
    if isinstance(loader, DataLoader) and isinstance(loader.sampler, ShardSampler):
        return loader.sampler.shard
    if isinstance(loader, BatchShards):
        return loader.shard
    return None
