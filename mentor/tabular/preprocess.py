"""Tabular preprocessing fitted on the training rows and stored as plain data.

`Categorify`, `FillMissing` and `Normalize` learn their statistics in `setup` from the
training rows only, then `apply` them to any frame (validation, test) or one row
(`apply_row`, at predict time). Their state is dicts, lists and floats, so `to_spec()` is
JSON and export never pickles. `TabularPreprocessor` runs them in order and turns a
DataFrame into prepared arrays (`ProcessedFrame`) that loaders slice, or one row into its
codes and values (`transform_row`).

String values are used exactly as they are: `adult.csv` spells its categories with a leading
space (`' Private'`), and that space is part of the category; strip the columns yourself
(`df[col] = df[col].str.strip()`) if you want predict-time rows without it to match.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from mentor.core.spec import from_spec, to_spec
from mentor.core.warn import warn
from mentor.tabular.procs import (
    Categorify,
    FillMissing,
    Normalize,
    TabularProc,
    WorkingFrame,
    WorkingRow,
    _plain,
)

__all__ = [
    "Categorify",
    "FillMissing",
    "Normalize",
    "ProcessedFrame",
    "TabularPreprocessor",
    "TabularProc",
    "WorkingFrame",
    "cont_cat_split",
]

_MAX_SHOWN = 5  # how many unseen values a warning quotes per column


@dataclass
class ProcessedFrame:
    """A frame turned into prepared tensors, sliced by the loaders.

    Args:
        cats: int64 codes, shape [n, len(cat_names)].
        conts: float32 values, shape [n, len(cont_names)].
        cat_names: categorical columns, with the `<col>_na` ones added by FillMissing.
        cont_names: continuous columns.
        unseen: column -> values that were not in the training vocabulary (coded 0).
        index: the frame's index, to map rows back.
    """

    cats: torch.Tensor
    conts: torch.Tensor
    cat_names: list[str]
    cont_names: list[str]
    unseen: dict[str, list[Any]]
    index: pd.Index

    def __len__(self) -> int:
        return int(self.cats.shape[0])


def _check_columns(df: pd.DataFrame, names: Sequence[str]) -> None:
    missing = [name for name in names if name not in df.columns]
    if missing:
        raise KeyError(
            f"column(s) {missing} not in the frame; available columns: {list(df.columns)}; "
            "fix the names passed as cat_names/cont_names or add the columns"
        )


def _to_numeric(column: pd.Series, name: str) -> pd.Series:
    """`column` as float64, infinities made missing (with a warning naming the rows); a value
    that is not a number raises, naming column, row and value."""
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return _infinite_as_missing(column.astype(np.float64), name)
    numbers = pd.to_numeric(column, errors="coerce")
    bad = numbers.isna() & column.notna()
    if bad.any():
        row = bad.to_numpy().nonzero()[0][0]
        raise ValueError(
            f"continuous column {name!r} has the non-numeric value {column.iloc[row]!r} in row "
            f"{column.index[row]!r}; clean or drop that value (NaN is filled by FillMissing), "
            "or list the column in cat_names"
        )
    return _infinite_as_missing(numbers.astype(np.float64), name)


def _infinite_as_missing(column: pd.Series, name: str) -> pd.Series:
    """`column` with +-inf replaced by NaN, which FillMissing fills like any missing value."""
    infinite = np.isinf(column.to_numpy())
    if not infinite.any():
        return column
    rows = list(column.index[infinite])
    warn(
        f"continuous column {name!r} has {len(rows)} infinite value(s), in row(s) "
        f"{rows[:_MAX_SHOWN]}{' ...' if len(rows) > _MAX_SHOWN else ''}; they are treated as "
        "missing (FillMissing fills them): clean them if they are not"
    )
    return column.mask(infinite)


def _warn_unseen(unseen: dict[str, list[Any]]) -> None:
    """Say which categorical values were not in the training vocabulary (coded 0)."""
    if unseen:
        shown = {name: values[:_MAX_SHOWN] for name, values in unseen.items()}
        count = sum(len(values) for values in unseen.values())
        warn(
            f"values not seen in training were coded 0 (unknown): {count} in column(s) "
            f"{list(unseen)}: {shown}; expected for new data, otherwise check the spelling"
        )


def _check_finite(frame: WorkingFrame) -> None:
    """Refuse continuous values still missing after the procs (no FillMissing among them)."""
    for name in frame.cont_names:
        missing = frame.df[name].isna().to_numpy()
        if missing.any():
            row = frame.df.index[missing.nonzero()[0][0]]
            raise ValueError(
                f"continuous column {name!r} is missing (NaN or infinite) in row {row!r} "
                f"and {int(missing.sum()) - 1} other row(s), and no proc fills it; add "
                "FillMissing to the procs, or clean or drop those rows"
            )


class TabularPreprocessor:
    """Fit procs on the training rows and turn any frame into prepared tensors.

    Procs run FillMissing, then Categorify, then Normalize (their `order`), whatever the
    order given, so the `<col>_na` columns get a vocabulary and Normalize sees filled values.

    Args:
        procs: instances (`FillMissing()`) or classes (`Categorify`) of the procs.
        cat_names: categorical columns.
        cont_names: continuous columns.

    After `setup`, `out_cat_names` lists the categorical columns of the result (with the
    `<col>_na` ones).

    Example:
        >>> pre = TabularPreprocessor([Categorify, FillMissing, Normalize], ["workclass"], ["age"])
        >>> pre.setup(train_df)
        >>> out = pre.transform(df)  # out.cats, out.conts, out.cat_names
    """

    def __init__(
        self, procs: Sequence[Any], cat_names: Sequence[str], cont_names: Sequence[str]
    ) -> None:
        instances: list[TabularProc] = [p() if isinstance(p, type) else p for p in procs]
        self.procs: list[TabularProc] = sorted(instances, key=lambda proc: proc.order)
        self.cat_names: list[str] = list(cat_names)
        self.cont_names: list[str] = list(cont_names)
        self.is_setup: bool = False
        self.out_cat_names: list[str] = list(cat_names)
        # the training data's mode (categorical) or median (continuous) per raw column: the
        # values a form for one row starts from (`mentor serve`'s page)
        self.defaults: dict[str, Any] = {}

    def _frame(self, df: pd.DataFrame) -> WorkingFrame:
        _check_columns(df, self.cat_names + self.cont_names)
        work = df[self.cat_names].copy()
        for name in self.cont_names:
            work[name] = _to_numeric(df[name], name)
        return WorkingFrame(work, list(self.cat_names), list(self.cont_names))

    def setup(self, train_df: pd.DataFrame) -> ProcessedFrame:
        """Fit every proc on `train_df` (the training rows only) and return it processed."""
        frame = self._frame(train_df)
        self.defaults = _typical_values(frame)
        for proc in self.procs:
            proc.setup(frame)
            proc.apply(frame)
        self.is_setup = True
        self.out_cat_names = list(frame.cat_names)
        return self._finish(frame)

    def transform(self, df: pd.DataFrame) -> ProcessedFrame:
        """Apply the fitted procs to `df`; warn about values unseen in training (coded 0)."""
        if not self.is_setup:
            raise RuntimeError(
                "TabularPreprocessor.transform before setup; call setup(train_df) first"
            )
        frame = self._frame(df)
        for proc in self.procs:
            proc.apply(frame)
        _warn_unseen(frame.unseen)
        return self._finish(frame)

    def _finish(self, frame: WorkingFrame) -> ProcessedFrame:
        _check_finite(frame)
        n_rows = len(frame.df)
        cats = np.empty((n_rows, len(frame.cat_names)), dtype=np.int64)
        for i, name in enumerate(frame.cat_names):
            column = frame.df[name]
            if not (pd.api.types.is_integer_dtype(column) or pd.api.types.is_bool_dtype(column)):
                raise ValueError(
                    f"categorical column {name!r} holds {column.dtype} values, not codes; "
                    "add Categorify to the procs"
                )
            cats[:, i] = column.to_numpy(dtype=np.int64)
        conts = np.empty((n_rows, len(frame.cont_names)), dtype=np.float32)
        for i, name in enumerate(frame.cont_names):
            conts[:, i] = frame.df[name].to_numpy(dtype=np.float32)
        return ProcessedFrame(
            cats=torch.from_numpy(cats),
            conts=torch.from_numpy(conts),
            cat_names=list(frame.cat_names),
            cont_names=list(frame.cont_names),
            unseen=dict(frame.unseen),
            index=frame.df.index,
        )

    def transform_row(self, row: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """One row (a dict or Series) through the fitted procs' `apply_row`: its codes
        (int64 `[n_cat]`) and values (float32 `[n_cont]`), as `transform` gives for a frame."""
        missing = [name for name in self.cat_names + self.cont_names if name not in row]
        if missing:
            raise KeyError(
                f"column(s) {missing} missing from the row; it has {list(row.keys())}, the "
                f"model needs cat_names {self.cat_names} and cont_names {self.cont_names}"
            )
        work = WorkingRow(
            {name: row[name] for name in self.cat_names},
            {name: _number(row[name], name) for name in self.cont_names},
            list(self.cat_names), list(self.cont_names),
        )  # fmt: skip
        for proc in self.procs:
            proc.apply_row(work)
        _warn_unseen(work.unseen)
        unfilled = [name for name in self.cont_names if math.isnan(work.conts[name])]
        if unfilled:
            raise ValueError(
                f"continuous column(s) {unfilled} missing (NaN or infinite) in the row and no "
                "proc fills them; pass numbers, or add FillMissing to the procs when training"
            )
        codes = np.array([int(work.cats[name]) for name in work.cat_names], dtype=np.int64)
        values = np.array([work.conts[name] for name in self.cont_names], dtype=np.float64)
        return codes, values.astype(np.float32)

    def to_spec(self) -> dict[str, Any]:
        """The fitted state as JSON-ready data (column names before the procs ran)."""
        return {
            "cat_names": list(self.cat_names),
            "cont_names": list(self.cont_names),
            "procs": [
                to_spec(proc, f"the tabular proc {type(proc).__name__}") for proc in self.procs
            ],
            "is_setup": self.is_setup,
            "defaults": self.defaults,
        }

    @classmethod
    def from_spec(cls, data: dict[str, Any]) -> TabularPreprocessor:
        """Rebuild a fitted preprocessor from `to_spec()` output."""
        procs = [from_spec(p, kind="tabular proc") for p in data["procs"]]
        pre = cls(procs, data["cat_names"], data["cont_names"])
        pre.is_setup = bool(data["is_setup"])
        pre.defaults = dict(data.get("defaults", {}))  # files exported before it have none
        if pre.is_setup:  # the `<col>_na` names depend only on the fitted state
            pre.out_cat_names = pre.transform(
                pd.DataFrame(columns=pre.cat_names + pre.cont_names)
            ).cat_names
        return pre


def _typical_values(frame: WorkingFrame) -> dict[str, Any]:
    """The mode of each categorical column and the median of each continuous one (None for
    a column with no values), as JSON-ready data."""
    values: dict[str, Any] = {}
    for name in frame.cat_names:
        modes = frame.df[name].dropna().mode()
        values[name] = _plain(modes.iloc[0]) if len(modes) else None
    for name in frame.cont_names:
        median = frame.df[name].median()
        values[name] = None if pd.isna(median) else float(median)
    return values


def _number(value: Any, name: str) -> float:
    """A continuous value as a float (None and NaN are missing), naming a bad one."""
    if value is None or value is pd.NA:
        return math.nan
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"continuous column {name!r} has the non-numeric value {value!r}; pass a number "
            "(or None / NaN for a missing value)"
        ) from None
    if math.isinf(number):
        warn(
            f"continuous column {name!r} is {value!r}; it is treated as missing (FillMissing "
            "fills it)"
        )
        return math.nan
    return number


def cont_cat_split(
    df: pd.DataFrame, max_card: int = 20, dep_var: str | Sequence[str] | None = None
) -> tuple[list[str], list[str]]:
    """Split the columns into continuous and categorical names (fastai's rule).

    Float columns, and integer columns with more than `max_card` unique values, are
    continuous; every other column is categorical. `dep_var` (one name or several) is left out.

    Args:
        df: the frame.
        max_card: the most unique values an integer column may have and stay categorical.
        dep_var: the target column(s), excluded from both lists.

    Returns:
        (cont_names, cat_names)
    """
    excluded = {dep_var} if isinstance(dep_var, str) else set(dep_var or ())
    cont_names: list[str] = []
    cat_names: list[str] = []
    for name in df.columns:
        if name in excluded:
            continue
        column = df[name]
        is_float = pd.api.types.is_float_dtype(column)
        many_ints = pd.api.types.is_integer_dtype(column) and column.nunique() > max_card
        (cont_names if is_float or many_ints else cat_names).append(name)
        if pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column):
            _warn_if_mostly_numbers(column, name)
    return cont_names, cat_names


def _warn_if_mostly_numbers(column: pd.Series, name: str, share: float = 0.9) -> None:
    """Warn about a text column whose values are numbers but for a few (`'forty'` among
    ages): it is categorical only because of those values."""
    present = column.dropna()
    numbers = pd.to_numeric(present, errors="coerce")
    bad = numbers.isna()
    if len(present) == 0 or not bad.any() or bad.mean() > 1 - share:
        return
    values = list(pd.unique(present[bad]))
    rows = list(present.index[bad.to_numpy()])
    warn(
        f"column {name!r} holds numbers but for {len(rows)} value(s) {values[:_MAX_SHOWN]} "
        f"(row(s) {rows[:_MAX_SHOWN]}), so it is treated as categorical; fix or drop those "
        "values to use it as a continuous column, or pass it as continuous (cont_names, "
        "--cont) once they are fixed"
    )
