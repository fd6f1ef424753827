"""The speedrun's clock (see `bench.speedrun`): targets, the callback that stops a fit at
the first epoch that reaches one, timed runs, and their report."""

from __future__ import annotations

import operator
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from mentor.train import Callback, Learner
from mentor.train.callback import CancelFit


@dataclass(frozen=True)
class Target:
    """A metric (a column of the epoch table) and the value it must reach; or, with
    `budget_s`, the best value reached by the epochs that end within that many seconds."""

    metric: str
    value: float
    higher_is_better: bool = True
    budget_s: float | None = None

    def met(self, value: float) -> bool:
        """Whether `value` reaches the target."""
        compare = operator.ge if self.higher_is_better else operator.le
        return compare(value, self.value)


class StopAtTarget(Callback):
    """Ends the fit after the first epoch at which the target holds; records when."""

    order = 70  # after the recorder wrote the epoch's row

    def __init__(self, target: Target, start: float) -> None:
        super().__init__()
        self.target, self.start = target, start
        self.reached_at: float | None = None
        self.epochs = 0
        self.metric = float("nan")  # the last epoch's (with a budget: the best within it)
        self.out_of_time = False

    def before_fit(self) -> None:
        """Skip the later fits of a recipe (`fine_tune`'s unfrozen one) once it is reached
        (or its time budget is spent)."""
        if self.reached_at is not None or self.out_of_time:
            raise CancelFit()

    def after_epoch(self) -> None:
        """Stop once the epoch's metric reaches the target, or the budget is spent."""
        value = self.learn.recorder.values[-1][self.target.metric]
        elapsed = time.perf_counter() - self.start
        budget = self.target.budget_s
        if budget is not None:
            self.out_of_time = elapsed > budget
            if self.out_of_time:
                raise CancelFit()  # this epoch ended too late: it does not count
            best = max if self.target.higher_is_better else min
            self.metric = value if self.epochs == 0 else best(self.metric, value)
            self.epochs += 1
            return
        self.epochs += 1
        self.metric = value
        if self.target.met(value):
            self.reached_at = elapsed
            raise CancelFit()


@dataclass
class Run:
    """One timed run: seconds to the target (or to the end), the metric, epochs trained."""

    seconds: float
    metric: float
    epochs: int
    reached: bool


Recipe = Callable[[int, Callable[[Learner], StopAtTarget]], Learner]
"""`recipe(seed, stopper)` builds the data and learner from the files and trains it with
`cbs=[stopper(learn)]`, returning the learner."""


def timed(recipe: Recipe, target: Target, seed: int) -> Run:
    """Run `recipe` once, timing it from the start to the target (or its end)."""
    start = time.perf_counter()
    stoppers: list[StopAtTarget] = []

    def stopper(learn: Learner) -> StopAtTarget:
        learn.progress.show = False
        stoppers.append(StopAtTarget(target, start))
        return stoppers[-1]

    recipe(seed, stopper)
    elapsed = time.perf_counter() - start
    stop = stoppers[-1]
    if stop.reached_at is None:
        return Run(elapsed, stop.metric, stop.epochs, reached=False)
    return Run(stop.reached_at, stop.metric, stop.epochs, reached=True)


@dataclass(frozen=True)
class Task:
    """A data set, its target, fastai's time to it, and mentor's recipes by name."""

    name: str
    target: Target
    fastai: str
    recipes: dict[str, Recipe]


def report(task: Task, recipe: str, runs: list[Run]) -> str:
    """One line: the median time and metric over the runs, and whether every run reached
    (for a task with a time budget: the median of the best metric within it)."""
    metric = statistics.median(r.metric for r in runs)
    epochs = "/".join(str(r.epochs) for r in runs)
    head = f"{task.name:<16} {recipe:<8}"
    if task.target.budget_s is not None and not any(r.epochs for r in runs):
        return f"{head} no epoch ended within {task.target.budget_s:g} s  fastai {task.fastai}"
    if task.target.budget_s is not None:
        return (
            f"{head} best {task.target.metric} within {task.target.budget_s:g} s: {metric:.4f}  "
            f"epochs {epochs}  fastai {task.fastai}"
        )
    seconds = statistics.median(r.seconds for r in runs)
    reached = sum(r.reached for r in runs)
    verdict = "" if reached == len(runs) else f"  MISS ({reached} of {len(runs)} reached)"
    return (
        f"{head} {seconds:>7.1f} s  {task.target.metric} {metric:.4f} "
        f"(target {task.target.value:g})  epochs {epochs}  fastai {task.fastai}{verdict}"
    )
