"""`tabular_learner`: a `Learner` with a `TabularModel` sized from the data."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from mentor.core.spec import spec_name
from mentor.tabular.data import TabularDataLoaders
from mentor.tabular.model import TabularModel, build_tabular_model, get_emb_sz
from mentor.train.learner import Learner

__all__ = ["tabular_config", "tabular_learner"]

_CONFIG_KEYS = ("ps", "embed_p", "use_bn", "bn_final", "bn_cont", "act_cls")


def tabular_config(**options: Any) -> dict[str, Any]:
    """`TabularModel` options for `tabular_learner(config=...)` (fastai's name): `ps`,
    `embed_p`, `use_bn`, `bn_final`, `bn_cont`, `act_cls`; an unknown one is named."""
    unknown = sorted(set(options) - set(_CONFIG_KEYS))
    if unknown:
        raise KeyError(f"config keys {unknown} are not TabularModel options {list(_CONFIG_KEYS)}")
    return options


def tabular_learner(
    dls: TabularDataLoaders,
    layers: Sequence[int] = (200, 100),
    emb_szs: Mapping[str, int] | None = None,
    config: Mapping[str, Any] | None = None,
    n_out: int | None = None,
    y_range: tuple[float, float] | None = None,
    loss_func: Callable[..., torch.Tensor] | None = None,
    metrics: Any = None,
    **learner_kw: Any,
) -> Learner:
    """A `Learner` for tabular data: embeddings per categorical column, then an MLP.

    Embedding widths follow `emb_sz_rule` over each column's codes (its Categorify vocabulary
    plus the 0 code for unknown); the defaults match fastai's (no dropout, batch norm in the
    hidden layers and on the continuous inputs, weight decay 0.01 decoupled).

    Args:
        dls: a `TabularDataLoaders`.
        layers: hidden layer sizes ((200, 100)).
        emb_szs: widths overriding the rule for some columns, by column name (None).
        config: more `TabularModel` options: `ps`, `embed_p`, `use_bn`, `bn_final`,
            `bn_cont`, `act_cls` (None: the defaults); `tabular_config(...)` builds it. They
            may also be given directly, as fastai users write them (`ps=[0.1], embed_p=0.04`).
        n_out: model outputs (default `dls.c`: classes, or regression targets).
        y_range: `(low, high)` bounds of the outputs, for regression (None).
        loss_func: the loss (default: cross-entropy for a category target, MSE for floats).
        metrics: metrics computed on validation (e.g. `accuracy`, `exp_rmspe`).
        **learner_kw: more `Learner` arguments (`wd`, `opt_func`, `cbs`, `path`, ...).

    Example:
        >>> learn = tabular_learner(dls, layers=[200, 100], metrics=accuracy)
        >>> learn.fit_one_cycle(3, 1e-2)
    """
    if not isinstance(dls, TabularDataLoaders):
        raise TypeError(
            f"tabular_learner needs a TabularDataLoaders, got {type(dls).__name__}; "
            "build one with TabularDataLoaders.from_df(df, cat_names=..., cont_names=..., "
            "y_names=...)"
        )
    options = tabular_config(**(config or {}))
    direct = {key: learner_kw.pop(key) for key in _CONFIG_KEYS if key in learner_kw}
    twice = sorted(set(direct) & set(options))
    if twice:
        raise ValueError(f"{twice} given both directly and in config; give each once")
    options.update(direct)
    sizes = get_emb_sz(dls.cardinalities, sz_dict=emb_szs)
    out_sz = n_out if n_out is not None else dls.c
    if out_sz < 1:
        raise ValueError(f"the model needs at least one output, got n_out={out_sz}")
    model = TabularModel(
        sizes, len(dls.cont_names), out_sz, list(layers), y_range=y_range, **options
    )
    learn = Learner(dls, model, loss_func=loss_func, metrics=metrics, **learner_kw)
    act_cls = options.pop("act_cls", nn.ReLU)
    act_name = getattr(act_cls, "__name__", "")
    if isinstance(act_cls, type) and getattr(nn, act_name, None) is act_cls:
        kwargs: dict[str, Any] = {
            "emb_szs": [list(s) for s in sizes], "n_cont": len(dls.cont_names),
            "out_sz": out_sz, "layers": list(layers), "act": act_name,
            "y_range": None if y_range is None else list(y_range), **options,
        }  # fmt: skip
        learn.model_spec = {"factory": spec_name(build_tabular_model), "kwargs": kwargs}
    return learn
