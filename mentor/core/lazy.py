"""Lazy public names for a package's `__init__` (the scientific-Python way, SPEC 1).

A package lists its public names in a table (name -> the module that defines it) and imports
the same names under `TYPE_CHECKING`, so IDEs and mypy see every one; at run time a name's
module is imported the first time the name is read. `import mentor.inference` then loads a
`.mentor` file without importing the training loop.

Example:
    >>> __getattr__, __dir__, __all__ = attach(__name__, {"mentor.train": ("Learner",)})
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def attach(
    package: str, names: Mapping[str, Sequence[str]], submodules: Sequence[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """The module-level `__getattr__`, `__dir__` and `__all__` of `package`.

    Args:
        package: the package's `__name__`.
        names: for each module, the public names it defines (read from it on first use).
        submodules: the package's subpackages, importable as attributes (`mentor.vision`).
    """
    where = {name: module for module, module_names in names.items() for name in module_names}
    if len(where) != sum(len(module_names) for module_names in names.values()):
        raise ValueError(f"{package}: a public name is listed under two modules")
    public = sorted(where)

    def __getattr__(name: str) -> Any:
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # the next read is a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted([*public, *submodules])

    return __getattr__, __dir__, public
