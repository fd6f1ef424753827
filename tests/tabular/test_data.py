"""TabularDataLoaders, tabular_learner and predict on small generated frames."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from mentor.data.blocks import CategoryBlock, RegressionBlock
from mentor.data.splitters import RandomSplitter
from mentor.tabular import Categorify, FillMissing, TabularDataLoaders, tabular_learner
from mentor.train import accuracy

torch.set_num_threads(1)


def _frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    color = rng.choice(["red", "green", "blue"], n)
    size = rng.normal(10.0, 3.0, n)
    label = np.where((color == "red") | (size > 11), "yes", "no")
    price = np.exp(1.0 + 0.1 * size) * np.where(color == "red", 2.0, 1.0)
    return pd.DataFrame({"color": color, "size": size, "label": label, "price": price})


def _dls(df: pd.DataFrame, **kw: object) -> TabularDataLoaders:
    args: dict[str, object] = dict(
        cat_names=["color"], cont_names=["size"], y_names="label", bs=16, device="cpu"
    )
    args.update(kw)
    return TabularDataLoaders.from_df(df, **args)  # type: ignore[arg-type]


def test_procs_are_fitted_on_the_training_rows_only() -> None:
    df = _frame()
    df.loc[5, "color"] = "purple"  # only in the validation row 5
    df.loc[5, "size"] = 1000.0
    with pytest.warns(UserWarning, match="purple"):
        dls = _dls(df, valid_idx=[5, 6, 7])
    vocab = dls.preprocessor.procs[1].vocabs["color"]  # type: ignore[attr-defined]
    assert "purple" not in vocab
    assert dls.valid_data is not None
    assert int(dls.valid_data.frame.cats[0, 0]) == 0
    train_mean = df.drop(index=[5, 6, 7])["size"].mean()
    normalize = dls.preprocessor.procs[2]
    assert normalize.means["size"] == pytest.approx(train_mean)  # type: ignore[attr-defined]


def test_batches_shapes_dtypes_and_category_target() -> None:
    dls = _dls(_frame(), splitter=RandomSplitter(0.25, seed=1))
    x_cat, x_cont, y = next(iter(dls.train))
    assert x_cat.shape == (16, 1) and x_cat.dtype == torch.int64
    assert x_cont.shape == (16, 1) and x_cont.dtype == torch.float32
    assert y.shape == (16,) and y.dtype == torch.int64
    assert dls.vocab == ["no", "yes"] and dls.c == 2
    assert dls.loss_spec[0] == "CrossEntropyLossFlat"
    assert dls.valid is not None and sum(len(b[0]) for b in dls.valid) == 50


def test_regression_targets_one_or_several() -> None:
    df = _frame()
    dls = _dls(df, y_names="price", valid_idx=range(20))
    assert dls.c == 1 and dls.loss_spec[0] == "MSELossFlat" and dls.vocab == []
    df["other"] = df["price"] * 2
    several = _dls(df, y_names=["price", "other"], y_block=RegressionBlock, valid_idx=[0])
    assert several.c == 2 and next(iter(several.train))[2].shape == (16, 2)
    ints = _dls(df.assign(label=(df["label"] == "yes").astype(int)), y_block=CategoryBlock)
    assert ints.vocab == [0, 1]


def test_log_y_round_trip_and_bad_value() -> None:
    df = _frame()
    dls = _dls(df, y_names="price", log_y=True, valid_idx=range(20))
    y = next(iter(dls.valid))[2]  # type: ignore[arg-type]
    assert torch.allclose(y, torch.tensor(np.log(df["price"][:20].to_numpy()), dtype=torch.float32))
    assert dls.target.decode(y[:1]) == pytest.approx(df["price"][0], rel=1e-5)
    df.loc[3, "price"] = -2.0
    with pytest.raises(ValueError, match=r"'price' is -2.0 in row 3"):
        _dls(df, y_names="price", log_y=True)


def test_errors_name_the_offending_value() -> None:
    df = _frame()
    with pytest.raises(KeyError, match="available columns"):
        _dls(df, cont_names=["sise"])
    bad = df.astype({"size": object})
    bad.loc[7, "size"] = "big"
    with pytest.raises(ValueError, match="'size'.*'big'"):
        _dls(bad)
    dls = _dls(df)
    with pytest.raises(KeyError, match=r"\['color'\] missing.*available columns"):
        dls.test_dl(df.drop(columns="color"))


def test_test_dl_unseen_category_nan_and_bad_rows() -> None:
    df = _frame()
    dls = _dls(df, procs=[Categorify, FillMissing])
    test = df.iloc[:4].copy().astype({"size": object})
    test.loc[0, "color"] = "purple"
    test.loc[1, "size"] = np.nan
    test.loc[2, "size"] = "n/a"
    with pytest.raises(ValueError, match=r"row 2: continuous column 'size'.*'n/a'.*skip_bad"):
        dls.test_dl(test)
    with pytest.warns(UserWarning):
        dl = dls.test_dl(test, skip_bad=True)
    assert list(dl.index) == [0, 1, 3] and list(dl.skipped) == [2]
    x_cat, x_cont = next(iter(dl))
    assert int(x_cat[0, 0]) == 0
    assert float(x_cont[1, 0]) == pytest.approx(df["size"].median())


def test_learner_predict_on_dict_series_and_frame() -> None:
    df = _frame(400)
    dls = _dls(df, splitter=RandomSplitter(0.2, seed=0))
    learn = tabular_learner(dls, layers=[16], metrics=accuracy, emb_szs={"color": 3})
    assert learn.model.embeds[0].weight.shape == (4, 3)  # type: ignore[index]
    learn.fit_one_cycle(2, 1e-2)
    row = df.iloc[0]
    label, index, probs = learn.predict(row)
    assert label in ("no", "yes") and label == dls.vocab[int(index)]
    assert probs.shape == (2,) and float(probs.sum()) == pytest.approx(1.0)
    assert learn.predict(dict(row))[0] == label
    assert learn.predict(df.iloc[:1])[0] == label
    preds, targets = learn.get_preds(dl=dls.test_dl(df.iloc[:50]))
    assert preds.shape == (50, 2) and targets is None
    labelled = learn.get_preds(dl=dls.test_dl(df.iloc[:50], with_labels=True))
    assert labelled[1].shape == (50,)


def test_regression_predict_decodes_log_with_exp() -> None:
    df = _frame(400)
    dls = _dls(df, y_names="price", log_y=True, splitter=RandomSplitter(0.2, seed=0))
    learn = tabular_learner(dls, layers=[16])
    learn.fit_one_cycle(1, 1e-2)
    value, raw, _ = learn.predict(df.iloc[3])
    assert isinstance(value, float)
    assert value == pytest.approx(math.exp(float(raw)), rel=1e-5)


def test_tabular_learner_rejects_bad_config() -> None:
    dls = _dls(_frame())
    with pytest.raises(KeyError, match="dropout"):
        tabular_learner(dls, config={"dropout": 0.1})


def test_show_batch_decodes_codes_values_and_labels() -> None:
    df = _frame()
    dls = _dls(df, valid_idx=range(50))
    shown = dls.show_batch(max_n=3)
    assert list(shown["color"]) == list(df["color"][50:53])
    assert np.allclose(shown["size"], df["size"][50:53], rtol=1e-5)
    assert list(shown["label"]) == list(df["label"][50:53])


def test_from_csv_and_bad_valid_idx(tmp_path) -> None:
    df = _frame()
    df.to_csv(tmp_path / "t.csv", index=False)
    dls = TabularDataLoaders.from_csv(
        tmp_path / "t.csv", cat_names=["color"], cont_names=["size"], y_names="label",
        valid_idx=[0, 1], device="cpu",
    )  # fmt: skip
    assert dls.valid is not None and len(dls.valid_data.frame) == 2  # type: ignore[union-attr]
    with pytest.raises(ValueError, match=r"valid_idx must be row positions in 0\.\.199"):
        _dls(df, valid_idx=[500])


def test_predict_non_numeric_continuous_value_names_column_and_value() -> None:
    df = _frame()
    learn = tabular_learner(_dls(df), layers=[8])
    row = dict(df.iloc[0])
    row["size"] = "large"
    with pytest.raises(ValueError, match=r"'size'.*'large'"):
        learn.predict(row)


def test_the_default_batch_size_grows_with_the_training_rows() -> None:
    rng = np.random.default_rng(0)
    for n, bs in ((1_000, 64), (20_000, 256)):
        df = pd.DataFrame(
            {"x": rng.normal(size=n), "c": rng.integers(0, 3, n), "y": rng.integers(0, 2, n)}
        )
        dls = TabularDataLoaders.from_df(
            df, cat_names=["c"], cont_names=["x"], y_names="y",
            splitter=RandomSplitter(0.2, seed=0), device="cpu",
        )  # fmt: skip
        assert dls.bs == bs and dls.valid_bs == 2 * bs
        assert len(dls.train) == int(0.8 * n) // bs  # the last partial batch dropped
    explicit = TabularDataLoaders.from_df(df, cont_names=["x"], y_names="y", bs=32, device="cpu")
    assert explicit.bs == 32
