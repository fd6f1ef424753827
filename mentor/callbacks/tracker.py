"""Callbacks that watch a metric or the loss: early stopping, save-best (or the top k, or
every epoch) and reducing the learning rate on a plateau."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

from mentor.core.device import is_main_process
from mentor.core.dist import barrier
from mentor.optim import get_hyper, set_hyper
from mentor.train.callback import Callback, CancelFit
from mentor.train.checkpoint import model_file
from mentor.train.fits import ParamScheduler

Compare = Callable[[float, float], bool]


class TrackerCallback(Callback):
    """Tracks the best value of `monitor` (a column of the epoch table) over a fit.

    Args:
        monitor: 'valid_loss' (default), 'train_loss' or a metric's name.
        comp: `operator.lt` or `operator.gt`; None picks `lt` for losses and error rates,
            `gt` for everything else.
        min_delta: the least change that counts as an improvement.
        reset_on_fit: forget the best value at the start of each fit (default True).
    """

    order = 65

    def __init__(
        self,
        monitor: str = "valid_loss",
        comp: Compare | None = None,
        min_delta: float = 0.0,
        reset_on_fit: bool = True,
    ) -> None:
        super().__init__()
        lower_is_better = "loss" in monitor or "error" in monitor
        self.monitor, self.min_delta, self.reset_on_fit = monitor, min_delta, reset_on_fit
        self.comp: Compare = comp or (operator.lt if lower_is_better else operator.gt)
        self.best = math.inf if self.comp is operator.lt else -math.inf
        self.best_epoch = -1
        self.new_best = False

    def before_fit(self) -> None:
        """Forget the best value (when `reset_on_fit`) and check the monitor exists."""
        names = self.learn.recorder.metric_names
        if self.monitor not in names:
            raise ValueError(f"cannot monitor {self.monitor!r}: the epoch table has {names}")
        if self.reset_on_fit:
            self.best = math.inf if self.comp is operator.lt else -math.inf
            self.best_epoch = -1

    def after_epoch(self) -> None:
        """Compare this epoch's value with the best so far."""
        value = self.learn.recorder.values[-1][self.monitor]
        delta = -self.min_delta if self.comp is operator.lt else self.min_delta
        self.new_best = not math.isnan(value) and self.comp(value - delta, self.best)
        if self.new_best:
            self.best, self.best_epoch = value, self.learn.epoch

    def state_dict(self) -> dict[str, Any]:
        """The best value and its epoch."""
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the best value and its epoch."""
        self.best, self.best_epoch = state["best"], state["best_epoch"]


class EarlyStoppingCallback(TrackerCallback):
    """Stops training when `monitor` has not improved for `patience` epochs.

    Example:
        >>> learn.fit(20, cbs=[EarlyStoppingCallback("valid_loss", patience=3)])
    """

    def __init__(
        self,
        monitor: str = "valid_loss",
        comp: Compare | None = None,
        min_delta: float = 0.0,
        patience: int = 1,
        reset_on_fit: bool = True,
    ) -> None:
        super().__init__(monitor, comp, min_delta, reset_on_fit)
        self.patience = patience
        self.wait = 0
        self.stopped_epoch: int | None = None

    def before_fit(self) -> None:
        """Reset the patience counter."""
        super().before_fit()
        self.wait, self.stopped_epoch = 0, None

    def after_epoch(self) -> None:
        """Count epochs without improvement; stop after `patience` of them."""
        super().after_epoch()
        self.wait = 0 if self.new_best else self.wait + 1
        if self.wait >= self.patience:
            self.stopped_epoch = self.learn.epoch
            print(
                f"early stopping at epoch {self.learn.epoch}: no improvement of {self.monitor} "
                f"since epoch {self.best_epoch} (best {self.best:.6f})"
            )
            raise CancelFit()

    def state_dict(self) -> dict[str, Any]:
        """The best value, its epoch and the patience counter."""
        return {**super().state_dict(), "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the best value, its epoch and the patience counter."""
        super().load_state_dict(state)
        self.wait = state["wait"]


