"""Tests for tabular preprocessing: procs fitted on training rows, date parts, column split."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
import torch

from mentor.core.paths import data_path
from mentor.tabular import (
    Categorify,
    FillMissing,
    Normalize,
    TabularPreprocessor,
    add_datepart,
    add_elapsed_times,
    cont_cat_split,
)


def _read(name: str, file: str, **kw: object) -> pd.DataFrame:
    try:
        path = data_path(name) / file
    except FileNotFoundError:
        pytest.skip(f"data set {name!r} not available (set MENTOR_DATA)")
    if not path.exists():
        pytest.skip(f"{path} not available")
    return pd.read_csv(path, **kw)  # type: ignore[call-overload]


@pytest.fixture
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    train = pd.DataFrame(
        {
            "color": ["red", "blue", "red", None],
            "size": [1.0, np.nan, 3.0, 5.0],
            "n": [10, 20, 30, 40],
        }
    )
    valid = pd.DataFrame({"color": ["green", "blue"], "size": [np.nan, 2.0], "n": [50, 60]})
    return train, valid


def _pre() -> TabularPreprocessor:
    return TabularPreprocessor([Categorify, FillMissing, Normalize], ["color"], ["size", "n"])


def test_categorify_fits_on_train_rows_only_codes_from_one(
    frames: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, valid = frames
    pre = _pre()
    out = pre.setup(train)
    assert out.cat_names == ["color", "size_na"]
    assert out.cats[:, 0].tolist() == [2, 1, 2, 0]  # blue=1, red=2, missing=0
    with pytest.warns(UserWarning, match="color.*green"):
        valid_out = pre.transform(valid)
    assert valid_out.cats[:, 0].tolist() == [0, 1]
    assert valid_out.unseen == {"color": ["green"]}
    assert valid_out.cats.dtype == torch.int64 and valid_out.conts.dtype == torch.float32


def test_ordered_categorical_keeps_its_order() -> None:
    sizes = pd.Categorical(
        ["small", "large", "medium"], categories=["small", "medium", "large"], ordered=True
    )
    pre = TabularPreprocessor([Categorify], ["size"], [])
    out = pre.setup(pd.DataFrame({"size": sizes}))
    assert out.cats[:, 0].tolist() == [1, 3, 2]


def test_fill_missing_uses_train_median_and_adds_na_column(
    frames: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, valid = frames
    fill = FillMissing()
    pre = TabularPreprocessor([fill, Categorify], ["color"], ["size", "n"])
    pre.setup(train)
    assert fill.fill_values["size"] == 3.0  # median of 1, 3, 5 (train rows only)
    assert fill.na_cols == ["size"]
    with pytest.warns(UserWarning):
        out = pre.transform(valid)
    assert out.conts[:, 0].tolist() == [3.0, 2.0]
    assert out.cats[:, 1].tolist() == [2, 1]  # size_na: True=2, False=1


def test_fill_missing_mode_and_constant() -> None:
    train = pd.DataFrame({"x": [1.0, 2.0, 2.0, np.nan]})
    for strategy, expected in [("mode", 2.0), ("constant", -1.0)]:
        fill = FillMissing(strategy=strategy, fill_value=-1.0)  # type: ignore[arg-type]
        TabularPreprocessor([fill], [], ["x"]).setup(train)
        assert fill.fill_values["x"] == expected
    with pytest.raises(ValueError, match="'mean'"):
        FillMissing(strategy="mean")  # type: ignore[arg-type]


def test_normalize_uses_train_statistics(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, valid = frames
    norm = Normalize()
    pre = TabularPreprocessor([norm], [], ["n"])
    out = pre.setup(train)
    assert norm.means["n"] == 25.0 and norm.stds["n"] == pytest.approx(train["n"].std())
    assert out.conts[:, 0].mean().item() == pytest.approx(0.0, abs=1e-6)
    assert out.conts[:, 0].std().item() == pytest.approx(1.0, abs=1e-6)
    valid_out = pre.transform(valid)
    assert valid_out.conts[0, 0].item() == pytest.approx((50 - 25) / train["n"].std(), rel=1e-6)


def test_normalize_constant_column_has_std_one() -> None:
    norm = Normalize()
    out = TabularPreprocessor([norm], [], ["x"]).setup(pd.DataFrame({"x": [4.0, 4.0]}))
    assert norm.stds["x"] == 1.0 and out.conts[:, 0].tolist() == [0.0, 0.0]


def test_missing_column_names_it_and_lists_available(
    frames: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, _ = frames
    pre = _pre()
    pre.setup(train)
    with pytest.raises(KeyError, match=r"\['n'\].*available columns: \['color', 'size'\]"):
        pre.transform(train.drop(columns="n"))


def test_non_numeric_continuous_names_column_row_value() -> None:
    ages = pd.DataFrame({"age": [str(20 + i) for i in range(20)]})
    ages.loc[17, "age"] = "abc"
    pre = TabularPreprocessor([FillMissing, Normalize], [], ["age"])
    with pytest.raises(ValueError, match=r"'age'.*'abc'.*row 17.*cat_names"):
        pre.setup(ages)


def test_round_trip_through_json_gives_identical_transforms(
    frames: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, valid = frames
    pre = _pre()
    pre.setup(train)
    text = json.dumps(pre.to_spec())
    loaded = TabularPreprocessor.from_spec(json.loads(text))
    assert loaded.out_cat_names == pre.out_cat_names == ["color", "size_na"]
    with pytest.warns(UserWarning):
        expected, got = pre.transform(valid), loaded.transform(valid)
    assert torch.equal(expected.cats, got.cats) and torch.equal(expected.conts, got.conts)


def test_add_datepart_known_dates() -> None:
    df = pd.DataFrame(
        {"saledate": ["2011-12-31 00:00:00", "2012-02-29 00:00:00", "2011-01-01 13:45:10"]}
    )
    add_datepart(df, "saledate", time=True)
    assert "saledate" not in df.columns
    end, leap, start = df.iloc[0], df.iloc[1], df.iloc[2]
    assert end["saleIs_year_end"] and end["saleDayofweek"] == 5 and end["saleDayofyear"] == 365
    assert leap["saleDayofyear"] == 60 and leap["saleIs_month_end"] and not leap["saleIs_year_end"]
    assert start["saleIs_year_start"] and start["saleWeek"] == 52 and start["saleHour"] == 13
    assert end["saleElapsed"] == pd.Timestamp("2011-12-31").timestamp()
    assert start["saleIs_quarter_start"] and end["saleIs_quarter_end"]


def test_add_datepart_bad_date_names_value() -> None:
    df = pd.DataFrame({"when": ["01-01-2011", "32-01-2011"]})
    with pytest.raises(ValueError, match="'32-01-2011'.*row 1"):
        add_datepart(df, "when", date_format="%d-%m-%Y")


def test_add_datepart_bike_sharing_dateday_is_day_first() -> None:
    df = _read("bike_sharing", "hour.csv")
    add_datepart(df, "dateday", date_format="%d-%m-%Y")
    first = df.iloc[0]
    assert (first["datedayYear"], first["datedayMonth"], first["datedayDay"]) == (2011, 1, 1)
    # the data's own month column agrees on every row (a month-first parse would not)
    assert (df["datedayMonth"] == df["month"]).all()


def test_add_elapsed_times_known_answers() -> None:
    df = pd.DataFrame(
        {
            "Store": [1, 1, 1, 1, 2, 2],
            "Date": pd.to_datetime(
                ["2015-01-04", "2015-01-01", "2015-01-02", "2015-01-03", "2015-01-01", "2015-01-03"]
            ),
            "Holiday": [False, False, True, False, False, True],
        }
    )
    out = add_elapsed_times(df, ["Holiday"], "Date", "Store")
    # store 1 by date: Jan 1, Jan 2 (holiday), Jan 3, Jan 4 -> rows 1, 2, 3, 0
    np.testing.assert_array_equal(out["AfterHoliday"], [2, np.nan, 0, 1, np.nan, 0])
    np.testing.assert_array_equal(out["BeforeHoliday"], [np.nan, 1, 0, np.nan, 2, 0])
    assert list(out.index) == list(df.index) and "AfterHoliday" not in df.columns


def test_cont_cat_split_on_adult() -> None:
    df = _read("adult_sample", "adult.csv")
    cont, cat = cont_cat_split(df, max_card=20, dep_var="salary")
    assert {"age", "fnlwgt", "education-num"} <= set(cont)
    assert {"workclass", "education", "sex"} <= set(cat)
    assert "salary" not in cont + cat


def test_adult_full_pipeline_is_fast_and_finite() -> None:
    df = _read("adult_sample", "adult.csv")
    cat_names = ["workclass", "education", "marital-status", "occupation", "relationship", "race"]
    cont_names = ["age", "fnlwgt", "education-num"]
    valid_idx = np.random.default_rng(42).permutation(len(df))[: len(df) // 5]
    train = df.drop(index=df.index[valid_idx])
    start = time.perf_counter()
    pre = TabularPreprocessor([Categorify, FillMissing, Normalize], cat_names, cont_names)
    pre.setup(train)
    out = pre.transform(df)
    seconds = time.perf_counter() - start
    assert seconds < 2.0, f"preprocessing took {seconds:.2f}s"
    assert out.cats.shape == (len(df), len(out.cat_names)) and out.conts.shape == (len(df), 3)
    assert not torch.isnan(out.conts).any() and (out.cats >= 0).all()
    assert "education-num_na" in out.cat_names  # adult_sample has missing education-num
    assert " Private" in pre.procs[1].to_spec()["vocabs"]["workclass"]  # leading space kept


def test_one_row_with_nan_and_unseen_category(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, _ = frames
    pre = _pre()
    pre.setup(train)
    row = pd.DataFrame({"color": ["purple"], "size": [np.nan], "n": [25]})
    with pytest.warns(UserWarning, match="purple"):
        out = pre.transform(row)
    assert out.cats.tolist() == [[0, 2]]  # unknown color, size_na True
    size_norm = (3.0 - np.mean([1.0, 3.0, 3.0, 5.0])) / np.std([1.0, 3.0, 3.0, 5.0], ddof=1)
    assert out.conts[0, 0].item() == pytest.approx(size_norm, rel=1e-6)  # filled, then normalized
    assert out.conts[0, 1].item() == pytest.approx(0.0)


def test_add_datepart_prefix_dayfirst_and_keep() -> None:
    df = pd.DataFrame({"when": ["13/01/2011", "01/02/2011"]})
    add_datepart(df, "when", prefix="w_", drop=False, dayfirst=True)
    assert df["w_Month"].tolist() == [1, 2] and df["w_Day"].tolist() == [13, 1]
    assert "when" in df.columns and "w_Hour" not in df.columns


def test_transform_row_gives_the_codes_and_values_of_transform() -> None:
    from tests.helpers import tabular_frame

    df = tabular_frame()
    pre = TabularPreprocessor([Categorify, FillMissing, Normalize], ["color", "size"], ["x", "z"])
    pre.setup(df.iloc[:60])
    test = df.iloc[60:].copy()
    test.loc[61, "color"] = "never seen"
    test.loc[62, "z"] = None
    test.loc[63, "size"] = None
    with pytest.warns(UserWarning):
        frame = pre.transform(test)
    for i, row in enumerate(test.to_dict("records")):
        cats, conts = pre.transform_row(row)
        assert torch.equal(torch.from_numpy(cats), frame.cats[i])
        assert torch.equal(torch.from_numpy(conts), frame.conts[i])
    assert pre.transform_row(test.iloc[1].to_dict())[0][0] == 0  # the unseen color
    with pytest.raises(KeyError, match=r"\['z'\] missing from the row"):
        pre.transform_row({"color": "red", "size": 1, "x": 0.0})
    with pytest.raises(ValueError, match="'x' has the non-numeric value 'abc'"):
        pre.transform_row({"color": "red", "size": 1, "x": "abc", "z": 1.0})
