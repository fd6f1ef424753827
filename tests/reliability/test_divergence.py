"""Divergence fails loudly: `TrainingDiverged` names the epoch, batch and learning rate, the
model goes back to weights that gave a finite loss, nothing NaN is exported, the CLI exits
non-zero writing no model, and a NaN validation loss warns with the count of batches."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch

from mentor.core.paths import data_path
from mentor.core.seed import set_seed
from mentor.train import TrainingDiverged

ADULT = ["workclass", "education", "marital-status", "occupation", "relationship", "race"]
ADULT_CONT = ["age", "fnlwgt", "education-num"]


@pytest.fixture(scope="module")
def adult() -> pd.DataFrame:
    return pd.read_csv(data_path("adult_sample") / "adult.csv").iloc[:2000]


def _adult_learner(df: pd.DataFrame):
    from mentor.tabular import (
        Categorify,
        FillMissing,
        Normalize,
        TabularDataLoaders,
        tabular_learner,
    )

    set_seed(0)
    dls = TabularDataLoaders.from_df(
        df, procs=[Categorify, FillMissing, Normalize], cat_names=ADULT, cont_names=ADULT_CONT,
        y_names="salary", valid_idx=list(range(1600, 2000)), bs=64, device="cpu",
    )  # fmt: skip
    learn = tabular_learner(dls, layers=[50, 20])
    learn.progress.show = False
    return learn


def _finite(model: torch.nn.Module) -> bool:
    return all(
        bool(t.isfinite().all()) for t in model.state_dict().values() if t.is_floating_point()
    )


def test_a_huge_learning_rate_raises_and_leaves_finite_weights(
    adult: pd.DataFrame, tmp_path: Path
) -> None:
    learn = _adult_learner(adult)
    with pytest.raises(TrainingDiverged, match=r"epoch 0, batch \d+ \(learning rate [\d.e+]+\)"):
        learn.fit_one_cycle(2, 1e6)
    assert _finite(learn.model)
    assert learn.recorder.values == []  # no epoch row for the stopped fit
    learn.fit_one_cycle(1, 1e-2)  # the learner trains on from the restored weights
    assert learn.recorder.values[-1]["valid_loss"] < 0.6
    learn.export(tmp_path / "fine")  # finite weights export


def test_export_refuses_non_finite_weights(adult: pd.DataFrame, tmp_path: Path) -> None:
    learn = _adult_learner(adult)
    with torch.no_grad():
        next(learn.model.parameters()).view(-1)[0] = math.inf
    with pytest.raises(ValueError, match="export refuses a model whose weights are not finite"):
        learn.export(tmp_path / "inf")
    assert not (tmp_path / "inf.mentor").exists()


def test_the_cli_exits_non_zero_with_one_line_and_no_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mentor.cli import main

    csv = tmp_path / "adult.csv"
    pd.read_csv(data_path("adult_sample") / "adult.csv").iloc[:2000].to_csv(csv, index=False)
    out = tmp_path / "nan.mentor"
    args = ["train", "tabular", str(csv), "--target", "salary", "--epochs", "1", "--lr", "1e6",
            "--device", "cpu", "--quiet", "--seed", "0", "--out", str(out)]  # fmt: skip
    assert main(args) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    err = [line for line in lines if not line.startswith("mentor: warning: ")]
    assert len(err) == 1 and err[0].startswith("mentor: error: the train loss is"), lines
    assert not out.exists() and not (tmp_path / "report.html").exists()


def test_a_nan_validation_loss_warns_once_with_the_count() -> None:
    from tests.helpers import tiny_classifier

    learn = tiny_classifier()
    valid = learn.dls.valid.loader  # a TensorLoader: poison two items of its first batch
    valid.tensors = (valid.tensors[0].clone(), valid.tensors[1])
    valid.tensors[0][0, 0] = math.nan
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        learn.validate()
    messages = [str(w.message) for w in caught if "validation batches" in str(w.message)]
    assert messages == [f"the validation loss is nan: 1 of {len(valid)} validation batches gave a "
                        "loss that is not finite (NaN or inf); check the validation data and the "
                        "model's outputs"]  # fmt: skip


def test_the_error_names_the_tabular_columns_holding_non_finite_values(adult: pd.DataFrame) -> None:
    learn = _adult_learner(adult)
    train = getattr(learn.dls.train, "loader", learn.dls.train)
    conts = train.tensors[1]  # values reaching the model past the procs (which fill inf)
    conts[300:, ADULT_CONT.index("fnlwgt")] = math.inf
    with pytest.raises(TrainingDiverged, match=r"non-finite values: columns \['fnlwgt'\]"):
        learn.fit(1, 1e-3)
    assert _finite(learn.model)
