"""Where mentor finds the shared data sets."""

from __future__ import annotations

import os
from pathlib import Path


def data_path(name: str = "") -> Path:
    """The shared data folder (`$MENTOR_DATA`, default `../shared/data` from the current
    folder), or `name` inside it, as an absolute path (so it survives a change of folder).

    Raises FileNotFoundError naming the folder and the variable to set when it is missing.
    """
    root = Path(os.environ.get("MENTOR_DATA", "../shared/data")).expanduser().resolve()
    path = root / name
    if not path.exists():
        raise FileNotFoundError(
            f"data {str(path)!r} not found; set MENTOR_DATA to the folder that holds the data sets"
        )
    return path
