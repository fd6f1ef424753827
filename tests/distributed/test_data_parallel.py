"""Data-parallel training in real processes (Gloo on the CPU), against one process.

One torchrun launch of two processes trains the tabular model and the CNN for an epoch and
runs the file-writing case; one plain process trains the same two at the doubled batch size.
The other tests start their own processes (resume, two "machines", a killed rank).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.distributed.launch import (
    WORKER,
    env,
    free_port,
    max_diff,
    result,
    torchrun,
    weights,
    worker,
)

CASES = ("tabular", "cnn", "accumulate")
VALID_SIZE = {"tabular": 601, "cnn": 699}  # odd: the two ranks' blocks differ in size


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, shared_data) -> dict[str, Path]:
    """`single`: one process, global batch 64; `two`: two processes of 32 each."""
    shared_data("adult_sample")
    shared_data("mnist_tiny")
    root = tmp_path_factory.mktemp("ddp")
    worker(root / "single", *CASES, nproc=1)
    worker(root / "two", *CASES, "files", nproc=2)
    return {"single": root / "single", "two": root / "two"}


@pytest.mark.parametrize("case", CASES)
def test_two_processes_of_half_the_batch_give_the_single_process_weights(
    runs: dict[str, Path], case: str
) -> None:
    one = weights(runs["single"] / f"{case}.safetensors")
    two = weights(runs["two"] / f"{case}.safetensors")
    assert max_diff(one, two) < 1e-5
    assert max(float(v.abs().max()) for v in two.values()) > 0.01  # it trained something


@pytest.mark.parametrize("case", CASES[:2])
def test_validation_loss_and_metrics_over_two_processes_are_the_single_process_ones(
    runs: dict[str, Path], case: str
) -> None:
    single = result(runs["single"], case)["row"]
    for rank in (0, 1):  # every rank reads the same all-reduced values
        row = result(runs["two"], case, rank)["row"]
        assert row.keys() == single.keys() >= {"valid_loss", "accuracy", "f1_score"}
        for name in ("valid_loss", "accuracy", "f1_score", "train_loss"):
            assert row[name] == pytest.approx(single[name], abs=1e-6), name


@pytest.mark.parametrize("case", CASES[:2])
def test_get_preds_returns_every_validation_item_once_in_order(
    runs: dict[str, Path], case: str
) -> None:
    single = result(runs["single"], case)
    for rank in (0, 1):
        two = result(runs["two"], case, rank)
        assert len(two["targets"]) == VALID_SIZE[case]
        assert two["targets"] == single["targets"]  # the same items in the same order
        preds = torch.tensor(two["preds"])
        assert float((preds - torch.tensor(single["preds"])).abs().max()) < 1e-5


def test_gradient_accumulation_all_reduces_only_on_the_steps_that_update(
    runs: dict[str, Path],
) -> None:
    for rank in (0, 1):
        counted = result(runs["two"], "accumulate", rank)
        assert counted["steps"] == 19  # 37 batches of 2 x 32 rows, in groups of 2
        assert counted["allreduces"] == counted["steps"]  # one bucket per step, none between


def test_lr_find_runs_on_rank_0_and_every_rank_gets_its_suggestion(runs: dict[str, Path]) -> None:
    suggested = [result(runs["two"], "tabular", rank)["lr_find"] for rank in (0, 1)]
    assert suggested[0] is not None and suggested[0] > 0
    assert suggested[0] == suggested[1]


def test_only_rank_0_writes_files(runs: dict[str, Path]) -> None:
    rank0, rank1 = runs["two"] / "cwd0", runs["two"] / "cwd1"
    written = sorted(str(p.relative_to(rank0)) for p in rank0.rglob("*") if p.is_file())
    assert {"export.mentor", "history.csv", "models/checkpoint.pt", "report/report.html"} <= set(
        written
    )
    assert len((rank0 / "history.csv").read_text().splitlines()) == 3  # header + 2 epochs
    assert list(rank1.rglob("*")) == []  # rank 1 ran the same code from its own folder
    for rank in (0, 1):  # the context left the group it found (the earlier cases' fits made it)
        assert result(runs["two"], "files", rank) == {"group_after": True, "ddp_after": False}


@pytest.fixture(scope="module")
def nodes(runs: dict[str, Path]) -> Path:
    """Two "machines" on this host (`--nnodes 2 --nproc_per_node 1`, a c10d rendezvous on
    127.0.0.1) resume the `files` run of `runs` from its checkpoint before the last one
    (written 7 batches before the end, mid-epoch) in a `distrib_ctx`, then train the tabular
    case (after the context: the fit turns distributed training on again)."""
    out = runs["two"] / "nodes"
    checkpoint = runs["two"] / "cwd0" / "models" / "checkpoint.prev.pt"
    node = torchrun(
        "--nnodes", "2", "--nproc_per_node", "1", "--rdzv-backend", "c10d",
        "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "--rdzv-id", "mentor-test",
        str(WORKER), str(out), f"resume:{checkpoint}", "tabular",
    )  # fmt: skip
    started = [
        subprocess.Popen(node, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(2)
    ]
    for proc in started:
        output, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0, output.decode()[-3000:]
    return out


def test_two_machines_on_one_host_train_as_two_processes_on_one(
    runs: dict[str, Path], nodes: Path
) -> None:
    two_nodes = weights(nodes / "tabular.safetensors")
    assert max_diff(two_nodes, weights(runs["two"] / "tabular.safetensors")) < 1e-7


def test_a_two_process_checkpoint_resumes_in_two_processes_to_the_same_weights(
    runs: dict[str, Path], nodes: Path
) -> None:
    uninterrupted = weights(runs["two"] / "files.safetensors")
    assert max_diff(weights(nodes / "resume.safetensors"), uninterrupted) < 1e-7
    for rank in (0, 1):  # the context undid itself; its group serves the next fit
        assert result(nodes, "resume", rank) == {"group_after": True, "ddp_after": False}


def test_a_killed_rank_makes_the_other_exit_naming_it_within_60_s(
    tmp_path: Path, shared_data
) -> None:
    shared_data("adult_sample")
    port = str(free_port())
    ranks = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(tmp_path), "killed"],
            env=env(
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=port,
                RANK=str(rank),
                LOCAL_RANK=str(rank),
                WORLD_SIZE="2",
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for rank in (0, 1)
    ]
    try:
        ready = tmp_path / "ready.1"
        deadline = time.monotonic() + 120
        while not ready.exists() and time.monotonic() < deadline:
            assert ranks[0].poll() is None and ranks[1].poll() is None
            time.sleep(0.2)
        os.kill(int(ready.read_text()), signal.SIGKILL)  # mid-epoch: it trains 1000 epochs
        killed_at = time.monotonic()
        output, _ = ranks[0].communicate(timeout=60)
        took = time.monotonic() - killed_at
    finally:
        for proc in ranks:
            proc.kill()
    assert ranks[0].returncode != 0
    assert took < 60
    assert "RankLostError: rank 1 of 2 stopped" in output, output[-3000:]


@pytest.mark.cuda
def test_nccl_with_sync_batch_norm_trains_as_one_process(tmp_path: Path, shared_data) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    shared_data("mnist_tiny")
    nproc = min(torch.cuda.device_count(), 2)  # one GPU: a one-process NCCL group
    worker(tmp_path / "single", "cuda_sync_bn", nproc=1)
    worker(tmp_path / "nccl", "cuda_sync_bn", nproc=nproc, launcher=True)
    one = weights(tmp_path / "single" / "cuda_sync_bn.safetensors")
    assert max_diff(one, weights(tmp_path / "nccl" / "cuda_sync_bn.safetensors")) < 1e-4
