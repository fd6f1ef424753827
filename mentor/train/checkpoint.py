"""Saving and loading learners, and checkpoints that resume a fit exactly.

A checkpoint holds the model, the optimizer, the gradient scaler, the position in the fit
(epoch, batch, iteration), every random generator's state, the recorder's history and the
state of callbacks that keep some (early stopping, save-best). Files load with
`torch.load(weights_only=True)`: nothing is unpickled.

A checkpoint starts with a line `MENTORCK1 <sha256> <size>` that loading checks, so a
truncated or changed file is refused naming the file and what is wrong (`learn.save` files
stay plain `torch.save` files, for other tools). A checkpoint keeps
the one before it (`checkpoint.prev.pt`); resuming from a corrupt checkpoint falls back to
that one with a warning.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from mentor.core.device import is_main_process, uncompiled
from mentor.core.seed import get_rng_state, set_rng_state
from mentor.train.callback import Callback

if TYPE_CHECKING:
    from mentor.train.learner import Learner

CHECKPOINT_NAME = "checkpoint.pt"
MAGIC = b"MENTORCK1"


def model_file(learn: Learner, name: str | Path, suffix: str = ".pth") -> Path:
    """`name` as a path: used as is when it has a suffix or a folder, else `path/model_dir`."""
    name = Path(name)
    if name.suffix or name.parent != Path("."):
        return name
    return learn.path / learn.model_dir / f"{name}{suffix}"


def atomic_save(
    obj: dict[str, Any], file: Path, checksum: bool = False, keep_previous: bool = False
) -> None:
    """Write `obj` to `file` through a temporary file, so a crash never leaves half a file.
    `checksum` puts the checksum line first; `keep_previous` keeps the file it replaces as
    `previous(file)`.

    Only the main process writes (the others hold the same state under data parallelism).
    """
    if not is_main_process():
        return
    file.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    payload = buffer.getvalue()
    digest = hashlib.sha256(payload).hexdigest()
    tmp = file.with_name(file.name + ".tmp")
    with open(tmp, "wb") as out:
        out.write(MAGIC + f" {digest} {len(payload)}\n".encode() if checksum else b"")
        out.write(payload)
        out.flush()
        os.fsync(out.fileno())
    if keep_previous and file.exists():
        os.replace(file, previous(file))
    os.replace(tmp, file)


def previous(file: Path) -> Path:
    """Where the checkpoint before `file` is kept: `checkpoint.pt` -> `checkpoint.prev.pt`."""
    return file.with_name(f"{file.stem}.prev{file.suffix}")


def load_file(file: Path) -> dict[str, Any]:
    """Load a file written by `atomic_save` without unpickling, after checking its size and
    checksum; a missing, truncated or changed file is refused in one line naming it."""
    if not file.exists():
        raise FileNotFoundError(f"no saved model at {str(file)!r}; check the name and learn.path")
    raw = file.read_bytes()
    payload = raw
    if raw.startswith(MAGIC):
        head, _, payload = raw.partition(b"\n")
        parts = head.split()
        if len(parts) != 3 or not parts[2].isdigit():
            raise ValueError(f"{str(file)!r} is corrupt: its checksum line is damaged")
        size = int(parts[2])
        if len(payload) != size:
            raise ValueError(f"{str(file)!r} is truncated or corrupt: it holds {len(payload):,} "
                             f"bytes of state, its checksum line says {size:,}")  # fmt: skip
        if hashlib.sha256(payload).hexdigest() != parts[1].decode(errors="replace"):
            raise ValueError(f"{str(file)!r} is corrupt: its checksum does not match (a byte "
                             "changed on disk)")  # fmt: skip
    try:  # files from before the checksum line load unchecked
        state: dict[str, Any] = torch.load(io.BytesIO(payload), map_location="cpu",
                                           weights_only=True)  # fmt: skip
    except Exception as err:  # torch raises several error types for a damaged file
        raise ValueError(f"{str(file)!r} is not a readable checkpoint: {err}") from None
    return state


def save_learner(learn: Learner, name: str | Path, with_opt: bool = True) -> Path:
    """Save the model's weights (and the optimizer state) to `path/model_dir/name.pth`."""
    file = model_file(learn, name)
    state: dict[str, Any] = {"model": uncompiled(learn.model).state_dict()}
    if with_opt and learn.opt is not None:
        state["opt"] = learn.opt.state_dict()
    atomic_save(state, file)
    return file


