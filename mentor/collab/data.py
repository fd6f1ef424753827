"""`CollabDataLoaders`: a ratings table (user, item, rating) as batches of index tensors.

Users and items are mapped to indices once, with pandas (no per-row Python); index 0 is
reserved for users and items unseen in the training split. Batches are `(x, y)` with `x`
the `[B, 2]` int64 (user, item) indices and `y` the `[B]` float32 ratings, like fastai's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mentor.collab.encoder import CollabEncoder
from mentor.core.device import default_device
from mentor.data.blocks import RegressionBlock
from mentor.data.loaders import DataLoaders, TensorLoader

UNKNOWN = "#na#"


def _column(df: pd.DataFrame, name: Hashable | None, position: int, role: str) -> Hashable:
    """The column called `name`, or the one at `position` when `name` is None."""
    if name is None:
        if df.shape[1] <= position:
            raise ValueError(
                f"the ratings table has {df.shape[1]} columns {list(df.columns)}; it needs "
                f"user, item and rating columns, or pass {role}_name"
            )
        return df.columns[position]
    if name not in df.columns:
        raise KeyError(
            f"{role} column {name!r} is not in the ratings table; the columns are "
            f"{list(df.columns)}; pass {role}_name= one of them"
        )
    return name


def _vocab(values: pd.Series) -> list[Any]:
    """`[UNKNOWN, *sorted unique values]`: position i is the name of index i."""
    uniques = pd.unique(values.dropna())
    with contextlib.suppress(TypeError):  # mixed types cannot be sorted: keep first-seen order
        uniques = np.sort(uniques)
    return [UNKNOWN, *uniques.tolist()]


def encode_values(values: Any, vocab: Sequence[Any]) -> torch.Tensor:
    """Indices of `values` in `vocab` (a `classes` list, `UNKNOWN` first); unseen -> 0.

    Args:
        values: a sequence, array or Series of user or item names.
        vocab: the names, index 0 being the unknown placeholder.

    Example:
        >>> encode_values([10, 99], ["#na#", 3, 10])
        tensor([2, 0])
    """
    index = pd.Index(list(vocab[1:]))
    positions = index.get_indexer(pd.Index(np.asarray(values).ravel()))
    return torch.from_numpy(positions.astype(np.int64) + 1)


class CollabDataLoaders(DataLoaders):
    """Training and validation batches of `(x [B, 2] int64 (user, item), y [B] float32)`.

    Build it with `from_df` or `from_csv`. `classes[user_name]` and `classes[item_name]` are
    the vocabularies (plain lists, index 0 being `'#na#'` for unknown), kept for export.

    Args:
        train, valid: batch iterables. classes: `{user_name: [...], item_name: [...]}`.
        user_name, item_name, rating_name: the column names. device: where batches go.
    """

    def __init__(
        self,
        train: TensorLoader,
        valid: TensorLoader | None,
        classes: dict[Hashable, list[Any]],
        user_name: Hashable,
        item_name: Hashable,
        rating_name: Hashable,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(train, valid, device=device)
        self.classes = classes
        self.user_name, self.item_name, self.rating_name = user_name, item_name, rating_name
        self.rating_block = RegressionBlock(n_out=1)  # `predict` decodes a rating to a float
        self.bs: int = train.bs
        self.valid_bs: int = valid.bs if valid is not None else 2 * train.bs

    def describe(self) -> list[str]:
        """The columns and the numbers of users and items."""
        return [
            f"users: {self.n_users - 1} in {self.user_name!r}, items: {self.n_items - 1} in "
            f"{self.item_name!r}, ratings in {self.rating_name!r} (index 0: unknown)"
        ]

    @property
    def n_users(self) -> int:
        """Number of user indices, the unknown one included."""
        return len(self.classes[self.user_name])

    @property
    def n_items(self) -> int:
        """Number of item indices, the unknown one included."""
        return len(self.classes[self.item_name])

    def encode(self, users: Any, items: Any) -> torch.Tensor:
        """`[N, 2]` int64 (user, item) indices for names; unseen users and items map to 0."""
        user_idx = encode_values(users, self.classes[self.user_name])
        item_idx = encode_values(items, self.classes[self.item_name])
        if user_idx.shape != item_idx.shape:
            raise ValueError(
                f"got {len(user_idx)} users and {len(item_idx)} items; pass one item per user"
            )
        return torch.stack([user_idx, item_idx], dim=1)

    application = "collab"
    n_inp = 1  # one [B, 2] tensor of user and item indices

    @property
    def target_block(self) -> RegressionBlock:
        """The ratings, decoded as floats."""
        return self.rating_block

    def item_encoder(self) -> CollabEncoder:
        """(user, item) pairs to indices, for export and prediction."""
        return CollabEncoder(self.user_name, self.item_name, self.classes[self.user_name],
                             self.classes[self.item_name])  # fmt: skip

    def show_batch(self, max_n: int = 10) -> pd.DataFrame:
        """The first `max_n` training ratings with user and item names, as a table."""
        return self.decode_rows(range(min(max_n, self.train.loader.n)), split="train")  # type: ignore[attr-defined]

    def show_results(self, batch: Sequence[Any], preds: Sequence[Any], max_n: int = 10) -> Any:
        """The first `max_n` ratings of `batch` with names, and the predicted ratings."""
        x = batch[0][:max_n].cpu()
        y = batch[1][:max_n].cpu() if len(batch) > 1 else None
        table = self._decoded_frame(x, y)
        table["prediction"] = self.decode_preds(preds[: len(table)])
        return table

    def decode_rows(self, indices: Iterable[int], split: str = "valid") -> pd.DataFrame:
        """Ratings `indices` of the `split` set ('train' or 'valid') with user and item names
        (reports use it to show the ratings with the highest losses)."""
        loader = self.train if split == "train" else self.valid
        if loader is None:
            raise ValueError(f"no {split!r} set in these CollabDataLoaders")
        index = torch.as_tensor(list(indices), dtype=torch.long)
        x, y = (t.cpu()[index] for t in loader.loader.tensors)  # type: ignore[attr-defined]
        return self._decoded_frame(x, y)

    def _decoded_frame(self, x: torch.Tensor, y: torch.Tensor | None) -> pd.DataFrame:
        users, items = self.classes[self.user_name], self.classes[self.item_name]
        table = pd.DataFrame(
            {
                self.user_name: [users[i] for i in x[:, 0].tolist()],
                self.item_name: [items[i] for i in x[:, 1].tolist()],
            }
        )
        if y is not None:
            table[self.rating_name] = y.tolist()
        return table

    def test_dl(
        self, items: Any, with_labels: bool = False, bs: int | None = None, skip_bad: bool = False
    ) -> TensorLoader:
        """Ordered batches of new (user, item) pairs: `(x,)`, or `(x, y)` with ratings.

        Users and items unseen in training map to index 0, the `'#na#'` row that training
        never updates (it keeps its small initial values, shrunk by weight decay), so a
        dot-product model's prediction for an unknown falls back to roughly the sigmoid of
        the known side's bias.

        Args:
            items: a DataFrame with the user and item columns (and the rating column for
                `with_labels`), or a list of rows (dicts, Series or one-row DataFrames).
            with_labels: the rows carry ratings: batches are `(x, y)`.
            bs: batch size (default: the validation batch size).
            skip_bad: accepted for the common signature: every pair can be encoded.

        Example:
            >>> preds, _ = learn.get_preds(dl=dls.test_dl(new_ratings))
        """
        df = _as_frame(items)
        for name, role in ((self.user_name, "user"), (self.item_name, "item")):
            if name not in df.columns:
                raise KeyError(
                    f"{role} column {name!r} is missing from the rows to predict on; the "
                    f"columns are {list(df.columns)}; add it (the data's {role}_name)"
                )
        x = self.encode(df[self.user_name].to_numpy(), df[self.item_name].to_numpy())
        tensors = [x.to(self.device)]
        if with_labels:
            if self.rating_name not in df.columns:
                raise KeyError(
                    f"with_labels=True needs the rating column {self.rating_name!r}; the "
                    f"columns are {list(df.columns)}"
                )
            y = torch.as_tensor(_ratings(df, self.rating_name), dtype=torch.float32)
            tensors.append(y.to(self.device))
        return TensorLoader(*tensors, bs=bs or self.valid_bs, shuffle=False)

    @classmethod
    def from_df(
        cls,
        ratings: pd.DataFrame,
        user_name: Hashable | None = None,
        item_name: Hashable | None = None,
        rating_name: Hashable | None = None,
        valid_pct: float = 0.2,
        seed: int | None = None,
        bs: int = 64,
        valid_bs: int | None = None,
        device: torch.device | str | None = None,
    ) -> CollabDataLoaders:
        """Loaders from a ratings table, with a random `valid_pct` validation split.

        The vocabularies come from the training split, so users and items seen only in
        validation map to the unknown index 0 (as at predict time).

        Args:
            ratings: one row per rating.
            user_name, item_name, rating_name: columns (default: the first, second, third).
            valid_pct: fraction of rows for validation (0.2). seed: for the split (None).
            bs: training batch size (64: unlike a table's rows, ratings keep the course's
                batch size, because lr_find's valley on large batches of ratings overshoots:
                on ml-100k at 1024, 5e-2 where 1e-2 trains best, MSE 0.97 instead of 0.82);
                valid_bs: validation batch size (default 2 * bs).
            device: where batches go (default: CUDA when available, else the CPU).

        Example:
            >>> dls = CollabDataLoaders.from_df(ratings, valid_pct=0.2, seed=42, bs=64)
        """
        if not 0.0 <= valid_pct < 1.0:
            raise ValueError(f"valid_pct must be in [0, 1), got {valid_pct}")
        user_col = _column(ratings, user_name, 0, "user")
        item_col = _column(ratings, item_name, 1, "item")
        rating_col = _column(ratings, rating_name, 2, "rating")
        n_valid = int(round(len(ratings) * valid_pct))
        order = np.random.RandomState(seed).permutation(len(ratings))
        train_df, valid_df = ratings.iloc[order[n_valid:]], ratings.iloc[order[:n_valid]]
        classes = {user_col: _vocab(train_df[user_col]), item_col: _vocab(train_df[item_col])}
        dev = torch.device(device) if device is not None else default_device()
        loaders = []
        for part, shuffle in ((train_df, True), (valid_df, False)):
            x = torch.stack(
                [
                    encode_values(part[user_col].to_numpy(), classes[user_col]),
                    encode_values(part[item_col].to_numpy(), classes[item_col]),
                ],
                dim=1,
            )
            y = torch.as_tensor(_ratings(part, rating_col), dtype=torch.float32)
            size = bs if shuffle else (valid_bs or 2 * bs)
            loaders.append(TensorLoader(x.to(dev), y.to(dev), bs=size, shuffle=shuffle))
        valid = loaders[1] if n_valid > 0 else None
        return cls(loaders[0], valid, classes, user_col, item_col, rating_col, device=dev)

    @classmethod
    def from_csv(cls, path: str | Path, **kwargs: Any) -> CollabDataLoaders:
        """`from_df` on `pd.read_csv(path)`; keywords for `from_df` go there, others to pandas.

        Example:
            >>> dls = CollabDataLoaders.from_csv("ratings.csv", seed=42)
        """
        df_keys = ("user_name", "item_name", "rating_name", "valid_pct", "seed", "bs")
        df_kw = {key: kwargs.pop(key) for key in (*df_keys, "valid_bs", "device") if key in kwargs}
        return cls.from_df(pd.read_csv(path, **kwargs), **df_kw)


def _as_frame(items: Any) -> pd.DataFrame:
    """`items` (a DataFrame, or a list of dicts / Series / one-row DataFrames) as a frame."""
    if isinstance(items, pd.DataFrame):
        return items
    if isinstance(items, dict | pd.Series):
        items = [items]
    if not isinstance(items, list | tuple) or not items:
        raise TypeError(
            f"test_dl takes a DataFrame or a non-empty list of rows, got {items!r}; pass e.g. "
            "[{'user': 1, 'movie': 50}]"
        )
    frames = []
    for row in items:
        if isinstance(row, pd.DataFrame):
            frames.append(row)
        elif isinstance(row, dict | pd.Series):
            frames.append(pd.DataFrame([row]))
        else:
            raise TypeError(
                f"a row to predict on must be a dict, a Series or a DataFrame, got "
                f"{type(row).__name__} {row!r}; pass e.g. {{'user': 1, 'movie': 50}}"
            )
    return pd.concat(frames, ignore_index=True)


def _ratings(part: pd.DataFrame, rating_col: Hashable) -> np.ndarray:
    """The ratings as float32; a non-numeric value is named with its column."""
    values = pd.to_numeric(part[rating_col], errors="coerce")
    bad = values.isna() & part[rating_col].notna()
    if bad.any():
        first = part[rating_col][bad].iloc[0]
        raise ValueError(
            f"rating column {rating_col!r} has a non-numeric value {first!r}; "
            "ratings must be numbers"
        )
    return values.to_numpy(dtype=np.float32)


__all__ = ["UNKNOWN", "CollabDataLoaders", "encode_values"]
