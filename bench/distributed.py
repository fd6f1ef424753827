"""Data-parallel training through `torchrun`: two processes against one, on the same cores.

For two models, the same script (`bench/distributed_worker.py`, a plain `Learner.fit`) is
started two ways with the same global batch size:

- one process: `python -m bench.distributed_worker`, 2 torch threads, batch size `bs`;
- two processes: `python -m torch.distributed.run --nproc_per_node 2 -m
  bench.distributed_worker`, 1 torch thread each (`OMP_NUM_THREADS=1`), batch size `bs / 2`
  per process; mentor sees `WORLD_SIZE=2` at the first fit and trains data-parallel (Gloo,
  sharded loaders, `DistributedDataParallel`).

Models: the small CNN of the benchmarks on MNIST 3 vs 7 (`mnist_sample`, 12,396 training
images in memory) and `tabular_learner(layers=[200, 100])` on `adult_sample` (26,049
training rows), in that order in the same worker (one start-up per arm and run). Each
process times its own training epochs after one warm-up epoch
(start-up, the warm-up epoch and validation are not timed) and writes them to a JSON file
in a temporary folder; samples/s of a run is the items trained on by all processes over the
slowest process's training seconds. Runs alternate one process / two processes (the first
in each pair swaps every run); the figures are medians over the runs, and the ratio is
median(two processes) / median(one process) of samples/s (above 1: two processes are faster).

On a machine with as many cores as processes this measures the cost of data parallelism
(the gradient all-reduce, the sharded loaders, DDP's hooks), not a speed-up: both arms use
the same cores.

Run: `python -m bench.distributed` (a few minutes on 2 cores), or `--quick` for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import machine, mnist_sample_tensors
from mentor.core.paths import data_root

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("cnn", "tabular")
PROCESSES = 2
LAUNCH_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Settings:
    """How much to run: timed runs per arm, timed epochs per run, the global batch size and
    the training items of each model (None: the whole training set)."""

    runs: int
    epochs: int
    bs: int
    items: int | None


FULL = Settings(runs=3, epochs=2, bs=128, items=None)
QUICK = Settings(runs=1, epochs=1, bs=128, items=1024)


@dataclass
class ModelResult:
    """Samples per second of every timed run of both arms for one model."""

    model: str
    bs: int
    single: list[float] = field(default_factory=list)
    dual: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """median(two processes) / median(one process) of samples/s."""
        return statistics.median(self.dual) / statistics.median(self.single)

    def row(self) -> str:
        """The model's row of the printed table."""
        single, dual = statistics.median(self.single), statistics.median(self.dual)
        return (
            f"{self.model:<8} {self.bs:>5} {single:>12,.0f} {dual:>12,.0f} "
            f"{self.ratio:>7.3f}   {spread(self.single)} | {spread(self.dual)}"
        )


def spread(values: list[float]) -> str:
    """The lowest and highest samples/s of some runs, as 'a-b'."""
    return f"{min(values):,.0f}-{max(values):,.0f}"


def worker_env(threads: int) -> dict[str, str]:
    """The environment of a worker: `threads` OpenMP threads, the repository importable, the
    data folder as an absolute path, and no launcher variables inherited from a parent that
    torchrun started."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARIABLES}
    env["OMP_NUM_THREADS"] = str(threads)
    env["MENTOR_DATA"] = str(data_root())
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def worker_command(settings: Settings, processes: int, out: Path) -> list[str]:
    """The command line of one arm: the worker alone or under torch.distributed.run."""
    args = ["-m", "bench.distributed_worker", "--models", *MODELS, "--out", str(out)]
    args += ["--bs", str(settings.bs // processes), "--threads", str(PROCESSES // processes)]
    args += ["--epochs", str(settings.epochs)]
    if settings.items is not None:
        args += ["--items", str(settings.items)]
    if processes == 1:
        return [sys.executable, *args]
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    return [sys.executable, *launcher, *args]


def run_worker(command: list[str], threads: int, out: Path, timeout: float) -> list[dict]:
    """Run a worker command to its end and return the result files of its processes."""
    done = subprocess.run(
        command,
        cwd=ROOT,
        env=worker_env(threads),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed with exit code {done.returncode}:\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
        )
    return [json.loads(path.read_text()) for path in sorted(out.glob("rank*.json"))]


def samples_per_second(reports: list[dict], model: str) -> float:
    """Items trained on by all processes over the slowest process's training seconds."""
    timings = [report["models"][model] for report in reports]
    items = sum(sum(t["items"]) for t in timings)
    seconds = sum(max(epoch) for epoch in zip(*(t["seconds"] for t in timings), strict=True))
    return items / seconds


