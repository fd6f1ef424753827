"""examples/notebooks/quickstart.ipynb: committed without outputs, and executed headlessly in
a Jupyter kernel of this Python, its saved outputs hold the epoch table (updated in place),
the progress bar, and each figure once."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "notebooks" / "quickstart.ipynb"
COLUMNS = ["epoch", "train_loss", "valid_loss", "accuracy", "time"]
FIGURE_CELLS = ("dls.show_batch(", "learn.lr_find(", "plot_loss(", "plot_confusion_matrix(")

nbformat = pytest.importorskip("nbformat")


def test_the_committed_notebook_has_no_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert len(code) >= 8
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)


def kernel_env(home: Path) -> dict[str, str]:
    """The test's environment for the kernel: the repository importable, the data where the
    tests find it, matplotlib's inline backend (not Agg), and IPython's own settings
    folder, so that no profile of the machine's user runs in it."""
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["IPYTHONDIR"] = str(home / "ipython")
    # the notebook's small CNN gains nothing from more threads; on a busy machine they
    # contend and the sweep takes minutes instead of seconds
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def execute(nb: Any, tmp_path: Path) -> list[tuple[int, str, str | None]]:
    """Run `nb` in place in a kernel of this Python (a kernel spec written for the test, so
    no other Python's "python3" kernel is picked up), in `tmp_path`; the messages it sent,
    as (cell index, message type, display id)."""
    nbclient = pytest.importorskip("nbclient")
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec = write_kernel_spec(tmp_path / "kernels" / "mentor-test")
    assert json.loads(Path(spec, "kernel.json").read_text())["argv"][0] == sys.executable
    specs = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")])
    seen: list[tuple[int, str, str | None]] = []

    class RecordingClient(nbclient.NotebookClient):
        def process_message(self, msg: dict, cell: Any, cell_index: int) -> Any:
            transient = msg["content"].get("transient") or {}
            seen.append((cell_index, msg["msg_type"], transient.get("display_id")))
            return super().process_message(msg, cell, cell_index)

    manager = KernelManager(kernel_name="mentor-test", kernel_spec_manager=specs)
    client = RecordingClient(nb, km=manager, timeout=120, kernel_name="mentor-test",
                             resources={"metadata": {"path": str(tmp_path)}})  # fmt: skip
    client.execute(env=kernel_env(tmp_path))
    return seen


def cell_index(nb: Any, text: str) -> int:
    return next(i for i, cell in enumerate(nb.cells) if text in cell.source)


def html_outputs(cell: Any) -> list[str]:
    return [out.data["text/html"] for out in cell.outputs if "text/html" in out.get("data", {})]


@pytest.mark.slow
def test_the_quickstart_notebook_shows_a_live_table_and_its_figures(
    tmp_path: Path, shared_data: Any
) -> None:
    pytest.importorskip("ipykernel")
    shared_data("mnist_tiny")
    executed = tmp_path / "quickstart.ipynb"
    nb = nbformat.read(NOTEBOOK, as_version=4)
    seen = execute(nb, tmp_path)
    nbformat.write(nb, executed)
    nb = nbformat.read(executed, as_version=4)  # what was saved
    nbformat.validate(nb)

    fit = cell_index(nb, "fit_one_cycle(")
    table, bar = html_outputs(nb.cells[fit])
    assert [out.output_type for out in nb.cells[fit].outputs] == ["display_data"] * 2  # no text
    assert re.findall(r"<th>(.*?)</th>", table) == COLUMNS
    assert table.split("<tbody>")[1].count("<tr>") == 2  # fit_one_cycle(2, ...)
    assert re.search(r'<progress value="(\d+)" max="\1"', bar)  # the last epoch, complete
    assert "epoch 2/2" in bar
    shown = [(kind, display_id) for i, kind, display_id in seen if i == fit]
    first = [display_id for kind, display_id in shown if kind == "display_data"]
    assert len(first) == 2 and None not in first  # the table, then the bar, each with an id
    updates = [display_id for kind, display_id in shown if kind == "update_display_data"]
    assert updates.count(first[0]) == 2  # a row per epoch, in place
    assert updates.count(first[1]) >= 2  # the bar, in place

    for text in FIGURE_CELLS:  # each figure once (the inline backend and the cell's value)
        outputs = nb.cells[cell_index(nb, text)].outputs
        assert sum("image/png" in out.get("data", {}) for out in outputs) == 1, text
    predicted = nb.cells[cell_index(nb, "learn.predict(")].outputs[0].text
    assert re.search(r"\.png: a [37], with probability", predicted)
