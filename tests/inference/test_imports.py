"""`Predictor` and the loading code never import the training loop."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIGHT = ("predictor.py", "load.py", "pipelines.py", "tabular_rows.py")


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
