"""Checkpoints: a fit killed mid-way and resumed ends exactly where an uninterrupted one does.

Each fit runs in its own Python process, killed with SIGKILL (no cleanup, no `finally`), so
the resume can only use what the checkpoint file holds.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from mentor.core.seed import set_seed
from mentor.data.loaders import DataLoaders
from mentor.train import Learner
from mentor.train.checkpoint import load_file

# 168 items in batches of 16: 11 batches per epoch, the last one of 8 items.
SCRIPT = textwrap.dedent(
    """
    import os
    import signal
    import sys

    import torch
    from torch import nn

    from mentor.core.seed import set_seed
    from mentor.data.loaders import DataLoaders
    from mentor.train import Callback, Learner, accuracy


    class Kill(Callback):
        order = 80  # after the checkpoint callback (70) has written this epoch's / batch's file

        def __init__(self, epoch, batch):
            super().__init__()
            self.epoch, self.batch = epoch, batch

        def after_batch(self):
            learn = self.learn
            at = learn.n_iter * self.epoch + self.batch if self.batch is not None else None
            if learn.training and learn.train_iter == at:
                os.kill(os.getpid(), signal.SIGKILL)

        def after_epoch(self):
            if self.batch is None and self.learn.epoch == self.epoch:
                os.kill(os.getpid(), signal.SIGKILL)


    class CountBatches(Callback):
        def __init__(self):
            super().__init__()
            self.trained = 0

        def after_step(self):
            self.trained += 1


    mode, every, out = sys.argv[1], sys.argv[2], sys.argv[3]
    every = every if every in ("epoch", "none") else int(every)
    data_rng = torch.Generator().manual_seed(0)
    x = torch.randn(168 + 64, 10, generator=data_rng)
    y = (x[:, 0] + 0.5 * x[:, 1] + 0.3 * torch.randn(len(x), generator=data_rng) > 0).long()
    # the resumed process starts from other weights and generator states: whatever matches
    # the uninterrupted fit in the end came from the checkpoint
    set_seed(123 if mode == "resume" else 0)
    dls = DataLoaders.from_tensors((x[:168], y[:168]), (x[168:], y[168:]), bs=16, device="cpu")
    model = nn.Sequential(
        nn.Linear(10, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 2)
    )
    learn = Learner(dls, model, metrics=[accuracy], path=".")
    learn.progress.show = False
    counter = CountBatches()
    cbs = [counter]
    if mode == "kill_epoch":
        cbs.append(Kill(epoch=1, batch=None))
    elif mode == "kill_batch":
        cbs.append(Kill(epoch=1, batch=7))
    resume = "models/checkpoint.pt" if mode == "resume" else None
    learn.fit_one_cycle(
        4, 1e-2, cbs=cbs, checkpoint_every=None if every == "none" else every, resume_from=resume
    )
    torch.save(
        {
            "model": learn.model.state_dict(),
            "opt": learn.opt.state_dict(),
            "values": [
                {k: v for k, v in row.items() if k != "time"} for row in learn.recorder.values
            ],
            "losses": learn.recorder.losses,
            "lrs": learn.recorder.lrs,
            "trained": counter.trained,
        },
        out,
    )
    """
)


def run_fit(folder: Path, mode: str, every: str) -> subprocess.CompletedProcess[str]:
    """Run the fit script in a fresh process in `folder`; its results go to `folder/out.pt`."""
    folder.mkdir(exist_ok=True)
    script = folder / "fit.py"
    script.write_text(SCRIPT)
    return subprocess.run(
        [sys.executable, str(script), mode, every, "out.pt"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )


def load_out(folder: Path) -> dict[str, Any]:
    return torch.load(folder / "out.pt", weights_only=True)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The reference: the same fit, never interrupted and never checkpointed."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    done = run_fit(folder, "full", "none")
    assert done.returncode == 0, done.stderr
    return load_out(folder)


def assert_same_fit(resumed: dict[str, Any], reference: dict[str, Any]) -> None:
    for name, value in reference["model"].items():
        assert torch.equal(resumed["model"][name], value), f"model entry {name} differs"
    ref_state, res_state = reference["opt"]["state"], resumed["opt"]["state"]
    assert ref_state.keys() == res_state.keys()
    for index in ref_state:
        for key, value in ref_state[index].items():
            assert torch.equal(res_state[index][key], value), f"optimizer {index}/{key} differs"
    assert resumed["opt"]["param_groups"] == reference["opt"]["param_groups"]
    assert [row["epoch"] for row in resumed["values"]] == [0, 1, 2, 3]
    assert resumed["values"] == reference["values"]
    assert resumed["losses"] == reference["losses"]
    assert resumed["lrs"] == reference["lrs"]


def kill_and_resume(folder: Path, kill_mode: str, every: str) -> dict[str, Any]:
    killed = run_fit(folder, kill_mode, every)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (folder / "out.pt").exists()
    assert (folder / "models" / "checkpoint.pt").exists()
    checkpoint = load_file(folder / "models" / "checkpoint.pt")
    resumed = run_fit(folder, "resume", every)
    assert resumed.returncode == 0, resumed.stderr
    return {"checkpoint": checkpoint, **load_out(folder)}


@pytest.mark.slow
def test_resume_after_kill_at_epoch_end_is_exact(
    tmp_path: Path, uninterrupted: dict[str, Any]
) -> None:
    resumed = kill_and_resume(tmp_path / "run", "kill_epoch", "epoch")
    checkpoint = resumed["checkpoint"]
    assert (checkpoint["epoch"], checkpoint["batch"]) == (2, 0)
    assert len(checkpoint["callbacks"]["recorder"]["values"]) == 2
    assert resumed["trained"] == 2 * 11  # only the last two epochs ran after the resume
    assert_same_fit(resumed, uninterrupted)


@pytest.mark.slow
def test_resume_mid_epoch_is_exact(tmp_path: Path, uninterrupted: dict[str, Any]) -> None:
    resumed = kill_and_resume(tmp_path / "run", "kill_batch", "5")
    checkpoint = resumed["checkpoint"]
    # killed after batch 7 of epoch 1: the last checkpoint is earlier in that epoch, so the
    # resumed fit skips the batches before it and replays those between it and the kill
    assert checkpoint["epoch"] == 1
    assert 0 < checkpoint["batch"] < 8
    assert checkpoint["train_iter"] == 11 + checkpoint["batch"]
    assert resumed["trained"] == 4 * 11 - checkpoint["train_iter"]
    assert_same_fit(resumed, uninterrupted)


@pytest.mark.slow
def test_resume_from_a_checkpoint_after_the_last_batch_of_an_epoch(
    tmp_path: Path, uninterrupted: dict[str, Any]
) -> None:
    """Every 11 batches = after each epoch's last batch, before validation: the resumed fit
    trains no batch of that epoch, and the next epoch must still shuffle as it did."""
    resumed = kill_and_resume(tmp_path / "run", "kill_epoch", "11")
    checkpoint = resumed["checkpoint"]
    assert (checkpoint["epoch"], checkpoint["batch"], checkpoint["train_iter"]) == (1, 11, 22)
    assert resumed["trained"] == 2 * 11
    assert_same_fit(resumed, uninterrupted)


@pytest.mark.slow
def test_uninterrupted_fit_is_reproducible(tmp_path: Path, uninterrupted: dict[str, Any]) -> None:
    """Guards the resume tests: two plain runs with one seed agree (else nothing is tested)."""
    done = run_fit(tmp_path, "full", "epoch")
    assert done.returncode == 0, done.stderr
    result = load_out(tmp_path)
    assert_same_fit(result, uninterrupted)
    assert result["trained"] == uninterrupted["trained"] == 4 * 11
    first = uninterrupted["values"]
    assert first[0]["train_loss"] != first[-1]["train_loss"]


# ----- in-process: the resume check, save / load -----


def make_learner(path: Path, seed: int = 0) -> Learner:
    set_seed(seed)
    x = torch.randn(96, 6)
    y = (x.sum(1) > 0).long()
    dls = DataLoaders.from_tensors((x[:64], y[:64]), (x[64:], y[64:]), bs=16, device="cpu")
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    learn = Learner(dls, model, path=path)
    learn.progress.show = False
    return learn


def test_resume_with_other_number_of_epochs_raises(tmp_path: Path) -> None:
    learn = make_learner(tmp_path)
    learn.fit_one_cycle(4, 1e-2, checkpoint_every="epoch")
    checkpoint = tmp_path / "models" / "checkpoint.pt"
    assert checkpoint.exists()
    other = make_learner(tmp_path)
    with pytest.raises(ValueError, match=r"4 epochs.*this one has 3"):
        other.fit_one_cycle(3, 1e-2, resume_from=checkpoint)


def test_bad_checkpoint_every_raises(tmp_path: Path) -> None:
    learn = make_learner(tmp_path)
    with pytest.raises(ValueError, match="checkpoint_every='batch'"):
        learn.fit(1, checkpoint_every="batch")


def test_checkpoint_loads_without_pickle(tmp_path: Path) -> None:
    learn = make_learner(tmp_path)
    learn.fit(2, checkpoint_every="epoch")
    state = load_file(tmp_path / "models" / "checkpoint.pt")
    assert state["epoch"] == 2 and state["n_epoch"] == 2
    for name, value in learn.model.state_dict().items():
        assert torch.equal(state["model"][name], value)
    assert not list((tmp_path / "models").glob("*.tmp"))


def test_save_load_with_optimizer(tmp_path: Path) -> None:
    learn = make_learner(tmp_path)
    learn.fit(1, 1e-2)
    file = learn.save("trained")
    assert file == tmp_path / "models" / "trained.pth"
    saved = torch.load(file, weights_only=True)
    assert set(saved) == {"model", "opt"}
    model_before = {k: v.clone() for k, v in learn.model.state_dict().items()}
    opt_state = learn.opt.state_dict()["state"]

    other = make_learner(tmp_path, seed=1)
    assert not torch.equal(other.model[0].weight, learn.model[0].weight)
    other.load("trained")
    for name, value in model_before.items():
        assert torch.equal(other.model.state_dict()[name], value)
    loaded_state = other.opt.state_dict()["state"]
    assert loaded_state.keys() == opt_state.keys() and loaded_state
    for index in opt_state:
        for key, value in opt_state[index].items():
            assert torch.equal(loaded_state[index][key], value)


def test_save_load_without_optimizer(tmp_path: Path) -> None:
    learn = make_learner(tmp_path)
    learn.fit(1, 1e-2)
    file = learn.save("weights_only", with_opt=False)
    assert set(torch.load(file, weights_only=True)) == {"model"}

    other = make_learner(tmp_path, seed=1)
    other.load(file)  # a file path works as well as a name
    for name, value in learn.model.state_dict().items():
        assert torch.equal(other.model.state_dict()[name], value)
    assert other.opt is None or not other.opt.state_dict()["state"]


def test_load_missing_file_names_it(tmp_path: Path) -> None:
    learn = make_learner(tmp_path)
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        learn.load("nothing_here")


def test_checkpoint_every_n_batches_writes_after_every_nth_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mentor.train.checkpoint import CheckpointCallback

    written: list[tuple[int, int, int]] = []
    original = CheckpointCallback.save

    def spy(self: CheckpointCallback, epoch: int, batch: int, train_iter: int) -> None:
        written.append((epoch, batch, train_iter))
        original(self, epoch, batch, train_iter)

    monkeypatch.setattr(CheckpointCallback, "save", spy)
    learn = make_learner(tmp_path)  # 4 batches per epoch
    learn.fit(3, checkpoint_every=5)
    # after the 5th and 10th training batches: (epoch, batches done in it, batches done in all)
    assert written == [(1, 1, 5), (2, 2, 10)]
    state = load_file(tmp_path / "models" / "checkpoint.pt")
    assert (state["epoch"], state["batch"], state["train_iter"]) == (2, 2, 10)
