"""TensorLoader, DeviceLoader and DataLoaders: lengths, order, devices, wrapping."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from mentor.core.seed import set_seed
from mentor.data.loaders import DataLoaders, DeviceLoader, TensorLoader


def order_of(loader: TensorLoader | DeviceLoader | DataLoader) -> list[int]:
    """The item ids in the order a pass over `loader` yields them (x holds the ids)."""
    return torch.cat([batch[0] for batch in loader]).tolist()


@pytest.mark.parametrize(("drop_last", "sizes"), [(False, [3, 3, 3, 1]), (True, [3, 3, 3])])
def test_tensor_loader_lengths(drop_last: bool, sizes: list[int]) -> None:
    x, y = torch.arange(10), torch.arange(10) * 10
    loader = TensorLoader(x, y, bs=3, drop_last=drop_last)
    assert len(loader) == len(sizes)
    batches = list(loader)
    assert [len(xb) for xb, _ in batches] == sizes
    assert [len(yb) for _, yb in batches] == sizes
    assert order_of(loader) == list(range(sum(sizes)))  # unshuffled: in order
    assert all(torch.equal(yb, xb * 10) for xb, yb in batches)  # inputs stay with targets


def test_tensor_loader_exact_multiple() -> None:
    loader = TensorLoader(torch.arange(12), bs=4)
    assert len(loader) == len(TensorLoader(torch.arange(12), bs=4, drop_last=True)) == 3


def test_shuffle_is_reproducible_and_changes_between_epochs() -> None:
    x = torch.arange(50)
    loader = TensorLoader(x, x.clone(), bs=8, shuffle=True)
    set_seed(0)
    first, second = order_of(loader), order_of(loader)
    set_seed(0)
    assert order_of(loader) == first
    assert order_of(loader) == second
    assert first != second
    assert first != list(range(50))
    assert sorted(first) == sorted(second) == list(range(50))  # each pass is a permutation
    for xb, yb in loader:
        assert torch.equal(xb, yb)


def test_shuffle_draws_when_iteration_starts() -> None:
    """The order comes from the generator's state at the first batch, as resume relies on."""
    loader = TensorLoader(torch.arange(30), bs=4, shuffle=True)
    set_seed(1)
    batches = iter(loader)
    torch.rand(1)  # a draw between iter() and the first batch
    expected = torch.cat([xb for (xb,) in batches]).tolist()
    set_seed(1)
    torch.rand(1)
    assert order_of(loader) == expected


def test_mismatched_sizes_name_them() -> None:
    with pytest.raises(ValueError, match=r"same number of items.*\[5, 6\]"):
        TensorLoader(torch.zeros(5, 2), torch.zeros(6))


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="bs=0"):
        TensorLoader(torch.zeros(4), bs=0)
    with pytest.raises(ValueError, match="at least one tensor"):
        TensorLoader()


def test_one_batch_is_on_the_device() -> None:
    x, y = torch.randn(20, 3), torch.arange(20)
    dls = DataLoaders(TensorLoader(x, y, bs=8), TensorLoader(x, y, bs=16), device="meta")
    assert dls.device == torch.device("meta")
    xb, yb = dls.one_batch()
    assert xb.device.type == yb.device.type == "meta"
    assert xb.shape == (8, 3) and yb.shape == (8,)
    xb, _ = dls.one_batch("valid")
    assert xb.shape == (16, 3)
    with pytest.raises(ValueError, match="no 'test' loader"):
        dls.one_batch("test")


def test_one_batch_on_cpu_is_the_first_batch() -> None:
    x = torch.randn(20, 3)
    dls = DataLoaders(TensorLoader(x, bs=8), device="cpu")
    (xb,) = dls.one_batch()
    assert torch.equal(xb, x[:8])
    assert dls.valid is None
    empty = DataLoaders([], device="cpu")
    with pytest.raises(ValueError, match="'train' loader is empty"):
        empty.one_batch()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_one_batch_on_cuda() -> None:
    x = torch.randn(20, 3)
    dls = DataLoaders.from_tensors((x, torch.arange(20)), bs=8, device="cuda")
    assert dls.one_batch()[0].is_cuda


