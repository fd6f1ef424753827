"""`untar_data`: the shared data sets, extracted once into a cache folder."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from mentor.core.paths import data_path


def cache_dir() -> Path:
    """mentor's cache folder: `$MENTOR_HOME` (default `~/.cache/mentor`)."""
    return Path(os.environ.get("MENTOR_HOME", "~/.cache/mentor")).expanduser()


def untar_data(name: str, dest: str | Path | None = None) -> Path:
    """The folder of data set `name` from the shared data folder (`$MENTOR_DATA`).

    Folders are returned as they are; archives (`name.tar`, `name.tar.gz`, `name.tgz`) are
    extracted once into `dest` (default `$MENTOR_HOME/data`) and the extracted folder returned
    (an archive whose contents are not in one folder called `name` is extracted into one).

    Example:
        >>> path = untar_data("mnist_sample")   # .../mnist_sample with train/ and valid/
    """
    root = data_path()
    if (root / name).is_dir():
        return root / name
    archive = next(
        (
            root / f"{name}{ext}"
            for ext in (".tar", ".tar.gz", ".tgz")
            if (root / f"{name}{ext}").exists()
        ),
        None,
    )
    if archive is None:
        raise FileNotFoundError(
            f"data set {name!r} not found in {str(root)!r} (as a folder or a .tar/.tar.gz "
            "archive); set MENTOR_DATA to the folder that holds the data sets"
        )
    out = Path(dest) if dest is not None else cache_dir() / "data"
    target = out / name
    if not (target / ".extracted").exists():
        with tarfile.open(archive) as tar:
            tops = {Path(member.name).parts[0] for member in tar.getmembers() if member.name}
            # an archive without its own top-level folder (review_polarity holds
            # txt_sentoken/) is extracted into one named after it
            into = out if tops == {name} else target
            into.mkdir(parents=True, exist_ok=True)
            tar.extractall(into, filter="data")
        (target / ".extracted").touch()
    return target
