"""`mentor train --time-budget SECONDS`: as many epochs as fit in the wall time, and a hard
stop at it.

The clock starts with the command. Reading the data, building the model and `lr_find` come
out of the budget first; the sweep's batches also time a training batch (with `--lr` given,
a 10-batch sweep that changes nothing does). One epoch is estimated as its training batches
at that pace plus its validation batches at a third of it (no backward pass); the epochs are
as many as fit in what is left. `TimeLimit` stops training after the batch at which the
budget runs out, in case the estimate was short.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from mentor.cli.errors import CLIError
from mentor.train import Callback, Learner
from mentor.train.callback import CancelFit

PROBE_BATCHES = 10  # the sweep that times a batch when --lr is given
VALID_SHARE = 1 / 3  # a validation batch's time against a training batch's (no backward)


@dataclass
class Budget:
    """`seconds` of wall time from `start` (a `time.perf_counter()` reading)."""

    seconds: float
    start: float = field(default_factory=time.perf_counter)

    def left(self) -> float:
        """Seconds left."""
        return self.seconds - self.spent()

    def spent(self) -> float:
        """Seconds since the start."""
        return time.perf_counter() - self.start

    def epochs(self, learn: Learner, batch_seconds: float) -> int:
        """How many epochs fit in what is left, at `batch_seconds` per training batch; a
        CLIError with the figures when not even one does."""
        n_train = len(learn.dls.train) if learn.dls.train.has_len() else 1
        valid = learn.dls.valid
        n_valid = len(valid) if valid is not None and valid.has_len() else 0
        epoch = batch_seconds * (n_train + VALID_SHARE * n_valid)
        fits = math.floor(self.left() / epoch) if epoch > 0 else 1
        if fits < 1:
            spent = self.spent()
            raise CLIError(
                f"--time-budget {self.seconds:g}: reading the data and lr_find took {spent:.1f} "
                f"s of it, and one epoch takes about {epoch:.1f} s; give at least "
                f"{math.ceil(spent + epoch)} s, or a smaller data set or --size"
            )
        return fits


def batch_seconds(learn: Learner, sweep_seconds: float | None) -> float:
    """Seconds per training batch: from the `lr_find` sweep that took `sweep_seconds`, or
    from a short sweep of its own (None) that restores the weights and the optimizer."""
    if sweep_seconds is None:
        start = time.perf_counter()
        learn.lr_find(num_it=PROBE_BATCHES, show_plot=False)
        sweep_seconds = time.perf_counter() - start
    swept = max(len(learn.recorder.lrs), 1)
    return sweep_seconds / swept


class TimeLimit(Callback):
    """Stops training after the batch at which `budget` runs out (and skips a later fit)."""

    order = -10  # before the Recorder starts a fit's history

    def __init__(self, budget: Budget) -> None:
        super().__init__()
        self.budget = budget
        self.stopped = False  # whether the limit cut training short

    def before_fit(self) -> None:
        """Skip a fit that starts after the budget is spent."""
        if self.budget.left() <= 0:
            self.stopped = True
            raise CancelFit()

    def after_batch(self) -> None:
        """Stop once the budget is spent."""
        if self.learn.training and self.budget.left() <= 0:
            self.stopped = True
            raise CancelFit()

    def summary(self, epochs: int) -> str:
        """What the budget allowed: the epochs planned, the time taken, a cut if any."""
        cut = "; the budget ran out before the last epoch ended" if self.stopped else ""
        return (
            f"time budget {self.budget.seconds:g} s: {epochs} epoch(s) planned, "
            f"{self.budget.spent():.1f} s spent{cut}"
        )
