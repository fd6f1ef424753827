"""Setting up and tearing down distributed training in this process (a one-process Gloo
group), and what is refused with a message."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from mentor.core.dist import launched_world_size
from mentor.data.loaders import DataLoaders
from mentor.data.shard import Shard
from mentor.distributed import _to_sync_bn, trainer_of
from mentor.train import Callback, Learner
from tests.distributed.launch import free_port


def small_learner() -> Learner:
    x = torch.randn(40, 3)
    y = (x.sum(1) > 0).long()
    dls = DataLoaders.from_tensors((x[:30], y[:30]), (x[30:], y[30:]), bs=8, device="cpu")
    return Learner(dls, nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))


@pytest.fixture
def one_process_group() -> Iterator[None]:
    """A Gloo group of one process, made by "the user" before mentor sees it."""
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1
    )
    try:
        yield
    finally:
        dist.destroy_process_group()


class SeeWrapper(Callback):
    def __init__(self) -> None:
        super().__init__()
        self.wrappers: list[object] = []

    def before_train(self) -> None:
        self.wrappers.append(self.learn.ddp)


def test_distrib_ctx_wraps_each_fit_shards_the_loaders_and_undoes_it(one_process_group) -> None:
    learn = small_learner()
    train, valid = learn.dls.train, learn.dls.valid
    seen = SeeWrapper()
    with learn.distrib_ctx():
        assert learn.sharded and trainer_of(learn) is not None
        assert learn.dls.train.shard_info == Shard(0, 1, train=True)
        assert learn.dls.valid is not None
        assert learn.dls.valid.shard_info == Shard(0, 1, train=False)
        learn.fit(1, 1e-2, cbs=[seen])
        assert learn.ddp is None  # unwrapped between fits
        assert learn.validate()["valid_loss"] > 0
    assert isinstance(seen.wrappers[0], DistributedDataParallel)
    assert seen.wrappers[0].module is learn.model  # type: ignore[attr-defined]
    assert (learn.dls.train, learn.dls.valid) == (train, valid)
    assert not learn.sharded and trainer_of(learn) is None
    assert dist.is_initialized()  # the group was the user's: it stays


def test_distrib_ctx_without_torchrun_says_how_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    learn = small_learner()
    with pytest.raises(RuntimeError, match="torchrun --nproc_per_node N"):
        learn.distrib_ctx().__enter__()
    assert not learn.sharded and trainer_of(learn) is None


def test_sync_bn_is_refused_on_the_cpu_with_the_reason() -> None:
    with pytest.raises(ValueError, match="sync_bn=True needs CUDA"):
        _to_sync_bn(nn.Sequential(nn.BatchNorm2d(3)), torch.device("cpu"))


def test_a_world_size_that_is_not_a_number_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE='two'"):
        launched_world_size()
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert launched_world_size() == 3
