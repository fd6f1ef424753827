"""`DataBlock`: describe a data set in a few lines (items, labels, split, transforms)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pandas as pd
import torch
from torch.utils.data import Dataset, default_collate

from mentor.data.blocks import TransformBlock, as_block
from mentor.data.cache import SampleCache
from mentor.data.errors import BadItemError, worker_message
from mentor.data.shard import Shard, shard_dataloader, shard_of
from mentor.data.splitters import RandomSplitter
from mentor.data.transforms import ItemTransform, Kinds, ToTensor, apply_item_tfms

Getter = Callable[[Any], Any]


class Skipped:
    """What a data set returns for a bad item when `skip_bad=True`: the item's name."""

    def __init__(self, name: str) -> None:
        self.name = name


class Datasets(Dataset[Any]):
    """Items turned into samples: the getters, the blocks' `encode`, then the item transforms.

    Args:
        items: the items (paths, rows, ...). getters: one function per block (item -> raw).
        blocks: the blocks. item_tfms: per-item transforms. train: random transforms on.
        skip_bad: return `Skipped` for unreadable items instead of raising.
    """

    def __init__(
        self,
        items: Sequence[Any],
        getters: Sequence[Getter],
        blocks: Sequence[TransformBlock],
        item_tfms: Sequence[ItemTransform],
        train: bool,
        skip_bad: bool = False,
    ) -> None:
        self.items, self.getters, self.blocks = list(items), list(getters), list(blocks)
        self.item_tfms = sorted(item_tfms, key=lambda t: t.order)
        self.kinds: Kinds = tuple(block.kind for block in blocks)
        self.train, self.skip_bad = train, skip_bad

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Any:
        item = self.items[index]
        try:
            sample = [b.encode(get(item)) for get, b in zip(self.getters, self.blocks)]
            return tuple(apply_item_tfms(self.item_tfms, sample, self.kinds, self.train))
        except BadItemError:
            if self.skip_bad:
                return Skipped(str(item))
            raise


def collate_samples(samples: list[Any]) -> tuple[Any, list[str]]:
    """Stack samples into a batch, leaving out skipped ones: `(batch or None, skipped names)`."""
    good = [s for s in samples if not isinstance(s, Skipped)]
    skipped = [s.name for s in samples if isinstance(s, Skipped)]
    return (default_collate(good) if good else None), skipped


