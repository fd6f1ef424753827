"""`TabularDataLoaders`: a DataFrame preprocessed once into tensors, batched by slicing.

The procs are fitted on the training rows only; every row is then transformed once into
`x_cat` (int64 codes), `x_cont` (float32) and `y`, and the loaders yield `(x_cat, x_cont, y)`
slices of those tensors: no per-row Python in the training loop.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mentor.core.device import default_device
from mentor.data.loaders import DataLoaders, TensorLoader, rows_batch_size
from mentor.tabular.encoder import TabularEncoder
from mentor.tabular.preprocess import (
    Categorify,
    FillMissing,
    Normalize,
    ProcessedFrame,
    TabularPreprocessor,
)
from mentor.tabular.target import TabularTarget

__all__ = ["TabularData", "TabularDataLoaders", "TabularTestLoader"]

DEFAULT_PROCS = (Categorify, FillMissing, Normalize)
_MAX_SHOWN = 5  # bad rows a warning quotes


@dataclass
class TabularData:
    """The processed rows of one split (fastai's `TabularPandas`).

    Args:
        frame: the prepared `cats` / `conts` tensors and column names.
        y: the targets (None for unlabelled rows).
    """

    frame: ProcessedFrame
    y: torch.Tensor | None

    def tensors(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        """`(x_cat, x_cont[, y])` on `device`."""
        parts = (self.frame.cats, self.frame.conts, *(() if self.y is None else (self.y,)))
        return tuple(t.to(device) for t in parts)


class TabularTestLoader(TensorLoader):
    """Ordered batches of new rows; `index` holds the rows kept, `skipped` the bad ones.

    Args:
        *tensors: `(x_cat, x_cont[, y])`. bs: batch size.
        index: the frame index of the rows, in batch order.
        skipped: row index -> why the row was left out (only with `skip_bad=True`).
    """

    def __init__(
        self, *tensors: torch.Tensor, bs: int, index: pd.Index, skipped: dict[Any, str]
    ) -> None:
        super().__init__(*tensors, bs=bs, shuffle=False)
        self.index = index
        self.skipped = skipped


def _as_frame(rows: Any) -> pd.DataFrame:
    """A DataFrame from a frame, a Series or dict (one row), or a list of those."""
    if isinstance(rows, pd.DataFrame):
        return rows
    if isinstance(rows, pd.Series):
        return rows.to_frame().T.infer_objects()
    if isinstance(rows, Mapping):
        return pd.DataFrame([dict(rows)])
    if isinstance(rows, Sequence) and not isinstance(rows, str):
        if len(rows) == 1 and isinstance(rows[0], pd.DataFrame):
            return rows[0]
        if all(isinstance(r, pd.Series | Mapping) for r in rows):
            return pd.DataFrame([dict(r) for r in rows]).infer_objects()
    raise TypeError(
        f"expected a DataFrame, a Series or dict for one row, or a list of them, got "
        f"{type(rows).__name__}"
    )


def _bad_numbers(df: pd.DataFrame, cont_names: Sequence[str]) -> tuple[np.ndarray, dict[Any, str]]:
    """Rows whose continuous values are not numbers: a flag per position, and row -> reason."""
    flags = np.zeros(len(df), dtype=bool)
    reasons: dict[Any, str] = {}
    for name in cont_names:
        column = df[name]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            continue
        bad = (pd.to_numeric(column, errors="coerce").isna() & column.notna()).to_numpy()
        for position in bad.nonzero()[0]:
            value = column.iloc[position]
            reason = f"continuous column {name!r} has the non-numeric value {value!r}"
            reasons.setdefault(df.index[position], reason)
        flags |= bad
    return flags, reasons


def _decoding_state(
    pre: TabularPreprocessor,
) -> tuple[dict[str, list[Any]], dict[str, float], dict[str, float]]:
    """The Categorify vocabularies and the Normalize means and stds (empty without them)."""
    vocabs: dict[str, list[Any]] = {}
    means: dict[str, float] = {}
    stds: dict[str, float] = {}
    for proc in pre.procs:
        if isinstance(proc, Categorify):
            vocabs = proc.vocabs
        if isinstance(proc, Normalize):
            means, stds = proc.means, proc.stds
    return vocabs, means, stds


def _cardinalities(pre: TabularPreprocessor, train: ProcessedFrame) -> dict[str, int]:
    """Codes per categorical column, the 0 code (unknown) included."""
    vocabs: dict[str, list[Any]] = {}
    for proc in pre.procs:
        if isinstance(proc, Categorify):
            vocabs = proc.vocabs
    sizes = {}
    for i, name in enumerate(train.cat_names):
        if name in vocabs:
            sizes[name] = len(vocabs[name]) + 1
        else:  # integer codes given without Categorify
            sizes[name] = int(train.cats[:, i].max()) + 1 if len(train) else 1
    return sizes


class TabularDataLoaders(DataLoaders):
    """Training and validation batches `(x_cat [B, n_cat] int64, x_cont [B, n_cont], y)`.

    Build it with `from_df` or `from_csv`. `preprocessor` holds the fitted procs, `target`
    the target's vocabulary (`vocab`) or its log setting; `test_dl(df)` prepares new rows.

    Args:
        train, valid: the processed splits. preprocessor: fitted. target: fitted.
        bs, valid_bs: batch sizes. shuffle: shuffle training batches. device: where tensors live.
    """

    n_inp = 2

    def __init__(
        self,
        train: TabularData,
        valid: TabularData | None,
        preprocessor: TabularPreprocessor,
        target: TabularTarget,
        bs: int = 64,
        valid_bs: int | None = None,
        shuffle: bool = True,
        device: torch.device | str | None = None,
    ) -> None:
        dev = torch.device(device) if device is not None else default_device()
        self.train_data, self.valid_data = train, valid
        self.preprocessor, self.target = preprocessor, target
        self.bs: int = bs
        self.valid_bs: int = valid_bs or 2 * bs
        drop_last = shuffle and len(train.frame) > bs
        train_dl = TensorLoader(*train.tensors(dev), bs=bs, shuffle=shuffle, drop_last=drop_last)
        valid_dl = None
        if valid is not None and len(valid.frame):
            valid_dl = TensorLoader(*valid.tensors(dev), bs=self.valid_bs)
        super().__init__(train_dl, valid_dl, device=dev)
        self.cat_names: list[str] = list(train.frame.cat_names)
        self.cont_names: list[str] = list(train.frame.cont_names)
        self.cardinalities: dict[str, int] = _cardinalities(preprocessor, train.frame)

    @property
    def procs(self) -> list[Any]:
        """The fitted procs, in the order they run."""
        return list(self.preprocessor.procs)

    application = "tabular"

    def describe(self) -> list[str]:
        """The columns and the procs."""
        return [
            f"cat_names: {self.cat_names}",
            f"cont_names: {self.cont_names}",
            f"y_names: {self.y_names}",
            f"procs: {[type(p).__name__ for p in self.procs]}",
        ]

    def item_encoder(self) -> TabularEncoder:
        """Rows through the fitted procs, for export and prediction."""
        return TabularEncoder(self.preprocessor)

    @property
    def target_block(self) -> TabularTarget:
        """The target, which decodes predictions (for `Learner.predict`)."""
        return self.target

    @property
    def vocab(self) -> list[Any]:
        """The target's classes ([] for regression)."""
        return list(self.target.vocab)

    @property
    def c(self) -> int:
        """Model outputs: number of classes, or of regression targets."""
        return self.target.n_out

    @property
    def loss_spec(self) -> tuple[str, dict[str, Any]]:
        """Cross-entropy for a category target, MSE for float targets."""
        return self.target.loss_spec

    @property
    def y_names(self) -> list[str]:
        """The target column(s)."""
        return list(self.target.y_names)

    def show_batch(self, max_n: int = 10) -> pd.DataFrame:
        """The first `max_n` training rows decoded back (categories, raw values, labels).

        Codes become their category ('#na#' for 0, unknown or missing), normalized values
        their original scale and the target its label or value, as fastai's `show_batch`.
        """
        return self.decode_rows(range(min(max_n, self.train.loader.n)), split="train")  # type: ignore[attr-defined]

    def show_results(self, batch: Sequence[Any], preds: Sequence[Any], max_n: int = 10) -> Any:
        """The first `max_n` rows of `batch` decoded back, with the decoded predictions."""
        table = self._decoded_frame(*(t[:max_n].cpu() for t in batch[:3]))
        table["prediction"] = self.decode_preds(preds[: len(table)])
        return table

    def decode_rows(self, indices: Iterable[int], split: str = "valid") -> pd.DataFrame:
        """Rows `indices` of the `split` set ('train' or 'valid') decoded back, as
        `show_batch` shows them (reports use it to show the rows with the highest losses)."""
        loader = self.train if split == "train" else self.valid
        if loader is None:
            raise ValueError(f"no {split!r} set in these TabularDataLoaders")
        index = torch.as_tensor(list(indices), dtype=torch.long)
        cats, conts, y = (t.cpu()[index] for t in loader.loader.tensors)  # type: ignore[attr-defined]
        return self._decoded_frame(cats, conts, y)

    def _decoded_frame(self, cats: torch.Tensor, conts: torch.Tensor, y: Any) -> pd.DataFrame:
        vocabs, means, stds = _decoding_state(self.preprocessor)
        out = pd.DataFrame(index=range(len(cats)))
        for i, name in enumerate(self.cat_names):
            vocab = ["#na#", *vocabs[name]] if name in vocabs else None
            codes = cats[:, i].tolist()
            out[name] = [vocab[c] for c in codes] if vocab is not None else codes
        for i, name in enumerate(self.cont_names):
            out[name] = conts[:, i].double().numpy() * stds.get(name, 1.0) + means.get(name, 0.0)
        if y is not None:
            for name, values in zip(self.y_names, y.reshape(len(y), -1).T, strict=True):
                out[name] = [self.target.decode(v) for v in values]
        return out

    def test_dl(
        self, items: Any, with_labels: bool = False, bs: int | None = None, skip_bad: bool = False
    ) -> TabularTestLoader:
        """A loader over new rows with the fitted procs (no refitting).

        Values unseen in training are coded 0 (with a warning naming them) and missing values
        are filled with the training statistics. A non-numeric value in a continuous column
        fails naming the row, the column and the value, unless `skip_bad=True`: then the
        other rows are kept, and `dl.skipped` maps each left-out row to the reason (and a
        warning says so). `dl.index` lists the rows predicted, in order.

        Args:
            items: a DataFrame, a Series or dict (one row), or a list of them.
            with_labels: the rows carry the target columns; batches then end with `y`.
            bs: batch size (default the validation batch size).
            skip_bad: leave out rows with non-numeric continuous values instead of failing.

        Example:
            >>> preds, _ = learn.get_preds(dl=dls.test_dl(test_df))
        """
        df = _as_frame(items)
        used = self.preprocessor.cat_names + self.preprocessor.cont_names
        missing = [name for name in used + (self.y_names if with_labels else []) if name not in df]
        if missing:
            raise KeyError(
                f"column(s) {missing} missing from the rows; available columns: "
                f"{list(df.columns)}; the data was built with cat_names "
                f"{self.preprocessor.cat_names} and cont_names {self.preprocessor.cont_names}"
            )
        flags, bad = _bad_numbers(df, self.preprocessor.cont_names)
        if bad and not skip_bad:
            row, reason = next(iter(bad.items()))
            raise ValueError(
                f"row {row!r}: {reason}; fix or drop it, or pass skip_bad=True to predict the "
                f"other rows ({int(flags.sum())} bad row(s) in all)"
            )
        if bad:
            shown = dict(list(bad.items())[:_MAX_SHOWN])
            warnings.warn(
                f"left out {int(flags.sum())} row(s) with non-numeric continuous values "
                f"(see dl.skipped): {shown}",
                stacklevel=2,
            )
            df = df[~flags]
        frame = self.preprocessor.transform(df)
        y = self.target.encode(df) if with_labels else None
        tensors = TabularData(frame, y).tensors(self.device)
        return TabularTestLoader(*tensors, bs=bs or self.valid_bs, index=df.index, skipped=bad)

    @classmethod
    def from_df(
        cls,
        df: pd.DataFrame,
        path: str | Path = ".",
        procs: Sequence[Any] = DEFAULT_PROCS,
        cat_names: Sequence[str] = (),
        cont_names: Sequence[str] = (),
        y_names: str | Sequence[str] = (),
        y_block: Any = None,
        splitter: Any = None,
        valid_idx: Sequence[int] | None = None,
        bs: int | None = None,
        valid_bs: int | None = None,
        shuffle: bool = True,
        device: torch.device | str | None = None,
        log_y: bool = False,
    ) -> TabularDataLoaders:
        """Loaders from a DataFrame: procs fitted on the training rows, all rows prepared once.

        Args:
            df: the table. path: kept for fastai compatibility (unused).
            procs: proc classes or instances (Categorify, FillMissing, Normalize).
            cat_names, cont_names: categorical and continuous columns.
            y_names: the target column(s).
            y_block: CategoryBlock, RegressionBlock or None (a non-float target is a
                category, unless `log_y`).
            splitter: a splitter called on `df` (e.g. `RandomSplitter(0.2, seed=42)`), or
                valid_idx: positions of the validation rows. Neither: no validation set.
            bs: training batch size (default: from the number of training rows, 64 to 1024;
                see `mentor.data.loaders.rows_batch_size`); valid_bs: validation batch size
                (2 * bs).
            shuffle: shuffle training batches (True). device: default CUDA when available.
            log_y: regress on log(target); `predict` decodes with exp.

        Example:
            >>> dls = TabularDataLoaders.from_df(df, cat_names=["workclass"],
            ...     cont_names=["age"], y_names="salary", splitter=RandomSplitter(0.2, seed=42))
        """
        names = [y_names] if isinstance(y_names, str) else list(y_names)
        if not names:
            raise ValueError("from_df needs y_names, the target column(s), e.g. y_names='salary'")
        train_idx, valid_idx = _split(df, splitter, valid_idx)
        train_df, valid_df = df.iloc[train_idx], df.iloc[valid_idx]
        pre = TabularPreprocessor(procs, cat_names, cont_names)
        target = TabularTarget(names, y_block, log_y)
        target.setup(train_df)
        train = TabularData(pre.setup(train_df), target.encode(train_df))
        valid = TabularData(pre.transform(valid_df), target.encode(valid_df)) if valid_idx else None
        bs = rows_batch_size(len(train_idx)) if bs is None else bs
        return cls(train, valid, pre, target, bs, valid_bs, shuffle, device)

    @classmethod
    def from_csv(cls, csv: str | Path, **kwargs: Any) -> TabularDataLoaders:
        """`from_df(pd.read_csv(csv), **kwargs)`.

        Example:
            >>> dls = TabularDataLoaders.from_csv("adult.csv", y_names="salary", cat_names=[...])
        """
        return cls.from_df(pd.read_csv(csv), **kwargs)


def _split(
    df: pd.DataFrame, splitter: Any, valid_idx: Sequence[int] | None
) -> tuple[list[int], list[int]]:
    """Train and valid row positions from a splitter or explicit validation positions."""
    if splitter is not None and valid_idx is not None:
        raise ValueError("pass splitter or valid_idx, not both")
    if splitter is not None:
        train, valid = splitter(df)
        return list(train), list(valid)
    valid = sorted(int(i) for i in (valid_idx or ()))
    if valid and (valid[0] < 0 or valid[-1] >= len(df)):
        raise ValueError(
            f"valid_idx must be row positions in 0..{len(df) - 1}, got {valid[0]}..{valid[-1]}"
        )
    keep = np.ones(len(df), dtype=bool)
    keep[valid] = False
    return keep.nonzero()[0].tolist(), valid
