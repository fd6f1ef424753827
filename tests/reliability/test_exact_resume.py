"""A fit killed with SIGKILL mid-epoch and resumed from its checkpoint ends with the same
weights, bit for bit, as one never interrupted: image data with item and batch augmentation
(with and without loader workers), text classifier and language-model loaders, tabular,
collab, and `fine_tune` killed in either of its two fits.

Each fit is a process of its own, forked from one that has imported torch and mentor already
and has run nothing: 24 fresh processes without 24 start-ups of about 1.7 s each."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np, pandas as pd, torch
    from torch import nn
    from mentor.core.seed import set_seed
    from mentor.train import Callback

    kind, workers, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    torch.set_num_threads(1)
    set_seed(0)

    class KillAt(Callback):  # dies after epoch 1's batch 4, as a crash or `kill -9` would
        def after_batch(self):
            if self.learn.training and self.learn.epoch == 1 and self.learn.iter == 4:
                os.kill(os.getpid(), signal.SIGKILL)

    def image():
        from mentor.train import Learner
        from mentor.vision import ImageDataLoaders, RandomResizedCrop, aug_transforms
        dls = ImageDataLoaders.from_folder(sys.argv[4], valid="valid", bs=16,
            item_tfms=RandomResizedCrop(24), batch_tfms=aug_transforms(), num_workers=workers,
            device="cpu")
        model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Dropout(0.3),
                              nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
        return Learner(dls, model)

    def text(is_lm):
        from mentor.text import TextDataLoaders, language_model_learner, text_classifier_learner
        rng = np.random.default_rng(0)
        words = ["good", "bad", "fine", "dull", "film", "plot", "cast", "ends"]
        texts = [" ".join(rng.choice(words, size=int(rng.integers(4, 16)))) for _ in range(200)]
        labels = ["pos" if "good" in t else "neg" for t in texts]
        if is_lm:
            dls = TextDataLoaders.from_texts(texts[:160], texts[160:], is_lm=True, min_freq=1,
                                             bs=8, seq_len=8, device="cpu")
            return language_model_learner(dls, size="tiny")
        dls = TextDataLoaders.from_texts(texts[:160], texts[160:], labels[:160], labels[160:],
                                         min_freq=1, bs=16, device="cpu")
        return text_classifier_learner(dls, size="tiny", seq_len=4)

    def tabular():
        from mentor.tabular import Categorify, FillMissing, Normalize, TabularDataLoaders
        from mentor.tabular import tabular_learner
        from tests.helpers import tabular_frame
        df = tabular_frame(400)
        dls = TabularDataLoaders.from_df(df, procs=[Categorify, FillMissing, Normalize],
            cat_names=["color", "size"], cont_names=["x", "z"], y_names="label",
            valid_idx=list(range(320, 400)), bs=32, device="cpu")
        return tabular_learner(dls, layers=[16, 8], config={"ps": [0.2, 0.2]})

    def collab():
        from mentor.collab import CollabDataLoaders, collab_learner
        rng = np.random.default_rng(0)
        ratings = pd.DataFrame({"user": rng.integers(0, 40, 600), "item": rng.integers(0, 30, 600),
                                "rating": rng.integers(1, 6, 600).astype("float32")})
        dls = CollabDataLoaders.from_df(ratings, seed=0, bs=32, device="cpu")
        return collab_learner(dls, n_factors=8, y_range=(0, 5.5))

    def body_and_head():  # for fine_tune: a body that freezes (with batch norm) and a head
        from mentor.train import Learner
        from mentor.vision import ImageDataLoaders, RandomResizedCrop, aug_transforms
        dls = ImageDataLoaders.from_folder(sys.argv[4], valid="valid", bs=16,
            item_tfms=RandomResizedCrop(24), batch_tfms=aug_transforms(), num_workers=workers,
            device="cpu")
        model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.BatchNorm2d(8), nn.ReLU(),
                              nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3),
                              nn.Linear(8, 2))
        return Learner(dls, model, splitter=lambda m: [list(m[:3].parameters()),
                                                       list(m[3:].parameters())])

    make = {"image": image, "text": lambda: text(False), "lm": lambda: text(True),
            "tabular": tabular, "collab": collab, "head": body_and_head,
            "body": body_and_head}[kind]
    learn = make()
    learn.progress.show = False
    cbs = [KillAt()] if mode == "kill" else []
    resume = "models/checkpoint.pt" if mode == "resume" else None
    if kind == "head":  # killed in fine_tune's first fit (the head, 2 epochs)
        learn.fine_tune(1, 1e-2, freeze_epochs=2, cbs=cbs, checkpoint_every=3, resume_from=resume)
    elif kind == "body":  # killed in its second fit (everything, 2 epochs)
        learn.fine_tune(2, 1e-2, freeze_epochs=1, cbs=cbs, checkpoint_every=3, resume_from=resume)
    else:
        learn.fit_one_cycle(2, 1e-2, cbs=cbs, checkpoint_every=3, resume_from=resume)
    torch.save(learn.model.state_dict(), "out.pt")
    """
)


