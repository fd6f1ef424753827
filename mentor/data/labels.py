"""Labellers: callables that turn an item (a path, a table row) into its label.

Any function `item -> label` is a labeller; this module holds the common ones:
`parent_label`, `RegexLabeller`, `ColReader` and `using_attr`.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def parent_label(path: str | os.PathLike[str]) -> str:
    """The name of the folder that holds `path`: `parent_label('train/3/7463.png') == '3'`.

    Args:
        path: a file path (str or Path).

    Example:
        >>> parent_label(Path("mnist_tiny/train/7/9243.png"))
        '7'
    """
    return Path(path).parent.name


class RegexLabeller:
    """Label an item with the first group of a regular expression applied to its file NAME.

    Only the name (`Path(item).name`, e.g. `'great_pyrenees_173.jpg'`) is matched, never the
    folders above it, so patterns need no path separators.

    Args:
        pat: the regular expression (str or compiled); it must have at least one group.
        match: anchor the pattern at the start of the name (`re.match`) instead of
            searching anywhere in it (`re.search`, the default False).

    Raises ValueError naming the pattern and the file name when a name does not match.

    Example:
        >>> RegexLabeller(r"^(.+)_\\d+\\.jpg$")("images/great_pyrenees_173.jpg")
        'great_pyrenees'
    """

    def __init__(self, pat: str | re.Pattern[str], match: bool = False) -> None:
        self.pat: re.Pattern[str] = re.compile(pat)
        self.match = match
        if self.pat.groups < 1:
            raise ValueError(
                f"pattern {self.pat.pattern!r} has no group; put the label part in "
                "parentheses, e.g. r'^(.+)_\\d+\\.jpg$'"
            )

    def __call__(self, item: str | os.PathLike[str]) -> str:
        name = Path(item).name
        found = self.pat.match(name) if self.match else self.pat.search(name)
        if found is None:
            raise ValueError(
                f"pattern {self.pat.pattern!r} does not match the file name {name!r} "
                f"(of {str(item)!r}); the pattern is applied to the name only, not the folders"
            )
        return found.group(1)

    def __repr__(self) -> str:
        return f"RegexLabeller({self.pat.pattern!r}, match={self.match})"


def _available_columns(row: Any) -> list[Any]:
    """The column names a row offers, for error messages."""
    if isinstance(row, pd.Series):
        return list(row.index)
    if isinstance(row, dict):
        return list(row)
    if isinstance(row, tuple) and hasattr(row, "_fields"):
        return list(row._fields)
    return []


def _read_column(row: Any, col: str | int) -> Any:
    """The value of `col` in a pandas row, a dict or a namedtuple (an int is a position).

    Raises KeyError naming the column and listing the available ones when it is missing.
    """
    try:
        if isinstance(row, pd.Series):
            if col in row.index or not isinstance(col, int):
                return row[col]
            return row.iloc[col]
        if isinstance(row, tuple) and hasattr(row, "_fields") and isinstance(col, str):
            return getattr(row, col)
        return row[col]
    except (KeyError, IndexError, AttributeError):
        available = _available_columns(row)
        raise KeyError(
            f"column {col!r} not found in the row; the available columns are {available}"
        ) from None


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


class ColReader:
    """Read one column (or several, as a tuple) from a row: a pandas row, a dict or a namedtuple.

    Args:
        cols: the column name or position, or a list of them (then the result is a tuple).
        pref: prepended to string values; a Path (or a str ending in '/') joins as a folder,
            so `ColReader('name', pref=path)` turns file names into full paths. Default ''.
        suff: appended to string values (e.g. '.jpg'). Default ''.
        label_delim: split string values on this delimiter into a list of labels
            (multi-label data; empty or missing values give []). Default None: no split.

    Raises KeyError naming the column and listing the available ones when it is missing.

    Example:
        >>> df = pd.read_csv(path / "labels.csv")
        >>> ColReader("name", pref=path)(df.iloc[0])
        PosixPath('.../mnist_tiny/train/3/7463.png')
        >>> ColReader("tags", label_delim=" ")({"tags": "cat dog"})
        ['cat', 'dog']
    """

    def __init__(
        self,
        cols: str | int | Sequence[str | int],
        pref: str | os.PathLike[str] = "",
        suff: str = "",
        label_delim: str | None = None,
    ) -> None:
        self.cols: list[str | int] = [cols] if isinstance(cols, str | int) else list(cols)
        if not self.cols:
            raise ValueError("ColReader needs at least one column; got an empty list")
        self.single = isinstance(cols, str | int)
        self.pref = pref
        self.suff = suff
        self.label_delim = label_delim

    def _decorate(self, value: str) -> str | Path:
        if isinstance(self.pref, os.PathLike):
            return Path(self.pref) / f"{value}{self.suff}"
        return f"{self.pref}{value}{self.suff}"

    def _process(self, value: Any) -> Any:
        if isinstance(value, np.generic):
            value = value.item()  # plain Python labels (np.int64(3) -> 3) export to JSON as is
        if self.label_delim is not None:
            if _is_missing(value):
                return []
            parts = [part.strip() for part in str(value).split(self.label_delim)]
            return [self._decorate(part) for part in parts if part]
        if isinstance(value, str) and (self.pref or self.suff):
            return self._decorate(value)
        return value

    def __call__(self, row: Any) -> Any:
        values = [self._process(_read_column(row, col)) for col in self.cols]
        return values[0] if self.single else tuple(values)

    def __repr__(self) -> str:
        cols = self.cols[0] if self.single else self.cols
        return (
            f"ColReader({cols!r}, pref={self.pref!r}, suff={self.suff!r}, "
            f"label_delim={self.label_delim!r})"
        )


def _apply_to_attr(func: Callable[[Any], Any], attr: str, item: Any) -> Any:
    try:
        value = getattr(item, attr)
    except AttributeError:
        raise AttributeError(
            f"item {item!r} ({type(item).__name__}) has no attribute {attr!r}; "
            "check the attribute name given to using_attr"
        ) from None
    return func(value)


def using_attr(func: Callable[[Any], Any], attr: str) -> Callable[[Any], Any]:
    """A labeller that applies `func` to `item.<attr>` (picklable, unlike a lambda).

    Args:
        func: the function to apply, e.g. a `RegexLabeller`.
        attr: the attribute of the item to read, e.g. 'name' of a Path.

    Example:
        >>> label = using_attr(str.upper, "stem")
        >>> label(Path("train/3/cat.png"))
        'CAT'
    """
    return functools.partial(_apply_to_attr, func, attr)
