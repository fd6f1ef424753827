"""Saving and loading learners, and checkpoints that resume a fit exactly.

A checkpoint holds the model, the optimizer, the gradient scaler, the position in the fit
(epoch, batch, iteration), every random generator's state, the recorder's history and the
state of callbacks that keep some (early stopping, save-best). Files load with
`torch.load(weights_only=True)`: nothing is unpickled.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from mentor.core.device import is_main_process
from mentor.core.seed import get_rng_state, set_rng_state
from mentor.train.callback import Callback

if TYPE_CHECKING:
    from mentor.train.learner import Learner

CHECKPOINT_NAME = "checkpoint.pt"


def model_file(learn: Learner, name: str | Path, suffix: str = ".pth") -> Path:
    """`name` as a path: used as is when it has a suffix or a folder, else `path/model_dir`."""
    name = Path(name)
    if name.suffix or name.parent != Path("."):
        return name
    return learn.path / learn.model_dir / f"{name}{suffix}"


def atomic_save(obj: dict[str, Any], file: Path) -> None:
    """Write `obj` to `file` through a temporary file, so a crash never leaves half a file.

    Only the main process writes (the others hold the same state under data parallelism).
    """
    if not is_main_process():
        return
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(file.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, file)


def load_file(file: Path) -> dict[str, Any]:
    """Load a file written by `atomic_save` without unpickling, with a clear error if missing."""
    if not file.exists():
        raise FileNotFoundError(f"no saved model at {str(file)!r}; check the name and learn.path")
    return torch.load(file, map_location="cpu", weights_only=True)


def save_learner(learn: Learner, name: str | Path, with_opt: bool = True) -> Path:
    """Save the model's weights (and the optimizer state) to `path/model_dir/name.pth`."""
    file = model_file(learn, name)
    state: dict[str, Any] = {"model": learn.model.state_dict()}
    if with_opt and learn.opt is not None:
        state["opt"] = learn.opt.state_dict()
    atomic_save(state, file)
    return file


def load_learner_state(
    learn: Learner, name: str | Path, with_opt: bool = True, strict: bool = True
) -> None:
    """Load weights (and optimizer state, when saved) written by `save_learner`."""
    state = load_file(model_file(learn, name))
    learn.model.load_state_dict(state["model"], strict=strict)
    if with_opt and "opt" in state:
        learn.opt.load_state_dict(state["opt"])


class CheckpointCallback(Callback):
    """Writes a checkpoint every epoch (`every='epoch'`) or every `every` training batches,
    and, given `resume_from`, continues a fit from one exactly.

    Resuming mid-epoch replays the epoch's data order and skips the batches already trained
    on; it is exact when loading data draws no random numbers in the main process (in-memory
    loaders, or `DataLoader`s with workers).
    """

    order = 70

    def __init__(self, file: Path, every: str | int | None, resume_from: Path | None) -> None:
        super().__init__()
        if every is not None and every != "epoch" and not (isinstance(every, int) and every > 0):
            raise ValueError(f"checkpoint_every={every!r}: use 'epoch' or a number of batches")
        self.file, self.every, self.resume_from = file, every, resume_from
        self.epoch_rng: dict[str, Any] = {}
        self.resume_rng: dict[str, Any] | None = None

    def before_fit(self) -> None:
        """Load the checkpoint when resuming."""
        if self.resume_from is not None:
            self._resume(load_file(self.resume_from))

    def before_train(self) -> None:
        """Remember the generators' state at the start of the epoch (it fixes the data order)."""
        if self.resume_rng is None:
            self.epoch_rng = get_rng_state()

    def before_batch(self) -> None:
        """On the first batch after a mid-epoch resume, restore the generators as they were."""
        if self.resume_rng is not None and self.learn.training:
            set_rng_state(self.resume_rng)
            self.resume_rng = None

    def after_train(self) -> None:
        """A resumed epoch is over: the next ones start from their first batch."""
        if self.resume_rng is not None:
            # resumed after the epoch's last batch: no before_batch restored the generators
            set_rng_state(self.resume_rng)
            self.resume_rng = None
        self.learn.skip_batches = 0

    def after_batch(self) -> None:
        """Checkpoint every `every` training batches."""
        learn = self.learn
        # the batch counter moves after this event: this checkpoint covers batch `iter`
        done = learn.train_iter + 1
        if isinstance(self.every, int) and learn.training and done % self.every == 0:
            self.save(epoch=learn.epoch, batch=learn.iter + 1, train_iter=learn.train_iter + 1)

    def after_epoch(self) -> None:
        """Checkpoint at the end of each epoch."""
        if self.every == "epoch":
            self.save(epoch=self.learn.epoch + 1, batch=0, train_iter=self.learn.train_iter)

    def save(self, epoch: int, batch: int, train_iter: int) -> None:
        """Write everything the fit needs to continue from (epoch, batch)."""
        learn = self.learn
        state: dict[str, Any] = {
            "model": learn.model.state_dict(),
            "opt": learn.opt.state_dict(),
            "scaler": learn.scaler.state_dict(),
            "epoch": epoch,
            "batch": batch,
            "train_iter": train_iter,
            "n_epoch": learn.n_epoch,
            "n_iter": learn.n_iter,
            "rng": get_rng_state(),
            "epoch_rng": self.epoch_rng,
            "callbacks": {cb.name: cb.state_dict() for cb in learn.cbs if cb is not self},
        }
        atomic_save(state, self.file)

    def _resume(self, state: dict[str, Any]) -> None:
        learn = self.learn
        if state["n_epoch"] != learn.n_epoch or state["n_iter"] != learn.n_iter:
            raise ValueError(
                f"checkpoint {str(self.resume_from)!r} is from a fit of {state['n_epoch']} epochs "
                f"of {state['n_iter']} batches, this one has {learn.n_epoch} of {learn.n_iter}; "
                "resume with the same fit call and data"
            )
        learn.model.load_state_dict(state["model"])
        learn.opt.load_state_dict(state["opt"])
        if state["scaler"]:
            learn.scaler.load_state_dict(state["scaler"])
        for cb in learn.cbs:
            if cb is not self and cb.name in state["callbacks"]:
                cb.load_state_dict(state["callbacks"][cb.name])
        learn.epoch, learn.train_iter = state["epoch"], state["train_iter"]
        learn.skip_batches = state["batch"]
        self.epoch_rng = state["epoch_rng"]
        if state["batch"]:
            set_rng_state(state["epoch_rng"])
            self.resume_rng = state["rng"]
        else:
            set_rng_state(state["rng"])


def checkpoint_callbacks(
    learn: Learner, every: str | int | None, resume_from: str | Path | bool | None
) -> list[Callback]:
    """The checkpoint callback a fit needs for `checkpoint_every` / `resume_from`, if any.

    `resume_from=True` resumes from the default file, `path/model_dir/checkpoint.pt`.
    """
    if every is None and not resume_from:
        return []
    default = learn.path / learn.model_dir / CHECKPOINT_NAME
    resume = default if resume_from is True else Path(resume_from) if resume_from else None
    file = resume if resume is not None else default
    return [CheckpointCallback(file, every, resume)]
