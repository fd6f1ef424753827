"""Collaborative-filtering models: a biased dot product of embeddings, and an embedding MLP."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from mentor.collab.data import encode_values
from mentor.core.spec import register_spec
from mentor.tabular.model import TabularModel


class EmbeddingDotBias(nn.Module):
    """Predicts a rating as `user . item + user_bias + item_bias`, squashed into `y_range`.

    Factors and biases start as small normals (std 0.01), as in fastai.

    Args:
        n_factors: width of the user and item factor vectors.
        n_users, n_items: number of user and item indices (the unknown index 0 included).
        y_range: `(low, high)` bounds of the predictions (None: unbounded).
        classes: optional `(user_names, item_names)` vocabularies (index i is name i), so that
            `bias` and `weight` accept names; `collab_learner` passes the data's.

    Example:
        >>> model = EmbeddingDotBias(40, n_users=944, n_items=1683, y_range=(0, 5.5))
        >>> model(torch.tensor([[1, 2]])).shape
        torch.Size([1])
    """

    def __init__(
        self,
        n_factors: int,
        n_users: int,
        n_items: int,
        y_range: tuple[float, float] | None = None,
        classes: tuple[Sequence[Any], Sequence[Any]] | None = None,
    ) -> None:
        super().__init__()
        self.u_weight = nn.Embedding(n_users, n_factors)
        self.i_weight = nn.Embedding(n_items, n_factors)
        self.u_bias = nn.Embedding(n_users, 1)
        self.i_bias = nn.Embedding(n_items, 1)
        for emb in (self.u_weight, self.i_weight, self.u_bias, self.i_bias):
            nn.init.normal_(emb.weight, std=0.01)
        self.y_range = y_range
        self.classes = classes

    def forward(self, x: Tensor) -> Tensor:
        """`x` [B, 2] int64 (user, item) indices -> [B] predicted ratings."""
        users, items = x[:, 0], x[:, 1]
        dot = (self.u_weight(users) * self.i_weight(items)).sum(dim=1)
        res = dot + self.u_bias(users).squeeze(1) + self.i_bias(items).squeeze(1)
        if self.y_range is None:
            return res
        low, high = self.y_range
        return torch.sigmoid(res) * (high - low) + low

    def _indices(self, names: Any, is_item: bool) -> Tensor:
        """Indices of `names` (through `classes`) or, without classes, `names` as indices."""
        if isinstance(names, Tensor):
            return names.long().to(self.u_weight.weight.device)
        if self.classes is None:
            return torch.as_tensor(names, dtype=torch.long, device=self.u_weight.weight.device)
        vocab = self.classes[1 if is_item else 0]
        return encode_values(names, vocab).to(self.u_weight.weight.device)

    def bias(self, items: Any, is_item: bool = True) -> Tensor:
        """The learned biases `[N]` of `items` (names, or indices as a tensor); users if not
        `is_item`. Unknown names give the bias of index 0."""
        table = self.i_bias if is_item else self.u_bias
        return table.weight[self._indices(items, is_item)].squeeze(1).detach()

    def weight(self, items: Any, is_item: bool = True) -> Tensor:
        """The learned factors `[N, n_factors]` of `items` (names, or indices as a tensor);
        users if not `is_item`."""
        table = self.i_weight if is_item else self.u_weight
        return table.weight[self._indices(items, is_item)].detach()


class EmbeddingNN(TabularModel):
    """A `TabularModel` over the (user, item) columns with no continuous inputs.

    Args:
        emb_szs: `[(n_users, user_width), (n_items, item_width)]`.
        layers: sizes of the hidden layers. **kwargs: more `TabularModel` arguments
            (`ps`, `embed_p`, `y_range`, `use_bn`, ...); the output is one rating.

    Example:
        >>> model = EmbeddingNN([(944, 74), (1683, 102)], layers=[100], y_range=(0, 5.5))
        >>> model(torch.tensor([[1, 2]])).shape
        torch.Size([1])
    """

    def __init__(
        self, emb_szs: Sequence[tuple[int, int]], layers: Sequence[int], **kwargs: Any
    ) -> None:
        if len(emb_szs) != 2:
            raise ValueError(
                f"EmbeddingNN needs two embedding sizes (user, item), got {list(emb_szs)}"
            )
        super().__init__(emb_szs, n_cont=0, out_sz=1, layers=layers, **kwargs)

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        """`x` [B, 2] int64 (user, item) indices -> [B] predicted ratings."""
        return super().forward(x, x.new_zeros((x.shape[0], 0), dtype=torch.float32)).squeeze(1)


@register_spec
def build_collab_model(
    use_nn: bool,
    n_factors: int,
    n_users: int,
    n_items: int,
    y_range: Sequence[float] | None = None,
    classes: Sequence[Sequence[Any]] | None = None,
    emb_szs: Sequence[Sequence[int]] | None = None,
    layers: Sequence[int] | None = None,
) -> nn.Module:
    """The model `collab_learner` builds, from plain data (for `load_learner`).

    Args:
        use_nn: `EmbeddingNN` (with `emb_szs` and `layers`) instead of `EmbeddingDotBias`.
        n_factors, n_users, n_items, y_range: see `collab_learner`.
        classes: `(user_names, item_names)` for `EmbeddingDotBias.bias` / `weight` by name.
    """
    low_high = None if y_range is None else (float(y_range[0]), float(y_range[1]))
    if use_nn:
        sizes = [(int(n), int(width)) for n, width in emb_szs or ()]
        return EmbeddingNN(sizes, layers=list(layers or [n_factors]), y_range=low_high)
    names = None if classes is None else (list(classes[0]), list(classes[1]))
    return EmbeddingDotBias(n_factors, n_users, n_items, low_high, names)


__all__ = ["EmbeddingDotBias", "EmbeddingNN", "build_collab_model"]
