"""Texts -> token-id batches outside a loader, with the data's tokenizer and vocabulary."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mentor.core.spec import from_spec, register_spec, to_spec
from mentor.data.encoders import Batch, item_ranges
from mentor.text.loaders import pad_docs
from mentor.text.tokenize import AnyTokenizer
from mentor.text.vocab import Vocab, reverse_ids


@register_spec
class TextEncoder:
    """Texts -> token ids `[B, longest]`, padded on the right; batches group texts of
    similar length (longest first), as the validation loader does. A backward model's texts
    are reversed, as its data was.

    Args:
        tokenizer: the data's tokenizer. vocab: its vocabulary. pad_idx: the padding id.
        backwards: reverse the ids. is_lm: the data of a language model (predicting
            means the next token).
    """

    n_inp = 1

    def __init__(
        self,
        tokenizer: AnyTokenizer,
        vocab: Vocab,
        pad_idx: int,
        backwards: bool = False,
        is_lm: bool = False,
    ) -> None:
        self.tokenizer, self.vocab = tokenizer, vocab
        self.pad_idx, self.backwards, self.is_lm = int(pad_idx), bool(backwards), bool(is_lm)

    def ids(self, text: Any) -> np.ndarray:
        """The token ids of one text."""
        if not isinstance(text, str):
            raise TypeError(f"a text to predict must be a str, got {type(text).__name__}")
        ids = self.vocab.numericalize(self.tokenizer(text))
        return reverse_ids(ids) if self.backwards else ids

    def encode_one(self, item: Any, device: torch.device) -> tuple[Tensor, ...]:
        """The ids of one text, a batch of one."""
        return (torch.from_numpy(self.ids(item))[None].to(device),)

    def batches(self, items: Sequence[Any], bs: int, device: torch.device) -> Iterator[Batch]:
        """Batches of `bs` texts, longest first, with their positions."""
        docs = [self.ids(text) for text in items]
        lengths = np.array([len(doc) for doc in docs], dtype=np.int64)
        order = np.argsort(-lengths, kind="stable").tolist()
        for chunk in item_ranges(len(order), bs):
            positions = [order[i] for i in chunk]
            yield (pad_docs([docs[i] for i in positions], self.pad_idx).to(device),), positions

    def geometry(self, item: Any) -> None:
        """No image: nothing to map back."""
        return None

    def to_spec(self) -> dict[str, Any]:
        """The tokenizer's rules, the vocabulary and the padding and direction settings."""
        return {
            "tokenizer": to_spec(self.tokenizer, "the tokenizer"),
            "vocab": self.vocab.to_spec(),
            "pad_idx": self.pad_idx,
            "backwards": self.backwards,
            "is_lm": self.is_lm,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> TextEncoder:
        """The encoder `to_spec` described."""
        tokenizer = from_spec(spec["tokenizer"], kind="tokenizer")
        return cls(tokenizer, Vocab.from_spec(spec["vocab"]), spec["pad_idx"],
                   spec["backwards"], spec["is_lm"])  # fmt: skip


__all__ = ["TextEncoder"]
