"""A block, an item transform and a model factory of the user's own (tests/inference/
user_extension.py, outside `mentor`) train, export and predict from the file in a fresh
process, with no edit anywhere in `mentor/`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mentor.core.seed import set_seed
from mentor.core.spec import spec_name
from mentor.data import DataBlock
from mentor.data.blocks import CategoryBlock
from mentor.inference.predictor import Predictor
from mentor.train import Learner, accuracy
from tests.inference.user_extension import FitLength, SignalBlock, make_signals, signal_net

ROOT = Path(__file__).resolve().parents[2]
_FRESH = """
import json, sys
{import_line}
from mentor.inference.predictor import Predictor
file, items = sys.argv[1], json.loads(sys.argv[2])
predictor = Predictor.load(file{trust})
labels, probs = predictor.predict_batch(items, bs=5)
print(json.dumps({{"labels": labels, "probs": probs.double().tolist()}}))
"""


def _fresh(file: Path, items: list, import_line: str = "", trust: str = "") -> dict:
    code = _FRESH.format(import_line=import_line, trust=trust)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code, str(file), json.dumps(items)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0 or not import_line, done.stderr[-2000:]
    return {
        "returncode": done.returncode,
        "stderr": done.stderr,
        **(json.loads(done.stdout.splitlines()[-1]) if done.returncode == 0 else {}),
    }


def test_a_users_block_transform_and_model_export_and_predict(tmp_path: Path) -> None:
    set_seed(0)
    signals, labels = make_signals(80)
    block = DataBlock(
        blocks=(SignalBlock(gain=2.0), CategoryBlock()),
        get_x=lambda i: signals[i],
        get_y=lambda i: labels[i],
        splitter=lambda items: (list(range(60)), list(range(60, 80))),
        item_tfms=[FitLength(32)],
    )
    dls = block.dataloaders(list(range(80)), bs=10, num_workers=0, device="cpu")
    learn = Learner(dls, signal_net(32, 2), metrics=[accuracy])
    learn.model_spec = {"factory": spec_name(signal_net), "kwargs": {"length": 32, "n_out": 2}}
    learn.progress.show = False
    learn.fit_one_cycle(4, 3e-2)
    assert learn.recorder.values[-1]["accuracy"] >= 0.8  # it learned sine from square
    expected = learn.get_preds()[0]
    file = learn.export(tmp_path / "signals")

    valid = signals[60:]
    result = _fresh(file, valid, import_line="import tests.inference.user_extension")
    got = torch.tensor(result["probs"], dtype=torch.float64)
    assert float((got - expected.double()).abs().max()) <= 1e-6
    assert result["labels"] == [dls.vocab[i] for i in expected.argmax(1).tolist()]
    pipeline = Predictor.load(file).pipeline
    assert pipeline["inputs"]["blocks"][0] == {
        "type": "tests.inference.user_extension:SignalBlock",
        "gain": 2.0,
    }

    # not imported and not trusted: refused, naming the way out; trusted: imported and loaded
    refused = _fresh(file, valid)
    assert refused["returncode"] != 0
    assert "trusted_modules=['tests']" in refused["stderr"]
    trusted = _fresh(file, valid, trust=", trusted_modules=['tests']")
    assert trusted["labels"] == result["labels"]


def test_an_unregistered_piece_is_named_at_export(tmp_path: Path) -> None:
    from mentor.data.transforms import ItemTransform

    class Unregistered(ItemTransform):
        def __call__(self, sample, kinds, train):
            return sample

    signals, labels = make_signals(8)
    block = DataBlock(
        blocks=(SignalBlock(), CategoryBlock()),
        get_x=lambda i: signals[i],
        get_y=lambda i: labels[i],
        item_tfms=[FitLength(16), Unregistered()],
    )
    dls = block.dataloaders(list(range(8)), bs=4, num_workers=0, device="cpu")
    learn = Learner(dls, signal_net(16, 2))
    learn.model_spec = {"factory": spec_name(signal_net), "kwargs": {"length": 16, "n_out": 2}}
    with pytest.raises(ValueError, match="item transform Unregistered.*not registered"):
        learn.export(tmp_path / "nope")
    assert not (tmp_path / "nope.mentor").exists()
