"""The speedrun's clock: it stops at the end of the first epoch that reaches the target, and a
recipe that never reaches it is reported as a miss with its last metric."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from bench.speedrun_clock import Run, StopAtTarget, Target, Task, report, timed
from mentor.core.seed import set_seed
from mentor.data.loaders import DataLoaders, TensorLoader
from mentor.train import Learner, accuracy


def recipe(epochs: int) -> Callable[[int, Callable[[Learner], StopAtTarget]], Learner]:
    def run(seed: int, stopper: Callable[[Learner], StopAtTarget]) -> Learner:
        set_seed(seed)
        x = torch.randn(256, 4)
        y = (x[:, 0] > 0).long()
        dls = DataLoaders(TensorLoader(x, y, bs=32), TensorLoader(x, y, bs=64), device="cpu")
        learn = Learner(dls, nn.Linear(4, 2), metrics=accuracy)
        learn.fit_one_cycle(epochs, 1e-1, cbs=[stopper(learn)])
        return learn

    return run


def test_the_clock_stops_at_the_first_epoch_that_reaches_the_target() -> None:
    run = timed(recipe(6), Target("accuracy", 0.9), seed=0)
    assert run.reached and 1 <= run.epochs < 6 and run.metric >= 0.9
    assert run.seconds > 0


def test_a_target_out_of_reach_trains_every_epoch_and_is_a_miss() -> None:
    run = timed(recipe(2), Target("valid_loss", -1.0, higher_is_better=False), seed=0)
    assert not run.reached and run.epochs == 2 and run.metric > 0
    task = Task("toy", Target("valid_loss", -1.0, higher_is_better=False), "1 s", {})
    line = report(task, "best", [run, Run(1.0, 0.5, 2, True)])
    assert "MISS (1 of 2 reached)" in line and "toy" in line and "fastai 1 s" in line


def test_a_time_budget_keeps_the_best_metric_of_the_epochs_that_end_within_it() -> None:
    learn_values: list[float] = []

    def run(seed: int, stopper: Callable[[Learner], StopAtTarget]) -> Learner:
        learn = recipe(4)(seed, stopper)
        learn_values.extend(row["accuracy"] for row in learn.recorder.values)
        return learn

    long = timed(run, Target("accuracy", 1.1, budget_s=600.0), seed=0)
    assert long.epochs == 4 and long.metric == max(learn_values)
    spent = timed(recipe(4), Target("accuracy", 1.1, budget_s=0.0), seed=0)
    assert spent.epochs == 0 and spent.metric != spent.metric  # nan: no epoch ended in time
    task = Task("toy", Target("accuracy", 1.1, budget_s=600.0), "1 s", {})
    assert "best accuracy within 600 s: " in report(task, "best", [long])
    assert "no epoch ended within 600 s" in report(task, "auto", [spent, spent])
