"""Splitters: callables `items -> (train_idx, valid_idx)` that divide a data set in two.

Items are any sequence (paths, rows) or a pandas DataFrame (taken by integer position).
Every splitter returns sorted lists of ints and checks its result with `check_split`: an index
out of range, an overlap, an empty train set or a valid set that is the whole data set raise
ValueError; an empty valid set gives a warning.
"""

from __future__ import annotations

import math
import operator
import os
import warnings
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch

from mentor.data.labels import _read_column

Split = tuple[list[int], list[int]]


class Splitter(Protocol):
    """Anything that maps the items to `(train_idx, valid_idx)`."""

    def __call__(self, items: Any) -> Split: ...


def check_split(
    train_idx: Sequence[int],
    valid_idx: Sequence[int],
    n_items: int,
    source: str = "splitter",
    hint: str = "",
) -> Split:
    """Check a split of `n_items` items and return it as lists of ints.

    Args:
        train_idx, valid_idx: the indices of the two sets.
        n_items: how many items were split.
        source: who made the split, named in the messages (default 'splitter').
        hint: appended to the messages (e.g. what to change). Default ''.

    Raises ValueError for no items, an index out of range, an index in both sets, an empty
    train set or a valid set holding every item; warns when the valid set is empty.

    Example:
        >>> check_split([0, 1, 2], [3], 4)
        ([0, 1, 2], [3])
    """
    if n_items == 0:
        raise ValueError(f"{source}: there are no items to split; check how the items are found")
    train, valid = [operator.index(i) for i in train_idx], [operator.index(i) for i in valid_idx]
    for idx in (*train, *valid):
        if not 0 <= idx < n_items:
            raise ValueError(
                f"{source}: index {idx} is out of range for {n_items} items; indices must be "
                f"in 0..{n_items - 1} (negative indices are not allowed){hint}"
            )
    both = sorted(set(train) & set(valid))
    if both:
        raise ValueError(f"{source}: indices {both[:10]} are in both train and valid{hint}")
    if len(set(valid)) == n_items:
        raise ValueError(
            f"{source}: the valid set would hold all {n_items} items, leaving nothing to train "
            f"on; make the valid set smaller{hint}"
        )
    if not train:
        raise ValueError(f"{source}: the train set is empty ({len(valid)} valid items){hint}")
    if not valid:
        warnings.warn(
            f"{source}: the valid set is empty, so no validation loss or metrics will be "
            f"computed{hint}",
            stacklevel=3,
        )
    return train, valid


def _item_at(items: Any, index: int) -> Any:
    if isinstance(items, pd.DataFrame | pd.Series):
        return items.iloc[index]
    return items[index]


def _iter_items(items: Any) -> Iterator[Any]:
    """The items in order; a DataFrame gives its rows (as Series) by position."""
    for index in range(len(items)):
        yield _item_at(items, index)


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


def _check_fraction(name: str, value: float) -> None:
    if not 0 <= value < 1:
        raise ValueError(f"{name}={value!r} must be a fraction in [0, 1), e.g. 0.2 for 20%")


def _generator(seed: int | None) -> torch.Generator | None:
    """A private generator for `seed`; None (the global RNG, see set_seed) when no seed."""
    return None if seed is None else torch.Generator().manual_seed(seed)


def split_by_flags(is_valid: Sequence[bool], source: str) -> Split:
    """Items whose flag is true go to the valid set, the others to training (checked)."""
    train = [i for i, flag in enumerate(is_valid) if not flag]
    valid = [i for i, flag in enumerate(is_valid) if flag]
    return check_split(train, valid, len(is_valid), source)


@dataclass
class RandomSplitter:
    """Put a random `valid_pct` of the items (rounded half up) in the valid set.

    Args:
        valid_pct: the fraction of items to validate on (default 0.2).
        seed: seed of a private generator, so the split is the same on every call and the
            global RNG is left alone. Default None: draw from the global torch RNG.

    Example:
        >>> RandomSplitter(valid_pct=0.25, seed=42)(list("abcdefgh"))
        ([...6 indices...], [...2 indices...])
    """

    valid_pct: float = 0.2
    seed: int | None = None

    def __post_init__(self) -> None:
        _check_fraction("valid_pct", self.valid_pct)

    def __call__(self, items: Any) -> Split:
        n_items = len(items)
        order = torch.randperm(n_items, generator=_generator(self.seed)).tolist()
        cut = _round_half_up(self.valid_pct * n_items)
        return check_split(sorted(order[cut:]), sorted(order[:cut]), n_items, type(self).__name__)


