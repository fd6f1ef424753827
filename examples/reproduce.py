"""Reproduce the README's measured results: every example's full recipe, one after another.

Each recipe runs in a process of its own (so one recipe's memory and threads never slow the
next), prints its figure with the target beside it, and exits non-zero when it falls short.
At the end a table lists every recipe with its figure line, its time and PASS or MISS; the
exit status is 1 when any missed. These are the long runs that `make test` does not repeat
(its end-to-end tests train smaller versions of the same recipes in seconds).

`make reproduce` runs them all (about 30 minutes on 2 cores);
`python -m examples.reproduce ulmfit collab` runs the named ones, `--list` shows the names.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Recipe:
    """One row of the README's results: the example module and its arguments."""

    name: str
    module: str
    args: tuple[str, ...] = ()
    minutes: float = 1.0  # about how long it takes on 2 cores, to show what is coming

    def command(self, out: Path) -> list[str]:
        """The command line, with `{out}` in the arguments replaced by this recipe's folder."""
        folder = str(out / self.name)
        return [sys.executable, "-m", self.module, *(a.replace("{out}", folder) for a in self.args)]


RECIPES = (
    Recipe("demo", "examples.digits", ("--out", "{out}"), 1.0),
    Recipe("imagenette", "examples.imagenette", ("--compare-precompute", "--out", "{out}"), 5.0),
    Recipe("mnist_xresnet", "examples.mnist_xresnet", (), 1.0),
    Recipe("coco_multilabel", "examples.coco_multilabel", (), 1.5),
    Recipe("points", "examples.points", (), 1.2),
    Recipe("adult", "examples.adult", (), 0.3),
    Recipe("bike_sharing", "examples.bike_sharing", (), 0.5),
    Recipe("collab", "examples.collab", (), 0.3),
    Recipe("wikitext_lm", "examples.wikitext_lm", (), 1.0),
    Recipe("ulmfit", "examples.ulmfit", ("--data", "review_polarity", "--out", "{out}"), 9.5),
    Recipe("ulmfit_imdb", "examples.ulmfit", ("--data", "imdb", "--out", "{out}"), 2.0),
    Recipe("nietzsche", "examples.nietzsche", (), 1.6),
    Recipe("command_line", "examples.command_line", ("--out", "{out}"), 4.5),
)


@dataclass
class Outcome:
    """What one recipe did: its exit status, seconds, and the lines that state a target."""

    recipe: Recipe
    returncode: int
    seconds: float
    figures: list[str]


def run(recipe: Recipe, out: Path) -> Outcome:
    """Run one recipe, echoing its output as it comes; keep the lines that name a target."""
    print(f"\n=== {recipe.name} (about {recipe.minutes:g} min): python -m {recipe.module}",
          *recipe.args, flush=True)  # fmt: skip
    start = time.perf_counter()
    figures: list[str] = []
    with subprocess.Popen(
        recipe.command(out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as child:
        assert child.stdout is not None
        for line in child.stdout:
            print(line, end="", flush=True)
            if "target" in line:
                figures.append(line.strip())
    return Outcome(recipe, child.returncode, time.perf_counter() - start, figures)


def summary(outcomes: list[Outcome]) -> str:
    """The results table: name, PASS or MISS, minutes:seconds, the figure lines."""
    rows = []
    for outcome in outcomes:
        verdict = "PASS" if outcome.returncode == 0 else f"MISS (exit {outcome.returncode})"
        minutes, seconds = divmod(round(outcome.seconds), 60)
        figures = "\n    ".join(outcome.figures) or "(no figure printed)"
        rows.append(f"{outcome.recipe.name:<16} {verdict:<14} {minutes:>2}:{seconds:02d}\n"
                    f"    {figures}")  # fmt: skip
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Run the recipes asked for (all by default); return 1 when any falls short."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    names = [recipe.name for recipe in RECIPES]
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"some of: {', '.join(names)}")
    parser.add_argument("--out", default="reproduce_out", help="folder for figures and models")
    parser.add_argument("--list", action="store_true", help="list the recipes and stop")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(names))
    if unknown:
        parser.error(f"unknown recipe(s) {unknown}; choose among {names}")
    if args.list:
        for recipe in RECIPES:
            print(f"{recipe.name:<16} about {recipe.minutes:>4g} min  python -m {recipe.module}",
                  *recipe.args)  # fmt: skip
        return 0
    chosen = [recipe for recipe in RECIPES if not args.names or recipe.name in args.names]
    out = Path(args.out)
    outcomes = [run(recipe, out) for recipe in chosen]
    total = sum(outcome.seconds for outcome in outcomes)
    print(f"\n=== {len(outcomes)} recipe(s) in {total / 60:.1f} min\n{summary(outcomes)}")
    return 0 if all(outcome.returncode == 0 for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
