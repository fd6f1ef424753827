"""Time to accuracy: from the raw files on disk to a validation metric at the target.

Each task's clock starts before its files are read and stops at the end of the first epoch at
which the target holds on the validation set (a callback stops the fit there): reading,
preprocessing, building the learner, the learning-rate finder when a recipe uses it, and
training all count. Every recipe runs 3 times with seeds 0, 1, 2; the medians are printed
beside fastai 2.8.12's time for the same target, measured on this kind of machine with its
default recipes (the issue's figures).

Recipes: `default` is what a user gets from the Python defaults (the learner's defaults, the
rate from `lr_find`'s valley, one-cycle); `best` is the hand-chosen recipe where it differs.
A task the recipe does not reach within its epochs reports the last epoch's metric, marked
MISS.

The tasks are in `bench/speedrun_tasks.py`: adult_sample, ml-100k, mnist_sample,
imagenette_small, and review_polarity from scratch, which reports the best accuracy within
120 s. The defaults that would derive these recipes from the data come next (issue 27).

Run: `python -m bench.speedrun` (all tasks, 3 seeds), `--tasks adult,ml100k`, `--runs 1`.
"""

from __future__ import annotations

import argparse
import operator
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.common import machine
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


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, list[Run]]]:
    """Time every recipe of every task asked for; print one line per recipe."""
    from bench.speedrun_tasks import TASKS

    parser = argparse.ArgumentParser(description="Time from raw files to the target metric.")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated task names")
    parser.add_argument("--recipes", default=None, help="only these recipes (comma-separated)")
    parser.add_argument("--runs", type=int, default=3, help="seeds per recipe (3)")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    results: dict[str, dict[str, list[Run]]] = {}
    for name in args.tasks.split(","):
        if name not in TASKS:
            raise SystemExit(f"unknown task {name!r}; pick from {', '.join(TASKS)}")
        task = TASKS[name]
        wanted = args.recipes.split(",") if args.recipes else list(task.recipes)
        for recipe_name in (r for r in wanted if r in task.recipes):
            runs = [timed(task.recipes[recipe_name], task.target, s) for s in range(args.runs)]
            results.setdefault(name, {})[recipe_name] = runs
            print(report(task, recipe_name, runs), flush=True)
    return results


if __name__ == "__main__":
    main()