class SaveModelCallback(TrackerCallback):
    """Saves the model when `monitor` improves (or the top k epochs, or every epoch) and
    loads the best at the end.

    Args:
        fname: the file name in `learn.path/learn.model_dir` ('model').
        every_epoch: True: save every epoch as `<fname>_<epoch>` instead of only the best; a
            number N: every N epochs (epochs 0, N, 2N, ...), as fastai. Nothing is loaded at
            the end.
        with_opt: save the optimizer state too.
        keep_last: with `every_epoch`, keep only the k most recent of those files (the older
            ones are deleted).
        top_k: keep the k best epochs by `monitor` as `<fname>_<epoch>` files (an epoch that
            drops out of the k best has its file deleted) and load the best at the end.

    The files kept are part of the callback's checkpoint state: a resumed fit deletes the
    right ones. Only the main process writes and deletes files. A new fit (with
    `reset_on_fit`) numbers its epochs from 0 again and forgets the previous fit's files
    without deleting them.

    Example:
        >>> learn.fit(10, cbs=[SaveModelCallback("accuracy", top_k=3)])  # model_<epoch>.pth
    """

    def __init__(
        self,
        monitor: str = "valid_loss",
        comp: Compare | None = None,
        min_delta: float = 0.0,
        fname: str = "model",
        every_epoch: bool | int = False,
        with_opt: bool = False,
        reset_on_fit: bool = True,
        keep_last: int | None = None,
        top_k: int | None = None,
    ) -> None:
        super().__init__(monitor, comp, min_delta, reset_on_fit)
        self.every = _epochs_between_saves(every_epoch, keep_last, top_k)
        self.fname, self.every_epoch, self.with_opt = fname, every_epoch, with_opt
        self.keep_last, self.top_k = keep_last, top_k
        self.kept: list[tuple[int, float]] = []  # (epoch, value) of the `<fname>_<epoch>` files

    def before_fit(self) -> None:
        """Forget the files of a previous fit (when `reset_on_fit`)."""
        super().before_fit()
        if self.reset_on_fit:
            self.kept = []

    def after_epoch(self) -> None:
        """Save this epoch's model when it is the best (or among the top k, or always, with
        `every_epoch`), and delete the files no longer kept."""
        super().after_epoch()
        epoch = self.learn.epoch
        value = self.learn.recorder.values[-1][self.monitor]
        if self.every:
            if epoch % self.every == 0:
                self._save_epoch(epoch, value, len(self.kept))
                if self.keep_last is not None:
                    self._drop(self.kept[: -self.keep_last])
        elif self.top_k is not None:
            if not math.isnan(value):
                place = next(
                    (i for i, (_, kept) in enumerate(self.kept) if self.comp(value, kept)),
                    len(self.kept),
                )
                if place < self.top_k:
                    self._save_epoch(epoch, value, place)
                    self._drop(self.kept[self.top_k :])
        elif self.new_best:
            self.learn.save(self.fname, with_opt=self.with_opt)

    def _save_epoch(self, epoch: int, value: float, place: int) -> None:
        self.learn.save(f"{self.fname}_{epoch}", with_opt=self.with_opt)
        self.kept.insert(place, (epoch, value))

    def _drop(self, entries: list[tuple[int, float]]) -> None:
        dropped = {epoch for epoch, _ in entries}
        self.kept = [entry for entry in self.kept if entry[0] not in dropped]
        for epoch in sorted(dropped) if is_main_process() else ():
            model_file(self.learn, f"{self.fname}_{epoch}").unlink(missing_ok=True)

    def after_fit(self) -> None:
        """Load the best model (unless saving every epoch)."""
        if self.every:
            return
        if self.top_k is not None:
            if not self.kept:
                return
            name = f"{self.fname}_{self.kept[0][0]}"
        elif self.best_epoch >= 0:
            name = self.fname
        else:
            return
        if self.learn.sharded:
            barrier()  # rank 0 has finished writing it
        self.learn.load(name, with_opt=self.with_opt)

    def state_dict(self) -> dict[str, Any]:
        """The best value, its epoch and the files kept (epoch, value), best first for top_k."""
        return {**super().state_dict(), "kept": [[epoch, value] for epoch, value in self.kept]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the best value, its epoch and the files kept."""
        super().load_state_dict(state)
        self.kept = [(int(epoch), float(value)) for epoch, value in state.get("kept", [])]


def _epochs_between_saves(every_epoch: bool | int, keep_last: int | None, top_k: int | None) -> int:
    """`every_epoch` as a number of epochs (0: off), after checking the saving arguments."""
    every = int(every_epoch)
    if every < 0:
        raise ValueError(f"every_epoch={every_epoch!r}: use True, False or a number of epochs >= 1")
    for name, count in (("keep_last", keep_last), ("top_k", top_k)):
        if count is not None and count < 1:
            raise ValueError(f"{name}={count!r}: keep at least 1 file, or pass None to keep all")
    if keep_last is not None and not every:
        raise ValueError(
            f"keep_last={keep_last} keeps the newest files of every_epoch; pass every_epoch=True "
            "(or a number of epochs), or top_k= to keep the best epochs"
        )
    if top_k is not None and every:
        raise ValueError(
            f"top_k={top_k} keeps the best epochs and every_epoch={every_epoch!r} saves them all; "
            "pass one of the two (with keep_last= to bound every_epoch's files)"
        )
    return every


class ReduceLROnPlateau(TrackerCallback):
    """Divides the learning rate by `factor` when `monitor` has not improved for `patience`
    epochs (fastai's names and defaults).

    Args:
        monitor, comp, min_delta, reset_on_fit: as for `TrackerCallback`.
        patience: epochs without improvement before the rate drops (the count restarts after
            each drop and each improvement).
        factor: the divisor, above 1 (10: 1e-3 -> 1e-4).
        min_lr: the rate of a parameter group never drops below this.

    It works with `learn.fit` (a constant rate); the schedules of `fit_one_cycle`,
    `fit_flat_cos` and `fit_sgdr` set the rate at every batch, so they are refused.

    Example:
        >>> learn.fit(20, 1e-3, cbs=[ReduceLROnPlateau("valid_loss", patience=2)])
    """

    def __init__(
        self,
        monitor: str = "valid_loss",
        comp: Compare | None = None,
        min_delta: float = 0.0,
        patience: int = 1,
        factor: float = 10.0,
        min_lr: float = 0.0,
        reset_on_fit: bool = True,
    ) -> None:
        super().__init__(monitor, comp, min_delta, reset_on_fit)
        if factor <= 1:
            raise ValueError(
                f"ReduceLROnPlateau(factor={factor!r}): the rate is divided by factor, so use a "
                "value above 1 (fastai's default is 10)"
            )
        if patience < 0:
            raise ValueError(f"ReduceLROnPlateau(patience={patience!r}): use a count >= 0")
        self.patience, self.factor, self.min_lr = patience, factor, min_lr
        self.wait = 0
        self.lrs: list[float] | None = None  # the rate per parameter group after the last drop

    def before_fit(self) -> None:
        """Refuse a learning-rate schedule; reset the patience counter (when `reset_on_fit`)."""
        super().before_fit()
        if any(isinstance(cb, ParamScheduler) and "lr" in cb.scheds for cb in self.learn.cbs):
            raise ValueError(
                "ReduceLROnPlateau cannot change the learning rate of a scheduled fit "
                "(fit_one_cycle, fit_flat_cos, fit_sgdr or a ParamScheduler on 'lr'): the "
                "schedule sets it at every batch; use learn.fit(n_epoch, lr, cbs=[...])"
            )
        if self.reset_on_fit:
            self.wait, self.lrs = 0, None

    def after_epoch(self) -> None:
        """Count epochs without improvement; after `patience` of them divide the rate."""
        super().after_epoch()
        if self.new_best:
            self.wait = 0
            return
        self.wait += 1
        if self.wait < self.patience:
            return
        self.wait = 0
        old = get_hyper(self.learn.opt, "lr")
        self.lrs = [max(lr / self.factor, min(lr, self.min_lr)) for lr in old]
        set_hyper(self.learn.opt, "lr", self.lrs)
        if self.lrs != old and is_main_process():
            rates = ", ".join(f"{lr:.2e}" for lr in self.lrs)
            print(
                f"epoch {self.learn.epoch}: no improvement of {self.monitor} for "
                f"{self.patience} epochs (best {self.best:.6f} at epoch {self.best_epoch}); "
                f"learning rate reduced to {rates}"
            )

    def state_dict(self) -> dict[str, Any]:
        """The best value, its epoch, the patience counter and the reduced rates."""
        return {**super().state_dict(), "wait": self.wait, "lrs": self.lrs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore them (and the reduced rates in the optimizer, when attached)."""
        super().load_state_dict(state)
        self.wait = state["wait"]
        lrs = state.get("lrs")
        self.lrs = None if lrs is None else [float(lr) for lr in lrs]
        if self.lrs is not None and self._learn is not None:
            set_hyper(self._learn.opt, "lr", self.lrs)
