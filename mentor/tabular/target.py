"""The target of tabular data: class indices with a vocabulary, or (log) float values.

`TabularTarget` is fitted on the training rows, turns a frame's target columns into one
tensor without per-row Python, and decodes a prediction back (a label; a float, with `exp`
for `log_y`). It plays the part of a target block for `Learner.predict`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from mentor.core.spec import register_spec
from mentor.data.blocks import CategoryBlock, RegressionBlock

__all__ = ["TabularTarget"]


def _block_kind(y_block: Any) -> str | None:
    """'category', 'regression' or None (infer) for a block class or instance."""
    if y_block is None:
        return None
    block_type = y_block if isinstance(y_block, type) else type(y_block)
    if issubclass(block_type, CategoryBlock):
        return "category"
    if issubclass(block_type, RegressionBlock):
        return "regression"
    raise TypeError(
        f"y_block={y_block!r} is not supported for tabular data; pass CategoryBlock "
        "(classification), RegressionBlock (float targets) or None (inferred from the dtype)"
    )


@register_spec
class TabularTarget:
    """The target columns: class indices (with `vocab`) or float32 values (maybe logged).

    Args:
        y_names: the target column(s).
        y_block: CategoryBlock, RegressionBlock (class or instance) or None: a single
            non-float column is a category (unless `log_y`), float columns are regression.
        log_y: regress on log(target) and decode with exp (targets must be positive).
    """

    needs_geometry = False  # the target protocol of blocks: nothing spatial to map back

    def __init__(self, y_names: Sequence[str], y_block: Any = None, log_y: bool = False) -> None:
        self.y_names: list[str] = list(y_names)
        self.kind: str | None = _block_kind(y_block)
        fixed = getattr(y_block, "fixed_vocab", False) and not isinstance(y_block, type)
        self.vocab: list[Any] = list(y_block.vocab) if fixed else []
        self.fixed_vocab: bool = bool(fixed)
        self.log_y = log_y

    def to_spec(self) -> dict[str, Any]:
        """The columns, kind, vocabulary and log setting (what decoding a prediction needs)."""
        return {"y_names": self.y_names, "kind": self.kind, "vocab": self.vocab,
                "log_y": self.log_y}  # fmt: skip

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> TabularTarget:
        """The target `to_spec` described (set up: its kind and vocabulary are fixed)."""
        target = cls(spec["y_names"], log_y=bool(spec["log_y"]))
        target.kind, target.vocab = spec["kind"], list(spec["vocab"])
        target.fixed_vocab = True
        return target

    def setup(self, train_df: pd.DataFrame) -> None:
        """Infer the kind (if not given) and build the vocabulary from the training rows."""
        _check_targets(train_df, self.y_names)
        if self.kind is None:
            is_float = all(pd.api.types.is_float_dtype(train_df[n]) for n in self.y_names)
            several = len(self.y_names) > 1
            self.kind = "regression" if is_float or several or self.log_y else "category"
        if self.kind == "category":
            if len(self.y_names) != 1:
                raise ValueError(
                    f"a category target is one column, got y_names={self.y_names}; "
                    "pass one name, or y_block=RegressionBlock for several float targets"
                )
            if self.log_y:
                raise ValueError("log_y=True needs float targets, but the target is a category")
            if not self.fixed_vocab:
                values = pd.unique(train_df[self.y_names[0]].dropna())
                self.vocab = sorted(values.tolist(), key=str)

    def encode(self, df: pd.DataFrame) -> torch.Tensor:
        """The targets of `df`: int64 [n] class indices or float32 [n] / [n, k] values."""
        _check_targets(df, self.y_names)
        if self.kind == "category":
            return self._encode_category(df[self.y_names[0]])
        values = np.empty((len(df), len(self.y_names)), dtype=np.float64)
        for i, name in enumerate(self.y_names):
            values[:, i] = _numbers(df[name], name)
            if self.log_y:
                values[:, i] = _log(values[:, i], df[name], name)
        tensor = torch.from_numpy(values.astype(np.float32))
        return tensor[:, 0] if len(self.y_names) == 1 else tensor

    def _encode_category(self, column: pd.Series) -> torch.Tensor:
        codes = pd.Index(self.vocab).get_indexer(column)
        bad = codes < 0
        if bad.any():
            row = int(bad.nonzero()[0][0])
            raise ValueError(
                f"label {_shown(column.iloc[row])!r} in row {column.index[row]!r} of target "
                f"{self.y_names[0]!r} is not in the vocabulary {self.vocab[:20]}; fix or drop "
                "the row, or pass y_block=CategoryBlock(vocab=[...]) with every label"
            )
        return torch.from_numpy(codes.astype(np.int64))

    def decode(self, value: torch.Tensor) -> Any:
        """A label for a class index; a float or list of floats (exp'd for `log_y`)."""
        if self.kind == "category":
            return self.vocab[int(value)]
        numbers = value.float().exp() if self.log_y else value.float()
        return numbers.item() if numbers.numel() == 1 else numbers.tolist()

    def decode_in_input(self, value: torch.Tensor, geometry: Any) -> Any:
        """The same as `decode`: a table row has nothing spatial to map back."""
        return self.decode(value)

    @property
    def n_out(self) -> int:
        """Number of model outputs: classes, or target columns."""
        return len(self.vocab) if self.kind == "category" else len(self.y_names)

    @property
    def loss_spec(self) -> tuple[str, dict[str, Any]]:
        """Cross-entropy for categories, MSE for floats (registry name, arguments)."""
        return ("CrossEntropyLossFlat", {}) if self.kind == "category" else ("MSELossFlat", {})


def _shown(value: Any) -> Any:
    """A numpy scalar as its Python value, so messages read `-2.0`, not `np.float64(-2.0)`."""
    return value.item() if isinstance(value, np.generic) else value


def _check_targets(df: pd.DataFrame, names: Sequence[str]) -> None:
    missing = [name for name in names if name not in df.columns]
    if missing:
        raise KeyError(
            f"target column(s) {missing} not in the frame; available columns: "
            f"{list(df.columns)}; fix y_names"
        )


def _numbers(column: pd.Series, name: str) -> np.ndarray:
    numbers = pd.to_numeric(column, errors="coerce")
    bad = numbers.isna().to_numpy()
    if bad.any():
        row = int(bad.nonzero()[0][0])
        value = _shown(column.iloc[row])
        raise ValueError(
            f"target {name!r} has the value {value!r} in row {column.index[row]!r}, "
            "not a number; regression targets must be numbers without NaN: drop or fix the row"
        )
    return numbers.to_numpy(dtype=np.float64)


def _log(values: np.ndarray, column: pd.Series, name: str) -> np.ndarray:
    bad = values <= 0
    if bad.any():
        row = int(bad.nonzero()[0][0])
        value = _shown(column.iloc[row])
        raise ValueError(
            f"log_y=True needs positive targets, but {name!r} is {value!r} in row "
            f"{column.index[row]!r}; drop those rows, shift the target, or use log_y=False"
        )
    return np.log(values)
