"""Date features for tables: `add_datepart` and `add_elapsed_times`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["add_datepart", "add_elapsed_times", "parse_dates"]

_DATE_PARTS = (
    "Year", "Month", "Week", "Day", "Dayofweek", "Dayofyear", "Is_month_end", "Is_month_start",
    "Is_quarter_end", "Is_quarter_start", "Is_year_end", "Is_year_start",
)  # fmt: skip
_TIME_PARTS = ("Hour", "Minute", "Second")
_ACCESSOR = {"Dayofweek": "day_of_week", "Dayofyear": "day_of_year"}  # the others: lower case


def parse_dates(
    column: pd.Series, date_format: str | None = None, dayfirst: bool = False
) -> pd.Series:
    """`column` as datetimes; a value that does not parse raises, naming it and its row.

    Args:
        column: strings or datetimes.
        date_format: an explicit `strftime` format (e.g. '%d-%m-%Y' for bike_sharing's
            `dateday`); None lets pandas infer it.
        dayfirst: read '01-02-2011' as 1 February when no format is given.
    """
    if pd.api.types.is_datetime64_any_dtype(column):
        return column
    parsed = pd.to_datetime(column, format=date_format, dayfirst=dayfirst, errors="coerce")
    bad = parsed.isna() & column.notna()
    if bad.any():
        row = bad.to_numpy().nonzero()[0][0]
        raise ValueError(
            f"date column {column.name!r} has the value {column.iloc[row]!r} in row "
            f"{column.index[row]!r} that does not parse with format {date_format!r}; "
            "pass date_format= (e.g. '%d-%m-%Y') or fix the value"
        )
    return parsed


def _default_prefix(field: str) -> str:
    for suffix in ("date", "Date"):
        if field.endswith(suffix):
            return field[: -len(suffix)]
    return field


def add_datepart(
    df: pd.DataFrame,
    field: str,
    prefix: str | None = None,
    drop: bool = True,
    time: bool = False,
    date_format: str | None = None,
    dayfirst: bool = False,
) -> pd.DataFrame:
    """Add the date parts of column `field` to `df` (in place, and returned), like fastai.

    Adds `<prefix>Year, Month, Week` (ISO week), `Day, Dayofweek` (Monday=0), `Dayofyear`,
    `Is_month_end, Is_month_start, Is_quarter_end, Is_quarter_start, Is_year_end,
    Is_year_start` and `Elapsed` (seconds since 1970-01-01, NaN for a missing date); with
    `time=True` also `Hour, Minute, Second`.

    Args:
        df: the frame.
        field: the date column (datetimes, or strings parsed with `date_format`/`dayfirst`).
        prefix: the new columns' prefix; default `field` without a trailing 'date'/'Date'
            ('saledate' -> 'sale').
        drop: remove `field` afterwards.
        time: add the time parts too.
        date_format: explicit format for string dates, e.g. '%d-%m-%Y' (dd-mm-yyyy).
        dayfirst: day-first parsing when no format is given.
    """
    if field not in df.columns:
        raise KeyError(
            f"date column {field!r} not in the frame; available columns: {list(df.columns)}"
        )
    dates = parse_dates(df[field], date_format, dayfirst)
    prefix = _default_prefix(field) if prefix is None else prefix
    parts = _DATE_PARTS + (_TIME_PARTS if time else ())
    for part in parts:
        if part == "Week":
            values = dates.dt.isocalendar().week.astype("Int64" if dates.isna().any() else np.int64)
        else:
            values = getattr(dates.dt, _ACCESSOR.get(part, part.lower()))
        df[prefix + part] = values
    elapsed = (dates - pd.Timestamp(0, tz=dates.dt.tz)) // pd.Timedelta(seconds=1)
    df[prefix + "Elapsed"] = elapsed
    if drop:
        del df[field]
    return df


def add_elapsed_times(
    df: pd.DataFrame, fields: Sequence[str], date_field: str, base_field: str
) -> pd.DataFrame:
    """Days since the last and until the next event, per group (the Rossmann `get_elapsed`).

    For each boolean column `f` in `fields`, within each group of `base_field` ordered by
    `date_field`, adds `After<f>` (days since the last row where `f` was true, 0 on that
    day) and `Before<f>` (days until the next one, 0 on that day, positive). Where a group
    has no event before (or after) a row the value is NaN: fill it (e.g. with 0 or a large
    number) before using it as a continuous feature. Returns a new frame in `df`'s row order.

    Args:
        df: the frame.
        fields: boolean event columns (e.g. 'SchoolHoliday', 'Promo').
        date_field: the date column (datetimes or parseable strings).
        base_field: the group column (e.g. 'Store').
    """
    missing = [name for name in [*fields, date_field, base_field] if name not in df.columns]
    if missing:
        raise KeyError(
            f"column(s) {missing} not in the frame; available columns: {list(df.columns)}"
        )
    out = df.copy()
    dates = parse_dates(out[date_field])
    order = np.lexsort((dates.to_numpy(), out[base_field].to_numpy()))
    sorted_dates = dates.iloc[order]
    groups = out[base_field].iloc[order].to_numpy()
    for name in fields:
        events = out[name].iloc[order].fillna(False).astype(bool).to_numpy()
        event_dates = sorted_dates.where(events)
        last = event_dates.groupby(groups).ffill()
        following = event_dates.groupby(groups).bfill()
        after, before = np.empty(len(out)), np.empty(len(out))
        after[order] = (sorted_dates - last).dt.days.to_numpy(dtype=np.float64, na_value=np.nan)
        before[order] = (following - sorted_dates).dt.days.to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        out[f"After{name}"] = after
        out[f"Before{name}"] = before
    return out
