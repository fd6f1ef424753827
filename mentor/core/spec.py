"""The spec registry: exportable pieces described as JSON data and rebuilt by name.

Every piece a `.mentor` file holds (a block, an item or batch transform, a tabular proc, a
tokenizer, a loss's decoding, the inputs encoder of a kind of data, a model factory) is
registered under its stable name `module:qualname`. A registered class implements
`to_spec() -> dict` (JSON data only) and a classmethod `from_spec(dict)` that rebuilds an
equal object; a registered function (a model factory) is called with the spec's keyword
arguments. `to_spec(obj)` adds the name under `"type"`; `from_spec(data)` reads it back.

Loading only ever builds registered names: a name is looked up in the registry, and its
module is imported first only when it is one of mentor's own or one the caller trusts, so a
file can't make the loader import or run other code.

Example:
    >>> @register_spec
    ... class AddOne(ItemTransform):
    ...     def to_spec(self) -> dict[str, Any]:
    ...         return {}
    ...     @classmethod
    ...     def from_spec(cls, spec: dict[str, Any]) -> AddOne:
    ...         return cls()
    >>> from_spec(to_spec(AddOne()))
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import inspect
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")
SPEC_KEY = "type"
_SPECS: dict[str, Any] = {}
_TRUSTED: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("trusted", default=())
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@runtime_checkable
class Exportable(Protocol):
    """What a registered class implements."""

    def to_spec(self) -> dict[str, Any]: ...

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Any: ...


class InitSpec:
    """Mixin for a class whose `to_spec` returns its constructor's arguments: `from_spec`
    calls the constructor with them."""

    @classmethod
    def from_spec(cls: type[T], spec: dict[str, Any]) -> T:
        """The object `to_spec` described."""
        return cls(**spec)


def spec_name(target: Any) -> str:
    """The registry name of a class or function: `module:qualname`."""
    return f"{target.__module__}:{target.__qualname__}"


def register_spec(target: T) -> T:
    """Decorator: register a class (with `to_spec` / `from_spec`) or a model factory.

    Names are `module:qualname`, so the class must live at module level in an importable
    module (not `__main__`, not inside a function).
    """
    name = spec_name(target)
    module, qualname = name.split(":")
    if module == "__main__" or "<locals>" in qualname:
        raise ValueError(
            f"register_spec needs {qualname} at the top level of an importable module (it is "
            f"in {module!r}): a file naming it must find it again in another process"
        )
    if isinstance(target, type) and not issubclass(target, Exportable):
        raise TypeError(
            f"{qualname} needs a to_spec(self) -> dict method and a from_spec(cls, spec) "
            "classmethod to be registered"
        )
    if not callable(target):
        raise TypeError(f"register_spec takes a class or a function, got {target!r}")
    known = _SPECS.get(name)
    if known is not None and known is not target:
        raise ValueError(f"{name} is registered twice (by two different objects)")
    _SPECS[name] = target
    return target


def is_registered(obj: Any) -> bool:
    """Whether `obj` (an instance, class or function) is registered."""
    target = obj if isinstance(obj, type) or inspect.isfunction(obj) else type(obj)
    return _SPECS.get(spec_name(target)) is target


def to_spec(obj: Any, what: str = "") -> dict[str, Any]:
    """`{"type": name, **obj.to_spec()}`; a ValueError naming `obj` when it is not
    registered or its spec is not JSON data."""
    cls = type(obj)
    what = what or f"the {cls.__name__}"
    if _SPECS.get(spec_name(cls)) is not cls:
        raise ValueError(
            f"export cannot describe {what} ({spec_name(cls)}) as data: it is not registered. "
            "Give its class to_spec() / from_spec() and decorate it with "
            "@mentor.core.spec.register_spec, or leave it out of the exported learner"
        )
    data = obj.to_spec()
    if SPEC_KEY in data:
        raise ValueError(f"{cls.__name__}.to_spec() must not use the key {SPEC_KEY!r}")
    return {SPEC_KEY: spec_name(cls), **json_value(data, what)}


@contextlib.contextmanager
def trusting(trusted_modules: Sequence[str]) -> Iterator[None]:
    """Within the block, `resolve` may import names from `trusted_modules` (a loader sets it
    while it rebuilds a file's pieces, so nested `from_spec` calls see it too)."""
    token = _TRUSTED.set(tuple(trusted_modules))
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def resolve(name: Any, trusted_modules: Sequence[str] | None = None, kind: str = "piece") -> Any:
    """The registered class or function called `name` (`module:qualname`).

    A name not registered yet has its module imported first when it is mentor's own or in
    `trusted_modules` (default: those of the enclosing `trusting` block); anything else is
    refused with a ValueError that says what to do.
    """
    trusted_modules = _TRUSTED.get() if trusted_modules is None else trusted_modules
    if not isinstance(name, str) or name.count(":") != 1:
        raise ValueError(f"{kind} {name!r} is not of the form 'module:qualname'")
    module, qualname = name.split(":")
    if not (_NAME.match(module) and _NAME.match(qualname)):
        raise ValueError(f"{kind} {name!r} is not a valid 'module:qualname'")
    if name not in _SPECS:
        if not (_is_mentor(module) or trusted(module, trusted_modules)):
            raise ValueError(
                f"the file names the {kind} {name!r}, which is not one of mentor's "
                f"{_plural(kind)} nor registered here; loading it would import {module!r}. "
                "Import the module that registers it first, or, if you trust this file, "
                f"pass trusted_modules=[{module.split('.')[0]!r}]"
            )
        importlib.import_module(module)
    if name not in _SPECS:
        raise ValueError(
            f"the file names the {kind} {name!r}, which is not registered (decorate it with "
            "@register_spec)"
        )
    return _SPECS[name]


def from_spec(
    data: Any,
    trusted_modules: Sequence[str] | None = None,
    kind: str = "piece",
    expect: type | None = None,
) -> Any:
    """The object `to_spec` described, rebuilt by its registered class.

    Args:
        data: `{"type": "module:qualname", ...}`. trusted_modules: see `resolve`.
        kind: what the piece is, for messages. expect: the base class it must be (checked).
    """
    if not isinstance(data, Mapping) or not isinstance(data.get(SPEC_KEY), str):
        raise ValueError(f"a {kind} must be a JSON object with a {SPEC_KEY!r}, got {data!r}")
    cls: Any = resolve(data[SPEC_KEY], trusted_modules, kind)
    if not isinstance(cls, type):
        raise ValueError(f"{kind} {data[SPEC_KEY]!r} names a function, not a class")
    if expect is not None and not issubclass(cls, expect):
        raise ValueError(f"{kind} {data[SPEC_KEY]!r} is not a {expect.__name__}")
    try:
        builder: Any = cls
        return builder.from_spec({k: v for k, v in data.items() if k != SPEC_KEY})
    except (KeyError, TypeError) as err:
        raise ValueError(f"the {kind} {data[SPEC_KEY]!r} has a bad spec: {err!r}") from None


def _plural(kind: str) -> str:
    return kind[:-1] + "ies" if kind.endswith("y") else kind + "s"


def trusted(module: str, trusted_modules: Sequence[str]) -> bool:
    """Whether `module` is one of `trusted_modules` or inside one."""
    return any(module == m or module.startswith(m + ".") for m in trusted_modules)


def _is_mentor(module: str) -> bool:
    return module.split(".")[0] == "mentor"


def json_value(value: T, what: str) -> T:
    """`value` when JSON writes and reads it back unchanged; else a ValueError naming it."""
    try:
        same = json.loads(json.dumps(value, allow_nan=False)) == value
    except (TypeError, ValueError):
        same = False
    if not same:
        shown = repr(value)
        shown = shown if len(shown) < 200 else shown[:200] + "..."
        raise ValueError(
            f"export cannot write {what} as JSON: {shown}; use strings, numbers, booleans "
            "and lists of them (e.g. map labels to strings before building the data)"
        )
    return value


def registered_names() -> list[str]:
    """Every registered name, sorted."""
    return sorted(_SPECS)


__all__ = [
    "SPEC_KEY",
    "Exportable",
    "InitSpec",
    "from_spec",
    "is_registered",
    "json_value",
    "register_spec",
    "registered_names",
    "resolve",
    "spec_name",
    "to_spec",
    "trusted",
    "trusting",
]
