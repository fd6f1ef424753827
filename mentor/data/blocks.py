"""Blocks: what each part of a sample is, how it is encoded, decoded and shown.

A block turns a raw value (a label string, a number, a file name) into what the pipeline
carries, learns what it needs from the training items (`setup`, e.g. a vocabulary), and turns
a batch element back into something a person reads (`decode`). Its `kind` tells transforms how
to treat it (see `mentor.data.transforms`). Applications add blocks (images, text, tables)
with the same protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from mentor.core.spec import InitSpec, register_spec
from mentor.data.transforms import LABEL, BatchTransform, ItemTransform


@register_spec
class TransformBlock(InitSpec):
    """The base block: raw values pass through as they are.

    Args:
        kind: how transforms treat this part ('image', 'mask', 'points' or 'label').
        item_tfms, batch_tfms: transforms this block always needs (added to the DataBlock's).
    """

    checks_labels = False  # whether `encode` can reject a raw value (unknown labels)
    needs_geometry = False  # whether predictions map back onto the raw input image
    loss_spec: tuple[str, dict[str, Any]] | None = None  # the loss for this target, by name

    def __init__(
        self,
        kind: str = LABEL,
        item_tfms: Sequence[ItemTransform] = (),
        batch_tfms: Sequence[BatchTransform] = (),
    ) -> None:
        self.kind = kind
        self.vocab: list[Any] = []  # the classes, for blocks that have them
        self.item_tfms = list(item_tfms)
        self.batch_tfms = list(batch_tfms)

    def to_spec(self) -> dict[str, Any]:
        """What `from_spec` needs to rebuild the block as inference uses it (JSON data);
        a subclass with settings of its own overrides it."""
        return {"kind": self.kind} if type(self) is TransformBlock else {}

    def setup(self, raws: Sequence[Any]) -> None:
        """Learn from the training set's raw values (default: nothing)."""

    def encode(self, raw: Any) -> Any:
        """The value the pipeline carries for `raw` (runs in loader workers)."""
        return raw

    def decode(self, value: Any) -> Any:
        """A batch element back in a person's terms (a label, a list of labels, a number)."""
        return value.tolist() if isinstance(value, Tensor) else value

    def decode_in_input(self, value: Any, geometry: Any) -> Any:
        """A prediction in the raw input's terms: `decode`, except for spatial targets
        (masks, points), which map back onto the raw image (`geometry`: an
        `InputGeometry`, or None when the input is not an image)."""
        return self.decode(value)

    def title(self, value: Any) -> str:
        """A short text for plots."""
        decoded = self.decode(value)
        if isinstance(decoded, float):
            return f"{decoded:.3g}"
        if isinstance(decoded, list):
            return ";".join(str(v) for v in decoded)
        return str(decoded)

    @property
    def n_out(self) -> int | None:
        """How many outputs a model needs for this target (None: unknown)."""
        return None

    def build_dataloaders(self, block: Any, source: Any, bs: int = 64, **loader_kw: Any) -> Any:
        """Loaders of its own for a DataBlock whose first block this is (None: the usual
        per-item loaders). Text overrides it: texts are tokenized once, not per item."""
        return None

    def show(self, value: Any, ax: Any) -> None:
        """Draw `value` on a matplotlib axis; labels go into the title."""
        title = ax.get_title()
        ax.set_title(f"{title}\n{self.title(value)}" if title else self.title(value), fontsize=9)


@register_spec
class CategoryBlock(TransformBlock):
    """One label per item, encoded as its index in the vocabulary.

    Args:
        vocab: the labels in order; None builds it from the training labels.
        sort: sort a built vocabulary (default True).

    Example:
        >>> DataBlock(blocks=(ImageBlock(), CategoryBlock()), get_y=parent_label, ...)
    """

    checks_labels = True
    loss_spec = ("CrossEntropyLossFlat", {})

    def __init__(self, vocab: Sequence[Any] | None = None, sort: bool = True) -> None:
        super().__init__(LABEL)
        self.vocab: list[Any] = list(vocab) if vocab is not None else []
        self.fixed_vocab = vocab is not None
        self.sort = sort
        self.index: dict[Any, int] = {v: i for i, v in enumerate(self.vocab)}

    def to_spec(self) -> dict[str, Any]:
        """The vocabulary."""
        return {"vocab": self.vocab}

    def setup(self, raws: Sequence[Any]) -> None:
        """Build the vocabulary from the training labels (unless one was given)."""
        if self.fixed_vocab:
            return
        unique = list(dict.fromkeys(raws))
        self.vocab = sorted(unique, key=str) if self.sort else unique
        self.index = {v: i for i, v in enumerate(self.vocab)}

    def encode(self, raw: Any) -> Tensor:
        """The label's index; an unknown label names itself and the vocabulary."""
        if raw not in self.index:
            raise KeyError(
                f"label {raw!r} is not in the vocabulary {_short(self.vocab)}; it appears in the "
                "validation or test items but not in training: fix the label, or pass "
                "CategoryBlock(vocab=[...]) with every label"
            )
        return torch.tensor(self.index[raw])

    def decode(self, value: Any) -> Any:
        """The label of an index."""
        return self.vocab[int(value)]

    @property
    def n_out(self) -> int:
        """One output per class."""
        return len(self.vocab)


@register_spec
class MultiCategoryBlock(TransformBlock):
    """Several labels per item, encoded one-hot (for `BCEWithLogitsLossFlat`).

    Args:
        vocab: the labels; None builds a sorted one from the training items.
        label_delim: split string labels on this (e.g. ' ' for "cat dog").
        thresh: probability above which `decode` reports a label (0.5).
    """

    checks_labels = True
    loss_spec = ("BCEWithLogitsLossFlat", {})

    def __init__(
        self,
        vocab: Sequence[Any] | None = None,
        label_delim: str | None = None,
        thresh: float = 0.5,
    ) -> None:
        super().__init__(LABEL)
        self.vocab: list[Any] = list(vocab) if vocab is not None else []
        self.fixed_vocab = vocab is not None
        self.label_delim, self.thresh = label_delim, thresh
        self.index: dict[Any, int] = {v: i for i, v in enumerate(self.vocab)}

    def to_spec(self) -> dict[str, Any]:
        """The vocabulary, delimiter and threshold."""
        return {"vocab": self.vocab, "label_delim": self.label_delim, "thresh": self.thresh}

    def labels(self, raw: Any) -> list[Any]:
        """The labels of one raw value (a delimited string, a list, or one label)."""
        if isinstance(raw, str):
            return [s for s in raw.split(self.label_delim)] if self.label_delim else [raw]
        return list(raw) if isinstance(raw, list | tuple | set) else [raw]

    def setup(self, raws: Sequence[Any]) -> None:
        """Build the vocabulary from every label of the training items."""
        if not self.fixed_vocab:
            self.vocab = sorted({label for raw in raws for label in self.labels(raw)}, key=str)
            self.index = {v: i for i, v in enumerate(self.vocab)}

    def encode(self, raw: Any) -> Tensor:
        """A float one-hot vector over the vocabulary."""
        one_hot = torch.zeros(len(self.vocab))
        for label in self.labels(raw):
            if label not in self.index:
                raise KeyError(f"label {label!r} is not in the vocabulary {_short(self.vocab)}")
            one_hot[self.index[label]] = 1.0
        return one_hot

    def decode(self, value: Any) -> list[Any]:
        """The labels whose value passes `thresh`."""
        return [self.vocab[i] for i, v in enumerate(value.tolist()) if v > self.thresh]

    @property
    def n_out(self) -> int:
        """One output per label."""
        return len(self.vocab)


@register_spec
class RegressionBlock(TransformBlock):
    """One or several numbers per item, as a float tensor.

    Args:
        n_out: how many numbers (None: found from the first training item).
    """

    loss_spec = ("MSELossFlat", {})

    def __init__(self, n_out: int | None = None) -> None:
        super().__init__(LABEL)
        self._n_out = n_out

    def to_spec(self) -> dict[str, Any]:
        """The number of outputs."""
        return {"n_out": self._n_out}

    def setup(self, raws: Sequence[Any]) -> None:
        """Find the number of outputs from the first training value."""
        if self._n_out is None and len(raws):
            self._n_out = self.encode(raws[0]).numel()

    def encode(self, raw: Any) -> Tensor:
        """A float tensor (a scalar for one number)."""
        return torch.as_tensor(raw, dtype=torch.float32)

    def decode(self, value: Any) -> Any:
        """A float or a list of floats."""
        return value.item() if value.numel() == 1 else value.tolist()

    @property
    def n_out(self) -> int | None:
        """The number of outputs."""
        return self._n_out


def _short(vocab: Sequence[Any], limit: int = 20) -> str:
    """A vocabulary for an error message, shortened when long."""
    shown = ", ".join(repr(v) for v in vocab[:limit])
    return f"[{shown}{', ...' if len(vocab) > limit else ''}] ({len(vocab)} labels)"


def as_block(block: TransformBlock | Callable[[], TransformBlock]) -> TransformBlock:
    """A block instance: a block class (or factory) is called with no arguments."""
    if isinstance(block, TransformBlock):
        return block
    made = block()
    if not isinstance(made, TransformBlock):
        raise TypeError(f"{block!r} is not a block; use e.g. CategoryBlock() or ImageBlock()")
    return made
