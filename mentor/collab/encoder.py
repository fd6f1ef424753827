"""(user, item) pairs -> the `[B, 2]` index batches a collab model reads (for predict)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from mentor.core.spec import register_spec
from mentor.core.warn import warn
from mentor.data.encoders import Batch, item_ranges


@register_spec
class CollabEncoder:
    """Users and items as their indices in the training vocabularies; unseen ones map to
    index 0, as the data loaders do, with a warning that counts them.

    Items: `(user, item)` pairs or dicts with the user and item columns (a DataFrame for
    batches).

    Args:
        user_name, item_name: the columns. user_classes, item_classes: the vocabularies
            (index 0 is the unknown entry).
    """

    n_inp = 1

    def __init__(
        self,
        user_name: Any,
        item_name: Any,
        user_classes: Sequence[Any],
        item_classes: Sequence[Any],
    ) -> None:
        self.user_name, self.item_name = user_name, item_name
        self.user_classes, self.item_classes = list(user_classes), list(item_classes)
        self.user_index = {name: i for i, name in enumerate(self.user_classes) if i > 0}
        self.item_index = {name: i for i, name in enumerate(self.item_classes) if i > 0}

    def pair(self, item: Any) -> tuple[Any, Any]:
        """The (user, item) of one pair or row, naming what is wrong with a bad one."""
        if isinstance(item, Mapping | pd.Series):
            missing = [n for n in (self.user_name, self.item_name) if n not in item]
            if missing:
                raise KeyError(f"the row {dict(item)!r} has no {missing} field; it needs "
                               f"{self.user_name!r} and {self.item_name!r}")  # fmt: skip
            return item[self.user_name], item[self.item_name]
        if isinstance(item, tuple | list) and len(item) == 2:
            return item[0], item[1]
        raise TypeError(
            f"a collab item must be a (user, item) pair or a dict with {self.user_name!r} and "
            f"{self.item_name!r}, got {item!r}"
        )

    def known(self, value: Any, which: str) -> Any:
        """A user or item (`which`) as this model's vocabulary spells it: '196' (typed on a
        command line or sent as JSON text) is 196 when the vocabulary has the number; an
        unknown one comes back unchanged (the model predicts it from its biases)."""
        index = self.user_index if which == "user" else self.item_index
        try:
            if value in index:
                return value
        except TypeError:  # unhashable: no vocabulary holds it
            return value
        for kind in (int, float, str):
            try:
                converted = kind(value)
            except (TypeError, ValueError):
                continue
            if converted in index:
                return converted
        return value

    def indices(self, pairs: Sequence[tuple[Any, Any]], device: torch.device) -> Tensor:
        """`[n, 2]` int64 user and item indices; unseen users and items (index 0) are
        counted in a warning."""
        rows = [[self.user_index.get(u, 0), self.item_index.get(i, 0)] for u, i in pairs]
        new_users = list(dict.fromkeys(u for (u, _), (ui, _) in zip(pairs, rows) if ui == 0))
        new_items = list(dict.fromkeys(i for (_, i), (_, ii) in zip(pairs, rows) if ii == 0))
        if new_users or new_items:
            warn(
                "users and items not seen in training get the unknown entry (index 0): "
                f"{len(new_users)} user(s) {new_users[:5]} and {len(new_items)} item(s) "
                f"{new_items[:5]}; their predictions are close to the average rating"
            )
        return torch.tensor(rows, dtype=torch.int64, device=device).reshape(-1, 2)

    def encode_one(self, item: Any, device: torch.device) -> tuple[Tensor, ...]:
        """The indices of one pair, a batch of one."""
        return (self.indices([self.pair(item)], device),)

    def batches(self, items: Any, bs: int, device: torch.device) -> Iterator[Batch]:
        """Batches of `bs` pairs in their order."""
        if isinstance(items, pd.DataFrame):
            pairs = list(zip(items[self.user_name].tolist(), items[self.item_name].tolist()))
        else:
            pairs = [self.pair(item) for item in items]
        for positions in item_ranges(len(pairs), bs):
            yield (self.indices([pairs[i] for i in positions], device),), positions

    def geometry(self, item: Any) -> None:
        """No image: nothing to map back."""
        return None

    def to_spec(self) -> dict[str, Any]:
        """The columns and the vocabularies."""
        return {"user_name": self.user_name, "item_name": self.item_name,
                "user_classes": self.user_classes, "item_classes": self.item_classes}  # fmt: skip

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> CollabEncoder:
        """The encoder `to_spec` described."""
        return cls(spec["user_name"], spec["item_name"], spec["user_classes"],
                   spec["item_classes"])  # fmt: skip


__all__ = ["CollabEncoder"]
