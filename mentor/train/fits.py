"""`ParamScheduler` and the fits built on schedules: one-cycle, SGDR, flat-cos, fine-tune."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mentor.optim import (
    flat_cos_lr,
    has_hyper,
    lr_per_group,
    one_cycle_lr,
    one_cycle_mom,
    set_hyper,
    sgdr_cycle_ends,
    sgdr_lr,
    sgdr_total_epochs,
)
from mentor.train.callback import Callback

if TYPE_CHECKING:
    from mentor.train.learner import Learner

Schedule = Callable[[float], Any]
DEFAULT_MOMS = (0.95, 0.85, 0.95)  # one-cycle momentum: start, middle, end


class ParamScheduler(Callback):
    """Sets optimizer hyper-parameters from schedules (pure functions of progress in [0, 1]).

    Args:
        scheds: hyper-parameter name ('lr', 'mom', 'sqr_mom', 'wd', 'eps') -> schedule. A
            schedule returns one value or one per parameter group.
        optional: names scheduled only when the optimizer has them (fit_one_cycle's
            default momentum, for an optimizer of your own without momentum).

    Example:
        >>> learn.fit(3, cbs=[ParamScheduler({"lr": sched_cos(1e-2, 1e-4)})])
    """

    order = 10
    run_valid = False

    def __init__(self, scheds: dict[str, Schedule], optional: Sequence[str] = ()) -> None:
        super().__init__()
        self.scheds, self.optional = scheds, tuple(optional)
        self.total = 0

    def before_fit(self) -> None:
        """Count the training batches of the whole fit."""
        learn = self.learn
        if not learn.n_iter:
            raise ValueError(
                "schedules need the number of training batches, but the training loader has no "
                "length; give it a __len__ or use fit() with a constant learning rate"
            )
        self.total = learn.n_epoch * learn.n_iter
        missing = [n for n in self.optional if n in self.scheds and not has_hyper(learn.opt, n)]
        self.scheds = {n: s for n, s in self.scheds.items() if n not in missing}

    def before_batch(self) -> None:
        """Apply every schedule at the current position."""
        pos = min(self.learn.train_iter / self.total, 1.0)
        for name, sched in self.scheds.items():
            set_hyper(self.learn.opt, name, sched(pos))


class CycleEnd(Callback):
    """Calls `fn(learn, cycle)` after the last epoch of each SGDR cycle (e.g. to save snapshots)."""

    order = 70

    def __init__(self, ends: Sequence[int], fn: Callable[[Learner, int], None]) -> None:
        super().__init__()
        self.ends, self.fn = list(ends), fn

    def after_epoch(self) -> None:
        """Call `fn` when this epoch closes a cycle."""
        if self.learn.epoch + 1 in self.ends:
            self.fn(self.learn, self.ends.index(self.learn.epoch + 1))


def fit_one_cycle(
    learn: Learner,
    n_epoch: int,
    lr_max: float | slice | Sequence[float] | None = None,
    div: float = 25.0,
    div_final: float = 1e5,
    pct_start: float = 0.25,
    moms: tuple[float, float, float] | None = DEFAULT_MOMS,
    wd: float | None = None,
    cbs: Sequence[Callback] | None = None,
    **fit_kw: Any,
) -> None:
    """Train with the one-cycle policy: cosine warm-up of the learning rate from
    `lr_max / div` to `lr_max` over `pct_start` of the batches, then cosine annealing to
    `lr_max / div_final`; momentum moves the other way (`moms`: start, middle, end).

    Args:
        lr_max: a float, one per parameter group, or `slice(hi)` / `slice(lo, hi)`
            (default `learn.lr`). moms: None leaves momentum alone; the default is skipped
            for an optimizer without momentum (a plain SGD step of your own).
        **fit_kw: `reset_opt`, `checkpoint_every`, `resume_from` (see `Learner.fit`).
    """
    lrs = _group_lrs(learn, lr_max)
    scheds: dict[str, Schedule] = {"lr": one_cycle_lr(lrs, div, div_final, pct_start)}
    if moms is not None:
        scheds["mom"] = one_cycle_mom(moms, pct_start)
    optional = ("mom",) if moms == DEFAULT_MOMS else ()
    learn.fit(n_epoch, lrs, wd, [ParamScheduler(scheds, optional), *(cbs or ())], **fit_kw)


def fit_sgdr(
    learn: Learner,
    n_cycles: int,
    cycle_len: int,
    lr_max: float | slice | Sequence[float] | None = None,
    cycle_mult: int = 1,
    on_cycle_end: Callable[[Learner, int], None] | None = None,
    wd: float | None = None,
    cbs: Sequence[Callback] | None = None,
    **fit_kw: Any,
) -> None:
    """Cosine annealing with warm restarts: `n_cycles` cycles, the first `cycle_len` epochs
    long, each next one `cycle_mult` times longer.

    Args:
        on_cycle_end: called as `fn(learn, cycle)` after each cycle, e.g.
            `lambda learn, c: learn.save(f"snapshot{c}")`.
    """
    lrs = _group_lrs(learn, lr_max)
    n_epoch = sgdr_total_epochs(n_cycles, cycle_len, cycle_mult)
    extra: list[Callback] = [ParamScheduler({"lr": sgdr_lr(lrs, n_cycles, cycle_len, cycle_mult)})]
    if on_cycle_end is not None:
        extra.append(CycleEnd(sgdr_cycle_ends(n_cycles, cycle_len, cycle_mult), on_cycle_end))
    learn.fit(n_epoch, lrs, wd, [*extra, *(cbs or ())], **fit_kw)


def fit_flat_cos(
    learn: Learner,
    n_epoch: int,
    lr: float | slice | Sequence[float] | None = None,
    pct_start: float = 0.75,
    wd: float | None = None,
    cbs: Sequence[Callback] | None = None,
    **fit_kw: Any,
) -> None:
    """A flat learning rate for `pct_start` of the batches, then cosine annealing."""
    lrs = _group_lrs(learn, lr)
    scheds: dict[str, Schedule] = {"lr": flat_cos_lr(lrs, pct_start)}
    learn.fit(n_epoch, lrs, wd, [ParamScheduler(scheds), *(cbs or ())], **fit_kw)


FINE_TUNE_LR = 2e-3
"""`fine_tune`'s default base rate (fastai's): pretrained ImageNet features make one rate hold
across data sets."""


@dataclass
class FitStage:
    """One one-cycle fit of a recipe of several (`fine_tune` is two).

    Args:
        frozen: freeze the body first (True), unfreeze it (False) or leave it (None).
        n_epoch: epochs of this fit. lr: its learning rate(s), as for `fit_one_cycle`.
        pct_start, div: the one-cycle warm-up share and starting divisor.
    """

    frozen: bool | None
    n_epoch: int
    lr: float | slice
    pct_start: float = 0.25
    div: float = 25.0


def fine_tune_stages(
    epochs: int,
    base_lr: float = FINE_TUNE_LR,
    freeze_epochs: int = 1,
    lr_mult: float = 100,
    pct_start: float = 0.3,
    div: float = 5.0,
) -> list[FitStage]:
    """The fits of `fine_tune`: the head for `freeze_epochs`, then everything with
    discriminative learning rates from `base_lr / 2 / lr_mult` to `base_lr / 2`; a fit of 0
    epochs is left out (`fine_tune(0)` trains the head only)."""
    head = FitStage(True, freeze_epochs, slice(base_lr), pct_start=0.99)
    half = base_lr / 2
    body = FitStage(False, epochs, slice(half / lr_mult, half), pct_start=pct_start, div=div)
    return [stage for stage in (head, body) if stage.n_epoch > 0]


def run_stage(learn: Learner, stage: FitStage, **fit_kw: Any) -> None:
    """Freeze or unfreeze as `stage` says, then `fit_one_cycle` it (`fit_kw` go there)."""
    if stage.frozen is True:
        learn.freeze()
    elif stage.frozen is False:
        learn.unfreeze()
    fit_one_cycle(
        learn, stage.n_epoch, stage.lr, div=stage.div, pct_start=stage.pct_start, **fit_kw
    )


def fine_tune(
    learn: Learner,
    epochs: int,
    base_lr: float = FINE_TUNE_LR,
    freeze_epochs: int = 1,
    lr_mult: float = 100,
    pct_start: float = 0.3,
    div: float = 5.0,
    **fit_kw: Any,
) -> None:
    """Transfer learning in two steps: train the head with the body frozen for
    `freeze_epochs`, then unfreeze and train everything for `epochs` with discriminative
    learning rates from `base_lr / 2 / lr_mult` (first group) to `base_lr / 2` (head).

    A learner with nothing pretrained (`learn.from_scratch`, as `vision_learner` sets for
    `pretrained=False`) has no features worth freezing: it trains the whole model in one
    one-cycle fit of `freeze_epochs + epochs` at `base_lr`.

    With `checkpoint_every`, both fits write to one checkpoint that records its stage;
    `resume_from` continues from it in the stage it was written in (a checkpoint of the
    second fit skips the first), exactly as the uninterrupted call would have gone on.
    """
    from mentor.train.checkpoint import (
        CHECKPOINT_NAME,
        CheckpointCallback,
        load_checkpoint,
        resume_file,
    )

    every, resume = fit_kw.pop("checkpoint_every", None), fit_kw.pop("resume_from", None)
    cbs = list(fit_kw.pop("cbs", None) or ())
    file = resume_file(learn, resume)
    state = load_checkpoint(file) if file is not None else None
    first = int(state.get("stage", 0)) if state is not None else 0
    target = file or learn.path / learn.model_dir / CHECKPOINT_NAME
    if learn.from_scratch:
        stages = [FitStage(False, freeze_epochs + epochs, base_lr)]
    else:
        stages = fine_tune_stages(epochs, base_lr, freeze_epochs, lr_mult, pct_start, div)
    for number, stage in enumerate(stages):
        if number < first:  # the checkpoint holds what this fit trained
            continue
        stage_cbs = list(cbs)
        if number == first and state is not None:
            stage_cbs.append(CheckpointCallback(target, every, file, number, state))
        elif every is not None:
            stage_cbs.append(CheckpointCallback(target, every, None, number))
        run_stage(learn, stage, cbs=stage_cbs, **fit_kw)


def _group_lrs(learn: Learner, lr: float | slice | Sequence[float] | None) -> np.ndarray:
    return np.array(lr_per_group(learn.lr if lr is None else lr, learn.n_groups))
