"""Finding the items of a data set on disk: `get_files` and `get_image_files`."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

image_extensions: frozenset[str] = frozenset(
    {
        ".bmp",
        ".gif",
        ".ico",
        ".jfif",
        ".jpe",
        ".jpeg",
        ".jpg",
        ".pbm",
        ".pgm",
        ".png",
        ".ppm",
        ".tif",
        ".tiff",
        ".webp",
    }
)
"""Lower-case suffixes (with the dot) of the image files `get_image_files` looks for."""


def _normalize_extensions(extensions: Iterable[str] | None) -> frozenset[str] | None:
    """Lower-case suffixes with a leading dot, or None for 'every file'."""
    if extensions is None:
        return None
    if isinstance(extensions, str):
        extensions = [extensions]  # a lone '.png' is a common slip; don't iterate its letters
    return frozenset(
        ext.lower() if ext.startswith(".") else f".{ext.lower()}" for ext in extensions
    )


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _files_in(folder: Path, extensions: frozenset[str] | None, recurse: bool) -> list[Path]:
    """The non-hidden files under `folder` (only directly in it when `recurse` is False)."""
    found: list[Path] = []
    seen_dirs: set[str] = set()
    # followlinks lets data sets be assembled from symlinked folders; `seen_dirs` stops loops
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen_dirs:
            dirnames.clear()
            continue
        seen_dirs.add(real)
        dirnames[:] = [name for name in dirnames if not _is_hidden(name)] if recurse else []
        for name in filenames:
            if _is_hidden(name):
                continue
            if extensions is None or os.path.splitext(name)[1].lower() in extensions:
                found.append(Path(dirpath, name))
    return found


def _check_folder(path: Path, what: str) -> None:
    if not path.exists():
        raise FileNotFoundError(
            f"{what} {str(path)!r} does not exist; check the path (or download the data first)"
        )
    if not path.is_dir():
        raise NotADirectoryError(
            f"{what} {str(path)!r} is a file, not a folder; pass the folder that holds the items"
        )


def get_files(
    path: str | os.PathLike[str],
    extensions: Iterable[str] | None = None,
    recurse: bool = True,
    folders: Sequence[str] | None = None,
) -> list[Path]:
    """The files under `path`, sorted, skipping hidden files and folders (names starting with '.').

    Args:
        path: the folder to search.
        extensions: keep only files with these suffixes, compared case-insensitively
            (`{'.jpg', '.png'}`; a missing leading dot is added). Default None: every file.
        recurse: search sub-folders too (default True); False lists only the files directly
            in `path` (or directly in each of `folders`).
        folders: search only these top-level sub-folders of `path` (e.g. `['train']`).
            Default None: all of `path`.

    Returns the paths sorted, so that the order (and every split made from it) is reproducible.
    Raises FileNotFoundError naming `path` (or a folder of `folders`) when it does not exist.

    Example:
        >>> files = get_files(data_path("mnist_tiny"), extensions={".png"}, folders=["train"])
    """
    root = Path(path)
    _check_folder(root, "folder")
    wanted = _normalize_extensions(extensions)
    if folders is None:
        return sorted(_files_in(root, wanted, recurse))
    if isinstance(folders, str):
        folders = [folders]
    found: list[Path] = []
    for folder in folders:
        sub = root / folder
        if not sub.is_dir():
            available = sorted(
                p.name for p in root.iterdir() if p.is_dir() and not _is_hidden(p.name)
            )
            raise FileNotFoundError(
                f"folder {folder!r} not found in {str(root)!r}; its sub-folders are {available}"
            )
        found.extend(_files_in(sub, wanted, recurse))
    return sorted(set(found))


def get_image_files(
    path: str | os.PathLike[str],
    recurse: bool = True,
    folders: Sequence[str] | None = None,
) -> list[Path]:
    """The image files under `path` (suffixes in `image_extensions`), sorted.

    Args:
        path: the folder to search.
        recurse: search sub-folders too (default True).
        folders: search only these top-level sub-folders (default None: all of `path`).

    Example:
        >>> files = get_image_files(data_path("mnist_tiny"))  # train, valid and test PNGs
        >>> len(files)
        1428
    """
    return get_files(path, extensions=image_extensions, recurse=recurse, folders=folders)


def get_text_files(
    path: str | os.PathLike[str],
    recurse: bool = True,
    folders: Sequence[str] | None = None,
) -> list[Path]:
    """The `.txt` files under `path`, sorted (see `get_image_files` for the arguments).

    Example:
        >>> files = get_text_files(untar_data("review_polarity"))   # pos/ and neg/ reviews
    """
    return get_files(path, extensions=[".txt"], recurse=recurse, folders=folders)
