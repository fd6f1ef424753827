"""`TerminateOnNaN`: stop training when the loss is no longer a number."""

from __future__ import annotations

import math
import warnings

from mentor.train.callback import Callback, CancelFit


class TerminateOnNaN(Callback):
    """Stops training when the train loss becomes NaN or infinite, naming epoch and batch.

    It checks the losses the recorder has read from the device (every `flush_every` batches
    and at the end of each epoch), so it adds no device sync of its own.
    """

    order = 55
    run_valid = False

    def __init__(self) -> None:
        super().__init__()
        self.checked = 0
        self.epoch_start = 0
        self.message = ""

    def before_fit(self) -> None:
        """Start checking from the first loss of this fit."""
        self.checked, self.epoch_start, self.message = 0, 0, ""

    def before_epoch(self) -> None:
        """Remember where this epoch's losses start."""
        self.epoch_start = self.learn.recorder.n_batches

    def after_batch(self) -> None:
        """Check the losses read since the last check."""
        self._check()

    def after_train(self) -> None:
        """Check the epoch's last losses (the recorder has read them all)."""
        self._check()

    def _check(self) -> None:
        losses = self.learn.recorder.losses
        for index in range(self.checked, len(losses)):
            if not math.isfinite(losses[index]):
                batch = index - self.epoch_start
                self.message = (
                    f"the train loss is {losses[index]} at epoch {self.learn.epoch}, batch {batch}:"
                    " training stopped; lower the learning rate, clip gradients (GradientClip) "
                    "or check the data for NaN values"
                )
                warnings.warn(self.message, RuntimeWarning, stacklevel=2)
                raise CancelFit()
        self.checked = len(losses)
