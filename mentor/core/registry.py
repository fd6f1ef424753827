"""Explicit name -> factory registries (models, optimizers, losses), with metadata per name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

F = TypeVar("F", bound=Callable[..., Any])


class Registry(Generic[F]):
    """A named table of factories; `register` is a decorator, `create` builds by name.

    Example:
        >>> models = Registry("model")
        >>> @models.register
        ... def tiny(n_out: int = 2): ...
        >>> models.create("tiny", n_out=3)
    """

    def __init__(self, kind: str, empty_hint: str = "") -> None:
        self.kind = kind
        self.empty_hint = empty_hint  # what to do when nothing is registered yet
        self.factories: dict[str, F] = {}
        self.meta: dict[str, Any] = {}  # name -> what users of the factory need to know

    def register(self, factory: F, name: str | None = None, meta: Any = None) -> F:
        """Add `factory` under `name` (default: its `__name__`), with its `meta`data (for
        a model, where `vision_learner` cuts it); names are unique."""
        key = name or factory.__name__
        if key in self.factories:
            raise ValueError(f"{self.kind} {key!r} is registered twice; pick another name")
        self.factories[key] = factory
        if meta is not None:
            self.meta[key] = meta
        return factory

    def get(self, name: str) -> F:
        """The factory registered as `name`, with a helpful error when it is unknown."""
        if name not in self.factories:
            known = ", ".join(sorted(self.factories)) or f"none yet{self.empty_hint}"
            raise KeyError(f"unknown {self.kind} {name!r}; known {self.kind}s: {known}")
        return self.factories[name]

    def create(self, name: str, **kwargs: Any) -> Any:
        """Call the factory registered as `name` with `kwargs`."""
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self.factories)

    def __contains__(self, name: object) -> bool:
        return name in self.factories


MODELS: Registry[Callable[..., Any]] = Registry(
    "model",
    empty_hint=" (import mentor.vision.models, or use mentor.create_model, to register "
    "the built-in architectures)",
)
OPTIMIZERS: Registry[Callable[..., Any]] = Registry("optimizer")  # `Learner(opt_func="sgd")`
LOSSES: Registry[Callable[..., Any]] = Registry("loss")


@overload
def register_model(factory: F, *, meta: Any = None) -> F: ...


@overload
def register_model(factory: None = None, *, meta: Any = None) -> Callable[[F], F]: ...


def register_model(factory: F | None = None, *, meta: Any = None) -> F | Callable[[F], F]:
    """Decorator: add a model factory to the model registry under its function name, with
    its metadata (`mentor.vision.models.ModelMeta` for an image architecture, so
    `vision_learner` can cut it into body and head).

    Example:
        >>> @register_model(meta=ModelMeta(cut=-2, n_features=512))
        ... def my_resnet(n_out=1000, c_in=3, pretrained=False, weights=None): ...
    """
    if factory is None:
        return lambda f: _register(f, meta)
    return _register(factory, meta)


def _register(factory: F, meta: Any) -> F:
    MODELS.register(factory, meta=meta)
    return factory


def create_model(name: str, **kwargs: Any) -> Any:
    """Build the registered model `name` with `kwargs` (e.g. `n_out=10`)."""
    return MODELS.create(name, **kwargs)


def list_models() -> list[str]:
    """The names of all registered models."""
    return MODELS.names()
