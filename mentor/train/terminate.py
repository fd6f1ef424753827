"""`TerminateOnNaN`: stop a diverging fit with `TrainingDiverged`, the model left as it was
before the loss stopped being a number."""

from __future__ import annotations

import math

import torch

from mentor.train.callback import Callback, sweeping_lr


class TrainingDiverged(FloatingPointError):
    """The train loss became NaN or infinite; the message says where and what to try."""


class TerminateOnNaN(Callback):
    """Stops training when the train loss becomes NaN or infinite: raises `TrainingDiverged`
    naming the epoch, the batch and its learning rate, with the model's weights restored.

    It checks the losses the recorder has read from the device (every `flush_every` batches
    and at the end of each epoch), so it adds no device sync of its own. At each check it
    keeps a copy of the weights (a device-to-device copy, no sync); a copy counts as good once
    the loss computed from it is finite, and on divergence the latest good copy is loaded back
    and the optimizer rebuilt (its moments would hold NaN too). A learning-rate sweep
    (`lr_find`) is left alone: it stops on divergence by itself.
    """

    order = 55
    run_valid = False

    def __init__(self) -> None:
        super().__init__()
        self.checked = 0
        self.epoch_start = 0
        self.snapshots: list[tuple[int, dict[str, torch.Tensor]]] = []  # (batch index, weights)
        self.active = True

    def before_fit(self) -> None:
        """Start checking from the first loss of this fit, from the weights it starts with."""
        self.checked, self.epoch_start = 0, 0
        self.active = not sweeping_lr(self.learn.cbs)
        self.snapshots = [(-1, self._copy())] if self.active else []

    def before_epoch(self) -> None:
        """Remember where this epoch's losses start."""
        self.epoch_start = self.learn.recorder.n_batches

    def after_batch(self) -> None:
        """Check the losses read since the last check."""
        self._check()

    def after_train(self) -> None:
        """Check the epoch's last losses (the recorder has read them all)."""
        self._check()

    def after_fit(self) -> None:
        """Drop the copies."""
        self.snapshots = []

    def _copy(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.learn.model.state_dict().items()}

    def _check(self) -> None:
        losses = self.learn.recorder.losses
        if not self.active or len(losses) == self.checked:
            return
        bad = next(
            (i for i in range(self.checked, len(losses)) if not math.isfinite(losses[i])), None
        )
        if bad is not None:
            self._diverged(bad, losses[bad])
        self.checked = len(losses)
        # the weights after batch `checked - 1` produce the next loss: good once it is finite
        self.snapshots = [*self.snapshots[-1:], (self.checked - 1, self._copy())]

    def _diverged(self, index: int, loss: float) -> None:
        """Load back the latest weights whose next loss was finite, then raise."""
        good = [weights for at, weights in self.snapshots if at + 1 < index] or [
            self.snapshots[0][1]
        ]
        self.learn.model.load_state_dict(good[-1])
        self.learn.create_opt()
        self.snapshots = []
        lrs = self.learn.recorder.lrs
        lr = f"{lrs[index]:.3g}" if index < len(lrs) else "unknown"
        raise TrainingDiverged(
            f"the train loss is {loss} at epoch {self.learn.epoch}, batch "
            f"{index - self.epoch_start} (learning rate {lr}): training stopped and the weights "
            "are back to where the loss was last finite (the optimizer's state is reset). Try a "
            "lower learning rate (lr_find's valley), GradientClip, or check the data for NaN or "
            f"infinite values{_non_finite_inputs(self.learn.xb, self.learn.dls)}"
        )


def _non_finite_inputs(xb: tuple[object, ...], dls: object) -> str:
    """Where the latest batch's inputs are NaN or infinite (columns by name for tabular
    data), or nothing; read only once training has diverged."""
    found = []
    for i, x in enumerate(xb):
        if not (isinstance(x, torch.Tensor) and x.is_floating_point()):
            continue
        bad = ~torch.isfinite(x)
        if not bad.any():
            continue
        names = getattr(dls, "cont_names", None)
        if x.ndim == 2 and names is not None and len(names) == x.shape[1]:
            found.append(f"columns {[n for n, b in zip(names, bad.any(0).tolist()) if b]}")
        else:
            found.append(f"input {i} ({int(bad.sum())} values)")
    return f" (the latest batch holds non-finite values: {', '.join(found)})" if found else ""
