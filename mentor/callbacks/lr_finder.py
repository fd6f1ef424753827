"""The learning-rate finder: an exponential sweep of the learning rate, and suggestions."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch

from mentor.core.seed import get_rng_state, set_rng_state
from mentor.optim import set_hyper
from mentor.train.callback import Callback, CancelFit, CancelValidate

if TYPE_CHECKING:
    from mentor.train.learner import Learner

SuggestFunc = Callable[[np.ndarray, np.ndarray], float]


class SuggestedLRs(NamedTuple):
    """Learning rates suggested by `lr_find`; None for those not asked for."""

    valley: float | None = None
    minimum: float | None = None
    steep: float | None = None
    slide: float | None = None
    other: dict[str, float] | None = None

    def as_dict(self) -> dict[str, float]:
        """The suggestions that were computed, by name."""
        named = {k: v for k, v in self._asdict().items() if k != "other" and v is not None}
        return {**named, **(self.other or {})}


class LRFinder(Callback):
    """Raises the learning rate exponentially from `start_lr` to `end_lr` over `num_it`
    batches, stops early when the smoothed loss passes 4x its minimum (`stop_div`), skips
    validation, and restores the model, the optimizer and the generators afterwards.
    """

    order = 55  # after the Recorder, which reads the batch loss it watches
    run_valid = False

    def __init__(
        self, start_lr: float = 1e-7, end_lr: float = 10, num_it: int = 100, stop_div: bool = True
    ) -> None:
        super().__init__()
        if not 0 < start_lr < end_lr:
            raise ValueError(f"need 0 < start_lr < end_lr, got {start_lr} and {end_lr}")
        self.start_lr, self.end_lr, self.num_it, self.stop_div = start_lr, end_lr, num_it, stop_div
        self.best_loss = math.inf
        self.saved: dict[str, Any] = {}

    def before_fit(self) -> None:
        """Keep copies of everything the sweep changes."""
        learn = self.learn
        self.saved = {
            "model": {k: v.detach().clone() for k, v in learn.model.state_dict().items()},
            "opt": _clone(learn.opt.state_dict()),
            "rng": get_rng_state(),
        }
        self.best_loss = math.inf

    def before_batch(self) -> None:
        """Set the learning rate for this step of the sweep."""
        pos = self.learn.train_iter / self.num_it
        set_hyper(self.learn.opt, "lr", self.start_lr * (self.end_lr / self.start_lr) ** pos)

    def after_batch(self) -> None:
        """Stop after `num_it` batches, or when the loss diverges."""
        loss = self.learn.recorder.smooth_loss
        self.best_loss = min(self.best_loss, loss)
        diverged = not math.isfinite(loss) or loss > 4 * self.best_loss
        if self.learn.train_iter + 1 >= self.num_it or (self.stop_div and diverged):
            raise CancelFit()

    def before_validate(self) -> None:
        """The sweep needs no validation."""
        raise CancelValidate()

    def after_fit(self) -> None:
        """Put the weights, optimizer state and generators back exactly as they were."""
        learn = self.learn
        learn.model.load_state_dict(self.saved["model"])
        learn.opt.load_state_dict(self.saved["opt"])
        learn.opt.zero_grad(set_to_none=True)
        set_rng_state(self.saved["rng"])


def lr_find(
    learn: Learner,
    start_lr: float = 1e-7,
    end_lr: float = 10,
    num_it: int = 100,
    stop_div: bool = True,
    show_plot: bool = True,
    suggest_funcs: Sequence[SuggestFunc] | None = None,
) -> SuggestedLRs:
    """Sweep the learning rate and suggest good ones.

    Args:
        start_lr, end_lr: the range of the exponential sweep (1e-7 to 10).
        num_it: the number of batches (100); stop_div: stop when the loss diverges.
        show_plot: plot loss against learning rate with the suggestions marked
            (`learn.recorder.plot_lr_find` draws it again later).
        suggest_funcs: functions `(lrs, losses) -> lr`; default `(valley, minimum, steep,
            slide)`.

    Example:
        >>> suggestions = learn.lr_find()
        >>> learn.fit_one_cycle(3, suggestions.valley)
    """
    funcs = suggest_funcs if suggest_funcs is not None else (valley, minimum, steep, slide)
    n_batches = len(learn.dls.train) if learn.dls.train.has_len() else 1
    n_epoch = math.ceil(num_it / max(n_batches, 1))
    shown, learn.progress.show = learn.progress.show, False
    try:
        learn.fit(n_epoch, cbs=[LRFinder(start_lr, end_lr, num_it, stop_div)])
    finally:
        learn.progress.show = shown
    lrs, losses = np.array(learn.recorder.lrs), np.array(learn.recorder.smooth_losses)
    found = {f.__name__: f(*trim_sweep(lrs, losses)) for f in funcs}
    fields = set(SuggestedLRs._fields) - {"other"}
    other = {k: v for k, v in found.items() if k not in fields}
    result = SuggestedLRs(**{k: v for k, v in found.items() if k in fields}, other=other or None)
    if show_plot:
        learn.recorder.plot_lr_find(result.as_dict())
    return result


def trim_sweep(lrs: np.ndarray, losses: np.ndarray, skip_end: int = 5) -> tuple[np.ndarray, ...]:
    """Drop the last points (the smoothed loss lags the divergence) and non-finite losses."""
    if len(lrs) > 2 * skip_end:
        lrs, losses = lrs[:-skip_end], losses[:-skip_end]
    finite = np.isfinite(losses)
    if not finite.any():
        raise ValueError(
            "the learning-rate sweep recorded no finite loss; check the data and model"
        )
    return lrs[finite], losses[finite]


def minimum(lrs: np.ndarray, losses: np.ndarray) -> float:
    """A tenth of the learning rate at the lowest loss (the lowest loss is already too fast)."""
    return float(lrs[int(np.argmin(losses))] / 10)


def steep(lrs: np.ndarray, losses: np.ndarray) -> float:
    """The learning rate where the loss falls fastest against log(lr)."""
    if len(lrs) < 3:
        return float(lrs[0])
    slope = np.gradient(losses, np.log(lrs))
    return float(lrs[int(np.argmin(slope))])


def valley(lrs: np.ndarray, losses: np.ndarray) -> float:
    """The middle of the longest valley: the longest run of points along which the loss keeps
    going down (a longest decreasing subsequence), where training is fast and still stable."""
    n = len(losses)
    run = np.ones(n, dtype=int)
    start = np.arange(n)
    for i in range(1, n):
        lower = np.nonzero(losses[:i] > losses[i])[0]
        if len(lower):
            best = lower[np.argmax(run[lower])]
            run[i], start[i] = run[best] + 1, start[best]
    end = int(np.argmax(run))
    return float(lrs[(start[end] + end) // 2])


def slide(lrs: np.ndarray, losses: np.ndarray, window: int = 10, tol: float = 0.005) -> float:
    """Slide back from the lowest loss to the last point where the loss was still clearly
    falling (the loss drop over `window` points exceeds `tol` of the loss range)."""
    lowest = int(np.argmin(losses))
    span = max(float(losses.max() - losses.min()), 1e-12)
    for i in range(lowest, window - 1, -1):
        if losses[i - window] - losses[i] > tol * span * window:
            return float(lrs[i])
    return float(lrs[lowest] / 10)


def _clone(state: Any) -> Any:
    if isinstance(state, torch.Tensor):
        return state.detach().clone()
    if isinstance(state, dict):
        return {k: _clone(v) for k, v in state.items()}
    if isinstance(state, list):
        return [_clone(v) for v in state]
    return state
