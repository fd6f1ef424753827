"""`learn.compile()`: the passes run through torch.compile, everything else through the plain
model; exports and checkpoints are those of the uncompiled learner.

The tests compile with the `aot_eager` backend (dynamo and autograd tracing, no C++ build),
which takes a second; `python -m bench.compile` measures the default backend."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd
import pytest
import torch

from mentor.core.device import uncompiled
from mentor.core.seed import set_seed
from mentor.inference.predictor import Predictor
from mentor.tabular import Categorify, Normalize, TabularDataLoaders, tabular_learner
from mentor.train import Callback, Learner

BACKEND = "aot_eager"


def table() -> pd.DataFrame:
    gen = torch.Generator().manual_seed(0)
    n = 200
    x = torch.randn(n, generator=gen)
    color = torch.randint(0, 3, (n,), generator=gen)
    label = (x + (color == 1).float() > 0.5).long()
    return pd.DataFrame({
        "x": x.numpy(),
        "color": [["red", "green", "blue"][i] for i in color.tolist()],
        "label": [["no", "yes"][i] for i in label.tolist()],
    })  # fmt: skip


def learner() -> Learner:
    set_seed(0)
    dls = TabularDataLoaders.from_df(
        table(), procs=[Categorify, Normalize], cat_names=["color"], cont_names=["x"],
        y_names="label", valid_idx=list(range(160, 200)), bs=32, device="cpu",
    )  # fmt: skip
    learn = tabular_learner(dls, layers=[16, 8])
    learn.progress.show = False
    return learn


def members(file: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(file) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


class Calls(Callback):
    """Which module the training and validation passes went through."""

    def __init__(self) -> None:
        super().__init__()
        self.modules: set[str] = set()

    def after_pred(self) -> None:
        module = self.learn._forward_module()
        self.modules.add(type(module).__name__)


def test_a_compiled_learner_trains_like_the_plain_one_and_exports_the_same_file(
    tmp_path: Path,
) -> None:
    plain, compiled = learner(), learner()
    compiled.compile(backend=BACKEND)
    calls = Calls()
    for learn in (plain, compiled):
        set_seed(1)
        learn.fit_one_cycle(2, 1e-2, cbs=[calls] if learn is compiled else None)
    assert calls.modules == {"OptimizedModule"}
    assert type(compiled.model).__name__ == "TabularModel"  # the plain module is kept
    for name, value in plain.model.state_dict().items():
        torch.testing.assert_close(compiled.model.state_dict()[name], value, atol=1e-5, rtol=0)
    plain_file = plain.export(tmp_path / "plain.mentor")
    compiled_file = compiled.export(tmp_path / "compiled.mentor")
    rows = table().iloc[160:].drop(columns="label").to_dict("records")
    expected = plain.get_preds()[0]
    for file in (plain_file, compiled_file):
        predictor = Predictor.load(file)
        probs = torch.stack([predictor.predict(row)[1] for row in rows])
        torch.testing.assert_close(probs, expected, atol=1e-5, rtol=0)
    compiled.uncompile()
    again = compiled.export(tmp_path / "uncompiled.mentor")
    assert members(again) == members(compiled_file)  # the same files (the zip dates differ)


def test_a_model_compiled_by_hand_exports_without_the_orig_mod_prefix(tmp_path: Path) -> None:
    """The issue's report: `learn.model = torch.compile(learn.model)` exported weight names
    with `_orig_mod.`, and the file did not load."""
    learn = learner()
    learn.fit(1, 1e-2)
    expected = learn.get_preds()[0]
    learn.model = torch.compile(learn.model, backend=BACKEND)  # type: ignore[assignment]
    assert uncompiled(learn.model) is not learn.model
    file = learn.export(tmp_path / "by_hand.mentor")
    learn.save("saved")
    predictor = Predictor.load(file)
    rows = table().iloc[160:].drop(columns="label").to_dict("records")
    probs = torch.stack([predictor.predict(row)[1] for row in rows])
    torch.testing.assert_close(probs, expected, atol=1e-5, rtol=0)
    fresh = learner()
    fresh.load("saved")
    assert set(fresh.model.state_dict()) == set(uncompiled(learn.model).state_dict())


def test_a_learner_given_a_compiled_model_keeps_the_plain_one() -> None:
    learn = learner()
    model = learn.model
    again = Learner(learn.dls, torch.compile(model, backend=BACKEND))
    assert again.model is model and again.compiled is not None


def test_lr_find_freeze_and_uncompile_use_the_plain_model() -> None:
    learn = learner()
    learn.compile(backend=BACKEND)
    compiled = learn.compiled
    calls = Calls()
    learn.add_cbs([calls])
    learn.lr_find(num_it=10, show_plot=False)
    assert calls.modules == {"TabularModel"} and learn.compiled is compiled
    learn.uncompile()
    assert learn.compiled is None and learn._forward_module() is learn.model


@pytest.mark.parametrize("bad", [{"mode": "fastest"}])
def test_a_bad_compile_option_names_itself(bad: dict[str, str]) -> None:
    with pytest.raises(RuntimeError, match="fastest"):
        learner().compile(**bad)
