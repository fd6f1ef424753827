"""Starting the worker script in real processes for the distributed tests (Gloo on the CPU)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

WORKER = Path(__file__).with_name("worker.py")
TIMEOUT = 240  # seconds for any one launch: a hang fails the test instead of the CI run


def env(**extra: str) -> dict[str, str]:
    """The environment of a started process: one thread each (two processes share 2 cores),
    and the variables of a previous launch removed."""
    base = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    return {**base, "OMP_NUM_THREADS": "1", **extra}


def free_port() -> int:
    """A TCP port nothing listens on at the moment, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `cmd` to its end; fail with its output when it fails."""
    done = subprocess.run(
        cmd, cwd=cwd, env=env(), capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done


def torchrun(*args: str) -> list[str]:
    """The command line of `torchrun ARGS` (the module, so the venv's Python runs it)."""
    return [sys.executable, "-m", "torch.distributed.run", *args]


def worker(
    out: Path, *cases: str, nproc: int = 2, launcher: bool | None = None
) -> subprocess.CompletedProcess[str]:
    """The worker script in `nproc` processes under torchrun (by default only when `nproc` >
    1: one process is then a plain one)."""
    out.mkdir(parents=True, exist_ok=True)
    script = [str(WORKER), str(out), *cases]
    if not (nproc > 1 if launcher is None else launcher):
        return run([sys.executable, *script])
    return run(torchrun("--standalone", "--nproc_per_node", str(nproc), *script))


def weights(file: Path) -> dict[str, torch.Tensor]:
    """The weights a worker wrote."""
    return load_file(str(file))


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """The largest absolute difference between two state dicts with the same keys."""
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def result(out: Path, case: str, rank: int = 0) -> dict[str, Any]:
    """What rank `rank` of a worker wrote for `case`."""
    return json.loads((out / f"{case}.rank{rank}.json").read_text())
