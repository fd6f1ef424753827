"""A GAN fit killed with SIGKILL mid-epoch and resumed from its checkpoint ends with the
generator, the critic and both optimizers equal, bit for bit, to a fit never interrupted.

The kill falls where the last checkpoint is in critic mode (the critic's optimizer in
`learn.opt`, while the fit starts with the generator) after one of the critic's three
batches, so a resume that lost the mode, the
switcher's count or the other optimizer would train differently. Each fit is a process
forked from one that has imported torch and mentor already (three fits, one start-up)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from mentor.train.checkpoint import load_file

ROOT = Path(__file__).resolve().parents[2]

# 96 images in batches of 16: 6 batches an epoch; checkpoints after training batches 5 and
# 10; the kill after batch 11 (epoch 1, batch 4). Batches go generator, then three critic
# ones, and again: the checkpoint after batch 10 is in critic mode (the fit started in
# generator mode), one critic batch done
SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    from mentor.core.seed import set_seed
    from mentor.train import Callback
    from mentor.vision.gan_data import GANDataLoaders
    from mentor.vision.gan_learner import GANLearner
    from mentor.vision.gan_trainer import FixedGANSwitcher
    from mentor.vision.models.critic import gan_critic
    from mentor.vision.models.generator import basic_generator

    mode = sys.argv[1]
    torch.set_num_threads(1)

    class KillAt(Callback):
        def after_batch(self):
            if self.learn.training and self.learn.train_iter + 1 == 11:
                os.kill(os.getpid(), signal.SIGKILL)

    images = torch.randint(0, 256, (128, 1, 16, 16), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    set_seed(123 if mode == "resume" else 0)  # the resumed weights come from the checkpoint
    dls = GANDataLoaders.from_images(images, in_sz=8, bs=16, valid_pct=0.25, seed=0,
                                     device="cpu")
    learn = GANLearner.wgan(dls, basic_generator(16, 1, in_sz=8, n_features=8),
                            gan_critic(n_channels=1, nf=8, n_blocks=1), clip=None,
                            gp_weight=10.0, switcher=FixedGANSwitcher(n_crit=3, n_gen=1),
                            gen_first=True)
    learn.progress.show = False
    cbs = [KillAt()] if mode == "kill" else []
    resume = "models/checkpoint.pt" if mode == "resume" else None
    learn.fit(3, 1e-3, cbs=cbs, checkpoint_every=5, resume_from=resume)
    trainer = learn.gan_trainer
    torch.save({"model": learn.model.state_dict(),
                "gen_opt": trainer.gen_opt.state_dict(), "crit_opt": trainer.crit_opt.state_dict(),
                "history": trainer.history, "losses": learn.recorder.losses,
                "values": [{k: v for k, v in row.items() if k != "time"}
                           for row in learn.recorder.values]}, "out.pt")
    """
)

# imports once, then forks a fresh process for each fit: reads a JSON line [folder, mode],
# runs fit.py there (output to folder/log.txt), answers with the child's exit status
ZYGOTE = textwrap.dedent(
    """
    import json, os, runpy, signal, sys, traceback
    import torch
    import mentor.train, mentor.vision.gan_learner, mentor.vision.gan_data
    import mentor.vision.models.critic, mentor.vision.models.generator

    for line in iter(sys.stdin.readline, ""):
        folder, mode = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.chdir(folder)
                log = os.open("log.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(log, 1)
                os.dup2(log, 2)
                signal.alarm(120)
                sys.argv = ["fit.py", mode]
                runpy.run_path("fit.py", run_name="__main__")
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)
    """
)


@pytest.fixture(scope="module")
def zygote() -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
    yield process
    assert process.stdin is not None
    process.stdin.close()
    process.wait(timeout=30)


def run_fit(zygote: subprocess.Popen[str], folder: Path, mode: str) -> tuple[int, str]:
    """Run the fit in `folder` in a forked process: (exit status, the end of its log)."""
    assert zygote.stdin is not None and zygote.stdout is not None
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fit.py").write_text(SCRIPT)
    zygote.stdin.write(json.dumps([str(folder), mode]) + "\n")
    zygote.stdin.flush()
    answer = zygote.stdout.readline()
    assert answer, f"the zygote died: exit status {zygote.poll()}"
    return int(answer), (folder / "log.txt").read_text()[-3000:]


def _assert_equal_states(got: dict[str, Any], want: dict[str, Any], what: str) -> None:
    for index, values in want["state"].items():
        for key, value in values.items():
            assert torch.equal(got["state"][index][key], value), f"{what} {index}/{key} differs"
    assert got["param_groups"] == want["param_groups"], what


@pytest.mark.slow
def test_a_killed_gan_fit_resumes_to_the_same_models_and_optimizers(
    tmp_path: Path, zygote: subprocess.Popen[str]
) -> None:
    status, log = run_fit(zygote, tmp_path / "full", "full")
    assert status == 0, log
    status, log = run_fit(zygote, tmp_path / "run", "kill")
    assert status == -signal.SIGKILL, log
    checkpoint = load_file(tmp_path / "run" / "models" / "checkpoint.pt")
    assert (checkpoint["epoch"], checkpoint["batch"], checkpoint["train_iter"]) == (1, 4, 10)
    trainer_state = checkpoint["callbacks"]["gantrainer"]
    assert trainer_state["gen_mode"] is False and trainer_state["switcher"] == {"n_done": 1}
    status, log = run_fit(zygote, tmp_path / "run", "resume")
    assert status == 0, log

    want = torch.load(tmp_path / "full" / "out.pt", weights_only=True)
    got = torch.load(tmp_path / "run" / "out.pt", weights_only=True)
    assert any(k.startswith("critic.") and "_u" in k for k in want["model"])  # spectral norm
    for name, value in want["model"].items():
        assert torch.equal(got["model"][name], value), f"{name} differs after the resume"
    _assert_equal_states(got["gen_opt"], want["gen_opt"], "generator optimizer")
    _assert_equal_states(got["crit_opt"], want["crit_opt"], "critic optimizer")
    assert got["history"] == want["history"]
    assert [row["gen_batches"] + row["crit_batches"] for row in want["history"]] == [6, 6, 6]
    assert got["losses"] == want["losses"] and got["values"] == want["values"]
