"""Smoke test of the distributed benchmark: `python -m bench.distributed --quick` starts one
process and two torchrun processes, and prints samples/s of both models and their ratio."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def table_rows(out: str) -> dict[str, list[str]]:
    """The table's rows by model: bs, 1 proc /s, 2 procs /s, ratio, then the runs."""
    rows = {}
    for line in out.splitlines():
        cells = line.split()
        if len(cells) > 4 and cells[0] in ("cnn", "tabular") and cells[1].isdigit():
            rows[cells[0]] = cells[1:]
    return rows


def test_quick_run_prints_both_models_rates_and_ratio(shared_data: Any) -> None:
    shared_data("mnist_sample")
    shared_data("adult_sample")
    done = subprocess.run(
        [sys.executable, "-m", "bench.distributed", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    out = done.stdout
    assert "machine:" in out and "torch" in out and "not a speed-up" in out
    rows = table_rows(out)
    assert sorted(rows) == ["cnn", "tabular"], out
    for cells in rows.values():
        single, dual, ratio = (float(cell.replace(",", "")) for cell in cells[1:4])
        assert single > 0 and dual > 0 and ratio > 0
        assert abs(ratio - dual / single) < 0.01 * ratio + 1e-3
