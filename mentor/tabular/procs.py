"""The tabular procs: `Categorify`, `FillMissing`, `Normalize`, stored as plain data.

Each learns its statistics in `setup` from the training rows only, then `apply`s them to any
frame (validation, test) and `apply_row` to one row at predict time (plain Python, a few
times faster than a one-row frame; the tests check both give the same codes and values).
The state is dicts, lists and floats: each proc is registered (`mentor.core.spec`), so
`to_spec()` is JSON and export never pickles. String values are used exactly as they are
(adult.csv's `' Private'` keeps its leading space).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from mentor.core.spec import register_spec

__all__ = [
    "Categorify",
    "FillMissing",
    "Normalize",
    "TabularProc",
    "WorkingFrame",
    "WorkingRow",
]


@dataclass
class WorkingFrame:
    """The frame the procs read and change, with the column names they maintain.

    Args:
        df: a copy of the used columns, changed in place by the procs.
        cat_names: categorical columns (FillMissing appends its `<col>_na` columns).
        cont_names: continuous columns.
        unseen: column -> values not in the training vocabulary (filled by Categorify).
    """

    df: pd.DataFrame
    cat_names: list[str]
    cont_names: list[str]
    unseen: dict[str, list[Any]] = field(default_factory=dict)


@dataclass
class WorkingRow:
    """One row as the procs read and change it (the one-row counterpart of `WorkingFrame`).

    Args:
        cats: categorical column -> raw value, then code. conts: continuous column -> float.
        cat_names: categorical columns (FillMissing appends its `<col>_na` columns).
        cont_names: continuous columns.
        unseen: column -> the value if it is not in the training vocabulary (by Categorify).
    """

    cats: dict[str, Any]
    conts: dict[str, float]
    cat_names: list[str]
    cont_names: list[str]
    unseen: dict[str, list[Any]] = field(default_factory=dict)


class TabularProc(Protocol):
    """What `TabularPreprocessor` needs from a proc: fit, apply to a frame or to one row,
    and plain-data state (register the class with `register_spec` to export it)."""

    order: int

    def setup(self, frame: WorkingFrame) -> None: ...

    def apply(self, frame: WorkingFrame) -> None: ...

    def apply_row(self, row: WorkingRow) -> None: ...

    def to_spec(self) -> dict[str, Any]: ...


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON can write."""
    return value.item() if isinstance(value, np.generic) else value


def _is_missing(value: Any) -> bool:
    """None, NaN, NA or NaT: a missing value rather than an unseen one."""
    return (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and math.isnan(value))
    )


def _sorted_unique(series: pd.Series) -> list[Any]:
    values = [_plain(v) for v in pd.unique(series.dropna())]
    try:
        return sorted(values)
    except TypeError:  # mixed types (e.g. str and int) have no order; sort by text instead
        return sorted(values, key=str)


@register_spec
@dataclass
class Categorify:
    """Map each categorical column to int codes: 1..len(vocab), 0 for unknown or missing.

    Ordered pandas Categoricals keep their category order; other columns use their sorted
    unique training values. Unseen values are recorded in `WorkingFrame.unseen`.

    Args:
        vocabs: column -> list of categories (set by `setup`).
    """

    vocabs: dict[str, list[Any]] = field(default_factory=dict)
    order: int = 1
    codes: dict[str, dict[Any, int]] = field(default_factory=dict, repr=False, compare=False)

    def setup(self, frame: WorkingFrame) -> None:
        """Learn one vocabulary per categorical column from the (training) frame."""
        self.vocabs = {}
        for name in frame.cat_names:
            column = frame.df[name]
            if isinstance(column.dtype, pd.CategoricalDtype) and column.dtype.ordered:
                self.vocabs[name] = [_plain(v) for v in column.dtype.categories]
            else:
                self.vocabs[name] = _sorted_unique(column)

    def apply(self, frame: WorkingFrame) -> None:
        """Replace each categorical column by its int64 codes."""
        for name in frame.cat_names:
            if name not in self.vocabs:
                raise KeyError(
                    f"categorical column {name!r} has no vocabulary (known: "
                    f"{sorted(self.vocabs)}); call setup on a frame that has it"
                )
            column = frame.df[name]
            values = (
                column.astype(object) if isinstance(column.dtype, pd.CategoricalDtype) else column
            )
            codes = pd.Index(self.vocabs[name]).get_indexer(values).astype(np.int64)
            unknown = (codes < 0) & values.notna().to_numpy()
            if unknown.any():
                frame.unseen[name] = [_plain(v) for v in pd.unique(values[unknown])]
            frame.df[name] = codes + 1

    def apply_row(self, row: WorkingRow) -> None:
        """Replace each categorical value of one row by its code (0: unknown or missing)."""
        if len(self.codes) != len(self.vocabs):  # built once, on the first row
            self.codes = {
                name: {value: i + 1 for i, value in enumerate(vocab)}
                for name, vocab in self.vocabs.items()
            }
        for name in row.cat_names:
            if name not in self.codes:
                raise KeyError(f"categorical column {name!r} has no vocabulary in the procs")
            value = row.cats[name]
            try:  # missing values (None, NaN, NA) are in no vocabulary (setup drops them)
                row.cats[name] = self.codes[name].get(value, 0)
            except TypeError:  # nor is an unhashable value
                row.cats[name] = 0
            if row.cats[name] == 0 and not _is_missing(value):
                row.unseen[name] = [_plain(value)]

    def to_spec(self) -> dict[str, Any]:
        """The state as JSON-ready data."""
        return {"vocabs": {k: list(v) for k, v in self.vocabs.items()}}

    @classmethod
    def from_spec(cls, data: dict[str, Any]) -> Categorify:
        """Rebuild from `to_spec()` output."""
        return cls(vocabs={k: list(v) for k, v in data["vocabs"].items()})


