"""`Predictor` and the loading code never import the training loop."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIGHT = ("predictor.py", "load.py", "migrate.py")


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("name", LIGHT)
def test_inference_code_does_not_import_train(name: str) -> None:
    imported = _imported_modules(ROOT / "mentor" / "inference" / name)
    assert not [m for m in imported if m.startswith(("mentor.train", "mentor.callbacks"))]
    assert "mentor.inference.learner" not in imported


def test_predictor_runs_without_the_training_loop_in_a_fresh_process() -> None:
    code = (
        "import sys, mentor.inference.predictor\n"
        "loaded = [m for m in sys.modules if m.startswith(('mentor.train', 'mentor.callbacks'))]\n"
        "assert not loaded, loaded"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


_LOAD_AND_PREDICT = """
import json, os, sys
from mentor.inference import Predictor
name, item = sys.argv[1], json.loads(sys.argv[2])
item = tuple(item) if name == "collab" else item
path = f"tests/inference/format1/{name}.mentor"
Predictor.load(path, trusted_modules=["tests"]).predict(item)
heavy = ("mentor.train", "mentor.callbacks", "pandas")
print(json.dumps(sorted(m for m in sys.modules if m.startswith(heavy) or m.endswith(".learner"))))
"""


@pytest.mark.parametrize(
    ("name", "item"),
    [
        ("vision_category", "mnist_tiny/valid/3/7026.png"),
        ("tabular_category", {"color": "red", "size": 1, "x": 0.5, "z": 2.0}),
        ("collab", [3, 101]),
        ("text_classifier", "a good movie"),
    ],
)
def test_loading_and_predicting_imports_no_training_code(name: str, item, mnist_tiny) -> None:
    import json
    import os

    if name.startswith("vision"):
        item = str(mnist_tiny.parent / item)
    args = [sys.executable, "-c", _LOAD_AND_PREDICT, name, json.dumps(item)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.splitlines()[-1])
    # pandas is the tabular and collab encoders' own dependency; an image model needs none
    allowed = () if name.startswith("vision") else ("pandas",)
    assert [m for m in loaded if not m.startswith(allowed) or not allowed] == [], loaded
