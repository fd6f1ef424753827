"""`mentor train ... --nproc N` starts N processes through torch.distributed.run, and gives
what `torchrun --nproc_per_node N -m mentor train ...` gives."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

from mentor.cli.launch import launch, without_nproc
from tests.distributed.launch import run, torchrun


@pytest.fixture(scope="module")
def adult_csv(tmp_path_factory: pytest.TempPathFactory, shared_data) -> Path:
    shared_data("adult_sample")
    from mentor.core.paths import data_path

    file = tmp_path_factory.mktemp("adult") / "adult.csv"
    pd.read_csv(data_path() / "adult_sample" / "adult.csv").head(1500).to_csv(file, index=False)
    return file


def train_args(csv: Path, out: Path) -> list[str]:
    # a given rate: lr_find on rank 0 is the worker tests' (tests/distributed/worker.py)
    return ["train", "tabular", str(csv), "--target", "salary", "--epochs", "1", "--bs", "32",
            "--lr", "1e-2", "--out", str(out), "--quiet"]  # fmt: skip


def members(file: Path) -> dict[str, object]:
    """The exported file's parts, its metadata without the creation date and epoch time."""
    with zipfile.ZipFile(file) as archive:
        parts: dict[str, object] = {name: archive.read(name) for name in archive.namelist()}
    meta = json.loads(parts.pop("meta.json"))  # type: ignore[arg-type]
    meta.pop("created")
    meta["metrics"].pop("time")
    parts["meta.json"] = meta
    return parts


def test_nproc_2_exports_what_torchrun_exports(adult_csv: Path, tmp_path: Path) -> None:
    ours = run(
        [
            sys.executable,
            "-m",
            "mentor",
            *train_args(adult_csv, tmp_path / "a" / "m.mentor"),
            "--nproc",
            "2",
        ]
    )
    theirs = run(torchrun("--standalone", "--nproc_per_node", "2", "-m", "mentor",
                          *train_args(adult_csv, tmp_path / "b" / "m.mentor")))  # fmt: skip
    a, b = members(tmp_path / "a" / "m.mentor"), members(tmp_path / "b" / "m.mentor")
    assert "weights.safetensors" in a
    assert a == b  # byte for byte: the same weights and the same pipeline
    for done in (ours, theirs):  # rank 0 alone prints the run's lines
        assert done.stdout.count("model exported to") == 1
        assert done.stdout.count("training 1 epoch(s)") == 1
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["m.mentor", "report.html"]


def test_nproc_names_each_rank_that_failed_and_how(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch.distributed.run as torch_run

    def fail(config: object) -> None:
        failures = {
            0: ProcessFailure(local_rank=0, pid=41, exitcode=-9, error_file="<N/A>"),
            1: ProcessFailure(local_rank=1, pid=42, exitcode=1, error_file="<N/A>"),
        }
        raise ChildFailedError("mentor", failures)

    monkeypatch.setattr(torch_run, "run", fail)
    assert launch(["train", "tabular", "t.csv", "--nproc", "2"], 2) == 1
    err = capsys.readouterr().err
    assert "mentor: error: rank 0 (pid 41) was killed by SIGKILL" in err
    assert "mentor: error: rank 1 (pid 42) exited with status 1" in err


def test_the_workers_command_line_drops_nproc() -> None:
    line = ["train", "tabular", "a.csv", "--nproc", "4", "--bs", "8", "--nproc=2"]
    assert without_nproc(line) == ["train", "tabular", "a.csv", "--bs", "8"]
