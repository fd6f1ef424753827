"""`Vocab`: the token <-> index maps of a text model, built from a tokenized corpus."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from mentor.core.spec import register_spec
from mentor.text.tokenize import SPECIAL_TOKENS

FAKE = "xxfake"


@register_spec
class Vocab:
    """Token <-> index maps; unknown tokens map to index 0 (`xxunk`).

    Args:
        itos: the tokens in index order (index 0 should be `xxunk`).

    Example:
        >>> vocab = Vocab.build([["xxbos", "a", "cat"], ["a", "dog"]], min_freq=1)
        >>> vocab.numericalize(["a", "cow"])   # array([9, 0])
    """

    def __init__(self, itos: Sequence[str]) -> None:
        self.itos = list(itos)
        if not self.itos:
            raise ValueError("a Vocab needs at least one token (index 0 is used for unknowns)")
        self.stoi = {token: i for i, token in enumerate(self.itos)}

    @classmethod
    def build(
        cls,
        token_lists: Iterable[Sequence[str]],
        min_freq: int = 3,
        max_vocab: int = 60000,
        specials: Sequence[str] = SPECIAL_TOKENS,
        pad_to: int = 8,
    ) -> Vocab:
        """The vocabulary of a tokenized corpus.

        Args:
            token_lists: the tokens of every text.
            min_freq: keep tokens seen at least this often (default 3).
            max_vocab: at most this many entries, specials and padding included (default 60000).
            specials: tokens put first, in this order (default `SPECIAL_TOKENS`: 0 is `xxunk`).
            pad_to: pad the length to a multiple of this with `xxfake` entries, as fastai does,
                so the embedding and output matrices have GPU-friendly sizes (default 8; 1 for
                none); skipped when it would exceed `max_vocab`.

        Tokens come by descending frequency; ties keep the order of first appearance.
        """
        counts = Counter(itertools.chain.from_iterable(token_lists))
        if not counts:
            raise ValueError(
                "can't build a Vocab: the texts are empty (no tokens); check that the texts "
                "were read and tokenized"
            )
        if pad_to < 1 or max_vocab < len(specials):
            raise ValueError(
                f"pad_to={pad_to} must be >= 1 and max_vocab={max_vocab} at least the "
                f"{len(specials)} special tokens"
            )
        itos = list(dict.fromkeys(specials))
        taken = set(itos)
        limit = max_vocab - max_vocab % pad_to  # leave room for the padding within max_vocab
        limit = limit if limit >= len(itos) else max_vocab
        # most_common sorts stably, so equal counts stay in first-appearance order
        for token, count in counts.most_common():
            if count < min_freq or len(itos) >= limit:
                break
            if token not in taken:
                itos.append(token)
        if len(itos) - len(itos) % -pad_to <= max_vocab:
            itos += [FAKE] * (-len(itos) % pad_to)
        return cls(itos)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def __iter__(self) -> Iterator[str]:
        """The tokens in index order (`itos`)."""
        return iter(self.itos)

    def numericalize(self, tokens: Sequence[str]) -> np.ndarray:
        """The int64 indices of `tokens` (0 for unknown tokens)."""
        get = self.stoi.get
        return np.fromiter((get(t, 0) for t in tokens), dtype=np.int64, count=len(tokens))

    def numericalize_many(self, token_lists: Iterable[Sequence[str]]) -> list[np.ndarray]:
        """`numericalize` of every token list."""
        get = self.stoi.get
        return [np.array([get(t, 0) for t in tokens], dtype=np.int64) for tokens in token_lists]

    def textify(self, ids: Sequence[int] | np.ndarray | torch.Tensor) -> list[str]:
        """The tokens of indices (a list, a numpy array or a 1-d tensor)."""
        if isinstance(ids, torch.Tensor | np.ndarray):
            ids = ids.tolist()
        itos, size = self.itos, len(self.itos)
        bad = next((i for i in ids if not 0 <= i < size), None)
        if bad is not None:
            raise IndexError(f"index {bad} is out of this vocabulary of {size} tokens")
        return [itos[i] for i in ids]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready contents; `Vocab.from_dict` rebuilds the vocabulary."""
        return {"itos": list(self.itos)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocab:
        """Rebuild a vocabulary saved with `to_dict`."""
        if "itos" not in data:
            raise ValueError(f"not a saved Vocab: no 'itos' key among {sorted(data)}")
        return cls(data["itos"])

    def to_spec(self) -> dict[str, Any]:
        """The tokens, for export."""
        return self.to_dict()

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Vocab:
        """The vocabulary `to_spec` described."""
        return cls.from_dict(spec)

    def __repr__(self) -> str:
        head = ", ".join(self.itos[:10])
        return f"Vocab({len(self)} tokens: {head}{', ...' if len(self) > 10 else ''})"


def reverse_ids(ids: np.ndarray) -> np.ndarray:
    """A text's token ids in reverse order, contiguous (torch can't take a negative stride):
    how `backwards=True` data and a backward model's exported inputs read a text."""
    return np.ascontiguousarray(ids[::-1])
