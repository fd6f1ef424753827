"""get_files / get_image_files: filtering, order, hidden files, folders, errors, real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mentor.data.items import get_files, get_image_files, image_extensions


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A small folder tree, written in an order that is not the sorted one."""
    names = [
        "zeta.png",
        "a.JPG",
        "notes.txt",
        ".hidden.png",
        ".cache/inside.png",
        "sub/deep/e.gif",
        "sub/d.jpeg",
        "other/f.png",
        "other/README",
    ]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    return tmp_path


def relative(files: list[Path], root: Path) -> list[str]:
    return [f.relative_to(root).as_posix() for f in files]


def test_get_files_all_sorted_and_skips_hidden(tree: Path) -> None:
    files = get_files(tree)
    assert relative(files, tree) == [
        "a.JPG",
        "notes.txt",
        "other/README",
        "other/f.png",
        "sub/d.jpeg",
        "sub/deep/e.gif",
        "zeta.png",
    ]
    assert files == sorted(files)
    assert all(isinstance(f, Path) for f in files)


def test_extensions_are_case_insensitive_and_dot_optional(tree: Path) -> None:
    expected = ["a.JPG", "other/f.png", "zeta.png"]
    assert relative(get_files(tree, extensions={".jpg", ".PNG"}), tree) == expected
    assert relative(get_files(tree, extensions=["jpg", "png"]), tree) == expected
    assert relative(get_files(tree, extensions=".png"), tree) == ["other/f.png", "zeta.png"]


def test_recurse_false_lists_only_the_top_folder(tree: Path) -> None:
    assert relative(get_files(tree, recurse=False), tree) == ["a.JPG", "notes.txt", "zeta.png"]


def test_folders_limit_the_search(tree: Path) -> None:
    assert relative(get_files(tree, folders=["sub"]), tree) == ["sub/d.jpeg", "sub/deep/e.gif"]
    assert relative(get_files(tree, folders=["sub"], recurse=False), tree) == ["sub/d.jpeg"]
    both = get_files(tree, folders=["sub", "other"], extensions={".png", ".gif"})
    assert relative(both, tree) == ["other/f.png", "sub/deep/e.gif"]
    assert relative(get_files(tree, folders="other"), tree) == ["other/README", "other/f.png"]


def test_get_image_files_on_generated_tree(tree: Path) -> None:
    files = get_image_files(tree)
    assert relative(files, tree) == [
        "a.JPG",
        "other/f.png",
        "sub/d.jpeg",
        "sub/deep/e.gif",
        "zeta.png",
    ]
    assert relative(get_image_files(tree, recurse=False), tree) == ["a.JPG", "zeta.png"]


def test_image_extensions_cover_common_formats() -> None:
    for ext in [".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"]:
        assert ext in image_extensions
    assert ".txt" not in image_extensions
    assert all(ext == ext.lower() and ext.startswith(".") for ext in image_extensions)


def test_missing_path_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_folder"
    with pytest.raises(FileNotFoundError, match="no_such_folder"):
        get_files(missing)
    with pytest.raises(FileNotFoundError, match="no_such_folder"):
        get_image_files(str(missing))


def test_file_instead_of_folder(tree: Path) -> None:
    with pytest.raises(NotADirectoryError, match="notes.txt"):
        get_files(tree / "notes.txt")


def test_missing_subfolder_lists_the_available_ones(tree: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"'trian'.*\['other', 'sub'\]"):
        get_files(tree, folders=["trian"])


def test_symlink_loop_does_not_hang(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"")
    try:
        os.symlink(tmp_path, tmp_path / "a" / "loop")
    except OSError:
        pytest.skip("symlinks not supported here")
    files = get_image_files(tmp_path)
    assert [f.name for f in files].count("x.png") >= 1
    assert len(files) <= 2  # visited once, maybe through the link once, never forever


def test_mnist_tiny_counts(mnist_tiny: Path) -> None:
    files = get_image_files(mnist_tiny)
    assert len(files) == 1428
    assert {f.suffix for f in files} == {".png"}
    assert files == sorted(files)
    assert get_image_files(mnist_tiny) == files  # reproducible
    top = [f.relative_to(mnist_tiny).parts[0] for f in files]
    assert (top.count("train"), top.count("valid"), top.count("test")) == (709, 699, 20)
    assert len(get_image_files(mnist_tiny, folders=["train"])) == 709
    assert len(get_image_files(mnist_tiny, folders=["train", "valid"])) == 1408
    assert len(get_image_files(mnist_tiny / "test", recurse=False)) == 20
    assert get_image_files(mnist_tiny, recurse=False) == []
    assert [f.name for f in get_files(mnist_tiny, recurse=False)] == ["labels.csv"]
    assert len(get_files(mnist_tiny, extensions={".csv"})) == 1
