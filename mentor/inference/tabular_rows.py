"""One tabular row through the fitted procs with plain Python and numpy (no DataFrame).

`TabularRowEncoder` reads the JSON state of a `TabularPreprocessor` (`to_dict()`) and applies
FillMissing, Categorify and Normalize to a dict, giving the same codes and values as
`TabularPreprocessor.transform` on a one-row frame, a few times faster.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

PROC_ORDER = ("FillMissing", "Categorify", "Normalize")  # the procs' `order`


def _number(value: Any, name: str) -> float:
    """A continuous value as float64 (None and NaN are missing), naming a bad one."""
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"continuous column {name!r} has the non-numeric value {value!r}; pass a number "
            "(or None / NaN for a missing value)"
        ) from None


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


class TabularRowEncoder:
    """The fitted procs of `pipeline.json` applied to one row (a dict or Series).

    Args:
        state: `TabularPreprocessor.to_dict()` output.
    """

    def __init__(self, state: dict[str, Any]) -> None:
        self.cat_names: list[str] = list(state["cat_names"])
        self.cont_names: list[str] = list(state["cont_names"])
        self.used_names = self.cat_names + self.cont_names
        self.procs = sorted(state["procs"], key=lambda p: PROC_ORDER.index(p["type"]))
        self.codes: dict[str, dict[Any, int]] = {}
        for proc in self.procs:
            if proc["type"] == "Categorify":
                self.codes = {
                    name: {value: i + 1 for i, value in enumerate(vocab)}
                    for name, vocab in proc["vocabs"].items()
                }

    def encode(self, row: Mapping[str, Any] | pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """`(codes int64 [n_cat], values float32 [n_cont])` of one row."""
        missing = [name for name in self.used_names if name not in row]
        if missing:
            raise KeyError(
                f"column(s) {missing} missing from the row; it has {list(row.keys())}, the "
                f"model needs cat_names {self.cat_names} and cont_names {self.cont_names}"
            )
        cats: dict[str, Any] = {name: row[name] for name in self.cat_names}
        conts = {name: _number(row[name], name) for name in self.cont_names}
        cat_order = list(self.cat_names)
        for proc in self.procs:
            if proc["type"] == "FillMissing":
                self._fill(proc, cats, conts, cat_order)
            elif proc["type"] == "Categorify":
                for name in cat_order:
                    cats[name] = self._code(name, cats[name])
            else:
                for name in self.cont_names:
                    conts[name] = (conts[name] - proc["means"][name]) / proc["stds"][name]
        codes = np.array([int(cats[name]) for name in cat_order], dtype=np.int64)
        values = np.array([conts[name] for name in self.cont_names], dtype=np.float64)
        return codes, values.astype(np.float32)

    @staticmethod
    def _fill(
        proc: dict[str, Any], cats: dict[str, Any], conts: dict[str, float], cat_order: list[str]
    ) -> None:
        for name in conts:
            is_missing = math.isnan(conts[name])
            if proc["add_col"] and name in proc["na_cols"]:
                cats[f"{name}_na"] = is_missing
                if f"{name}_na" not in cat_order:
                    cat_order.append(f"{name}_na")
            if is_missing:
                conts[name] = float(proc["fill_values"].get(name, proc["fill_value"]))

    def _code(self, name: str, value: Any) -> int:
        if name not in self.codes:
            raise KeyError(f"categorical column {name!r} has no vocabulary in the exported procs")
        if _missing(value):
            return 0
        try:
            return self.codes[name].get(value, 0)
        except TypeError:  # an unhashable value is not in any vocabulary
            return 0


def as_frame(rows: Any, needed: Sequence[str]) -> pd.DataFrame:
    """A DataFrame from a frame, a dict or Series (one row), or a list of them; the columns
    in `needed` must be there."""
    if isinstance(rows, pd.DataFrame):
        df = rows
    elif isinstance(rows, Mapping | pd.Series):
        df = pd.DataFrame([dict(rows)])
    elif isinstance(rows, Sequence) and not isinstance(rows, str):
        df = pd.DataFrame([dict(r) for r in rows])
    else:
        raise TypeError(
            f"tabular rows must be a DataFrame, a dict or Series, or a list of them; got "
            f"{type(rows).__name__}"
        )
    missing = [name for name in needed if name not in df.columns]
    if missing:
        raise KeyError(f"column(s) {missing} missing from the rows; they have {list(df.columns)}")
    return df