class SkippingLoader:
    """Yields the batches of a loader built with `collate_samples`; after each pass, warns once
    listing the items skipped for the first time. With a `SampleCache`, batches come from the
    cache once it holds every sample (see `mentor.data.cache`)."""

    def __init__(
        self, loader: torch.utils.data.DataLoader[Any], cache: SampleCache | None = None
    ) -> None:
        self.loader = loader
        self.cache = cache
        self.skipped: list[str] = []

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def shard_info(self) -> Shard | None:
        """The shard of a distributed run the loader reads (None: all of it)."""
        return shard_of(self.loader)

    def shard(self, shard: Shard) -> SkippingLoader:
        """The same loader reading only `shard` (see `mentor.data.shard`)."""
        return SkippingLoader(shard_dataloader(self.loader, shard), self.cache)

    def __iter__(self) -> Iterator[Any]:
        if self.cache is not None and self.cache.ready(self.loader):
            yield from self.cache.batches(self.loader)
            return
        new: list[str] = []
        batches = iter(self.loader)
        try:
            for batch, skipped in batches:
                new += [name for name in skipped if name not in self.skipped]
                if batch is not None:
                    yield batch
        except BadItemError as err:  # from a worker: its message holds the worker's traceback
            raise type(err)(worker_message(err)) from None
        finally:  # stop the workers now, not when the iterator is collected (maybe in a fork)
            shutdown = getattr(batches, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()
        if new:
            self.skipped += new
            warnings.warn(
                f"skipped {len(new)} unreadable item(s): {', '.join(new)}; "
                "run verify_images on the folder to find and remove them",
                stacklevel=2,
            )


class DataBlock:
    """A recipe for data: what the items are, how to label and split them, and their transforms.

    Args:
        blocks: one block per part of a sample, inputs first (e.g. `(ImageBlock, CategoryBlock)`).
        get_items: `source -> items` (e.g. `get_image_files`); None: the source is the items
            (a list, or a DataFrame whose rows become dicts).
        get_x, get_y: `item -> raw value` for the inputs / targets (a function or one per
            block); default: the item itself.
        splitter: `items -> (train indices, valid indices)` (default `RandomSplitter()`).
        item_tfms: per-item transforms (in loader workers), e.g. `Resize(224)` (one or a list).
        batch_tfms: per-batch transforms (on the device), e.g. `aug_transforms()`.
        n_inp: how many blocks are inputs (default: all but the last).
        skip_bad: skip unreadable items with one warning listing them, instead of failing.

    Example:
        >>> mnist = DataBlock(blocks=(ImageBlock("L"), CategoryBlock), get_items=get_image_files,
        ...                   get_y=parent_label, splitter=GrandparentSplitter())
        >>> dls = mnist.dataloaders(path, bs=64)
    """

    def __init__(
        self,
        blocks: Sequence[TransformBlock | Callable[[], TransformBlock]] = (),
        get_items: Callable[[Any], Sequence[Any]] | None = None,
        get_x: Getter | Sequence[Getter] | None = None,
        get_y: Getter | Sequence[Getter] | None = None,
        splitter: Callable[[Sequence[Any]], tuple[list[int], list[int]]] | None = None,
        item_tfms: ItemTransform | Sequence[ItemTransform] = (),
        batch_tfms: Any = (),
        n_inp: int | None = None,
        skip_bad: bool = False,
    ) -> None:
        self.blocks = [as_block(b) for b in blocks] or [TransformBlock(), TransformBlock()]
        self.n_inp = n_inp if n_inp is not None else max(1, len(self.blocks) - 1)
        self.get_items, self.splitter = get_items, splitter or RandomSplitter()
        self.getters = _getters(get_x, get_y, self.n_inp, len(self.blocks))
        extra_items = list({type(t): t for b in self.blocks for t in b.item_tfms}.values())
        self.item_tfms: list[ItemTransform] = [*_listify(item_tfms), *extra_items, ToTensor()]
        self.batch_tfms = [*(t for b in self.blocks for t in b.batch_tfms), *_listify(batch_tfms)]
        self.skip_bad = skip_bad

    @property
    def kinds(self) -> Kinds:
        """The kind of each part of a sample."""
        return tuple(block.kind for block in self.blocks)

    def items(self, source: Any) -> list[Any]:
        """The items of `source`: `get_items(source)`, or the source itself."""
        found = self.get_items(source) if self.get_items is not None else source
        if isinstance(found, pd.DataFrame):
            return found.to_dict("records")
        items = list(found)
        if not items:
            raise ValueError(f"no items found in {source!r}; check the path and get_items")
        return items

    def datasets(self, source: Any) -> tuple[Datasets, Datasets]:
        """The training and validation `Datasets`; blocks learn their vocabularies from the
        training items, and a validation label they don't know fails here, naming it."""
        items = self.items(source)
        train_idx, valid_idx = self.splitter(items)
        train_items = [items[i] for i in train_idx]
        valid_items = [items[i] for i in valid_idx]
        for get, block in zip(self.getters, self.blocks):
            block.setup([get(item) for item in train_items])
        self.check_labels(valid_items, "validation")
        return self.make_datasets(train_items, True), self.make_datasets(valid_items, False)

    def make_datasets(
        self, items: Sequence[Any], train: bool, n_blocks: int | None = None
    ) -> Datasets:
        """A `Datasets` over `items` with this block's getters, blocks and item transforms
        (the first `n_blocks` blocks only, e.g. the inputs of an unlabelled test set)."""
        n = len(self.blocks) if n_blocks is None else n_blocks
        getters, blocks = self.getters[:n], self.blocks[:n]
        return Datasets(items, getters, blocks, self.item_tfms, train, self.skip_bad)

    def check_labels(self, items: Sequence[Any], where: str) -> None:
        """Encode the targets of `items` (labels only, no files read) to fail early and clearly."""
        for get, block in zip(self.getters[self.n_inp :], self.blocks[self.n_inp :]):
            if not block.checks_labels:
                continue
            for index, item in enumerate(items):
                try:
                    block.encode(get(item))
                except KeyError as err:
                    raise KeyError(f"{where} item {index} ({item}): {err.args[0]}") from None

    def dataloaders(self, source: Any, bs: int = 64, **loader_kw: Any) -> Any:
        """`DataLoaders` over `source`; see `mentor.data.block_loaders.BlockDataLoaders` for
        `num_workers`, `shuffle`, `device`, `valid_bs`."""
        from mentor.data.block_loaders import BlockDataLoaders

        own = self.blocks[0].build_dataloaders(self, source, bs, **loader_kw)
        if own is not None:
            return own
        train_ds, valid_ds = self.datasets(source)
        return BlockDataLoaders(self, train_ds, valid_ds, bs=bs, **loader_kw)

    def summary(self, source: Any) -> str:
        """Walk one training item through every step, printing each result; a failing step is
        named with its error. Returns the printed text."""
        from mentor.data.block_summary import walk_one_item

        text = walk_one_item(self, source)
        print(text)
        return text


def _getters(
    get_x: Getter | Sequence[Getter] | None,
    get_y: Getter | Sequence[Getter] | None,
    n_inp: int,
    n_blocks: int,
) -> list[Getter]:
    """One getter per block, from get_x (inputs) and get_y (targets)."""

    def expand(get: Getter | Sequence[Getter] | None, n: int, name: str) -> list[Getter]:
        if get is None:
            return [_identity] * n
        gets: list[Getter] = list(get) if isinstance(get, list | tuple) else [get] * n  # type: ignore[list-item]
        if len(gets) != n:
            raise ValueError(f"{name} has {len(gets)} functions for {n} blocks; give one per block")
        return gets

    return expand(get_x, n_inp, "get_x") + expand(get_y, n_blocks - n_inp, "get_y")


def _listify(tfms: Any) -> list[Any]:
    """A list of transforms from None, one transform, or a sequence of them."""
    if tfms is None:
        return []
    return list(tfms) if isinstance(tfms, list | tuple) else [tfms]


def _identity(item: Any) -> Any:
    return item