def test_wraps_plain_torch_dataloaders() -> None:
    x, y = torch.arange(40).float().unsqueeze(1), torch.arange(40)
    train = DataLoader(TensorDataset(x, y), batch_size=8)
    valid = DataLoader(TensorDataset(x[:10], y[:10]), batch_size=4)
    dls = DataLoaders(train, valid, device="cpu")
    assert len(dls.train) == 5 and len(dls.valid) == 3
    assert dls.train.has_len()
    assert [len(xb) for xb, _ in dls.valid] == [4, 4, 2]
    xb, yb = dls.one_batch()
    assert torch.equal(xb[:, 0].long(), yb)
    assert dls[0] is dls.train and dls[1] is dls.valid
    rewrapped = DataLoaders(dls.train, dls.valid, device="cpu")
    assert rewrapped.train.loader is train  # no DeviceLoader inside a DeviceLoader


def test_loader_without_length() -> None:
    def batches():
        yield torch.zeros(2), torch.zeros(2)

    loader = DeviceLoader(batches(), torch.device("cpu"))
    assert not loader.has_len()
    with pytest.raises(TypeError, match="generator has no length"):
        len(loader)


def test_from_dsets() -> None:
    x, y = torch.arange(50).float().unsqueeze(1), torch.arange(50)
    dls = DataLoaders.from_dsets(
        TensorDataset(x, y), TensorDataset(x[:20], y[:20]), bs=8, device="cpu"
    )
    assert len(dls.train) == 7  # 50 items in batches of 8
    assert len(dls.valid) == 2  # valid_bs defaults to 2 * bs: 20 items in batches of 16
    set_seed(0)
    train_order = [int(v) for xb, _ in dls.train for v in xb[:, 0]]
    assert sorted(train_order) == list(range(50)) and train_order != list(range(50))
    valid_order = [int(v) for xb, _ in dls.valid for v in xb[:, 0]]
    assert valid_order == list(range(20))  # validation is never shuffled
    only_train = DataLoaders.from_dsets(TensorDataset(x, y), bs=10, valid_bs=3, device="cpu")
    assert only_train.valid is None and len(only_train.train) == 5


def test_from_tensors_shuffles_train_only() -> None:
    x = torch.arange(64)
    dls = DataLoaders.from_tensors((x, x), (x[:40], x[:40]), bs=8, device="cpu")
    assert len(dls.train) == 8 and len(dls.valid) == 3  # valid batches of 16
    set_seed(0)
    assert order_of(dls.train) != list(range(64))
    assert order_of(dls.valid) == list(range(40))


def test_from_dsets_takes_a_sampler_for_the_training_set_only() -> None:
    """A sampler (e.g. a DistributedSampler that shards the data) orders the training set."""
    from torch.utils.data import SequentialSampler, TensorDataset

    train_ds = TensorDataset(torch.arange(10.0), torch.arange(10))
    valid_ds = TensorDataset(torch.arange(4.0), torch.arange(4))
    sampler = SequentialSampler(range(5))  # the first five items, in order
    dls = DataLoaders.from_dsets(train_ds, valid_ds, bs=2, sampler=sampler, device="cpu")
    train_y = torch.cat([yb for _, yb in dls.train])
    assert train_y.tolist() == [0, 1, 2, 3, 4]  # the sampler's indices 0..4, not shuffled
    valid_y = torch.cat([yb for _, yb in dls.valid])
    assert valid_y.tolist() == [0, 1, 2, 3]


def test_rows_batch_size_keeps_about_64_steps_an_epoch_between_64_and_1024() -> None:
    from mentor.data.loaders import rows_batch_size

    assert [rows_batch_size(n) for n in (0, 500, 3_000, 26_000, 80_000, 10**7)] == [
        64, 64, 64, 512, 1024, 1024,
    ]  # fmt: skip
    for n in (8_192, 20_000, 40_000):
        bs = rows_batch_size(n)
        assert bs & (bs - 1) == 0 and 45 <= n / bs <= 91  # within sqrt(2) of 64 steps
