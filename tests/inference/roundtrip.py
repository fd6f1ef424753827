"""Helpers for the export round-trip tests: predictions from a fresh Python process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

_SCRIPT = """
import json, sys
import torch
torch.set_num_threads(1)
from mentor.inference.predictor import Predictor
from mentor.inference.learner import load_learner
model, items_file, out_file, bs, how = sys.argv[1:6]
items = json.load(open(items_file))
if how == "pairs":
    items = [tuple(item) for item in items]
predictor = Predictor.load(model)
labels, probs = predictor.predict_batch(items, bs=int(bs))
single = [predictor.predict(item)[1].tolist() for item in items[:3]]
learn = load_learner(model)
learner_probs = learn.get_preds(dl=learn.dls.test_dl(items, bs=int(bs)))[0]
json.dump({"labels": labels, "probs": probs.double().tolist(), "single": single,
           "learner_probs": learner_probs.double().tolist(),
           "predict": str(learn.predict(items[0])[0])}, open(out_file, "w"))
"""


def fresh_process_predictions(
    model: Path, items: list[Any], tmp_path: Path, bs: int, how: str = "plain"
) -> dict[str, Any]:
    """Load `model` in a new Python process and predict `items` there (JSON in, JSON out)."""
    items_file, out_file = tmp_path / "items.json", tmp_path / "out.json"
    items_file.write_text(json.dumps(items))
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-c", _SCRIPT, str(model), str(items_file), str(out_file), str(bs), how]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(out_file.read_text())
    return result


_PREDICT_SCRIPT = """
import sys, numpy as np, torch
from mentor.inference.predictor import Predictor
predictor = Predictor.load(sys.argv[1])
found = {}
for i, item in enumerate(sys.argv[3:]):
    first, out = predictor.predict(item)
    found[f"first_{i}"], found[f"out_{i}"] = np.asarray(first), torch.as_tensor(out).numpy()
np.savez(sys.argv[2], **found)
"""


def fresh_process_predict(
    model: Path, items: list[Path], tmp_path: Path
) -> list[tuple[np.ndarray, torch.Tensor]]:
    """`Predictor.load(model).predict(item)` for each item in a new Python process, as a
    server would load it: (image or mask or label, output) per item."""
    saved = tmp_path / "fresh_predictions.npz"
    args = [sys.executable, "-c", _PREDICT_SCRIPT, str(model), str(saved), *map(str, items)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(saved) as found:
        pairs = [(found[f"first_{i}"], found[f"out_{i}"]) for i in range(len(items))]
    return [(first, torch.from_numpy(out)) for first, out in pairs]


def max_diff(expected: torch.Tensor, got: list[Any]) -> float:
    """The largest absolute difference between `expected` and a nested list of numbers."""
    return float((expected.double() - torch.tensor(got, dtype=torch.float64)).abs().max())
