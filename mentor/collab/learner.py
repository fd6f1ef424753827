"""`collab_learner`: a `Learner` with a dot-product (or embedding MLP) recommendation model."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from mentor.collab.data import CollabDataLoaders
from mentor.collab.model import build_collab_model
from mentor.core.spec import spec_name
from mentor.tabular.model import get_emb_sz
from mentor.train.learner import Learner
from mentor.train.losses import MSELossFlat


def collab_learner(
    dls: CollabDataLoaders,
    n_factors: int = 50,
    use_nn: bool = False,
    emb_szs: Mapping[str, int] | None = None,
    layers: Sequence[int] | None = None,
    y_range: tuple[float, float] | None = None,
    loss_func: Callable[..., torch.Tensor] | None = None,
    **learner_kw: Any,
) -> Learner:
    """A `Learner` for collaborative filtering on `dls` (a `CollabDataLoaders`).

    The model is `EmbeddingDotBias` (factors and biases, with the data's vocabularies so
    that `learn.model.bias(names)` and `weight(names)` work), or with `use_nn` an
    `EmbeddingNN` whose embedding widths follow `emb_sz_rule` unless `emb_szs` overrides them.

    Args:
        dls: the ratings as `CollabDataLoaders`.
        n_factors: factor width of the dot-product model (50); with `use_nn`, the default
            hidden layer size.
        use_nn: use `EmbeddingNN` instead (False).
        emb_szs: widths per column name (user_name / item_name) for `EmbeddingNN` (None).
        layers: hidden layers of `EmbeddingNN` (default `[n_factors]`).
        y_range: `(low, high)` bounds of the predictions, e.g. (0, 5.5) for 1-5 stars (None).
        loss_func: the loss (default `MSELossFlat()`). **learner_kw: more `Learner` arguments
            (`metrics`, `wd`, `opt_func`, `cbs`, ...).

    Example:
        >>> learn = collab_learner(dls, n_factors=40, y_range=(0, 5.5))
        >>> learn.fit_one_cycle(5, 5e-3, wd=0.1)
    """
    if not isinstance(dls, CollabDataLoaders):
        raise TypeError(
            f"collab_learner needs a CollabDataLoaders, got {type(dls).__name__}; "
            "build one with CollabDataLoaders.from_df(ratings)"
        )
    spec: dict[str, Any] = {
        "n_factors": n_factors, "n_users": dls.n_users, "n_items": dls.n_items,
        "y_range": None if y_range is None else list(y_range),
    }  # fmt: skip
    if use_nn:
        cardinalities = {str(dls.user_name): dls.n_users, str(dls.item_name): dls.n_items}
        sizes = get_emb_sz(cardinalities, sz_dict=emb_szs)
        spec.update(emb_szs=[list(s) for s in sizes], layers=list(layers or [n_factors]))
    else:
        spec["classes"] = [dls.classes[dls.user_name], dls.classes[dls.item_name]]
    model = build_collab_model(use_nn, **spec)
    learn = Learner(dls, model, loss_func=loss_func or MSELossFlat(), **learner_kw)
    factory = spec_name(build_collab_model)
    learn.model_spec = {"factory": factory, "kwargs": {"use_nn": use_nn, **spec}}
    return learn


__all__ = ["collab_learner"]
