"""A fit killed with SIGKILL mid-epoch and resumed from its checkpoint ends with the same
weights, bit for bit, as one never interrupted: image data with item and batch augmentation
(with and without loader workers), text classifier and language-model loaders, tabular,
collab, and `fine_tune` killed in either of its two fits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
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


def _run(
    folder: Path, kind: str, workers: int, mode: str, data: Path
) -> subprocess.CompletedProcess:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fit.py").write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "fit.py", kind, str(workers), mode, str(data)]
    return subprocess.run(args, cwd=folder, capture_output=True, text=True, env=env, timeout=300)


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
    kind: str, workers: int, tmp_path: Path, mnist_tiny: Path
) -> None:
    full = _run(tmp_path / "full", kind, workers, "full", mnist_tiny)
    assert full.returncode == 0, full.stderr[-2000:]
    killed = _run(tmp_path / "run", kind, workers, "kill", mnist_tiny)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    resumed = _run(tmp_path / "run", kind, workers, "resume", mnist_tiny)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    reference, got = _weights(tmp_path / "full"), _weights(tmp_path / "run")
    for name, value in reference.items():
        assert torch.equal(got[name], value), f"{name}: max diff {(got[name] - value).abs().max()}"
