"""The lazy top-level package: its table of names, the TYPE_CHECKING imports and what a
user reads from `mentor` agree."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import mentor
from mentor.core.lazy import attach

ROOT = Path(__file__).resolve().parents[2]


LAZY_PACKAGES = ["mentor", "mentor.callbacks", "mentor.collab", "mentor.data",
                 "mentor.inference", "mentor.tabular", "mentor.text", "mentor.train",
                 "mentor.serve", "mentor.vision"]  # fmt: skip


def _type_checking_imports(package: str = "mentor") -> dict[str, str]:
    """name -> module, from the `if TYPE_CHECKING:` block of the package's __init__.py."""
    init = ROOT.joinpath(*package.split(".")) / "__init__.py"
    tree = ast.parse(init.read_text())
    block = next(
        node for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
    )  # fmt: skip
    return {
        alias.name: node.module
        for node in block.body
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_public_name_is_imported_for_type_checkers_from_where_it_loads(
    package: str,
) -> None:
    imports = _type_checking_imports(package)
    lazy = importlib.import_module(package)
    assert sorted(imports) == lazy.__all__
    for name, module in imports.items():
        assert getattr(lazy, name) is getattr(importlib.import_module(module), name), name
    for sub in lazy.__dir__():  # the listed subpackages import as attributes
        assert getattr(lazy, sub) is not None


def test_dir_lists_the_names_and_the_subpackages() -> None:
    listed = dir(mentor)
    assert set(mentor.__all__) <= set(listed)
    assert {"vision", "text", "tabular", "collab", "inference"} <= set(listed)
    assert mentor.vision.ImageBlock is mentor.ImageBlock


def test_an_unknown_name_is_an_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match="'mentor' has no attribute 'Lerner'"):
        mentor.Lerner  # noqa: B018
    with pytest.raises(ImportError, match="Lerner"):
        from mentor import Lerner  # noqa: F401


def test_a_name_listed_under_two_modules_is_refused() -> None:
    with pytest.raises(ValueError, match="listed under two modules"):
        attach("pkg", {"pkg.a": ("x",), "pkg.b": ("x",)})


def test_import_mentor_is_light_and_still_lists_every_architecture() -> None:
    code = (
        "import sys, mentor\n"
        "assert 'mentor.train' not in sys.modules and 'mentor.vision' not in sys.modules\n"
        "names = mentor.list_models()\n"
        "assert 'resnet34' in names and 'efficientnet_lite0' in names, names\n"
        "assert mentor.create_model('resnet18', n_out=3).fc.out_features == 3\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
