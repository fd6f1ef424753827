"""Distributed data parallel through `torchrun`: many processes, one or many machines.

A script that trains a `Learner` runs data-parallel when `torchrun` starts it: the first fit
sees `WORLD_SIZE` > 1 and turns distributed training on, with no change to the script.
`with learn.distrib_ctx():` does the same explicitly and undoes it at the end of the block
(the process group mentor made lives until the process exits, for later fits).
Either way mentor

- initialises the default process group (NCCL on CUDA, Gloo on the CPU) unless the script
  already did, with `timeout` seconds for a silent process;
- shards the loaders (`mentor.data.shard`): at each step the ranks' batches together are the
  batch one process would read with `bs * world` items; validation reads one block per rank
  and its loss and metrics are added over the ranks as sums and counts;
- wraps the model in `DistributedDataParallel` for each fit (`learn.model` stays the plain
  module for saving, exporting and freezing; `learn.ddp` is the wrapper), skipping the
  gradient all-reduce on the batches that gradient accumulation doesn't step on (`no_sync`);
- runs `lr_find` on rank 0 alone and sends its suggestions to every rank;
- turns a lost rank into an error naming it: each rank counts heartbeats in the rendezvous
  store, and when a collective fails the ranks whose count stopped are named.

Only rank 0 prints, draws progress bars, writes checkpoints, exports and writes reports (see
`mentor.core.device.is_main_process`); every rank resumes from the same checkpoint file.

Example (`train.py`, started with `torchrun --nproc_per_node 2 train.py`):
    >>> learn = vision_learner(dls, "resnet18", metrics=accuracy)
    >>> learn.fine_tune(3)                    # data-parallel under torchrun
    >>> with learn.distrib_ctx(): learn.fit_one_cycle(1)   # the same, explicitly
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from mentor.callbacks.gradients import GradientAccumulation
from mentor.core.dist import broadcast_object, group_ready
from mentor.data.shard import Shard
from mentor.train.callback import Callback
from mentor.train.learner import Learner

DEFAULT_TIMEOUT = 1800.0
"""Seconds a collective waits for a silent process before failing (PyTorch's default)."""
BEAT_SECONDS = 0.5
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
T = TypeVar("T")


class RankLostError(RuntimeError):
    """A process of the run stopped (it died or stopped answering); names it."""


class DistributedTrainer(Callback):
    """Attached while a learner trains on many processes: wraps the model in
    `DistributedDataParallel` for each fit and skips the gradient all-reduce on the batches
    that gradient accumulation doesn't step on. It also keeps what setting up changed (the
    unsharded loaders, the heartbeat, the swapped batch-norm layers) to undo it.

    Args:
        rank, world: this process and the number of processes.
    """

    order = -20  # wraps before the other callbacks see the fit

    def __init__(self, rank: int, world: int) -> None:
        super().__init__()
        self.rank, self.world = rank, world
        self.loaders: tuple[Any, Any] = (None, None)
        self.heartbeat: Heartbeat | None = None
        self.sync_bn: list[tuple[nn.Module, str, nn.Module]] = []
        self.accumulate: GradientAccumulation | None = None
        self._no_sync = contextlib.ExitStack()

    def before_fit(self) -> None:
        """Wrap the model (with the parameters that train in this fit: freezing changes them)."""
        learn = self.learn
        self.accumulate = next((c for c in learn.cbs if isinstance(c, GradientAccumulation)), None)
        if not any(p.requires_grad for p in learn.model.parameters()):
            learn.ddp = None
            return
        device = next(learn.model.parameters()).device
        ids = [device.index] if device.type == "cuda" else None
        learn.ddp = DistributedDataParallel(
            learn.model, device_ids=ids, output_device=None if ids is None else ids[0]
        )

    def before_batch(self) -> None:
        """On a batch gradient accumulation won't step on, keep the gradients local."""
        learn, accumulate = self.learn, self.accumulate
        if not learn.training or learn.ddp is None or accumulate is None:
            return
        if not accumulate.steps_now():
            self._no_sync.enter_context(learn.ddp.no_sync())  # type: ignore[operator]

    def after_batch(self) -> None:
        """Leave `no_sync` (the next batch decides again)."""
        self._no_sync.close()

    def after_fit(self) -> None:
        """Unwrap: between fits `learn.ddp` is None."""
        self._no_sync.close()
        self.learn.ddp = None


class Heartbeat:
    """Each rank counts up its key in the rendezvous store every `BEAT_SECONDS`; a rank whose
    count stops moving is lost. Needs `MASTER_ADDR` and `MASTER_PORT` (torchrun sets them)."""

    def __init__(self, rank: int, world: int) -> None:
        self.rank, self.world = rank, world
        self.where = f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
        self.store = self._connect()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="mentor-heartbeat", daemon=True)
        self.thread.start()

    def _connect(self) -> dist.Store:
        host, port = self.where.rsplit(":", 1)
        return dist.TCPStore(
            host, int(port), is_master=False, timeout=timedelta(seconds=10), wait_for_workers=False
        )

    def _beat(self) -> None:
        key = f"mentor/beat/{self.rank}"
        with contextlib.suppress(Exception):  # a store that went away: lost_ranks says so
            while not self.stop.wait(BEAT_SECONDS):
                self.store.add(key, 1)

    def lost_ranks(self) -> list[int] | None:
        """The ranks whose heartbeat stopped (watched for three beats), None when the store
        itself is gone."""
        try:
            store = self._connect()
            before = [store.add(f"mentor/beat/{r}", 0) for r in range(self.world)]
            time.sleep(3 * BEAT_SECONDS + 0.5)
            after = [store.add(f"mentor/beat/{r}", 0) for r in range(self.world)]
        except Exception:  # noqa: BLE001 - any failure to reach the store means it is gone
            return None
        return [r for r in range(self.world) if r != self.rank and after[r] == before[r]]

    def close(self) -> None:
        """Stop beating."""
        self.stop.set()


