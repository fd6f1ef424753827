"""Test-time augmentation, and `replay_loader`: the items of a loader again, in order, with
the item and batch transforms in training (augmenting) or validation mode."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader

from mentor.data.block_loaders import BlockDataLoaders
from mentor.data.datablock import Datasets, SkippingLoader
from mentor.data.loaders import DeviceLoader, TensorLoader
from mentor.data.shard import Shard, shard_loader
from mentor.data.transforms import BatchPipeline, OneThread

if TYPE_CHECKING:
    from mentor.data.datablock import DataBlock
    from mentor.train.learner import Learner


def replay_loader(
    dl: Any, train: bool, block: DataBlock | None = None, bs: int | None = None
) -> DeviceLoader:
    """A loader over the same items as `dl`, in order and complete (no shuffling, no dropped
    last batch), with the item transforms in training or validation mode.

    Args:
        dl: a `DeviceLoader` over a `torch.utils.data.DataLoader` (as a DataBlock's loaders
            are) or a `TensorLoader`.
        train: run the transforms as for training (random augmentation) or validation.
        block: the DataBlock whose batch transforms to run (their `train_only` ones when
            `train`); None keeps `dl`'s own batch transforms.
        bs: batch size (default: `dl`'s).
    """
    if not isinstance(dl, DeviceLoader):
        raise TypeError(
            f"cannot replay a {type(dl).__name__}: it needs a DeviceLoader (a DataLoaders' "
            "train, valid or test_dl loader)"
        )
    skipping = isinstance(dl.loader, SkippingLoader)
    inner = dl.loader.loader if isinstance(dl.loader, SkippingLoader) else dl.loader
    raw: Any
    if isinstance(inner, TensorLoader):
        raw, kinds = TensorLoader(*inner.tensors, bs=bs or inner.bs), None
    elif isinstance(inner, DataLoader):
        ds = inner.dataset
        if isinstance(ds, Datasets) and ds.train != train:
            ds = _in_mode(ds, train)
        kinds = ds.kinds if isinstance(ds, Datasets) else None
        raw = DataLoader(
            ds, batch_size=bs or inner.batch_size, shuffle=False, num_workers=inner.num_workers,
            collate_fn=inner.collate_fn, pin_memory=inner.pin_memory,
            worker_init_fn=inner.worker_init_fn,
        )  # fmt: skip
        raw = SkippingLoader(raw) if skipping else raw
    else:
        raise TypeError(
            f"cannot replay a loader over a {type(inner).__name__}: it needs a "
            "torch.utils.data.DataLoader or a TensorLoader inside the DeviceLoader"
        )
    shard = dl.shard_info
    if shard is not None:  # a distributed run: each process replays its block
        raw = shard_loader(raw, Shard(shard.rank, shard.world, train=False))
    return DeviceLoader(raw, dl.device, _after_batch(dl, block, kinds, train))


def _in_mode(ds: Datasets, train: bool) -> Datasets:
    """A copy of `ds` whose item transforms run in training (random) or validation mode."""
    copied = copy.copy(ds)
    copied.train = train
    return copied


def _after_batch(dl: DeviceLoader, block: DataBlock | None, kinds: Any, train: bool) -> Any:
    """`block`'s batch pipeline in the asked mode (one CPU thread where `dl` used one)."""
    if block is None:
        return dl.after_batch
    pipeline = BatchPipeline(block.batch_tfms, kinds or block.kinds, train=train)
    return OneThread(pipeline) if isinstance(dl.after_batch, OneThread) else pipeline


def tta(
    learn: Learner, dl: Any = None, n: int = 4, beta: float = 0.25
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Predictions with test-time augmentation over `dl` (default: the validation set).

    The plain predictions (validation transforms) are blended with the mean of `n` passes
    in which the same items go through the training transforms (augmentation on), as in
    fastai: `preds = beta * plain + (1 - beta) * augmented_mean` (`torch.lerp`), so the
    default `beta=0.25` puts 75% of the weight on the augmented passes. Predictions are
    activated (softmax, sigmoid, as the loss says) before averaging. `n=0` (no augmented
    pass) or `beta=1` gives the plain `get_preds`; `beta=0` the augmented mean alone.

    Args:
        learn: a learner whose data was built by a DataBlock (it has `block`).
        dl: a loader of that data (e.g. `learn.dls.test_dl(items)`); default the
            validation loader.
        n: the number of augmented passes (4). beta: the weight of the plain predictions.

    Returns:
        `(preds, targets)` on the CPU; targets are None for an unlabelled loader.

    Example:
        >>> preds, targets = learn.tta()
        >>> accuracy(preds, targets)
    """
    if n < 0 or not 0.0 <= beta <= 1.0:
        raise ValueError(f"tta needs n >= 0 and 0 <= beta <= 1, got n={n}, beta={beta}")
    if not isinstance(learn.dls, BlockDataLoaders):
        raise TypeError(
            f"tta needs data built by a DataBlock (to know the training transforms); "
            f"{type(learn.dls).__name__} has no `block`: use get_preds, or build the data "
            "with a DataBlock / ImageDataLoaders"
        )
    loader = learn.dls.valid if dl is None else dl
    if loader is None:
        raise ValueError("there is no validation set; pass dl= to predict on other data")
    was_training = learn.model.training
    try:
        plain, targets = learn.get_preds(dl=loader)
        if n == 0:
            return plain, targets
        augmented = replay_loader(loader, train=True, block=learn.dls.block)
        passes = [learn.get_preds(dl=augmented)[0] for _ in range(n)]
    finally:
        learn.model.train(was_training)
    return torch.lerp(torch.stack(passes).mean(0), plain, beta), targets


__all__ = ["replay_loader", "tta"]