@dataclass
class GrandparentSplitter:
    """Split paths by the name of their grandparent folder (`train/3/a.png` -> 'train').

    Items whose grandparent is neither name (e.g. `test/...`) go in neither set.

    Args:
        train_name: grandparent folder name(s) of the training items (default 'train').
        valid_name: grandparent folder name(s) of the validation items (default 'valid').

    Example:
        >>> GrandparentSplitter()(get_image_files(data_path("mnist_tiny")))  # 709 / 699
    """

    train_name: str | Sequence[str] = "train"
    valid_name: str | Sequence[str] = "valid"

    def __post_init__(self) -> None:
        train, valid = self._names(self.train_name), self._names(self.valid_name)
        if train & valid:
            raise ValueError(
                f"train_name {self.train_name!r} and valid_name {self.valid_name!r} share "
                f"{sorted(train & valid)}; a folder can only hold one of the two sets"
            )

    @staticmethod
    def _names(names: str | Sequence[str]) -> set[str]:
        return {names} if isinstance(names, str) else set(names)

    def __call__(self, items: Any) -> Split:
        grandparents = [Path(item).parent.parent.name for item in _iter_items(items)]
        train_names, valid_names = self._names(self.train_name), self._names(self.valid_name)
        train = [i for i, name in enumerate(grandparents) if name in train_names]
        valid = [i for i, name in enumerate(grandparents) if name in valid_names]
        hint = f"; the grandparent folders of the items are {sorted(set(grandparents))[:10]}"
        return check_split(train, valid, len(grandparents), type(self).__name__, hint)


@dataclass
class IndexSplitter:
    """Put the items at `valid_idx` in the valid set and the rest in the train set.

    Args:
        valid_idx: the positions of the validation items (ints, numpy or torch integers).

    Example:
        >>> IndexSplitter([1, 3])(list("abcde"))
        ([0, 2, 4], [1, 3])
    """

    valid_idx: Sequence[int]

    def __post_init__(self) -> None:
        self.valid_idx = sorted({operator.index(i) for i in self.valid_idx})

    def __call__(self, items: Any) -> Split:
        n_items = len(items)
        valid = set(self.valid_idx)
        train = [i for i in range(n_items) if i not in valid]
        return check_split(train, list(self.valid_idx), n_items, type(self).__name__)


_TRUE_STRINGS = {"true", "1"}
_FALSE_STRINGS = {"false", "0"}


