"""`TextBlock`: text inputs for the data block API, served by `TextDataLoaders`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mentor.data.blocks import TransformBlock
from mentor.text.data import AnyTokenizer, TextDataLoaders, join_fields, read_text_files
from mentor.text.vocab import Vocab

if TYPE_CHECKING:
    from mentor.data.datablock import DataBlock


class TextBlock(TransformBlock):
    """Texts as the input of a `DataBlock`: tokenized in one pass, numericalized, and batched
    as a language-model stream (`is_lm=True`) or as length-sorted padded batches.

    Use `TextBlock.from_df(text_cols)` when the items are DataFrame rows and
    `TextBlock.from_folder()` when they are text files; the target block after it (e.g.
    `CategoryBlock`) labels them as usual. The DataBlock's splitter and getters apply; item
    and batch transforms don't (text is prepared once, not per item).

    Args:
        tok: the tokenizer (default `Tokenizer()`). is_lm: language-model data (False).
        seq_len: tokens per language-model row (72). min_freq, max_vocab: the vocabulary's
            limits (3, 60000). text_vocab: a vocabulary to reuse (a language model's).
        backwards: reverse every text's tokens (False; see `TextDataLoaders.from_texts`).

    Example:
        >>> imdb = DataBlock(blocks=(TextBlock.from_df("text"), CategoryBlock),
        ...                  get_y=ColReader("label"), splitter=ColSplitter())
        >>> dls = imdb.dataloaders(df, bs=32)
    """

    def __init__(
        self,
        tok: AnyTokenizer | None = None,
        is_lm: bool = False,
        seq_len: int = 72,
        min_freq: int = 3,
        max_vocab: int = 60000,
        text_vocab: Vocab | Sequence[str] | None = None,
        text_cols: Sequence[str] = (),
        reads_files: bool = False,
        backwards: bool = False,
    ) -> None:
        super().__init__(kind="text")
        self.tok, self.is_lm, self.seq_len = tok, is_lm, seq_len
        self.min_freq, self.max_vocab, self.text_vocab = min_freq, max_vocab, text_vocab
        self.text_cols, self.reads_files = list(text_cols), reads_files
        self.backwards = backwards

    @classmethod
    def from_df(cls, text_cols: str | Sequence[str] = "text", **kwargs: Any) -> TextBlock:
        """Texts from the `text_cols` of DataFrame rows (several are joined with xxfld)."""
        cols = [text_cols] if isinstance(text_cols, str) else list(text_cols)
        return cls(text_cols=cols, **kwargs)

    @classmethod
    def from_folder(cls, **kwargs: Any) -> TextBlock:
        """Texts read from the items, which are text files (e.g. `get_text_files`)."""
        return cls(reads_files=True, **kwargs)

    def build_dataloaders(
        self, block: DataBlock, source: Any, bs: int = 64, **loader_kw: Any
    ) -> TextDataLoaders:
        """`TextDataLoaders` for `block` over `source` (called by `DataBlock.dataloaders`)."""
        items = block.items(source)
        train_idx, valid_idx = block.splitter(items)
        texts = self._texts(block, items)
        labels: list[Any] | None = None
        y_block = None
        if not self.is_lm and len(block.blocks) > block.n_inp:
            labels = [block.getters[block.n_inp](item) for item in items]
            y_block = block.blocks[block.n_inp]
        return TextDataLoaders.from_texts(
            [texts[i] for i in train_idx],
            [texts[i] for i in valid_idx],
            None if labels is None else [labels[i] for i in train_idx],
            None if labels is None else [labels[i] for i in valid_idx],
            is_lm=self.is_lm, tok=self.tok, text_vocab=self.text_vocab, min_freq=self.min_freq,
            max_vocab=self.max_vocab, y_block=y_block, seq_len=self.seq_len, bs=bs,
            backwards=self.backwards, **loader_kw,
        )  # fmt: skip

    def _texts(self, block: DataBlock, items: Sequence[Any]) -> list[str]:
        if self.text_cols:
            return [_joined(item, self.text_cols) for item in items]
        raws = [block.getters[0](item) for item in items]
        if self.reads_files:
            return read_text_files([Path(raw) for raw in raws])
        bad = next((i for i, raw in enumerate(raws) if not isinstance(raw, str)), None)
        if bad is not None:
            raise TypeError(
                f"item {bad} gives a {type(raws[bad]).__name__}, not a text; use "
                "TextBlock.from_df(columns) for rows or TextBlock.from_folder() for files"
            )
        return raws


def _joined(item: Any, cols: Sequence[str]) -> str:
    """The text of one row: one column as it is, several with xxfld markers."""
    try:
        cells = ["" if item[c] is None or item[c] != item[c] else str(item[c]) for c in cols]
    except KeyError as err:
        raise KeyError(f"column {err.args[0]!r} not in the rows; check text_cols") from None
    return cells[0] if len(cells) == 1 else join_fields(cells)