def trainer_of(learn: Learner) -> DistributedTrainer | None:
    """The learner's `DistributedTrainer`, None when it trains on one process."""
    return next((cb for cb in learn.cbs if isinstance(cb, DistributedTrainer)), None)


def setup(
    learn: Learner, sync_bn: bool = False, timeout: float | None = None
) -> DistributedTrainer:
    """Turn distributed training on for `learn` (see the module's docstring); returns its
    `DistributedTrainer`. Refused with a message when the process wasn't started by torchrun
    (or a launcher setting `RANK`, `WORLD_SIZE`, `MASTER_ADDR` and `MASTER_PORT`) and no
    process group exists."""
    found = trainer_of(learn)
    if found is not None:
        return found
    _init_group(learn.dls.device, DEFAULT_TIMEOUT if timeout is None else timeout)
    rank, world = dist.get_rank(), dist.get_world_size()
    trainer = DistributedTrainer(rank, world)
    _align_rng()
    if sync_bn:
        trainer.sync_bn = _to_sync_bn(learn.model, learn.dls.device)
    dls = learn.dls
    trainer.loaders = (dls.train, dls.valid)
    dls.train = dls.train.shard(Shard(rank, world, train=True))
    if dls.valid is not None:
        dls.valid = dls.valid.shard(Shard(rank, world, train=False))
    if "MASTER_ADDR" in os.environ and "MASTER_PORT" in os.environ:
        trainer.heartbeat = Heartbeat(rank, world)
    learn.sharded = True
    learn.add_cbs([trainer])
    return trainer


def teardown(learn: Learner) -> None:
    """Undo `setup`: the loaders read everything again and batch norm is plain again. A
    process group mentor made lives on until the process exits, for later fits and blocks
    (PyTorch can't make a new default group on torchrun's store once one is destroyed)."""
    trainer = trainer_of(learn)
    if trainer is None:
        return
    learn.remove_cbs([trainer])
    learn.dls.train, learn.dls.valid = trainer.loaders
    learn.sharded, learn.ddp = False, None
    _from_sync_bn(trainer.sync_bn)
    if trainer.heartbeat is not None:
        trainer.heartbeat.close()


class DistribContext:
    """`with learn.distrib_ctx(sync_bn=False, timeout=None):` trains data-parallel inside the
    block and undoes it at its end (`teardown`)."""

    def __init__(self, learn: Learner, sync_bn: bool = False, timeout: float | None = None) -> None:
        self.learn, self.sync_bn, self.timeout = learn, sync_bn, timeout
        self.was_on = False

    def __enter__(self) -> Learner:
        self.was_on = trainer_of(self.learn) is not None
        setup(self.learn, self.sync_bn, self.timeout)
        return self.learn

    def __exit__(self, *exc: object) -> None:
        if not self.was_on:
            teardown(self.learn)


def distributed_fit(learn: Learner) -> contextlib.AbstractContextManager[None]:
    """What a fit on many processes runs in: set up on the first fit under torchrun, and a
    failed collective turned into `RankLostError` naming the rank that stopped."""
    setup(learn)
    return naming_lost_ranks(learn)


