"""The decode-once sample cache: same batches, same draws, and off whenever it can't be exact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from mentor.core.seed import set_seed
from mentor.data import cache as cache_module
from mentor.data.cache import SampleCache, cache_budget
from mentor.data.datablock import SkippingLoader
from mentor.train import Learner
from mentor.vision.data import ImageDataLoaders
from mentor.vision.resize import Resize
from tests.helpers import tiny_folder


@pytest.fixture(scope="module")
def digits(mnist_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 training and 20 validation digits of mnist_tiny."""
    return tiny_folder(mnist_tiny, tmp_path_factory.mktemp("digits"), 20, 10)


def loaders(root: Path, cache: bool, workers: int = 0, **kw: Any) -> ImageDataLoaders:
    return ImageDataLoaders.from_folder(
        root, img_mode="L", bs=8, num_workers=workers, device="cpu", cache=cache, **kw
    )


def passes(dls: Any, n: int = 3) -> list[list[torch.Tensor]]:
    """Every batch of `n` passes over train and valid, from seed 0, then the RNG state."""
    set_seed(0)
    out = []
    for _ in range(n):
        out += [list(batch) for loader in (dls.train, dls.valid) for batch in loader]
    out.append([torch.get_rng_state()])
    return out


def kept(loader: Any) -> SampleCache | None:
    return loader.loader.cache


@pytest.mark.parametrize("workers", [0, 2])
def test_cached_passes_yield_the_same_batches_and_draws(digits: Path, workers: int) -> None:
    plain, cached = loaders(digits, False, workers), loaders(digits, True, workers)
    expected, got = passes(plain), passes(cached)
    assert len(got) == len(expected) == 3 * (5 + 2) + 1
    for want, have in zip(expected, got):
        assert len(want) == len(have)
        for a, b in zip(want, have):
            assert a.dtype == b.dtype and torch.equal(a, b)
    for loader in (cached.train, cached.valid):
        store = kept(loader)
        assert store is not None and store.state == "ready"
        assert store.nbytes == len(loader.loader.loader.dataset) * (28 * 28 + 8)
    assert kept(plain.train) is None


def test_a_cached_fit_ends_with_the_same_weights(digits: Path) -> None:
    def fit(cache: bool) -> dict[str, torch.Tensor]:
        dls = loaders(digits, cache)
        set_seed(1)
        model = nn.Sequential(nn.Conv2d(1, 4, 3, 2), nn.ReLU(), nn.Flatten(), nn.Linear(676, 2))
        learn = Learner(dls, model)
        learn.progress.show = False
        learn.fit_one_cycle(2, 1e-2)
        return learn.model.state_dict()

    plain, cached = fit(False), fit(True)
    assert plain.keys() == cached.keys()
    assert all(torch.equal(plain[k], cached[k]) for k in plain)


def test_a_random_training_transform_keeps_training_uncached(digits: Path) -> None:
    dls = loaders(digits, True, item_tfms=Resize(24))  # a random crop position
    assert kept(dls.train) is None
    store = kept(dls.valid)
    assert store is not None and store.state == "empty"
    assert [b[0].shape[-1] for b in dls.valid] == [24, 24]
    assert store.state == "ready"
    squished = loaders(digits, True, item_tfms=Resize(24, method="squish"))
    assert kept(squished.train) is not None


def test_over_the_budget_the_loader_decodes_as_before(
    digits: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_module, "cache_budget", lambda: 1000)
    dls = loaders(digits, True)
    batches = [b[1] for b in dls.train]
    assert sum(len(y) for y in batches) == 40
    store = kept(dls.train)
    assert store is not None and store.state == "off"
    assert "over the memory budget" in store.reason


def test_a_skipped_file_turns_the_cache_off_and_is_still_reported(
    digits: Path, tmp_path: Path
) -> None:
    root = tiny_folder(digits, tmp_path / "bad", 5, 5)
    (root / "valid" / "3" / "broken.png").write_bytes(b"not a png")
    dls = loaders(root, True, skip_bad=True)
    with pytest.warns(UserWarning, match="broken.png"):
        n = sum(len(y) for _, y in dls.valid)
    assert n == 10
    store = kept(dls.valid)
    assert store is not None and store.state == "off" and "skipped" in store.reason


class Ragged(Dataset[Any]):
    def __init__(self, sizes: list[int]) -> None:
        self.sizes = sizes

    def __len__(self) -> int:
        return len(self.sizes)

    def __getitem__(self, i: int) -> Any:
        return torch.zeros(self.sizes[i]), i


class Named(Ragged):
    def __getitem__(self, i: int) -> Any:
        return torch.zeros(2), f"item {i}"


def test_samples_of_other_shapes_or_strings_are_not_cached() -> None:
    ragged = SampleCache()
    assert not ragged.fill(DataLoader(Ragged([3, 3, 4]), batch_size=2))
    assert ragged.state == "off" and "another shape" in ragged.reason
    named = SampleCache()
    assert not named.fill(DataLoader(Named([2, 2]), batch_size=2))
    assert "other than tensors" in named.reason
    even = SampleCache()
    loader = DataLoader(Ragged([3, 3, 3]), batch_size=2)
    assert even.fill(loader)
    assert [b[1].tolist() for b in even.batches(loader)] == [[0, 1], [2]]


def test_a_sharded_loader_reads_its_part_from_the_same_cache(digits: Path) -> None:
    from mentor.data.shard import Shard

    dls = loaders(digits, True)
    skipping = dls.valid.loader
    assert isinstance(skipping, SkippingLoader)
    full = torch.cat([y for _, y in skipping])
    piece = skipping.shard(Shard(rank=1, world=2, train=False))
    assert piece.cache is skipping.cache
    assert torch.equal(torch.cat([y for _, y in piece]), full[10:])


def test_the_budget_is_a_quarter_of_available_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_module, "_meminfo_available", lambda: 4000)
    assert cache_budget() == 1000
    monkeypatch.setattr(cache_module, "_meminfo_available", lambda: 2**50)
    assert 0 < cache_budget() < 2**48  # bounded by half of /dev/shm's free space


def test_without_a_way_to_read_the_memory_there_is_no_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_sysconf(name: str) -> int:
        raise AttributeError("module 'os' has no attribute 'sysconf'")

    monkeypatch.setattr(cache_module, "_meminfo_available", lambda: None)
    monkeypatch.setattr(cache_module.os, "sysconf", no_sysconf)
    assert cache_budget() == 0