# imports what every fit needs, once, then forks a fresh process for each fit: reads a JSON
# line [folder, *argv], runs fit.py there as __main__ (its output to folder/log.txt) and
# answers with the child's exit status (negative: the signal that ended it, as subprocess does)
ZYGOTE = textwrap.dedent(
    """
    import json, os, runpy, signal, sys, traceback
    import numpy, pandas, torch
    import mentor.collab, mentor.core.seed, mentor.tabular, mentor.text, mentor.train
    import mentor.vision

    for line in iter(sys.stdin.readline, ""):
        folder, *argv = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.chdir(folder)
                log = os.open("log.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(log, 1)
                os.dup2(log, 2)
                signal.alarm(300)  # a hung fit ends as SIGALRM, a failure like any other
                sys.argv = ["fit.py", *argv]
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
def run_fit() -> Iterator[Callable[[Path, str, int, str, Path], tuple[int, str]]]:
    """`run_fit(folder, kind, workers, mode, data)` -> (exit status, the fit's output)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    zygote = subprocess.Popen(
        [sys.executable, "-c", ZYGOTE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert zygote.stdin is not None and zygote.stdout is not None

    def run(folder: Path, kind: str, workers: int, mode: str, data: Path) -> tuple[int, str]:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "fit.py").write_text(SCRIPT)
        zygote.stdin.write(json.dumps([str(folder), kind, str(workers), mode, str(data)]) + "\n")
        zygote.stdin.flush()
        answer = zygote.stdout.readline()
        assert answer, f"the zygote died: exit status {zygote.poll()}"
        return int(answer), (folder / "log.txt").read_text()[-2000:]

    yield run
    zygote.stdin.close()
    zygote.wait(timeout=30)


def _weights(folder: Path) -> dict[str, Any]:
    return torch.load(folder / "out.pt", weights_only=True)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "workers"),
    [
        ("image", 0),
        ("image", 2),
        ("text", 0),
        ("lm", 0),
        ("tabular", 0),
        ("collab", 0),
        ("head", 0),
        ("body", 2),
    ],
)
def test_a_killed_fit_resumes_to_the_same_weights(
    kind: str, workers: int, tmp_path: Path, mnist_tiny: Path, run_fit: Callable[..., Any]
) -> None:
    status, log = run_fit(tmp_path / "full", kind, workers, "full", mnist_tiny)
    assert status == 0, log
    status, log = run_fit(tmp_path / "run", kind, workers, "kill", mnist_tiny)
    assert status == -signal.SIGKILL, log
    status, log = run_fit(tmp_path / "run", kind, workers, "resume", mnist_tiny)
    assert status == 0, log
    reference, got = _weights(tmp_path / "full"), _weights(tmp_path / "run")
    for name, value in reference.items():
        assert torch.equal(got[name], value), f"{name}: max diff {(got[name] - value).abs().max()}"
