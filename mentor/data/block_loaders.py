"""The `DataLoaders` a `DataBlock` builds: vocab, test sets, resizing, `show_batch`."""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader

from mentor.core.device import default_device, is_main_process, keep_batch_memory, to_cpu
from mentor.data.cache import SampleCache
from mentor.data.datablock import Datasets, SkippingLoader, collate_samples
from mentor.data.encoders import BlockEncoder
from mentor.data.loaders import DataLoaders, DeviceLoader
from mentor.data.transforms import IMAGE, BatchPipeline, BatchTransform, OneThread

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mentor.data.datablock import DataBlock


def default_workers() -> int:
    """Loader worker processes: one per core, at most 8 (0 on a single core)."""
    cores = os.cpu_count() or 1
    return 0 if cores < 2 else min(cores, 8)


class BlockDataLoaders(DataLoaders):
    """Training and validation loaders over a `DataBlock`'s data sets.

    Item transforms run in `num_workers` worker processes and batches arrive as uint8; the
    batch transforms (float conversion, augmentation for training, normalization) run on
    `device`.

    Args:
        block: the DataBlock. train_ds, valid_ds: its data sets.
        bs: batch size (64); valid_bs: validation batch size (default 2 * bs).
        num_workers: worker processes (default: one per core, at most 8).
        shuffle: shuffle the training set (True). device: default CUDA when available.
        cache: keep a split's decoded samples in memory after its first pass when its item
            transforms draw nothing (always true of validation) and it fits the memory budget
            (True, the default; see `mentor.data.cache`). False decodes every epoch.
    """

    def __init__(
        self,
        block: DataBlock,
        train_ds: Datasets,
        valid_ds: Datasets,
        bs: int = 64,
        valid_bs: int | None = None,
        num_workers: int | None = None,
        shuffle: bool = True,
        device: torch.device | str | None = None,
        cache: bool = True,
    ) -> None:
        dev = torch.device(device) if device is not None else default_device()
        self.cache = cache
        self.block, self.train_ds, self.valid_ds = block, train_ds, valid_ds
        self.bs: int = bs
        self.valid_bs: int = valid_bs or 2 * bs
        self.num_workers = default_workers() if num_workers is None else num_workers
        self.shuffle = shuffle
        train = self._loader(train_ds, bs, shuffle, dev, train=True)
        valid = self._loader(valid_ds, self.valid_bs, False, dev, train=False)
        super().__init__(train, valid if len(valid_ds) else None, device=dev)

    def _loader(
        self,
        ds: Datasets,
        bs: int,
        shuffle: bool,
        device: torch.device,
        train: bool,
        cache: bool = True,
    ) -> DeviceLoader:
        workers = self.num_workers if len(ds) > bs else 0  # tiny sets: no process start-up
        loader = DataLoader(
            ds,
            batch_size=bs,
            shuffle=shuffle,
            drop_last=shuffle and len(ds) > bs,
            num_workers=workers,
            # a persistent pool took 20 s to shut down once a fit had run (torch 2.13, fork);
            # starting the workers each epoch measured no slower
            persistent_workers=False,
            pin_memory=device.type == "cuda",
            collate_fn=collate_samples,
            worker_init_fn=_lower_priority if device.type == "cpu" else None,
        )
        pipeline: Any = BatchPipeline(self.block.batch_tfms, ds.kinds, train=train)
        if device.type == "cpu":
            keep_batch_memory()
            pipeline = OneThread(pipeline) if workers > 0 else pipeline
        kept = SampleCache() if cache and self.cache and _draws_nothing(ds) else None
        return DeviceLoader(SkippingLoader(loader, kept), device, pipeline)

    def add_batch_tfms(self, tfms: Sequence[BatchTransform]) -> None:
        """Append batch transforms (e.g. a `Normalize`) and rebuild the train and valid
        pipelines; later `test_dl`s get them too. The block is copied, not changed."""
        self.block = copy.copy(self.block)
        self.block.batch_tfms = [*self.block.batch_tfms, *tfms]
        for loader, ds, train in (
            (self.train, self.train_ds, True),
            (self.valid, self.valid_ds, False),
        ):
            if isinstance(loader, DeviceLoader):
                pipeline: Any = BatchPipeline(self.block.batch_tfms, ds.kinds, train=train)
                one_thread = isinstance(loader.after_batch, OneThread)
                loader.after_batch = OneThread(pipeline) if one_thread else pipeline

    # ----- what the data is -----
    @property
    def n_inp(self) -> int:
        """The DataBlock's input blocks."""
        return self.block.n_inp

    @property
    def target_block(self) -> Any:
        """The first target block (after the inputs), or None for unlabelled data."""
        blocks = self.block.blocks
        return blocks[self.block.n_inp] if len(blocks) > self.block.n_inp else None

    @property
    def loss_spec(self) -> tuple[str, dict[str, Any]] | None:
        """The loss for this target, as a registry name and arguments."""
        return None if self.target_block is None else self.target_block.loss_spec

    @property
    def application(self) -> str:  # type: ignore[override]
        """'vision' when the first input is an image, else 'datablock'."""
        return "vision" if self.block.kinds[0] == IMAGE else "datablock"

    def describe(self) -> list[str]:
        """The items per split, the blocks and the transforms."""
        blocks = [type(b).__name__ for b in self.block.blocks]
        return [
            f"items: train {len(self.train_ds)}, valid {len(self.valid_ds)}",
            f"blocks: {blocks} ({self.block.n_inp} input(s))",
            f"item_tfms: {[type(t).__name__ for t in self.block.item_tfms]}",
            f"batch_tfms: {[type(t).__name__ for t in self.block.batch_tfms]}",
        ]

    def item_encoder(self) -> BlockEncoder:
        """The input blocks with the validation-time item and batch transforms."""
        block = self.block
        return BlockEncoder(block.blocks[: block.n_inp], block.item_tfms, block.batch_tfms)

    # ----- new loaders from the same items -----
    def test_dl(
        self,
        items: Sequence[Any],
        with_labels: bool = False,
        bs: int | None = None,
        skip_bad: bool = False,
    ) -> Any:
        """A loader over new items with the validation transforms (no augmentation).

        Args:
            items: the items (e.g. image paths, or a DataFrame for tabular-style blocks).
            with_labels: the items carry labels too (get_y applies; unknown labels fail
                naming the label and the vocabulary).
            bs: batch size (default: the validation batch size).
            skip_bad: leave out unreadable items (as the DataBlock's `skip_bad` does), with
                one warning listing them after the pass.
        """
        block = self.block
        found = block.items(items) if block.get_items is None else list(items)
        if with_labels:
            block.check_labels(found, "test")
        n_blocks = len(block.blocks) if with_labels else block.n_inp
        ds = block.make_datasets(found, train=False, n_blocks=n_blocks)
        ds.skip_bad = ds.skip_bad or skip_bad
        # read once, typically: no cache
        return self._loader(ds, bs or self.valid_bs, False, self.device, train=False, cache=False)

    def new(
        self, size: int | tuple[int, int] | None = None, bs: int | None = None
    ) -> BlockDataLoaders:
        """The same items and splits with another image `size` and/or batch size (for
        progressive resizing: train small first, then larger)."""
        block = copy.copy(self.block)
        if size is not None:
            block.item_tfms = [_resized(t, size) for t in block.item_tfms]
            block.batch_tfms = [_resized(t, size) for t in block.batch_tfms]
        train_ds, valid_ds = copy.copy(self.train_ds), copy.copy(self.valid_ds)
        for ds in (train_ds, valid_ds):
            ds.item_tfms = sorted(block.item_tfms, key=lambda t: t.order)
        return BlockDataLoaders(
            block, train_ds, valid_ds, bs or self.bs, None if bs else self.valid_bs,
            self.num_workers, self.shuffle, self.device, self.cache,
        )  # fmt: skip

    # ----- looking at the data -----
    def decode_batch(self, batch: Sequence[Any], train: bool = True) -> list[list[Any]]:
        """A batch on the CPU with the batch transforms undone: per item, its parts."""
        pipeline = BatchPipeline(self.block.batch_tfms, self.block.kinds[: len(batch)], train)
        parts = to_cpu(pipeline.decode(batch))
        return [[part[i] for part in parts] for i in range(len(parts[0]))]

    def show_batch(
        self,
        max_n: int = 9,
        nrows: int | None = None,
        ncols: int | None = None,
        figsize: tuple[float, float] | None = None,
        unique: bool = False,
        fname: str | Path | None = None,
    ) -> Figure:
        """Show decoded items of a training batch with their labels.

        Args:
            max_n: how many items (9). nrows, ncols, figsize: the grid (default square).
            unique: show `max_n` augmented versions of the first item instead.
            fname: also save the figure there (a PNG); without a display it is saved to
                `show_batch.png` when no name is given.
        """
        from mentor.core.figures import interactive_backend, subplots

        batch = self._unique_batch(max_n) if unique else self.one_batch()
        items = self.decode_batch(batch)[:max_n]
        panels = self._panels()
        if len(panels) > 1:  # image to image: one row per item, its images side by side
            ncols, nrows = len(panels), len(items)
        else:
            ncols = ncols or math.ceil(math.sqrt(len(items)))
            nrows = nrows or math.ceil(len(items) / ncols)
        fig, axes = subplots(nrows, ncols, figsize=figsize or (3 * ncols, 3 * nrows))
        axes_list = list(getattr(axes, "flat", [axes]))
        for i, item in enumerate(items):
            if len(panels) > 1:
                self._show_panels(item, axes_list[i * ncols : (i + 1) * ncols], panels, i == 0)
                continue
            for part, block in zip(item, self.block.blocks):
                block.show(part, axes_list[i])
        for ax in axes_list:
            ax.axis("off")
        fig.tight_layout()
        if (fname is not None or not interactive_backend()) and is_main_process():
            fig.savefig(fname or "show_batch.png", dpi=80)
        return fig

    def show_results(
        self,
        batch: Sequence[Any],
        preds: Sequence[Any],
        max_n: int = 9,
        figsize: tuple[float, float] | None = None,
        fname: str | Path | None = None,
    ) -> Figure:
        """Items of a validation `batch` with their targets and the model's decoded outputs
        `preds`: labels as "target / prediction" titles; masks and points side by side.

        Args:
            batch: a batch as the validation loader gives it. preds: decoded outputs.
            max_n: how many items (9). figsize: the figure size. fname: also save it there.
        """
        from mentor.core.figures import subplots

        items = self.decode_batch(batch, train=False)[:max_n]
        n_inp, target = self.block.n_inp, self.target_block
        if target is not None and target.kind == IMAGE:  # image to image
            return self._show_image_results(batch, preds, items, figsize, fname)
        spatial = target is not None and target.needs_geometry
        ncols = 2 if spatial else min(3, len(items))
        nrows = len(items) if spatial else math.ceil(len(items) / ncols)
        fig, axes = subplots(nrows, ncols, figsize=figsize or (3 * ncols, 3 * nrows))
        axes_list = list(getattr(axes, "flat", [axes]))
        for i, item in enumerate(items):
            inputs, targets = item[:n_inp], item[n_inp:]
            if spatial and target is not None:  # the target beside the prediction
                for ax, value in zip(axes_list[2 * i : 2 * i + 2], [*targets, preds[i]]):
                    self._show_inputs(inputs, ax)
                    target.show(value, ax)
                if i == 0 and hasattr(target, "legend"):  # masks: which colour is which code
                    target.legend(axes_list[1], [*targets, preds[i]])
                continue
            ax = axes_list[i]
            self._show_inputs(inputs, ax)
            if target is not None:
                shown = [target.title(value) for value in [*targets, preds[i]]]
                ax.set_title(" / ".join(shown), fontsize=9)
        for ax in axes_list:
            ax.axis("off")
        fig.tight_layout()
        if fname is not None and is_main_process():
            fig.savefig(fname, dpi=80)
        return fig

    def _panels(self) -> list[int]:
        """The parts drawn as pictures of their own: the images."""
        return [i for i, kind in enumerate(self.block.kinds) if kind == IMAGE]

    def _show_panels(
        self, item: Sequence[Any], axes: Sequence[Any], panels: Sequence[int], titled: bool
    ) -> None:
        """Each image of `item` on its own axes; other parts over the first image."""
        n_inp = self.block.n_inp
        for ax, index in zip(axes, panels):
            self.block.blocks[index].show(item[index], ax)
            if titled:
                ax.set_title("input" if index < n_inp else "target", fontsize=9)
        for index, (part, block) in enumerate(zip(item, self.block.blocks)):
            if index not in panels:
                block.show(part, axes[0])

    def _show_image_results(
        self,
        batch: Sequence[Any],
        preds: Sequence[Any],
        items: Sequence[Sequence[Any]],
        figsize: tuple[float, float] | None,
        fname: str | Path | None,
    ) -> Figure:
        """Input, target and prediction side by side, one row per item; the predictions are
        decoded like the targets (the batch transforms undone)."""
        from mentor.core.figures import subplots

        n_inp, target = self.block.n_inp, self.target_block
        n = len(items)
        predicted = torch.stack([torch.as_tensor(p) for p in preds[:n]])
        shown = [part[:n] for part in batch[:n_inp]]
        decoded = self.decode_batch([*shown, predicted.to(shown[0].device)], train=False)
        fig, axes = subplots(n, 3, figsize=figsize or (9, 3 * n), squeeze=False)
        for row, (item, out) in enumerate(zip(items, decoded)):
            values = [item[0], item[n_inp], out[n_inp]]
            for ax, value, name in zip(axes[row], values, ("input", "target", "prediction")):
                (self.block.blocks[0] if name == "input" else target).show(value, ax)
                ax.axis("off")
                if row == 0:
                    ax.set_title(name, fontsize=9)
        fig.tight_layout()
        if fname is not None and is_main_process():
            fig.savefig(fname, dpi=80)
        return fig

    def _show_inputs(self, inputs: Sequence[Any], ax: Any) -> None:
        for value, block in zip(inputs, self.block.blocks):
            block.show(value, ax)

    def _unique_batch(self, n: int) -> Any:
        """One training item repeated `n` times, each with its own augmentation."""
        sample = self.train_ds[0]
        raw = [torch.stack([sample[j]] * n) for j in range(len(sample))]
        batch = [part.to(self.device) for part in raw]
        return self.train.after_batch(batch) if self.train.after_batch else tuple(batch)


def _draws_nothing(ds: Datasets) -> bool:
    """Whether `ds`'s item transforms give the same sample every epoch."""
    return not ds.train or not any(tfm.random for tfm in ds.item_tfms)


def _lower_priority(worker_id: int) -> None:
    """Loader workers yield the CPU to the main process, which runs the batch transforms on
    a CPU device: they only need to stay ahead of it, not to win the cores."""
    os.nice(5)


def _resized(tfm: Any, size: int | tuple[int, int]) -> Any:
    """A copy of `tfm` producing `size`, for transforms that have a `size`; others unchanged."""
    if getattr(tfm, "size", None) is None:
        return tfm
    resized = copy.copy(tfm)
    resized.size = (size, size) if isinstance(size, int) else tuple(size)  # sizes are (h, w)
    return resized
