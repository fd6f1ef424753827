"""Callbacks that watch a metric or the loss: early stopping and save-best."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

from mentor.core.dist import barrier
from mentor.train.callback import Callback, CancelFit

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
    """Saves the model when `monitor` improves (or every epoch) and loads the best at the end.

    Args:
        fname: the file name in `learn.path/learn.model_dir` ('model').
        every_epoch: save every epoch as `<fname>_<epoch>` instead of only the best.
        with_opt: save the optimizer state too.
    """

    def __init__(
        self,
        monitor: str = "valid_loss",
        comp: Compare | None = None,
        min_delta: float = 0.0,
        fname: str = "model",
        every_epoch: bool = False,
        with_opt: bool = False,
        reset_on_fit: bool = True,
    ) -> None:
        super().__init__(monitor, comp, min_delta, reset_on_fit)
        self.fname, self.every_epoch, self.with_opt = fname, every_epoch, with_opt

    def after_epoch(self) -> None:
        """Save this epoch's model when it is the best (or always, with `every_epoch`)."""
        super().after_epoch()
        if self.every_epoch:
            self.learn.save(f"{self.fname}_{self.learn.epoch}", with_opt=self.with_opt)
        elif self.new_best:
            self.learn.save(self.fname, with_opt=self.with_opt)

    def after_fit(self) -> None:
        """Load the best model (unless saving every epoch)."""
        if not self.every_epoch and self.best_epoch >= 0:
            if self.learn.sharded:
                barrier()  # rank 0 has finished writing it
            self.learn.load(self.fname, with_opt=self.with_opt)
