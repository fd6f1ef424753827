"""`TabularModel`: embeddings for categorical columns, batch norm for continuous ones, an MLP.

Embedding sizes come from a rule of thumb (`emb_sz_rule`, fastai's), or the course's
`course_emb_sz_rule`, and can be set per column (`get_emb_sz(..., sz_dict=...)`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from mentor.core.layers import SigmoidRange
from mentor.core.spec import register_spec

EmbSizes = list[tuple[int, int]]


def emb_sz_rule(n_cat: int) -> int:
    """fastai's embedding width for a column with `n_cat` codes: `min(600, round(1.6 * n ** 0.56))`.

    Example:
        >>> emb_sz_rule(10)
        6
    """
    return min(600, round(1.6 * n_cat**0.56))


def course_emb_sz_rule(n_cat: int) -> int:
    """The course's embedding width: `min(50, (n_cat + 1) // 2)`.

    Example:
        >>> course_emb_sz_rule(10)
        5
    """
    return min(50, (n_cat + 1) // 2)


def get_emb_sz(
    cardinalities: Mapping[str, int],
    sz_dict: Mapping[str, int] | None = None,
    rule: Callable[[int], int] = emb_sz_rule,
) -> EmbSizes:
    """`(n_codes, width)` per categorical column, in the order of `cardinalities`.

    Args:
        cardinalities: column name -> number of codes, counting the 0 code for unknown.
        sz_dict: widths that override the rule for some columns (None).
        rule: `n_codes -> width` (default `emb_sz_rule`; `course_emb_sz_rule` is the course's).

    Example:
        >>> get_emb_sz({"workclass": 10, "race": 6}, sz_dict={"race": 3})
        [(10, 6), (6, 3)]
    """
    sz_dict = dict(sz_dict or {})
    unknown = sorted(set(sz_dict) - set(cardinalities))
    if unknown:
        raise KeyError(
            f"sz_dict names columns {unknown} that are not categorical columns "
            f"{list(cardinalities)}; fix the names in sz_dict"
        )
    sizes = []
    for name, n_codes in cardinalities.items():
        if n_codes < 1:
            raise ValueError(f"column {name!r} has {n_codes} codes; it needs at least 1 (unknown)")
        sizes.append((int(n_codes), int(sz_dict.get(name, rule(n_codes)))))
    return sizes


def _per_layer(ps: float | Sequence[float] | None, n_layers: int) -> list[float]:
    """Dropout per hidden layer from a float (the same for all), a list, or None (no dropout)."""
    if ps is None:
        return [0.0] * n_layers
    if isinstance(ps, (int, float)):
        return [float(ps)] * n_layers
    ps = [float(p) for p in ps]
    if len(ps) != n_layers:
        raise ValueError(
            f"ps has {len(ps)} values {ps} for {n_layers} hidden layers; give one per layer "
            "or a single float"
        )
    return ps


class TabularModel(nn.Module):
    """Embeddings for categorical inputs and batch norm for continuous ones, then an MLP.

    Categorical embeddings are concatenated and go through dropout `embed_p`; continuous
    inputs through `BatchNorm1d` (`bn_cont`). Each hidden layer is
    `Linear -> act -> BatchNorm1d -> Dropout` (fastai's order: normalize after the
    activation), then a final `Linear` (with `BatchNorm1d` before it if `bn_final`) and
    `SigmoidRange(*y_range)` if `y_range` is given.

    Args:
        emb_szs: `(n_codes, width)` per categorical column (see `get_emb_sz`); [] for none.
        n_cont: number of continuous columns (0 for none).
        out_sz: outputs of the model (classes, or regression targets).
        layers: sizes of the hidden layers, e.g. [200, 100].
        ps: dropout after each hidden layer: a float, one per layer, or None (0).
        embed_p: dropout on the concatenated embeddings (0.0).
        y_range: `(low, high)` bounds of the outputs (None: unbounded).
        use_bn: batch norm in the hidden layers (True). bn_final: before the last Linear (False).
        bn_cont: batch norm on the continuous inputs (True). act_cls: activation (nn.ReLU).

    Example:
        >>> model = TabularModel([(10, 6), (6, 4)], n_cont=3, out_sz=2, layers=[200, 100])
        >>> model(torch.zeros(8, 2, dtype=torch.long), torch.randn(8, 3)).shape
        torch.Size([8, 2])
    """

    def __init__(
        self,
        emb_szs: Sequence[tuple[int, int]],
        n_cont: int,
        out_sz: int,
        layers: Sequence[int],
        ps: float | Sequence[float] | None = None,
        embed_p: float = 0.0,
        y_range: tuple[float, float] | None = None,
        use_bn: bool = True,
        bn_final: bool = False,
        bn_cont: bool = True,
        act_cls: Callable[[], nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        if not emb_szs and n_cont == 0:
            raise ValueError("TabularModel needs inputs: emb_szs is empty and n_cont is 0")
        self.embeds = nn.ModuleList([nn.Embedding(n, width) for n, width in emb_szs])
        self.emb_drop = nn.Dropout(embed_p)
        self.bn_cont = nn.BatchNorm1d(n_cont) if bn_cont and n_cont > 0 else None
        self.n_emb = sum(width for _, width in emb_szs)
        self.n_cont = n_cont
        sizes = [self.n_emb + n_cont, *layers]
        blocks: list[nn.Module] = []
        for n_in, n_out, p in zip(sizes[:-1], sizes[1:], _per_layer(ps, len(layers))):
            blocks += [nn.Linear(n_in, n_out), act_cls()]
            blocks += [nn.BatchNorm1d(n_out)] if use_bn else []
            blocks += [nn.Dropout(p)] if p > 0 else []
        if bn_final:
            blocks.append(nn.BatchNorm1d(sizes[-1]))
        blocks.append(nn.Linear(sizes[-1], out_sz))
        if y_range is not None:
            blocks.append(SigmoidRange(*y_range))
        self.layers = nn.Sequential(*blocks)

    def forward(self, x_cat: Tensor, x_cont: Tensor) -> Tensor:
        """`x_cat` [B, n_cat] int64 codes and `x_cont` [B, n_cont] floats -> [B, out_sz]."""
        parts = []
        if len(self.embeds) > 0:
            if x_cat.shape[1] != len(self.embeds):
                raise ValueError(
                    f"x_cat has {x_cat.shape[1]} columns but the model has {len(self.embeds)} "
                    "embeddings; pass one code column per categorical variable"
                )
            embedded = [emb(x_cat[:, i]) for i, emb in enumerate(self.embeds)]
            parts.append(self.emb_drop(torch.cat(embedded, dim=1)))
        if self.n_cont > 0:
            parts.append(x_cont if self.bn_cont is None else self.bn_cont(x_cont.float()))
        return self.layers(torch.cat(parts, dim=1) if len(parts) > 1 else parts[0])


@register_spec
def build_tabular_model(
    emb_szs: Sequence[Sequence[int]],
    n_cont: int,
    out_sz: int,
    layers: Sequence[int],
    act: str = "ReLU",
    y_range: Sequence[float] | None = None,
    **options: Any,
) -> TabularModel:
    """The `TabularModel` `tabular_learner` builds, from plain data (for `load_learner`).

    Args:
        emb_szs: `(n_codes, width)` per categorical column. n_cont: continuous columns.
        out_sz: outputs. layers: hidden sizes. act: the name of a `torch.nn` activation
            class ('ReLU'). y_range: output bounds (None). options: more `TabularModel`
            options (`ps`, `embed_p`, `use_bn`, `bn_final`, `bn_cont`).
    """
    act_cls = getattr(nn, act, None)
    if not (isinstance(act_cls, type) and issubclass(act_cls, nn.Module)):
        raise ValueError(f"act {act!r} is not a torch.nn activation class; use e.g. 'ReLU'")
    sizes = [(int(n), int(width)) for n, width in emb_szs]
    low_high = None if y_range is None else (float(y_range[0]), float(y_range[1]))
    return TabularModel(
        sizes, n_cont, out_sz, list(layers), y_range=low_high, act_cls=act_cls, **options
    )


__all__ = [
    "TabularModel",
    "build_tabular_model",
    "course_emb_sz_rule",
    "emb_sz_rule",
    "get_emb_sz",
]
