"""precompute=True: a frozen body's head trains on cached activations, the learner gets its
model and data back, results match the full model's, epochs are faster, unfreezing ends it."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from mentor.core.seed import set_seed
from mentor.data.block_loaders import BlockDataLoaders
from mentor.train import Callback, CancelFit, accuracy
from mentor.vision.data import ImageDataLoaders
from mentor.vision.learner import VisionLearner, vision_learner
from mentor.vision.precompute import body_is_frozen, split_head


@pytest.fixture(scope="module")
def tiny(mnist_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 training and 16 validation images of each class."""
    dest = tmp_path_factory.mktemp("tiny")
    for split, n in (("train", 16), ("valid", 16)):
        for label in ("3", "7"):
            (dest / split / label).mkdir(parents=True)
            for file in sorted((mnist_tiny / split / label).glob("*.png"))[:n]:
                shutil.copy(file, dest / split / label / file.name)
    return dest


def frozen_learner(
    path: Path, precompute: bool, shuffle: bool = True, **kwargs: object
) -> VisionLearner:
    """A resnet18 (random weights: resnet weights are not installed) with its body frozen."""
    set_seed(0)
    dls = ImageDataLoaders.from_folder(
        path, img_mode="L", bs=8, num_workers=0, device="cpu", shuffle=shuffle
    )
    learn = vision_learner(
        dls, "resnet18", pretrained=False, metrics=[accuracy], precompute=precompute, **kwargs
    )
    learn.progress.show = False
    learn.freeze()
    return learn


class SeenDuringFit(Callback):
    """Records the model and the data the loop sees, and the target of every batch."""

    def __init__(self) -> None:
        super().__init__()
        self.models: list[nn.Module] = []
        self.dls: list[object] = []
        self.n_train_batches = 0

    def before_fit(self) -> None:
        self.models.append(self.learn.model)
        self.dls.append(self.learn.dls)

    def after_batch(self) -> None:
        self.n_train_batches += self.learn.training


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_frozen_fit_trains_the_head_on_cached_features_and_restores(tiny: Path) -> None:
    learn = frozen_learner(tiny, precompute=True)
    model, dls = learn.model, learn.dls
    body, head = model[0], model[1]
    assert learn.precomputing and body_is_frozen(body)
    body_before, head_before = snapshot(body), snapshot(head)
    seen = SeenDuringFit()
    learn.fit_one_cycle(2, 1e-2, cbs=[seen])
    # the loop saw the head's trainable rest and loaders of [N, 1024] features
    inner = seen.models[0]
    assert inner is not model and not isinstance(inner[0], nn.AdaptiveAvgPool2d)
    assert isinstance(inner[0], nn.BatchNorm1d) and inner[0] is head[2]
    assert seen.n_train_batches == 2 * len(dls.train)  # same batches per epoch: 32 // 8
    assert len(learn.recorder.lrs) == seen.n_train_batches  # the schedule ran on each
    x, y = seen.dls[0].one_batch()  # type: ignore[attr-defined]
    assert x.shape == (8, 1024) and y.dtype == torch.int64
    cache = learn.feature_cache
    assert cache is not None and cache.train[0].shape == (32, 1024)
    assert cache.valid is not None and cache.valid[0].shape == (32, 1024)
    # and gets the real model and data back
    assert learn.model is model and learn.dls is dls and isinstance(learn.dls, BlockDataLoaders)
    for key, value in snapshot(body).items():
        assert torch.equal(value, body_before[key]), key  # weights and BN statistics alike
    assert any(not torch.equal(v, head_before[k]) for k, v in snapshot(head).items())
    # the cached features are the full model's, in the training set's item order
    train_dl = learn.dls.test_dl(learn.dls.train_ds.items)
    extractor = nn.Sequential(body, split_head(head)[0]).eval()
    with torch.no_grad():
        direct = torch.cat([extractor(batch[0]) for batch in train_dl])
    torch.testing.assert_close(direct, cache.train[0])
    targets = torch.tensor([int(p.parent.name == "7") for p in learn.dls.train_ds.items])
    assert torch.equal(cache.train[1], targets)
    label, index, probs = learn.predict(learn.dls.valid_ds.items[0])  # the full model again
    assert label == learn.dls.vocab[int(index)] and probs.shape == (2,)
    # a second fit reuses the cache; a changed body rebuilds it
    learn.fit(1, 1e-3)
    assert learn.feature_cache is cache
    with torch.no_grad():
        body[0].weight.mul_(0.5)
    learn.fit(1, 1e-3)
    assert learn.feature_cache is not cache


def test_precompute_matches_the_full_model_and_is_faster(tiny: Path) -> None:
    # batch norm fixed in the body (train_bn=False, bn_freeze), no dropout, no shuffling:
    # both fits compute the same thing, the full one through the body at every step
    results, epoch_times = {}, {}
    for precompute in (False, True):
        learn = frozen_learner(tiny, precompute, shuffle=False, train_bn=False, ps=0.0)
        learn.freeze(bn_freeze=True)
        learn.fit_one_cycle(2, 1e-2)
        results[precompute] = learn.validate()
        epoch_times[precompute] = min(epoch_time(learn) for _ in range(3))  # min: load spikes
    assert results[True]["accuracy"] == pytest.approx(results[False]["accuracy"], abs=1 / 32)
    assert results[True]["valid_loss"] == pytest.approx(results[False]["valid_loss"], rel=1e-3)
    speed_up = epoch_times[False] / epoch_times[True]
    print(f"precompute: an epoch {speed_up:.1f}x faster ({epoch_times})")
    assert speed_up >= 2, epoch_times


def epoch_time(learn: VisionLearner) -> float:
    start = time.perf_counter()
    learn.fit(1, 1e-3)
    return time.perf_counter() - start


class StopAfterOneStep(Callback):
    """Ends the fit after its first training batch (the model has taken one step)."""

    def after_step(self) -> None:
        raise CancelFit()


def test_after_unfreeze_fits_use_the_full_model(tiny: Path) -> None:
    learn = frozen_learner(tiny, precompute=True)
    learn.unfreeze()
    assert learn.precompute and not learn.precomputing
    body_before = snapshot(learn.model[0])
    seen = SeenDuringFit()
    learn.fit(1, 1e-3, cbs=[seen, StopAfterOneStep()])
    assert seen.models == [learn.model] and seen.dls == [learn.dls]
    assert learn.feature_cache is None
    conv = "0.weight"
    assert not torch.equal(snapshot(learn.model[0])[conv], body_before[conv])
    learn.freeze_to(1)  # the late body stages train: no precompute either
    assert not learn.precomputing
    learn.freeze()
    assert learn.precomputing
