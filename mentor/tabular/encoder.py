"""Tabular rows -> `(x_cat, x_cont)` outside a loader, through the fitted procs (for predict)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from mentor.core.spec import register_spec
from mentor.data.encoders import Batch, item_ranges
from mentor.tabular.preprocess import TabularPreprocessor


@register_spec
class TabularEncoder:
    """Rows through a fitted `TabularPreprocessor`: one row (a dict or Series) with the
    procs' `apply_row`, many (a DataFrame, or a list of dicts) with `transform`.

    Args:
        preprocessor: the fitted procs and column names of the training data.
    """

    n_inp = 2

    def __init__(self, preprocessor: TabularPreprocessor) -> None:
        self.preprocessor = preprocessor

    def encode_one(self, item: Any, device: torch.device) -> tuple[Tensor, ...]:
        """`(x_cat [1, n_cat], x_cont [1, n_cont])` of one row."""
        if isinstance(item, pd.DataFrame):
            if len(item) != 1:
                raise ValueError(f"predict takes one row, got a frame of {len(item)}")
            item = item.iloc[0]
        if not isinstance(item, Mapping | pd.Series):
            raise TypeError(
                f"a row to predict must be a dict or a Series, got {type(item).__name__}"
            )
        cats, conts = self.preprocessor.transform_row(item)
        return torch.from_numpy(cats[None]).to(device), torch.from_numpy(conts[None]).to(device)

    def batches(self, items: Any, bs: int, device: torch.device) -> Iterator[Batch]:
        """Batches of `bs` rows in their order."""
        pre = self.preprocessor
        frame = pre.transform(as_frame(items, pre.cat_names + pre.cont_names))
        for positions in item_ranges(len(frame), bs):
            part = slice(positions[0], positions[-1] + 1)
            yield (frame.cats[part].to(device), frame.conts[part].to(device)), positions

    def geometry(self, item: Any) -> None:
        """No image: nothing to map back."""
        return None

    def to_spec(self) -> dict[str, Any]:
        """The fitted procs and the column names."""
        return {"preprocessor": self.preprocessor.to_spec()}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> TabularEncoder:
        """The encoder `to_spec` described."""
        return cls(TabularPreprocessor.from_spec(spec["preprocessor"]))


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


__all__ = ["TabularEncoder", "as_frame"]
