"""Precomputed activations: train a head on the frozen body's cached features (fastai v0.7's
`precompute=True`).

While the body is frozen, its output for an item never changes (without augmentation), so
it can be computed once: the body and the head's parameter-free start (pooling, flatten) run
over the training and validation items with the validation transforms, and the rest of the
head trains on those `[N, F]` features, many times faster per epoch than the full model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from mentor.core.device import split_batch
from mentor.data.block_loaders import BlockDataLoaders
from mentor.data.loaders import DataLoaders, TensorLoader
from mentor.train.tta import replay_loader

if TYPE_CHECKING:
    from mentor.train.learner import Learner

_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
_DROPOUT_TYPES = (nn.modules.dropout._DropoutNd,)


@dataclass
class FeatureCache:
    """Features (the frozen body plus the head's pooling) of the training and validation
    items, with what they were computed from: the data objects (compared by identity) and
    the state of the body's weights and statistics (`body_state`)."""

    sources: tuple[Any, ...]
    body_state: list[tuple[int, int]]
    train: tuple[Tensor, Tensor]
    valid: tuple[Tensor, Tensor] | None

    def matches(self, sources: tuple[Any, ...], state: list[tuple[int, int]]) -> bool:
        """Whether the cache is still valid for these data and body."""
        same_data = len(sources) == len(self.sources) and all(
            a is b for a, b in zip(sources, self.sources)
        )
        return same_data and state == self.body_state


def body_and_head(model: nn.Module) -> tuple[nn.Module, nn.Sequential]:
    """The body and head of a `vision_learner` model (`nn.Sequential(body, head)`)."""
    children = list(model.children())
    if not isinstance(model, nn.Sequential) or len(children) != 2:
        raise TypeError(
            f"precompute needs the model vision_learner builds, nn.Sequential(body, head); got "
            f"{type(model).__name__} with {len(children)} children: set precompute=False"
        )
    body, head = children
    if not isinstance(head, nn.Sequential):
        raise TypeError(f"precompute needs an nn.Sequential head, got {type(head).__name__}")
    return body, head


def split_head(head: nn.Sequential) -> tuple[nn.Sequential, nn.Sequential]:
    """The head's leading layers that can be cached (no parameters, no buffers, no dropout:
    pooling and flatten) and the rest, which shares the head's modules and parameters."""
    layers = list(head.children())
    cut = 0
    while cut < len(layers) and _cacheable(layers[cut]):
        cut += 1
    return nn.Sequential(*layers[:cut]), nn.Sequential(*layers[cut:])


def _cacheable(module: nn.Module) -> bool:
    """Deterministic and not trained: no parameters, no buffers, no dropout inside."""
    stateless = next(module.parameters(), None) is None and next(module.buffers(), None) is None
    return stateless and not any(isinstance(m, _DROPOUT_TYPES) for m in module.modules())


def body_is_frozen(body: nn.Module) -> bool:
    """Whether no body weight trains (normalization layers, which `train_bn` keeps
    trainable in frozen groups, do not count)."""
    for module in body.modules():
        if isinstance(module, _NORM_TYPES):
            continue
        if any(p.requires_grad for p in module.parameters(recurse=False)):
            return False
    return True


def body_state(body: nn.Module) -> list[tuple[int, int]]:
    """Where each weight and buffer of `body` lives and how often it was changed in place:
    training steps, `load_state_dict` and batch-norm updates all show here, without
    reading the weights. (Changes through `.data` escape autograd's version counter: set
    `learn.feature_cache = None` after those.)"""
    tensors = [*body.parameters(), *body.buffers()]
    return [(t.data_ptr(), t._version) for t in tensors]  # type: ignore[attr-defined]


def compute_features(
    extractor: nn.Module, dl: Any, autocast: contextlib.AbstractContextManager[Any]
) -> tuple[Tensor, Tensor]:
    """`extractor`'s outputs and the targets over every batch of `dl`, in eval mode."""
    features: list[Tensor] = []
    targets: list[Tensor] = []
    was_training = extractor.training
    extractor.eval()
    # no_grad, not inference_mode: the features become inputs of a training step, and
    # inference tensors cannot be saved for backward
    try:
        with torch.no_grad(), autocast:
            for batch in dl:
                xb, yb = split_batch(batch)
                features.append(extractor(*xb).float())
                targets.append(yb[0])
    finally:
        extractor.train(was_training)
    if not features:
        raise ValueError("precompute found no batches to compute features from")
    return torch.cat(features), torch.cat(targets)


def build_cache(
    learn: Learner, body: nn.Module, prefix: nn.Module, sources: tuple[Any, ...]
) -> FeatureCache:
    """Features of the training items (all, in order, with the validation transforms) and
    of the validation items."""
    dls = learn.dls
    block = dls.block if isinstance(dls, BlockDataLoaders) else None
    train_dl = replay_loader(dls.train, train=False, block=block, bs=_batch_size(dls, True))
    extractor = nn.Sequential(body, prefix)
    train = compute_features(extractor, train_dl, learn.autocast)
    valid = None if dls.valid is None else compute_features(extractor, dls.valid, learn.autocast)
    return FeatureCache(sources, body_state(body), train, valid)


def feature_loaders(dls: DataLoaders, cache: FeatureCache) -> DataLoaders:
    """Loaders over the cached features with the data's batch sizes; the training one
    shuffles every epoch and drops a last partial batch, like the data's (unless it was
    built with `shuffle=False`)."""
    bs, valid_bs = _batch_size(dls, False), _batch_size(dls, True)
    shuffle = dls.shuffle
    drop_last = shuffle and cache.train[0].shape[0] > bs
    train = TensorLoader(*cache.train, bs=bs, shuffle=shuffle, drop_last=drop_last)
    valid = None if cache.valid is None else TensorLoader(*cache.valid, bs=valid_bs)
    return DataLoaders(train, valid, device=dls.device)


def _batch_size(dls: DataLoaders, valid: bool) -> int:
    """The data's training (or validation) batch size; 64 when it cannot be told."""
    size = dls.valid_bs if valid else dls.bs
    if size:
        return size
    loader = getattr(dls.valid if valid else dls.train, "loader", None)  # a wrapped loader
    size = getattr(loader, "batch_size", None) or getattr(loader, "bs", None)
    return int(size or 64)


@contextlib.contextmanager
def precomputed(learn: Learner, cache: FeatureCache | None) -> Iterator[FeatureCache]:
    """The learner with the features' loaders as `dls` and the head's trainable rest as
    `model` for the block; the real ones are back afterwards, whatever happens.

    Yields the (re)built cache: the given one when it still matches the data and the body.
    """
    body, head = body_and_head(learn.model)
    prefix, rest = split_head(head)
    dls = learn.dls
    sources = (dls, dls.train, dls.valid, dls.block if isinstance(dls, BlockDataLoaders) else None)
    if cache is None or not cache.matches(sources, body_state(body)):
        cache = build_cache(learn, body, prefix, sources)
    full_model = learn.model
    learn.dls, learn.model = feature_loaders(dls, cache), rest
    try:
        yield cache
    finally:
        learn.dls, learn.model, learn.dl = dls, full_model, None


__all__ = [
    "FeatureCache",
    "body_and_head",
    "body_is_frozen",
    "body_state",
    "build_cache",
    "compute_features",
    "feature_loaders",
    "precomputed",
    "split_head",
]
