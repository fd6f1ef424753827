"""Where mentor finds the shared data sets, and the folder it keeps its own files in."""

from __future__ import annotations

import os
from pathlib import Path


def data_path(name: str = "") -> Path:
    """The shared data folder (`$MENTOR_DATA`, default `../shared/data` from the current
    folder), or `name` inside it, as an absolute path (so it survives a change of folder).

    Raises FileNotFoundError naming the folder and the variable to set when it is missing.
    """
    path = data_root() / name
    if not path.exists():
        raise FileNotFoundError(
            f"data {str(path)!r} not found; set MENTOR_DATA to the folder that holds the data sets"
        )
    return path


def data_root() -> Path:
    """The shared data folder, `$MENTOR_DATA` (default `../shared/data`), absolute; it may
    not exist (`data_path` checks)."""
    return Path(os.environ.get("MENTOR_DATA", "../shared/data")).expanduser().resolve()


def mentor_home() -> Path:
    """mentor's own folder for downloads and caches: `$MENTOR_HOME`, default `~/.cache/mentor`
    (data sets in `data/`, their archives in `archive/`, pretrained weights in `weights/`)."""
    return Path(os.environ.get("MENTOR_HOME", "~/.cache/mentor")).expanduser()
