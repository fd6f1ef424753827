"""`learn.compile()` on the CPU: the compile time, and the training speed of the compiled
learner against the same learner uncompiled.

Two cases, each one learner trained by `learn.fit` (one epoch per run, with its validation
pass): the benchmarks' small CNN on mnist_sample (28 px, bs 64) and `tabular_learner` on
adult_sample (the course's columns, bs 64). Both sides share the model's weights and data;
the compiled side runs through `torch.compile` (the default inductor backend: C++ kernels on
the CPU). The first compiled epoch minus the median plain epoch is the compile time. Then
the sides alternate (plain, compiled, compiled, plain, ...); the ratio is
median(plain s) / median(compiled s), the compiled learner's steps per second relative to
the plain one's (above 1: compiling pays).

Run: `python -m bench.compile` (about 4 minutes on 2 cores), `--quick` for a smoke run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from bench.common import machine, mnist_sample_tensors, small_cnn
from mentor.data.external import untar_data
from mentor.data.loaders import DataLoaders, TensorLoader
from mentor.train import Learner


@dataclass
class CompileResult:
    """One case: compile seconds, and seconds per epoch of each side."""

    name: str
    compile_s: float
    plain: list[float]
    compiled: list[float]

    @property
    def ratio(self) -> float:
        """Steps per second of the compiled learner / those of the plain one."""
        return statistics.median(self.plain) / statistics.median(self.compiled)


def cnn_learner(n: int | None) -> Learner:
    """The small CNN on mnist_sample (the first `n` training images when given)."""
    x_train, y_train, x_valid, y_valid = mnist_sample_tensors()
    n = n or len(x_train)
    dls = DataLoaders(
        TensorLoader(x_train[:n], y_train[:n], bs=64, shuffle=True),
        TensorLoader(x_valid, y_valid, bs=256),
        device="cpu",
    )
    return Learner(dls, small_cnn())


def adult_learner(n: int | None) -> Learner:
    """`tabular_learner` on adult_sample with the course's columns (the first `n` rows)."""
    import pandas as pd

    from mentor.tabular import (
        Categorify,
        FillMissing,
        Normalize,
        TabularDataLoaders,
        tabular_learner,
    )

    df = pd.read_csv(untar_data("adult_sample") / "adult.csv")
    df = df.iloc[: n or len(df)]
    dls = TabularDataLoaders.from_df(
        df, y_names="salary", procs=[Categorify, FillMissing, Normalize],
        cat_names=["workclass", "education", "marital-status", "occupation", "relationship",
                   "race"],
        cont_names=["age", "fnlwgt", "education-num"],
        valid_idx=list(range(len(df) - len(df) // 5, len(df))), bs=64, device="cpu",
    )  # fmt: skip
    return tabular_learner(dls, layers=[200, 100])


def epoch_seconds(learn: Learner, forward: torch.nn.Module | None) -> float:
    """Seconds of one `fit(1)` through `forward` (the compiled module, or None: the plain)."""
    learn.compiled = forward
    start = time.perf_counter()
    learn.fit(1, 1e-3)
    return time.perf_counter() - start


def measure(name: str, make: Callable[[], Learner], runs: int) -> CompileResult:
    """The compile time, then `runs` alternating pairs of epochs."""
    learn = make()
    learn.progress.show = False
    compiled_module = learn.compile().compiled
    first_plain = epoch_seconds(learn, None)
    first_compiled = epoch_seconds(learn, compiled_module)
    plain: list[float] = []
    compiled: list[float] = []
    for run in range(runs):
        order = (None, compiled_module) if run % 2 == 0 else (compiled_module, None)
        for forward in order:
            (plain if forward is None else compiled).append(epoch_seconds(learn, forward))
    compile_s = first_compiled - statistics.median([first_plain, *plain])
    return CompileResult(name, compile_s, plain, compiled)


def main(argv: Sequence[str] | None = None) -> list[CompileResult]:
    """Measure both cases and print their compile times and ratios."""
    parser = argparse.ArgumentParser(description="learn.compile() against the plain learner.")
    parser.add_argument("--quick", action="store_true", help="1 run, 1,000 items per case")
    parser.add_argument("--runs", type=int, default=3, help="timed pairs per case (3)")
    args = parser.parse_args(argv)
    n, runs = (1000, 1) if args.quick else (None, args.runs)
    print(f"machine: {machine()}")
    cases = (
        ("small CNN, mnist_sample 28 px, bs 64", lambda: cnn_learner(n)),
        ("tabular_learner, adult_sample, bs 64", lambda: adult_learner(n)),
    )
    results = []
    for name, make in cases:
        result = measure(name, make, runs)
        results.append(result)
        print(
            f"{name}: compile {result.compile_s:.1f} s; epoch plain "
            f"{statistics.median(result.plain):.2f} s, compiled "
            f"{statistics.median(result.compiled):.2f} s; steps/s ratio compiled / plain "
            f"{result.ratio:.2f} ({runs} run(s) per side)"
        )
    return results


if __name__ == "__main__":
    main()
