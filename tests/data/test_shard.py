"""Sharding every loader kind: the ranks' pieces of a training step make the single-process
batch of `bs * world` items; evaluation blocks hold every item once, in order."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from mentor.core.seed import set_seed
from mentor.data.loaders import DeviceLoader, TensorLoader
from mentor.data.shard import BatchShards, Shard, ShardSampler, shard_loader, shard_of
from mentor.text.loaders import LMLoader, SortedTextLoader

WORLD = 2


def passes(loaders: list[Iterable[Any]], seed: int = 0) -> list[list[Any]]:
    """One pass of each loader, every one from the same random state (as the ranks are)."""
    out = []
    for loader in loaders:
        set_seed(seed)
        out.append(list(loader))
    return out


def ids(batch: Any) -> list[int]:
    return batch[0].reshape(len(batch[0]), -1)[:, 0].long().tolist()


def check_train(single: list[Any], ranks: list[list[Any]], n_items: int) -> None:
    """Step k of every rank together is the single-process batch k."""
    assert len({len(r) for r in ranks}) == 1  # every rank steps as often
    assert len(single) == len(ranks[0])
    for k, batch in enumerate(single):  # a padded last step holds it plus repeats
        together = [i for r in ranks for i in ids(r[k])]
        assert together[: len(ids(batch))] == ids(batch)
    seen = sorted({i for r in ranks for b in r for i in ids(b)})
    assert seen == sorted({i for b in single for i in ids(b)})
    assert max(seen) < n_items


def check_eval(single: list[Any], ranks: list[list[Any]]) -> None:
    """The ranks' blocks, joined in rank order, are the single-process items: each once."""
    joined = [i for r in ranks for b in r for i in ids(b)]
    assert joined == [i for b in single for i in ids(b)]
    assert len(joined) == len(set(joined))


ITEMS = torch.arange(101).float().unsqueeze(1)  # 101 items: nothing divides evenly


def tensor_loader(bs: int, shuffle: bool, drop_last: bool = False) -> TensorLoader:
    return TensorLoader(ITEMS, ITEMS[:, 0].long(), bs=bs, shuffle=shuffle, drop_last=drop_last)


def torch_loader(bs: int, shuffle: bool, drop_last: bool = False) -> DataLoader[Any]:
    return DataLoader(TensorDataset(ITEMS, ITEMS[:, 0]), bs, shuffle=shuffle, drop_last=drop_last)


@pytest.mark.parametrize("make", [tensor_loader, torch_loader], ids=["TensorLoader", "DataLoader"])
@pytest.mark.parametrize("drop_last", [False, True])
def test_training_shards_make_the_single_process_batches(
    make: Callable[..., Any], drop_last: bool
) -> None:
    single = passes([make(16, True, drop_last)])[0]
    ranks = passes([shard_loader(make(8, True, drop_last), Shard(r, WORLD, True)) for r in (0, 1)])
    check_train(single, ranks, 101)
    for rank, loader in zip(ranks, (make(8, True, drop_last),) * 2):
        assert len(rank) == len(shard_loader(loader, Shard(0, WORLD, True)))  # type: ignore[arg-type]
    if not drop_last:  # 101 = 6 * 16 + 5: the last step pads 5 items to 3 per rank
        assert [len(ids(b)) for b in ranks[0]] == [8] * 6 + [3]


@pytest.mark.parametrize("make", [tensor_loader, torch_loader], ids=["TensorLoader", "DataLoader"])
def test_evaluation_shards_hold_every_item_once_in_order(make: Callable[..., Any]) -> None:
    single = passes([make(10, False)])[0]
    ranks = passes([shard_loader(make(10, False), Shard(r, WORLD, False)) for r in (0, 1)])
    check_eval(single, ranks)
    assert [sum(len(ids(b)) for b in r) for r in ranks] == [51, 50]


def test_a_shard_reshuffles_every_pass_as_one_process_would() -> None:
    loader = shard_loader(tensor_loader(8, True), Shard(0, WORLD, True))
    set_seed(3)
    first, second = [ids(b) for b in loader], [ids(b) for b in loader]
    assert first != second


