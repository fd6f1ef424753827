"""The course's lessons, one script each, as a student runs them with mentor's names.

Each `lessonN_*.py` runs that lesson's workflow on the shared data sets (`$MENTOR_DATA`) and
checks its key outcome (an accuracy floor, a file written, a prediction right). Every script
has `run(quick=False, out=None) -> dict` (the figures it measured; `quick=True` is the small
version the tests run in seconds) and `main(argv)`, which prints the figures and exits 1 when
an outcome falls short. Run one with `python -m examples.course.lesson1_pets`; the tests in
`tests/course/` run each with `quick=True`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch


def lesson_main(
    doc: str | None,
    argv: list[str] | None,
    run: Callable[..., dict[str, float]],
    shortfalls: Callable[[dict[str, float], bool], list[str]],
    out: str | None = None,
    options: Sequence[tuple[str, dict[str, Any]]] = (),
) -> int:
    """The command line every lesson script shares: `--quick`, `--threads`, for a lesson that
    writes files `--out` (default `out`), and the lesson's own `options` (flag, argparse
    keywords), passed to `run` by name. Prints the figures `run` measured, then PASS or what
    missed its floor; returns 1 when something missed."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--quick", action="store_true", help="the seconds-long version")
    if out is not None:
        parser.add_argument("--out", type=Path, default=Path(out), help="figures and files")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    for flag, keywords in options:
        parser.add_argument(flag, **keywords)
    args = vars(parser.parse_args(argv))
    quick, threads, where = args.pop("quick"), args.pop("threads"), args.pop("out", None)
    if threads:
        torch.set_num_threads(threads)
    found = run(quick, where, **args)
    print(", ".join(f"{k}={v:.4g}" for k, v in found.items()))
    missed = shortfalls(found, quick)
    print("PASS" if not missed else f"MISS: {'; '.join(missed)}")
    return 1 if missed else 0