def load_learner_state(
    learn: Learner, name: str | Path, with_opt: bool = True, strict: bool = True
) -> None:
    """Load weights (and optimizer state, when saved) written by `save_learner`."""
    state = load_file(model_file(learn, name))
    uncompiled(learn.model).load_state_dict(state["model"], strict=strict)
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

    def __init__(
        self,
        file: Path,
        every: str | int | None,
        resume_from: Path | None,
        stage: int = 0,
        state: dict[str, Any] | None = None,
    ) -> None:
        """Args: file: where to write. every: 'epoch', a number of batches, or None (no
        writing). resume_from: the checkpoint to continue from. stage: the fit's place in a
        recipe of several (`fine_tune`: 0 the head, 1 everything), recorded and checked.
        state: `resume_from` already loaded (`load_checkpoint`)."""
        super().__init__()
        if every is not None and every != "epoch" and not (isinstance(every, int) and every > 0):
            raise ValueError(f"checkpoint_every={every!r}: use 'epoch' or a number of batches")
        self.file, self.every, self.resume_from = file, every, resume_from
        self.stage, self.state = stage, state
        self.epoch_rng: dict[str, Any] = {}
        self.resuming = False

    def before_fit(self) -> None:
        """Load the checkpoint when resuming."""
        if self.resume_from is not None:
            state, self.state = self.state or load_checkpoint(self.resume_from), None
            self._resume(state)

    def before_train(self) -> None:
        """Remember the generators' state at the start of the epoch (it fixes the data order);
        a resumed epoch keeps the one its checkpoint recorded."""
        if not self.resuming:
            self.epoch_rng = get_rng_state()
        self.resuming = False

    def after_train(self) -> None:
        """A resumed epoch is over: the next ones start from their first batch (the learner
        set the generators back once past the skipped batches)."""
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
            "model": uncompiled(learn.model).state_dict(),
            "opt": learn.opt.state_dict(),
            "scaler": learn.scaler.state_dict(),
            "epoch": epoch,
            "batch": batch,
            "train_iter": train_iter,
            "n_epoch": learn.n_epoch,
            "n_iter": learn.n_iter,
            "stage": self.stage,
            "rng": get_rng_state(),
            "epoch_rng": self.epoch_rng,
            "callbacks": {cb.name: cb.state_dict() for cb in learn.cbs if cb is not self},
        }
        atomic_save(state, self.file, checksum=True, keep_previous=True)

    def _resume(self, state: dict[str, Any]) -> None:
        learn = self.learn
        if state.get("stage", 0) != self.stage:
            raise ValueError(
                f"checkpoint {str(self.resume_from)!r} is from fit {state.get('stage', 0) + 1} "
                f"of a recipe, this is fit {self.stage + 1}; resume with the same call "
                "(fine_tune resumes its own stages)"
            )
        if state["n_epoch"] != learn.n_epoch or state["n_iter"] != learn.n_iter:
            raise ValueError(
                f"checkpoint {str(self.resume_from)!r} is from a fit of {state['n_epoch']} epochs "
                f"of {state['n_iter']} batches, this one has {learn.n_epoch} of {learn.n_iter}; "
                "resume with the same fit call and data"
            )
        uncompiled(learn.model).load_state_dict(state["model"])
        # callbacks before the optimizer: one that swaps optimizers (a GAN's GANTrainer)
        # puts the one this checkpoint's "opt" belongs to in learn.opt
        for cb in learn.cbs:
            if cb is not self and cb.name in state["callbacks"]:
                cb.load_state_dict(state["callbacks"][cb.name])
        learn.opt.load_state_dict(state["opt"])
        if state["scaler"]:
            learn.scaler.load_state_dict(state["scaler"])
        learn.epoch, learn.train_iter = state["epoch"], state["train_iter"]
        learn.skip_batches = state["batch"]
        self.epoch_rng = state["epoch_rng"]
        if state["batch"]:  # replay the epoch's start; the learner restores "rng" after skipping
            set_rng_state(state["epoch_rng"])
            learn.resume_rng = state["rng"]
            self.resuming = True
        else:
            set_rng_state(state["rng"])


def load_checkpoint(file: Path) -> dict[str, Any]:
    """The checkpoint in `file`; when it is corrupt or truncated and the one before it is
    kept (`previous(file)`), that one, with a warning saying so."""
    try:
        return load_file(file)
    except ValueError as err:
        kept = previous(file)
        if not kept.exists():
            raise
        state = load_file(kept)
        warnings.warn(
            f"{err}; resuming from the previous checkpoint {str(kept)!r} instead",
            RuntimeWarning,
            stacklevel=3,
        )
        return state


def checkpoint_callbacks(
    learn: Learner,
    every: str | int | None,
    resume_from: str | Path | bool | None,
    stage: int = 0,
    state: dict[str, Any] | None = None,
) -> list[Callback]:
    """The checkpoint callback a fit needs for `checkpoint_every` / `resume_from`, if any
    (`stage` and `state` as for `CheckpointCallback`).

    `resume_from=True` resumes from the default file, `path/model_dir/checkpoint.pt`.
    """
    if every is None and not resume_from:
        return []
    resume = resume_file(learn, resume_from)
    file = resume if resume is not None else learn.path / learn.model_dir / CHECKPOINT_NAME
    return [CheckpointCallback(file, every, resume, stage, state)]


def resume_file(learn: Learner, resume_from: str | Path | bool | None) -> Path | None:
    """The checkpoint `resume_from` names (True: the default one), or None."""
    if resume_from is True:
        return learn.path / learn.model_dir / CHECKPOINT_NAME
    return Path(resume_from) if resume_from else None