FillStrategy = Literal["median", "mode", "constant"]


@register_spec
@dataclass
class FillMissing:
    """Fill missing continuous values with a training statistic, and flag them.

    Every continuous column gets a fill value (so a NaN in a test row is filled even where
    training had none); columns that had missing values in training also get a boolean
    `<col>_na` column, added to the categorical columns (as in fastai).

    Args:
        strategy: 'median' (default), 'mode' or 'constant' (uses `fill_value`).
        fill_value: the constant, and the fallback for a column with no training values.
        add_col: add the `<col>_na` columns.
        fill_values: column -> value (set by `setup`).
        na_cols: columns that had missing values in training (set by `setup`).
    """

    strategy: FillStrategy = "median"
    fill_value: float = 0.0
    add_col: bool = True
    fill_values: dict[str, float] = field(default_factory=dict)
    na_cols: list[str] = field(default_factory=list)
    order: int = 0

    def __post_init__(self) -> None:
        if self.strategy not in ("median", "mode", "constant"):
            raise ValueError(
                f"FillMissing strategy {self.strategy!r} is unknown; "
                "use 'median', 'mode' or 'constant'"
            )

    def _statistic(self, column: pd.Series) -> float:
        present = column.dropna()
        if self.strategy == "constant" or present.empty:
            return float(self.fill_value)
        if self.strategy == "median":
            return float(present.median())
        return float(present.mode().iloc[0])

    def setup(self, frame: WorkingFrame) -> None:
        """Learn the fill value of each continuous column and which ones had missing values."""
        self.fill_values = {name: self._statistic(frame.df[name]) for name in frame.cont_names}
        self.na_cols = [name for name in frame.cont_names if frame.df[name].isna().any()]

    def apply(self, frame: WorkingFrame) -> None:
        """Fill the continuous columns; add the `<col>_na` flags to the categorical ones."""
        for name in frame.cont_names:
            missing = frame.df[name].isna()
            if self.add_col and name in self.na_cols:
                frame.df[f"{name}_na"] = missing.to_numpy()
                if f"{name}_na" not in frame.cat_names:
                    frame.cat_names.append(f"{name}_na")
            frame.df[name] = frame.df[name].fillna(self.fill_values.get(name, self.fill_value))

    def apply_row(self, row: WorkingRow) -> None:
        """Fill one row's missing continuous values; add its `<col>_na` flags."""
        for name in row.cont_names:
            missing = math.isnan(row.conts[name])
            if self.add_col and name in self.na_cols:
                row.cats[f"{name}_na"] = missing
                if f"{name}_na" not in row.cat_names:
                    row.cat_names.append(f"{name}_na")
            if missing:
                row.conts[name] = float(self.fill_values.get(name, self.fill_value))

    def to_spec(self) -> dict[str, Any]:
        """The state as JSON-ready data."""
        return {
            "strategy": self.strategy,
            "fill_value": self.fill_value,
            "add_col": self.add_col,
            "fill_values": dict(self.fill_values),
            "na_cols": list(self.na_cols),
        }

    @classmethod
    def from_spec(cls, data: dict[str, Any]) -> FillMissing:
        """Rebuild from `to_spec()` output."""
        return cls(
            strategy=data["strategy"],
            fill_value=data["fill_value"],
            add_col=data["add_col"],
            fill_values=dict(data["fill_values"]),
            na_cols=list(data["na_cols"]),
        )


@register_spec
@dataclass
class Normalize:
    """Standardize continuous columns with the training mean and std (std 0 becomes 1).

    Args:
        means: column -> mean (set by `setup`).
        stds: column -> sample std, ddof=1 as pandas (set by `setup`).
    """

    means: dict[str, float] = field(default_factory=dict)
    stds: dict[str, float] = field(default_factory=dict)
    order: int = 2

    def setup(self, frame: WorkingFrame) -> None:
        """Learn mean and std of each continuous column from the (training) frame."""
        self.means, self.stds = {}, {}
        for name in frame.cont_names:
            column = frame.df[name].astype(np.float64)
            std = float(column.std())
            self.means[name] = float(column.mean())
            self.stds[name] = std if np.isfinite(std) and std > 0 else 1.0

    def apply(self, frame: WorkingFrame) -> None:
        """Replace each continuous column by (value - mean) / std."""
        for name in frame.cont_names:
            if name not in self.means:
                raise KeyError(
                    f"continuous column {name!r} has no statistics (known: {sorted(self.means)}); "
                    "call setup on a frame that has it"
                )
            column = frame.df[name].astype(np.float64)
            frame.df[name] = (column - self.means[name]) / self.stds[name]

    def apply_row(self, row: WorkingRow) -> None:
        """Standardize one row's continuous values."""
        for name in row.cont_names:
            row.conts[name] = (row.conts[name] - self.means[name]) / self.stds[name]

    def to_spec(self) -> dict[str, Any]:
        """The state as JSON-ready data."""
        return {"means": dict(self.means), "stds": dict(self.stds)}

    @classmethod
    def from_spec(cls, data: dict[str, Any]) -> Normalize:
        """Rebuild from `to_spec()` output."""
        return cls(means=dict(data["means"]), stds=dict(data["stds"]))
