"""Smoke test of the serving benchmark: both servers, a short load, a short mixed run."""

from __future__ import annotations

from typing import Any

from bench.serve import main


def test_serve_bench_runs_both_servers_and_the_mixed_run(shared_data: Any, capsys) -> None:
    shared_data("mnist_sample")
    argv = ["--runs", "1", "--clients", "4", "--per-client", "2", "--mixed-requests", "60"]
    assert main([*argv, "--models", "digits"]) == 0
    out = capsys.readouterr().out
    assert "4 concurrent client(s)" in out and "images/s ratio" in out and "resnet18" in out
    assert "status 200:" in out.split("batching")[1] and "baseline" in out
    for kind in (
        "truncated image",
        "wrong content type",
        "huge JSON",
        "missing field",
        "wrong type",
        "20 MB body",
    ):
        line = next(row for row in out.splitlines() if row.strip().startswith(kind))
        codes = [int(part.split(":")[0]) for part in line.split() if ":" in part]
        assert codes and all(400 <= code < 500 for code in codes), line
    assert out.rstrip().endswith("PASS")
