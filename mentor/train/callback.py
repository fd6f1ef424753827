"""`Callback`: the events of the training loop, and the exceptions that steer it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mentor.train.learner import Learner

EVENTS: tuple[str, ...] = (
    "before_fit",
    "before_epoch",
    "before_train",
    "before_batch",
    "after_pred",
    "after_loss",
    "before_backward",
    "before_step",
    "after_step",
    "after_batch",
    "after_train",
    "before_validate",
    "after_validate",
    "after_epoch",
    "after_fit",
)


class CancelBatch(Exception):
    """Skip the rest of this batch (no backward or step when raised before them)."""


class CancelTrain(Exception):
    """Skip the rest of this epoch's training phase."""


class CancelValidate(Exception):
    """Skip the rest of this epoch's validation phase."""


class CancelEpoch(Exception):
    """Skip the rest of this epoch (after_epoch still runs)."""


class CancelFit(Exception):
    """Stop training (after_fit still runs)."""


class Callback:
    """Base class: override the events you need; each reads and writes `self.learn` explicitly.

    `order` sorts callbacks (lower runs first); `run_train` / `run_valid` say in which phases
    the per-batch events reach it. The learner sets `self.learn` when the callback is added.

    Example:
        >>> class PrintLoss(Callback):
        ...     def after_epoch(self) -> None:
        ...         print(self.learn.epoch, self.learn.recorder.values[-1])
    """

    order: int = 0
    run_train: bool = True
    run_valid: bool = True
    sweeps_lr: bool = False  # True on the learning-rate finder: see `sweeping_lr`
    _learn: Learner | None = None  # a class default, so subclasses may skip super().__init__()

    def __init__(self) -> None:
        self._learn = None

    @property
    def learn(self) -> Learner:
        """The learner this callback is attached to."""
        if self._learn is None:
            raise RuntimeError(
                f"{type(self).__name__} is not attached to a Learner; add it with cbs="
            )
        return self._learn

    @learn.setter
    def learn(self, learn: Learner) -> None:
        self._learn = learn

    @property
    def name(self) -> str:
        """The callback's name: its class name in snake case, without `_callback`."""
        return _snake(type(self).__name__).removesuffix("_callback")

    def before_fit(self) -> None:
        """At the start of `fit`, before anything else."""

    def before_epoch(self) -> None:
        """At the start of each epoch."""

    def before_train(self) -> None:
        """Before the training phase of each epoch (model in train mode)."""

    def before_batch(self) -> None:
        """After `learn.xb` / `learn.yb` are set, before the forward pass."""

    def after_pred(self) -> None:
        """After the forward pass (`learn.pred`)."""

    def after_loss(self) -> None:
        """After the loss (`learn.loss`, detached; `learn.loss_grad` for backward)."""

    def before_backward(self) -> None:
        """Before `loss_grad.backward()` (training only)."""

    def before_step(self) -> None:
        """After backward, before the optimizer step (gradients are ready)."""

    def after_step(self) -> None:
        """After the optimizer step, before the gradients are zeroed."""

    def after_batch(self) -> None:
        """At the end of each batch, training or validation."""

    def after_train(self) -> None:
        """After the training phase of each epoch."""

    def before_validate(self) -> None:
        """Before the validation phase of each epoch (model in eval mode)."""

    def after_validate(self) -> None:
        """After the validation phase of each epoch."""

    def after_epoch(self) -> None:
        """At the end of each epoch."""

    def after_fit(self) -> None:
        """At the end of `fit`, also when it was cancelled."""

    def state_dict(self) -> dict[str, object]:
        """What a checkpoint saves of this callback (default: nothing)."""
        return {}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore what `state_dict` returned."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(order={self.order})"


def sweeping_lr(cbs: Iterable[Callback]) -> bool:
    """Whether the fit these callbacks run in is a learning-rate sweep (`lr_find`, which
    restores the model after it): the recorder, the NaN check, loggers and weight averages
    leave it alone."""
    return any(cb.sweeps_lr for cb in cbs)


PER_BATCH_EVENTS = frozenset({"before_batch", "after_pred", "after_loss", "after_batch"})


def handlers(cbs: list[Callback], event: str) -> tuple[tuple[Callback, ...], tuple[Callback, ...]]:
    """The callbacks that override `event`, in order: (for training, for validation)."""
    base = getattr(Callback, event)
    active = [cb for cb in cbs if getattr(type(cb), event) is not base]
    if event not in PER_BATCH_EVENTS:
        return tuple(active), tuple(active)
    return tuple(cb for cb in active if cb.run_train), tuple(cb for cb in active if cb.run_valid)


def training_loop(cbs: list[Callback]) -> str:
    """A table of the events and the callbacks that run at each, in order."""
    lines = []
    for event in EVENTS:
        train_cbs, valid_cbs = handlers(cbs, event)
        names = [type(cb).__name__ for cb in dict.fromkeys((*train_cbs, *valid_cbs))]
        lines.append(f"{event:<16} {', '.join(names) if names else '-'}")
    return "\n".join(lines)


def _snake(name: str) -> str:
    out = [name[0].lower()]
    for prev, char in zip(name, name[1:]):
        out.append(f"_{char.lower()}" if char.isupper() and not prev.isupper() else char.lower())
    return "".join(out)
