"""Batches of numericalized texts: one token stream for language models, padded and
length-sorted batches for classifiers.

Both read documents already turned into token ids (`np.ndarray`s), so a batch is a few
tensor slices (language model) or one padded array (classifier), never per-token Python.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from mentor.data.shard import Shard


class LMLoader:
    """Language-model batches `(x, y)`: the documents concatenated into one stream, split into
    `bs` contiguous rows, read `seq_len` tokens at a time; `y` is `x` shifted by one token.

    Row `r` of a batch continues row `r` of the batch before it, so a stateful model (AWD-LSTM)
    carries its hidden state from one batch to the next. Training loaders reshuffle the
    document order at every pass and, as in the course, vary the sequence length a little
    (normal around `seq_len`, a twentieth of the batches around `seq_len / 2`), so the model
    doesn't see the same cut points every epoch. Random draws use PyTorch's global generator,
    so `set_seed` makes them reproducible.

    Args:
        docs: the documents as arrays of token ids.
        bs: rows per batch (64). seq_len: tokens per row and batch (72).
        shuffle: reshuffle the documents at every pass (False). jitter: vary the sequence
            length (default: as `shuffle`).

    Example:
        >>> x, y = next(iter(LMLoader(docs, bs=32, seq_len=72)))   # both [32, 72]
    """

    def __init__(
        self,
        docs: Sequence[np.ndarray],
        bs: int = 64,
        seq_len: int = 72,
        shuffle: bool = False,
        jitter: bool | None = None,
    ) -> None:
        if bs < 1 or seq_len < 1:
            raise ValueError(f"bs and seq_len must be at least 1, got bs={bs}, seq_len={seq_len}")
        self.docs = list(docs)
        self.bs, self.seq_len = bs, seq_len
        self.shuffle = shuffle
        self.jitter = shuffle if jitter is None else jitter
        self.n_tokens = sum(len(doc) for doc in self.docs)
        self.shard_info: Shard | None = None
        self.row_len = self._row_len(bs)

    def _row_len(self, n_rows: int) -> int:
        row_len = (self.n_tokens - 1) // n_rows
        if row_len < 1:
            raise ValueError(
                f"{self.n_tokens} tokens are too few for {n_rows} rows of a language-model "
                "batch; use a smaller bs (or fewer processes) or more text"
            )
        return row_len

    def shard(self, shard: Shard) -> LMLoader:
        """A copy for one rank of a distributed run: the stream is cut into `bs * world`
        rows, as one process with that batch size would cut it, and this rank reads rows
        `rank * bs` to `(rank + 1) * bs` (training and evaluation alike: rows never overlap)."""
        out = copy.copy(self)
        out.shard_info = shard
        out.row_len = self._row_len(self.bs * shard.world)
        return out

    def __len__(self) -> int:
        return math.ceil(self.row_len / self.seq_len)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        inputs, targets = self._rows()
        # the lengths come from a generator of the pass's own, seeded once from torch's: the
        # stream's cuts then don't depend on what else draws random numbers (dropout), so a
        # resumed epoch cuts it where the interrupted one did
        lengths = torch.Generator().manual_seed(int(torch.randint(2**62, ())))
        start = 0
        while start < self.row_len:
            length = self._next_len(lengths)
            yield inputs[:, start : start + length], targets[:, start : start + length]
            start += length

    def _rows(self) -> tuple[Tensor, Tensor]:
        """The stream for this pass as `[bs, row_len]` inputs and next-token targets."""
        order = torch.randperm(len(self.docs)).tolist() if self.shuffle else range(len(self.docs))
        stream = torch.from_numpy(np.concatenate([self.docs[i] for i in order]).astype(np.int64))
        shard = self.shard_info
        rows = self.bs * (shard.world if shard else 1)
        n = rows * self.row_len
        inputs, targets = stream[:n].view(rows, -1), stream[1 : n + 1].view(rows, -1)
        if shard is None:
            return inputs, targets
        mine = slice(shard.rank * self.bs, (shard.rank + 1) * self.bs)
        return inputs[mine], targets[mine]

    def _next_len(self, generator: torch.Generator) -> int:
        if not self.jitter:
            return self.seq_len
        centre = (
            self.seq_len if float(torch.rand((), generator=generator)) < 0.95 else self.seq_len / 2
        )
        return max(5, int(centre + 5 * float(torch.randn((), generator=generator))))


class SortedTextLoader:
    """Classifier batches `(x, y)` (or `(x,)` without labels): texts padded on the right with
    `pad_idx` to the longest in the batch.

    Texts of similar length go together to waste little on padding: training passes shuffle
    the texts, sort each bucket of `bs * 50` texts by length and shuffle the batches (the
    longest first, so a memory problem shows at once); other passes sort all texts by length.
    `item_order` lists the text indices in the order the batches yield them, so predictions
    can be put back in the texts' order (`get_preds` does).

    Args:
        docs: the texts as arrays of token ids. labels: one target per text (None: no targets).
        bs: texts per batch (64). pad_idx: the padding id (1, 'xxpad').
        shuffle: training order (False: sorted by length, longest first).

    Example:
        >>> x, y = next(iter(SortedTextLoader(docs, labels, bs=32)))   # x [32, longest]
    """

    bucket_batches = 50  # batches per bucket sorted together when shuffling

    def __init__(
        self,
        docs: Sequence[np.ndarray],
        labels: Tensor | None = None,
        bs: int = 64,
        pad_idx: int = 1,
        shuffle: bool = False,
    ) -> None:
        if labels is not None and len(labels) != len(docs):
            raise ValueError(f"{len(docs)} texts but {len(labels)} labels; give one per text")
        if bs < 1:
            raise ValueError(f"batch size must be at least 1, got bs={bs}")
        self.docs = list(docs)
        self.labels = labels
        self.bs, self.pad_idx, self.shuffle = bs, pad_idx, shuffle
        self.lengths = np.array([len(doc) for doc in self.docs], dtype=np.int64)
        self.sorted_order: list[int] = np.argsort(-self.lengths, kind="stable").tolist()
        self.item_order = self.sorted_order
        self.shard_info: Shard | None = None

    def __len__(self) -> int:
        shard = self.shard_info
        if shard is None:
            return math.ceil(len(self.docs) / self.bs)
        if shard.train:
            return math.ceil(len(self.docs) / (self.bs * shard.world))
        block = shard.block(self.sorted_order)
        return math.ceil((block.stop - block.start) / self.bs)

    def shard(self, shard: Shard) -> SortedTextLoader:
        """A copy for one rank of a distributed run: a training pass draws the batches of
        `bs * world` texts one process would, and this rank reads its piece of each; an
        evaluation pass reads one block of the length-sorted texts (`item_order` lists them,
        so gathered predictions go back in the texts' order)."""
        out = copy.copy(self)
        out.shard_info = shard
        if not shard.train:
            out.item_order = self.sorted_order[shard.block(self.sorted_order)]
        return out

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        batches = self._pass_batches()
        if self.shuffle:
            self.item_order = [i for batch in batches for i in batch]
        for batch in batches:
            x = pad_docs([self.docs[i] for i in batch], self.pad_idx)
            yield (x,) if self.labels is None else (x, self.labels[batch])

    def _pass_batches(self) -> list[list[int]]:
        shard = self.shard_info
        if shard is None or not shard.train:  # an evaluation shard's item_order is its block
            return (
                self._shuffled_batches(self.bs)
                if self.shuffle
                else self._batches(self.item_order, self.bs)
            )
        group = self.bs * shard.world
        batches = (
            self._shuffled_batches(group)
            if self.shuffle
            else self._batches(self.sorted_order, group)
        )
        everything = torch.arange(len(self.docs))
        return [shard.piece(torch.as_tensor(batch), everything).tolist() for batch in batches]

    @staticmethod
    def _batches(order: Sequence[int], bs: int) -> list[list[int]]:
        return [list(order[i : i + bs]) for i in range(0, len(order), bs)]

    def _shuffled_batches(self, bs: int) -> list[list[int]]:
        order = torch.randperm(len(self.docs)).numpy()
        bucket = bs * self.bucket_batches
        batches: list[list[int]] = []
        for start in range(0, len(order), bucket):
            chunk = order[start : start + bucket]
            chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
            batches += self._batches(chunk.tolist(), bs)
        longest = max(range(len(batches)), key=lambda b: self.lengths[batches[b][0]])
        first = batches.pop(longest)
        rest = [batches[i] for i in torch.randperm(len(batches)).tolist()]
        return [first, *rest]


def pad_docs(docs: Sequence[np.ndarray], pad_idx: int = 1) -> Tensor:
    """Token-id arrays as one `[n, longest]` int64 tensor, padded on the right with `pad_idx`."""
    longest = max((len(doc) for doc in docs), default=0)
    out = np.full((len(docs), max(longest, 1)), pad_idx, dtype=np.int64)
    for row, doc in enumerate(docs):
        out[row, : len(doc)] = doc
    return torch.from_numpy(out)