def test_a_device_loader_over_a_datablock_style_loader_shards_and_says_so() -> None:
    from mentor.data.datablock import SkippingLoader

    inner = DataLoader(TensorDataset(ITEMS, ITEMS[:, 0]), 8, shuffle=True, drop_last=True,
                       collate_fn=lambda s: (torch.utils.data.default_collate(s), []))  # fmt: skip
    device = DeviceLoader(SkippingLoader(inner), torch.device("cpu"))
    sharded = device.shard(Shard(1, WORLD, True))
    assert isinstance(sharded, DeviceLoader) and shard_of(sharded) == Shard(1, WORLD, True)
    assert shard_of(device) is None
    sampler = sharded.loader.loader.sampler  # type: ignore[attr-defined]
    assert isinstance(sampler, ShardSampler) and len(sampler) == 6 * 8  # 101 // 16 steps


def test_length_sorted_text_batches_shard_per_global_batch() -> None:
    rng = np.random.default_rng(0)
    docs = [np.full(int(rng.integers(3, 40)), i, dtype=np.int64) for i in range(203)]
    labels = torch.arange(203)
    single = passes([SortedTextLoader(docs, labels, bs=16, shuffle=True)])[0]
    ranks = passes(
        [
            SortedTextLoader(docs, labels, bs=8, shuffle=True).shard(Shard(r, WORLD, True))
            for r in (0, 1)
        ]
    )
    assert len(ranks[0]) == len(ranks[1]) == len(single)
    for k, batch in enumerate(single):  # the labels are the text indices
        together = ranks[0][k][1].tolist() + ranks[1][k][1].tolist()
        assert together[: len(batch[1])] == batch[1].tolist()
    valid = [SortedTextLoader(docs, labels, bs=16).shard(Shard(r, WORLD, False)) for r in (0, 1)]
    joined = [i for loader in valid for i in loader.item_order]
    assert joined == SortedTextLoader(docs, labels, bs=16).item_order  # longest first, once each
    assert sorted(i for loader in valid for _, y in loader for i in y.tolist()) == list(range(203))


def test_language_model_streams_shard_by_rows() -> None:
    docs = [np.arange(i * 50, (i + 1) * 50) for i in range(40)]  # token = its stream position
    single = passes([LMLoader(docs, bs=8, seq_len=10, shuffle=True)])[0]
    ranks = passes(
        [
            LMLoader(docs, bs=4, seq_len=10, shuffle=True).shard(Shard(r, WORLD, True))
            for r in (0, 1)
        ]
    )
    assert len(ranks[0]) == len(ranks[1]) == len(single)
    for k, (x, y) in enumerate(single):
        assert torch.equal(torch.cat([ranks[0][k][0], ranks[1][k][0]]), x)
        assert torch.equal(torch.cat([ranks[0][k][1], ranks[1][k][1]]), y)


def test_other_sized_iterables_are_dealt_out_by_whole_batches() -> None:
    batches = [(torch.full((4, 1), float(i)),) for i in range(7)]
    train = [list(BatchShards(batches, Shard(r, WORLD, True))) for r in (0, 1)]
    assert [[int(b[0][0]) for b in r] for r in train] == [[0, 2, 4], [1, 3, 5]]  # equal steps
    valid = [list(BatchShards(batches, Shard(r, WORLD, False))) for r in (0, 1)]
    assert [int(b[0][0]) for r in valid for b in r] == list(range(7))
    with pytest.raises(TypeError, match="has no length"):
        BatchShards(iter(batches), Shard(0, WORLD, True))
    with pytest.raises(ValueError, match="fewer than the 2 processes"):
        BatchShards(batches[:1], Shard(0, WORLD, True))


def test_collab_and_tabular_loaders_shard_through_their_tensor_loaders(shared_data) -> None:
    shared_data("movie_lens_sample")
    import pandas as pd

    from mentor.collab import CollabDataLoaders
    from mentor.core.paths import data_path

    ratings = pd.read_csv(data_path() / "movie_lens_sample" / "ratings.csv")
    dls = CollabDataLoaders.from_df(ratings, bs=64, device="cpu", seed=0)
    train = dls.train.shard(Shard(0, WORLD, True))
    assert shard_of(train) == Shard(0, WORLD, True)
    n_rows = dls.train.loader.n  # type: ignore[attr-defined]
    assert len(train) == len(list(train)) == -(-n_rows // 128)  # steps of 2 x 64 rows
    xb, _ = next(iter(train))
    assert len(xb) == 64
