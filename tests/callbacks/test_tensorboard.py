"""TensorBoardCallback: the event files, read back with tensorboard's own reader."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

import mentor.callbacks.tensorboard as tensorboard_module
from mentor.callbacks.tensorboard import TensorBoardCallback
from mentor.core.seed import set_seed
from mentor.data.loaders import DataLoaders
from mentor.train import Learner
from tests.helpers import tiny_classifier

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)

N_BATCHES = 4  # tiny_classifier: 64 training items in batches of 16
KEEP_ALL = {"scalars": 0, "histograms": 0, "images": 0, "tensors": 0}


def read_events(folder: Path) -> EventAccumulator:
    events = EventAccumulator(str(folder), size_guidance=KEEP_ALL)
    events.Reload()
    return events


def steps_and_values(events: EventAccumulator, tag: str) -> tuple[list[int], list[float]]:
    scalars = events.Scalars(tag)
    return [s.step for s in scalars], [s.value for s in scalars]


def test_batch_and_epoch_scalars_match_the_recorder(tmp_path: Path) -> None:
    learn = tiny_classifier(tmp_path)
    learn.fit(2, 1e-2, cbs=[TensorBoardCallback(tmp_path / "tb")])
    events = read_events(tmp_path / "tb")

    steps, losses = steps_and_values(events, "batch/train_loss")
    assert steps == list(range(2 * N_BATCHES))
    assert losses == pytest.approx(learn.recorder.losses, rel=1e-6)
    steps, lrs = steps_and_values(events, "batch/lr_0")
    assert steps == list(range(2 * N_BATCHES))
    assert lrs == pytest.approx([1e-2] * (2 * N_BATCHES), rel=1e-6)

    for name in ("train_loss", "valid_loss", "accuracy", "time"):
        steps, values = steps_and_values(events, f"epoch/{name}")
        assert steps == [0, 1]
        assert values == pytest.approx([row[name] for row in learn.recorder.values], rel=1e-6)
    assert "epoch/epoch" not in events.Tags()["scalars"]

    assert events.Tags()["graph"]
    assert len(events.Graph().node) > 0
    assert events.Tags()["histograms"] == []  # not asked for
    assert events.Tags()["images"] == []  # the inputs are rows, not images


def test_every_n_batches_and_one_cycle_lrs_per_group(tmp_path: Path) -> None:
    learn = tiny_classifier(tmp_path)
    learn.splitter = lambda model: [list(model[0].parameters()), list(model[2].parameters())]
    learn.create_opt()
    cb = TensorBoardCallback(tmp_path / "tb", every_n_batches=3, flush_every=2, trace_model=False)
    learn.fit_one_cycle(2, slice(1e-3, 1e-2), cbs=[cb])
    events = read_events(tmp_path / "tb")

    logged = [0, 3, 6]
    steps, losses = steps_and_values(events, "batch/train_loss")
    assert steps == logged
    assert losses == pytest.approx([learn.recorder.losses[i] for i in logged], rel=1e-6)
    steps, head_lrs = steps_and_values(events, "batch/lr_1")  # the recorder keeps the last group's
    assert steps == logged
    assert head_lrs == pytest.approx([learn.recorder.lrs[i] for i in logged], rel=1e-6)
    assert len(set(head_lrs)) == 3  # the one-cycle schedule moves it
    _, body_lrs = steps_and_values(events, "batch/lr_0")
    assert body_lrs == pytest.approx([lr / 10 for lr in head_lrs], rel=1e-5)
    assert not events.Tags()["graph"]


def test_weight_histograms_when_asked(tmp_path: Path) -> None:
    learn = tiny_classifier(tmp_path)
    learn.fit(2, 1e-2, cbs=[TensorBoardCallback(tmp_path / "tb", hist_every=1)])
    events = read_events(tmp_path / "tb")
    names = [name for name, _ in learn.model.named_parameters()]
    assert sorted(events.Tags()["histograms"]) == sorted(f"weights/{name}" for name in names)
    histogram = events.Histograms("weights/0.weight")
    assert [h.step for h in histogram] == [0, 1]
    assert histogram[-1].histogram_value.num == learn.model[0].weight.numel()


class TinyConvNet(nn.Module):
    def __init__(self, fail_tracing: bool = False) -> None:
        super().__init__()
        self.fail_tracing = fail_tracing
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fail_tracing and torch.jit.is_tracing():
            raise RuntimeError("this model refuses to be traced")
        return self.head(self.conv(x).mean(dim=(2, 3)))


def image_learner(path: Path, fail_tracing: bool = False) -> Learner:
    set_seed(0)
    x, y = torch.randn(24, 3, 8, 8), torch.randint(0, 2, (24,))
    dls = DataLoaders.from_tensors((x[:16], y[:16]), (x[16:], y[16:]), bs=8, device="cpu")
    learn = Learner(dls, TinyConvNet(fail_tracing), loss_func=nn.CrossEntropyLoss(), path=path)
    learn.progress.show = False
    return learn


def test_a_grid_of_the_first_batch_of_images(tmp_path: Path) -> None:
    learn = image_learner(tmp_path)
    learn.fit(1, 1e-2, cbs=[TensorBoardCallback(tmp_path / "tb", n_images=4)])
    events = read_events(tmp_path / "tb")
    assert events.Tags()["images"] == ["images/train_batch"]
    (image,) = events.Images("images/train_batch")
    assert image.step == 0
    grid = Image.open(io.BytesIO(image.encoded_image_string))
    assert grid.size == (4 * 8, 8)  # four 8x8 images side by side
    assert events.Tags()["graph"]


def test_a_model_that_cannot_be_traced_warns_and_trains_on(tmp_path: Path) -> None:
    learn = image_learner(tmp_path, fail_tracing=True)
    with pytest.warns(UserWarning, match="could not trace TinyConvNet.*trace_model=False"):
        learn.fit(2, 1e-2, cbs=[TensorBoardCallback(tmp_path / "tb")])
    assert len(learn.recorder.values) == 2
    events = read_events(tmp_path / "tb")
    assert [s.step for s in events.Scalars("epoch/valid_loss")] == [0, 1]
    assert not events.Tags()["graph"]


def test_default_log_dir_is_a_new_run_folder_per_fit(tmp_path: Path) -> None:
    learn = tiny_classifier(tmp_path)
    cb = TensorBoardCallback(trace_model=False)
    learn.fit(1, 1e-2, cbs=[cb])
    first = cb.run_dir
    learn.fit(1, 1e-2, cbs=[cb])
    assert first is not None and cb.run_dir is not None
    assert first != cb.run_dir
    assert sorted((tmp_path / "runs").iterdir()) == sorted([first, cb.run_dir])
    assert cb.writer is None  # closed after each fit
    for run in (first, cb.run_dir):
        assert [s.step for s in read_events(run).Scalars("epoch/train_loss")] == [0]


def test_only_the_main_process_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tensorboard_module, "is_main_process", lambda: False)
    learn = tiny_classifier(tmp_path)
    cb = TensorBoardCallback(tmp_path / "tb")
    learn.fit(1, 1e-2, cbs=[cb])
    assert not (tmp_path / "tb").exists()
    assert cb.writer is None and cb.run_dir is None
    assert len(learn.recorder.values) == 1


@pytest.mark.filterwarnings("ignore:the learning-rate sweep stopped")
def test_lr_find_writes_nothing(tmp_path: Path) -> None:
    learn = tiny_classifier(tmp_path)
    learn.add_cbs([TensorBoardCallback(trace_model=False)])
    learn.lr_find(num_it=5, show_plot=False)
    assert not (tmp_path / "runs").exists()


def test_missing_tensorboard_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # its import now fails
    # a fresh copy of the module: importing it needs no tensorboard, using it does
    spec = importlib.util.spec_from_file_location("fresh_tensorboard", tensorboard_module.__file__)
    assert spec is not None and spec.loader is not None
    fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh)
    with pytest.raises(ImportError, match=r'pip install "mentor\[tensorboard\]"'):
        fresh.TensorBoardCallback()


@pytest.mark.parametrize("name", ["n_images", "hist_every", "every_n_batches", "flush_every"])
def test_counts_below_one_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match=f"{name}=0 must be at least 1"):
        TensorBoardCallback(**{name: 0})  # type: ignore[arg-type]
