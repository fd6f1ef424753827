"""Where mentor finds the shared data sets."""

from __future__ import annotations

import os
from pathlib import Path


def data_path(name: str = "") -> Path:
    """The shared data folder (`$MENTOR_DATA`, default `../shared/data`), or `name` inside it.

    Raises FileNotFoundError naming the folder and the variable to set when it is missing.
    """
    root = Path(os.environ.get("MENTOR_DATA", "../shared/data")).expanduser()
    path = root / name
    if not path.exists():
        raise FileNotFoundError(
            f"data {str(path)!r} not found; set MENTOR_DATA to the folder that holds the data sets"
        )
    return path
