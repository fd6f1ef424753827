"""The learning-rate finder: an exponential sweep of the learning rate, and suggestions."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch

from mentor.core.dist import launched_world_size
from mentor.core.seed import get_rng_state, set_rng_state
from mentor.core.warn import warn
from mentor.optim import set_hyper
from mentor.train.callback import Callback, CancelFit, CancelValidate
from mentor.train.recorder import LRSweep

if TYPE_CHECKING:
    from mentor.train.learner import Learner

SuggestFunc = Callable[[np.ndarray, np.ndarray], float]
MEDIAN_OF = 5  # batch losses whose median must diverge too (one odd batch does not stop)
MIN_POINTS = 10  # a sweep shorter than this cannot suggest anything
FLAT_DROP = 0.1  # a descent by less than this share of the loss is noise: no descent
RISEN = 1.25  # where a flat sweep's loss has risen this much, the rate is too high


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

    def default(self, from_scratch: bool = False) -> float:
        """The suggestion mentor's defaults take (`mentor train --lr auto`): the valley, or
        for a model trained from scratch (`learn.from_scratch`) the slide.

        A network with random weights learns during the sweep itself, so its loss already
        falls at tiny rates, and the valley (halfway down the first descent) lands there,
        an order of magnitude below the rates it trains well at. The slide is the fastest
        rate still short of the minimum. A pretrained body or a table's embeddings show the
        descent where the rate matters, and the valley's margin is the safer choice. Falls
        back to the minimum's suggestion, then 1e-3, when the one asked for was not computed.
        """
        found = self.slide if from_scratch else self.valley
        if found is None:
            found = self.minimum if self.minimum is not None else 1e-3
        return float(found)


class LRFinder(Callback):
    """Raises the learning rate exponentially from `start_lr` to `end_lr` over `num_it`
    batches, stops early when the loss diverges (`stop_div`) and skips validation. `lr_find`
    runs it and puts the learner back as it was.

    Diverging: the smoothed loss is past 4x its minimum and so is the median of the last
    five batch losses past 4x its own minimum. The median ignores the odd batch whose loss
    is many times the others, which a trained model's near-zero loss shows at once (fastai's
    rule, the smoothed loss alone, stops such a sweep after a batch or two).
    """

    order = 55  # after the Recorder, which reads the batch loss it watches
    run_valid = False
    sweeps_lr = True  # the Recorder keeps this fit as `sweep`, not in its `fits`

    def __init__(
        self, start_lr: float = 1e-7, end_lr: float = 10, num_it: int = 100, stop_div: bool = True
    ) -> None:
        super().__init__()
        if not 0 < start_lr < end_lr:
            raise ValueError(f"need 0 < start_lr < end_lr, got {start_lr} and {end_lr}")
        self.start_lr, self.end_lr, self.num_it, self.stop_div = start_lr, end_lr, num_it, stop_div
        self.best_loss = self.best_median = math.inf

    def before_fit(self) -> None:
        """Start watching for divergence."""
        self.best_loss = self.best_median = math.inf

    def before_batch(self) -> None:
        """Set the learning rate for this step of the sweep."""
        pos = self.learn.train_iter / self.num_it
        set_hyper(self.learn.opt, "lr", self.start_lr * (self.end_lr / self.start_lr) ** pos)

    def after_batch(self) -> None:
        """Stop after `num_it` batches, or when the loss diverges."""
        recorder = self.learn.recorder
        loss = recorder.smooth_loss  # reads the pending losses into recorder.losses
        diverged = self._diverged(loss, recorder.losses[-MEDIAN_OF:])
        if self.learn.train_iter + 1 >= self.num_it or (self.stop_div and diverged):
            raise CancelFit()

    def _diverged(self, smooth: float, recent: list[float]) -> bool:
        if not math.isfinite(smooth) or not math.isfinite(recent[-1]):
            return True
        self.best_loss = min(self.best_loss, smooth)
        if len(recent) < MEDIAN_OF:
            return False
        median = float(np.median(recent))
        self.best_median = min(self.best_median, median)
        return smooth > 4 * self.best_loss and median > 4 * self.best_median

    def before_validate(self) -> None:
        """The sweep needs no validation."""
        raise CancelValidate()


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
    if learn.sharded or (learn.auto_distrib and launched_world_size() > 1):
        from mentor.distributed import on_rank0  # rank 0 sweeps, every rank gets the result

        return on_rank0(
            learn,
            lambda: lr_find(learn, start_lr, end_lr, num_it, stop_div, show_plot, suggest_funcs),
        )
    funcs = suggest_funcs if suggest_funcs is not None else (valley, minimum, steep, slide)
    n_batches = len(learn.dls.train) if learn.dls.train.has_len() else 1
    n_epoch = math.ceil(num_it / max(n_batches, 1))
    saved = _snapshot(learn)
    shown, learn.progress.show = learn.progress.show, False
    # a short sweep: compiling for it would cost more than it saves
    compiled, learn.compiled = learn.compiled, None
    try:
        learn.fit(n_epoch, cbs=[LRFinder(start_lr, end_lr, num_it, stop_div)])
    finally:
        learn.progress.show, learn.compiled = shown, compiled
        _restore(learn, saved)
    lrs, losses = np.array(learn.recorder.lrs), np.array(learn.recorder.smooth_losses)
    if 0 < len(lrs) < MIN_POINTS:
        warn(
            f"the learning-rate sweep stopped after {len(lrs)} batch(es) at lr {lrs[-1]:.2g}, "
            "too few to suggest a learning rate; the suggestions below mean little. Try "
            "lr_find(stop_div=False), a lower start_lr, or more training batches (a smaller bs)"
        )
    found = {f.__name__: f(*trim_sweep(lrs, losses)) for f in funcs}
    fields = set(SuggestedLRs._fields) - {"other"}
    other = {k: v for k, v in found.items() if k not in fields}
    result = SuggestedLRs(**{k: v for k, v in found.items() if k in fields}, other=other or None)
    learn.recorder.sweep = LRSweep(lrs.tolist(), losses.tolist(), result.as_dict())
    if show_plot:
        learn.recorder.plot_lr_find()
    return result


def trim_sweep(
    lrs: np.ndarray, losses: np.ndarray, skip_start: float = 0.1, skip_end: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Drop the first `skip_start` of the points (the smoothed loss is still settling), the last
    `skip_end` (it lags the divergence) and non-finite losses."""
    start = int(skip_start * len(lrs))
    end = len(lrs) - skip_end if len(lrs) - start > 2 * skip_end else len(lrs)
    lrs, losses = lrs[start:end], losses[start:end]
    finite = np.isfinite(losses)
    if not finite.any():
        raise ValueError("the learning-rate sweep recorded no finite loss; check data and model")
    return lrs[finite], losses[finite]


