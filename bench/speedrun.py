"""Time to accuracy: from the raw files on disk to a validation metric at the target.

Each task's clock starts before its files are read and stops at the end of the first epoch at
which the target holds on the validation set (a callback stops the fit there): reading,
preprocessing, building the learner, the learning-rate finder when a recipe uses it, and
training all count. Every recipe runs 3 times with seeds 0, 1, 2; the medians are printed
beside fastai 2.8.12's time for the same target, measured on this kind of machine with its
default recipes (the issue's figures).

Recipes: `auto` is `mentor train APP DATA` with nothing but the data (the learner its
builders make, the rate `--lr auto` takes, its fits; see `bench.speedrun_tasks.auto`): the
automatic recipe, whose choices come from the data by rules (batch size from a table's rows,
model, image size and augmentation from the images, lr_find's valley, or its slide for a model
from scratch, or fine_tune's rate for a pretrained one). `best` is the hand-chosen recipe
(`lesson1`: the course's lesson-1 recipe). A task the recipe does not reach within its epochs
reports the last epoch's metric, marked MISS.

The clock is `bench/speedrun_clock.py`; the tasks are in `bench/speedrun_tasks.py`:
adult_sample, ml-100k, mnist_sample, imagenette_small, and review_polarity from scratch,
which reports the best accuracy within 120 s. `bench.speedrun_heldout` runs the automatic
recipes on data sets kept aside from these.

Run: `python -m bench.speedrun` (all tasks, 3 seeds), `--tasks adult,ml100k`, `--runs 1`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from bench.common import machine
from bench.speedrun_clock import Run, report, timed
from bench.speedrun_tasks import TASKS


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, list[Run]]]:
    """Time every recipe of every task asked for; print one line per recipe."""
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