@contextlib.contextmanager
def naming_lost_ranks(learn: Learner) -> Iterator[None]:
    """Re-raise an error of the block as `RankLostError` when another rank stopped."""
    trainer = trainer_of(learn)
    try:
        yield
    except RuntimeError as err:
        if trainer is None or isinstance(err, RankLostError):
            raise
        lost = _lost(trainer)
        if lost is None:
            raise
        where = f"epoch {learn.epoch}, batch {learn.iter}" + (
            "" if learn.training else " of validation"
        )
        raise RankLostError(
            f"{lost} stopped (its process ended or stopped answering) at {where}; rank "
            f"{trainer.rank} stops too. Its own output says why; once it is fixed, a run "
            "with resume_from= continues from the last checkpoint"
        ) from err


def _lost(trainer: DistributedTrainer) -> str | None:
    if trainer.heartbeat is None:
        return "another process of the run" if trainer.world > 1 else None
    ranks = trainer.heartbeat.lost_ranks()
    if ranks is None:
        where = trainer.heartbeat.where
        return f"the rendezvous store at {where} (hosted by rank 0 or torchrun's agent)"
    if not ranks:
        return None
    names = ", ".join(str(r) for r in ranks)
    return (
        f"rank {names} of {trainer.world}"
        if len(ranks) == 1
        else f"ranks {names} of {trainer.world}"
    )


def on_rank0(learn: Learner, run: Callable[[], T]) -> T:
    """Run `run` on rank 0 alone, on its unsharded data without the model wrapper (the
    other ranks wait), and return its result on every rank: how `lr_find` runs."""
    trainer = setup(learn)
    result: Any = None
    if trainer.rank == 0:
        try:
            with _alone(learn, trainer):
                result = ("ok", run())
        except Exception as err:
            broadcast_object(("error", f"{type(err).__name__}: {err}"))
            raise
    with naming_lost_ranks(learn):
        status, value = broadcast_object(result)
    if status == "error":
        raise RuntimeError(f"rank 0 failed while the other ranks waited for it: {value}")
    return value


@contextlib.contextmanager
def _alone(learn: Learner, trainer: DistributedTrainer) -> Iterator[None]:
    sharded, auto = (learn.dls.train, learn.dls.valid), learn.auto_distrib
    learn.dls.train, learn.dls.valid = trainer.loaders
    learn.remove_cbs([trainer])
    learn.sharded, learn.auto_distrib = False, False
    try:
        yield
    finally:
        learn.dls.train, learn.dls.valid = sharded
        learn.add_cbs([trainer])
        learn.sharded, learn.auto_distrib = True, auto


def _init_group(device: torch.device, timeout: float) -> None:
    """Initialise the default process group from the environment (destroyed at exit),
    unless one exists."""
    if group_ready():
        return
    missing = [
        v for v in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ
    ]
    if missing:
        raise RuntimeError(
            f"distributed training needs the variables {missing} that torchrun sets: start the "
            "script with `torchrun --nproc_per_node N script.py` (or `mentor train ... --nproc "
            "N`), or call torch.distributed.init_process_group yourself first"
        )
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout))
    atexit.register(_destroy_group)


def _destroy_group() -> None:
    if group_ready():
        dist.destroy_process_group()


def _align_rng() -> None:
    """Every rank starts from rank 0's random state: the ranks then draw the same order of
    each pass, and their pieces of it make the single-process batches."""
    from mentor.core.seed import get_rng_state, set_rng_state

    set_rng_state(broadcast_object(get_rng_state()))


def _to_sync_bn(model: nn.Module, device: torch.device) -> list[tuple[nn.Module, str, nn.Module]]:
    """Replace the batch-norm layers by `SyncBatchNorm` (kept: where, and the originals)."""
    if device.type != "cuda":
        raise ValueError(
            f"sync_bn=True needs CUDA (PyTorch's SyncBatchNorm runs on GPUs only), but the "
            f"learner is on {device}; drop sync_bn on the CPU"
        )
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, BATCH_NORMS):
                sync = nn.SyncBatchNorm(
                    child.num_features,
                    child.eps,
                    child.momentum,
                    child.affine,
                    child.track_running_stats,
                )
                sync.load_state_dict(child.state_dict())
                setattr(parent, name, sync.to(device))
                swapped.append((parent, name, child))
    return swapped


def _from_sync_bn(swapped: list[tuple[nn.Module, str, nn.Module]]) -> None:
    """Put the original batch-norm layers back, with what their SyncBatchNorm learned."""
    for parent, name, original in swapped:
        original.load_state_dict(getattr(parent, name).state_dict())
        setattr(parent, name, original)