def descent(losses: np.ndarray) -> tuple[int, int]:
    """The indices of the top of the main descent (the highest loss before the minimum) and of
    the minimum."""
    lowest = int(np.argmin(losses))
    return int(np.argmax(losses[: lowest + 1])), lowest


def _before_the_rise(lrs: np.ndarray, losses: np.ndarray, top: int, lowest: int) -> float | None:
    """For a sweep without a real descent (a trained model's: flat, then rising), a tenth of
    the rate where the loss has risen a quarter above its lowest: the plateau's fast end with
    a margin, rather than a tenth of the first rate of the sweep. None when the loss does
    descend (by more than a tenth)."""
    if losses[top] - losses[lowest] > FLAT_DROP * losses[lowest]:
        return None
    rising = np.nonzero(losses[lowest:] > RISEN * losses[lowest])[0]
    edge = lowest + int(rising[0]) if len(rising) else len(lrs) - 1
    return float(lrs[edge] / 10)


def minimum(lrs: np.ndarray, losses: np.ndarray) -> float:
    """A tenth of the learning rate at the lowest loss (the lowest loss is already too fast)."""
    return float(lrs[int(np.argmin(losses))] / 10)


def steep(lrs: np.ndarray, losses: np.ndarray) -> float:
    """The learning rate where the loss falls fastest against log(lr), within the descent."""
    top, lowest = descent(losses)
    flat = _before_the_rise(lrs, losses, top, lowest)
    if flat is not None or lowest - top < 2:
        return flat if flat is not None else float(lrs[lowest] / 10)
    slope = np.gradient(losses[top : lowest + 1], np.log(lrs[top : lowest + 1]))
    return float(lrs[top + int(np.argmin(slope))])


def valley(lrs: np.ndarray, losses: np.ndarray) -> float:
    """The learning rate halfway down the valley: where the loss has made half of its drop
    from the top of the descent to the minimum, for good. Fast, with a margin before the
    minimum. "For good": from the last point above halfway, so that a noisy plateau dipping
    below halfway long before the real descent (collaborative filtering's) is not taken."""
    top, lowest = descent(losses)
    flat = _before_the_rise(lrs, losses, top, lowest)
    if flat is not None:
        return flat
    halfway = losses[lowest] + 0.5 * (losses[top] - losses[lowest])
    above = np.nonzero(losses[top : lowest + 1] > halfway)[0]
    return float(lrs[top + int(above[-1]) + 1])


def slide(lrs: np.ndarray, losses: np.ndarray, margin: float = 0.1) -> float:
    """Slide back from the minimum to the last learning rate whose loss is still `margin` of
    the drop above the minimum: the most aggressive choice that is not yet at the edge."""
    top, lowest = descent(losses)
    flat = _before_the_rise(lrs, losses, top, lowest)
    if flat is not None:
        return flat
    level = losses[lowest] + margin * (losses[top] - losses[lowest])
    above = np.nonzero(losses[top:lowest] >= level)[0]
    return float(lrs[top + int(above[-1])])


def _snapshot(learn: Learner) -> dict[str, Any]:
    """Copies of everything a sweep changes: weights, optimizer state, generators."""
    return {
        "model": {k: v.detach().clone() for k, v in learn.model.state_dict().items()},
        "opt": _clone(learn.opt.state_dict()),
        "rng": get_rng_state(),
    }


def _restore(learn: Learner, saved: dict[str, Any]) -> None:
    """Put back what `_snapshot` copied, exactly."""
    learn.model.load_state_dict(saved["model"])
    learn.opt.load_state_dict(saved["opt"])
    learn.opt.zero_grad(set_to_none=True)
    set_rng_state(saved["rng"])


def _clone(state: Any) -> Any:
    if isinstance(state, torch.Tensor):
        return state.detach().clone()
    if isinstance(state, dict):
        return {k: _clone(v) for k, v in state.items()}
    if isinstance(state, list):
        return [_clone(v) for v in state]
    return state