def run_arm(settings: Settings, processes: int, timeout: float) -> dict[str, float]:
    """Start one arm (one process, or `processes` under torchrun), wait for it and return
    the training samples/s of each model."""
    with tempfile.TemporaryDirectory(prefix="mentor-bench-ddp-") as folder:
        out = Path(folder)
        command = worker_command(settings, processes, out)
        reports = run_worker(command, PROCESSES // processes, out, timeout)
    if len(reports) != processes:
        raise RuntimeError(f"expected {processes} result files, got {len(reports)}")
    return {model: samples_per_second(reports, model) for model in MODELS}


def measure(settings: Settings, timeout: float) -> list[ModelResult]:
    """`settings.runs` runs of each arm, alternating which goes first."""
    results = {model: ModelResult(model, settings.bs) for model in MODELS}
    for index in range(settings.runs):
        order = (1, PROCESSES) if index % 2 == 0 else (PROCESSES, 1)
        for processes in order:
            rates = run_arm(settings, processes, timeout)
            for model, rate in rates.items():
                result = results[model]
                (result.single if processes == 1 else result.dual).append(rate)
    return list(results.values())


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ('unknown' where there is none)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "unknown"
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else "unknown"


def header(settings: Settings) -> list[str]:
    """The lines printed before the table: machine, what is compared, and the caveat."""
    cores = os.cpu_count() or 1
    lines = [
        f"machine: {cpu_model()}, {cores} cores; {machine()}",
        f"load average before: {os.getloadavg()[0]:.2f}",
        f"one process with {PROCESSES} torch threads vs {PROCESSES} processes (torchrun, Gloo, "
        "DDP) with 1 thread each, same global batch; training samples/s of "
        f"{settings.epochs} timed epoch(s) after 1 warm-up, median of {settings.runs} "
        "alternating run(s) per arm",
    ]
    if cores <= PROCESSES:
        lines.append(
            f"note: {cores} cores for {PROCESSES} processes: both arms share the same cores, so "
            "data parallelism adds no compute: expect its overhead, not a speed-up; a ratio "
            "above 1 says one process used its threads worse than two processes their one"
        )
    return lines


def reading(result: ModelResult) -> str:
    """What a model's ratio says, in one line."""
    if result.ratio < 1:
        return (
            f"{result.model}: two processes train at {result.ratio:.0%} of one process's rate: "
            "the cost of data parallelism (gradient all-reduce, DDP's hooks) with no core to gain"
        )
    return (
        f"{result.model}: two processes train {result.ratio:.2f}x as fast: one process's "
        f"{PROCESSES} intra-op threads synchronise at every op of a small model, which costs "
        "more here than DDP's all-reduce (more so when other work shares the cores: see the "
        "load averages)"
    )


def main(argv: Sequence[str] | None = None) -> list[ModelResult]:
    """Measure both models and print the table."""
    parser = argparse.ArgumentParser(description="Two torchrun processes against one process.")
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per arm (3)")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    if args.runs is not None:
        settings = Settings(args.runs, settings.epochs, settings.bs, settings.items)
    timeout = 90.0 if args.quick else 600.0
    mnist_sample_tensors()  # decode and cache the images once, before the workers read them
    print("\n".join(header(settings)), flush=True)
    results = measure(settings, timeout)
    print(
        f"{'model':<8} {'bs':>5} {'1 proc /s':>12} {'2 procs /s':>12} {'ratio':>7}   "
        "runs (samples/s): 1 proc | 2 procs"
    )
    for result in results:
        print(result.row())
    for result in results:
        print(reading(result))
    print(f"load average after: {os.getloadavg()[0]:.2f}", flush=True)
    return results


if __name__ == "__main__":
    main()
