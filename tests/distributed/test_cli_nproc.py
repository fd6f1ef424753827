"""`mentor train ... --nproc N` starts N processes through torch.distributed.run, and gives
what `torchrun --nproc_per_node N -m mentor train ...` gives."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from tests.distributed.launch import TIMEOUT, env, run, torchrun


@pytest.fixture(scope="module")
def adult_csv(tmp_path_factory: pytest.TempPathFactory, shared_data) -> Path:
    shared_data("adult_sample")
    from mentor.core.paths import data_path

    file = tmp_path_factory.mktemp("adult") / "adult.csv"
    pd.read_csv(data_path() / "adult_sample" / "adult.csv").head(1500).to_csv(file, index=False)
    return file


def train_args(csv: Path, out: Path) -> list[str]:
    # --lr auto: lr_find runs on rank 0 and both ranks train with its valley
    return ["train", "tabular", str(csv), "--target", "salary", "--epochs", "1", "--bs", "32",
            "--out", str(out), "--quiet"]  # fmt: skip


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
        assert done.stdout.count("lr_find suggests:") == 1
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["m.mentor", "report.html"]


def test_nproc_names_the_ranks_that_failed(adult_csv: Path, tmp_path: Path) -> None:
    args = train_args(adult_csv, tmp_path / "m.mentor")
    args[args.index("salary")] = "no_such_column"
    done = subprocess.run(
        [sys.executable, "-m", "mentor", *args, "--nproc", "2"],
        env=env(), capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "no_such_column" in done.stderr  # each rank's own message
    assert "mentor: error: rank 0 (pid" in done.stderr and "exited with status 1" in done.stderr
    assert not (tmp_path / "m.mentor").exists()