def _as_flag(value: Any, row: int, col: str | int) -> bool:
    """A validity flag: a bool, 0/1, or the strings 'True'/'False' (any case)."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE_STRINGS | _FALSE_STRINGS:
        return value.strip().lower() in _TRUE_STRINGS
    raise ValueError(
        f"column {col!r} holds {value!r} in row {row}, which is not a flag; use True/False, "
        "1/0 or the strings 'True'/'False'"
    )


@dataclass
class ColSplitter:
    """Put the rows whose column `col` is true in the valid set.

    Args:
        col: the column name (or position) holding the flags (default 'is_valid'); flags may
            be bools, 0/1 or the strings 'True'/'False'.

    Items are a DataFrame or a list of rows (pandas rows, dicts, namedtuples).

    Example:
        >>> ColSplitter()(pd.DataFrame({"x": [1, 2, 3], "is_valid": [False, True, False]}))
        ([0, 2], [1])
    """

    col: str | int = "is_valid"

    def _values(self, items: Any) -> list[Any]:
        if not isinstance(items, pd.DataFrame):
            return [_read_column(row, self.col) for row in _iter_items(items)]
        if self.col in items.columns:
            return items[self.col].tolist()
        if isinstance(self.col, int) and 0 <= self.col < items.shape[1]:
            return items.iloc[:, self.col].tolist()
        raise KeyError(
            f"column {self.col!r} not found; the available columns are {list(items.columns)}"
        )

    def __call__(self, items: Any) -> Split:
        flags = [_as_flag(value, row, self.col) for row, value in enumerate(self._values(items))]
        return split_by_flags(flags, type(self).__name__)


@dataclass
class FileSplitter:
    """Put the items whose file NAME is listed in the text file `fname` in the valid set.

    Args:
        fname: a text file with one file name per line (blank lines are skipped; a line with
            folders counts by its last part only).

    Example:
        >>> FileSplitter("valid.txt")(get_image_files(path))
    """

    fname: str | os.PathLike[str]

    def __call__(self, items: Any) -> Split:
        path = Path(self.fname)
        if not path.is_file():
            raise FileNotFoundError(
                f"validation list {str(path)!r} not found; pass a text file with one file name "
                "per line"
            )
        lines = path.read_text().splitlines()
        names = {Path(line.strip()).name for line in lines if line.strip()}
        is_valid = [Path(item).name in names for item in _iter_items(items)]
        return split_by_flags(is_valid, type(self).__name__)


@dataclass
class FuncSplitter:
    """Put the items for which `func(item)` is true in the valid set.

    Args:
        func: a predicate on one item (a DataFrame gives it rows as Series).

    Example:
        >>> FuncSplitter(lambda name: name.startswith("v"))(["t1", "v1", "t2"])
        ([0, 2], [1])
    """

    func: Callable[[Any], Any]

    def __call__(self, items: Any) -> Split:
        is_valid = [bool(self.func(item)) for item in _iter_items(items)]
        return split_by_flags(is_valid, type(self).__name__)


@dataclass
class TrainTestSplitter:
    """A (stratified) random split like scikit-learn's `train_test_split`, without scikit-learn.

    Each class (or the whole data set, without `stratify`) sends round(test_size * count)
    items, rounded half up, to the valid set; a class of 2 or more items sends at least 1
    (when test_size > 0) and keeps at least 1 for training, so every class is in both sets.

    Args:
        test_size: the fraction of items to validate on (default 0.2).
        random_state: seed of a private generator (default None: the global torch RNG).
        stratify: one label per item (list, array, Series), or a labeller `item -> label`
            such as `parent_label`. Default None: no stratification.
        shuffle: draw the valid items at random (default True); False takes the last ones.

    Example:
        >>> TrainTestSplitter(0.25, random_state=0, stratify=parent_label)(files)
    """

    test_size: float = 0.2
    random_state: int | None = None
    stratify: Sequence[Hashable] | Callable[[Any], Hashable] | None = None
    shuffle: bool = True

    def __post_init__(self) -> None:
        _check_fraction("test_size", self.test_size)

    def _groups(self, items: Any) -> list[list[int]]:
        """The item indices of each class, classes in order of first appearance."""
        if self.stratify is None:
            return [list(range(len(items)))]
        if callable(self.stratify):
            labels = [self.stratify(item) for item in _iter_items(items)]
        else:
            labels = list(self.stratify)
        if len(labels) != len(items):
            raise ValueError(
                f"stratify has {len(labels)} labels for {len(items)} items; pass one label per item"
            )
        groups: dict[Hashable, list[int]] = {}
        for index, label in enumerate(labels):
            if not isinstance(label, Hashable):
                raise ValueError(
                    f"stratify label {label!r} of item {index} is not hashable; stratify on a "
                    "single label per item"
                )
            groups.setdefault(label, []).append(index)
        return list(groups.values())

    def _n_valid(self, count: int) -> int:
        n_valid = _round_half_up(self.test_size * count)
        if count >= 2 and self.test_size > 0:
            n_valid = min(max(n_valid, 1), count - 1)
        return n_valid if count >= 2 else 0

    def __call__(self, items: Any) -> Split:
        generator = _generator(self.random_state)
        valid: list[int] = []
        for members in self._groups(items):
            if self.shuffle:
                order = torch.randperm(len(members), generator=generator).tolist()
                members = [members[j] for j in order]
            n_valid = self._n_valid(len(members))
            valid.extend(members[len(members) - n_valid :])
        valid_set = set(valid)
        train = [i for i in range(len(items)) if i not in valid_set]
        return check_split(train, sorted(valid), len(items), type(self).__name__)


@dataclass
class EndSplitter:
    """Put the last (or first) `valid_pct` of the items in the valid set: for time series.

    Args:
        valid_pct: the fraction of items to validate on, rounded half up (default 0.2).
        valid_last: validate on the last items (default True); False takes the first ones.

    Example:
        >>> EndSplitter(0.2)(list(range(10)))
        ([0, 1, 2, 3, 4, 5, 6, 7], [8, 9])
    """

    valid_pct: float = 0.2
    valid_last: bool = True

    def __post_init__(self) -> None:
        _check_fraction("valid_pct", self.valid_pct)

    def __call__(self, items: Any) -> Split:
        n_items = len(items)
        n_valid = _round_half_up(self.valid_pct * n_items)
        cut = n_items - n_valid if self.valid_last else n_valid
        first, last = list(range(cut)), list(range(cut, n_items))
        train, valid = (first, last) if self.valid_last else (last, first)
        return check_split(train, valid, n_items, type(self).__name__)
