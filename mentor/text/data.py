"""`TextDataLoaders`: texts from data frames, CSV files, folders or one text file, tokenized
and numericalized once, served as language-model streams or padded classifier batches."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mentor.core.warn import warn
from mentor.data.blocks import CategoryBlock, MultiCategoryBlock, TransformBlock, as_block
from mentor.data.items import get_files
from mentor.data.loaders import DataLoaders
from mentor.data.splitters import ColSplitter, RandomSplitter
from mentor.text.detokenize import decode_tokens
from mentor.text.encoder import TextEncoder
from mentor.text.loaders import LMLoader, SortedTextLoader
from mentor.text.tokenize import FLD, PAD, AnyTokenizer, Tokenizer
from mentor.text.vocab import Vocab, reverse_ids


class TextDataLoaders(DataLoaders):
    """Training and validation loaders over texts, with their tokenizer and vocabulary.

    Language-model data (`is_lm=True`) yields `(x, y)` token-id batches `[bs, seq_len]` with
    `y` shifted by one token (see `LMLoader`); classifier data yields `(x, y)` with `x` the
    texts padded on the right to the longest of the batch (see `SortedTextLoader`). Build it
    with `from_df`, `from_csv`, `from_folder`, `from_text_file` or `from_texts`.

    Attributes:
        text_vocab: the `Vocab` of tokens. tokenizer: what turned text into tokens.
        label_block: the targets' block (classifiers), None for language models.
        vocab: the class names (classifier) or the tokens (language model).
        backwards: every text's tokens are reversed (the backward model of ULMFiT's
            forward + backward pair); `decode_text` turns them back.
    """

    n_inp = 1

    def __init__(
        self,
        train: LMLoader | SortedTextLoader,
        valid: LMLoader | SortedTextLoader | None,
        text_vocab: Vocab,
        tokenizer: AnyTokenizer,
        label_block: TransformBlock | None = None,
        seq_len: int = 72,
        device: torch.device | str | None = None,
        backwards: bool = False,
    ) -> None:
        super().__init__(train, valid, device=device)
        self.train_ds, self.valid_ds = train, valid
        self.text_vocab, self.tokenizer, self.label_block = text_vocab, tokenizer, label_block
        self.is_lm = isinstance(train, LMLoader)
        self.seq_len = seq_len
        self.bs: int = train.bs
        self.pad_idx = text_vocab.stoi.get(PAD, 1)
        self.backwards = backwards

    # ----- building -----
    @classmethod
    def from_texts(
        cls,
        train_texts: Sequence[str],
        valid_texts: Sequence[str] = (),
        train_labels: Sequence[Any] | None = None,
        valid_labels: Sequence[Any] | None = None,
        is_lm: bool = False,
        tok: AnyTokenizer | None = None,
        text_vocab: Vocab | Sequence[str] | None = None,
        min_freq: int = 3,
        max_vocab: int = 60000,
        y_block: Any = None,
        seq_len: int = 72,
        bs: int = 64,
        valid_bs: int | None = None,
        device: torch.device | str | None = None,
        backwards: bool = False,
    ) -> TextDataLoaders:
        """Loaders from lists of texts (and labels, for a classifier).

        Args:
            train_texts, valid_texts: the texts. train_labels, valid_labels: one target per
                text (classifiers; ignored for a language model).
            is_lm: language-model data (False). tok: the tokenizer (default `Tokenizer()`).
            text_vocab: a vocabulary to reuse (e.g. the language model's, for ULMFiT); None
                builds one from the training texts with `min_freq` (3) and `max_vocab` (60000).
            y_block: the targets' block (default CategoryBlock; MultiCategoryBlock for
                lists of labels, RegressionBlock for numbers).
            seq_len: tokens per row of a language-model batch (72). bs: batch size (64);
                valid_bs: validation batch size (default 2 * bs).
            backwards: reverse every text's tokens (False), for a backward language model
                and classifier; averaging the predictions of a forward and a backward
                classifier is ULMFiT's ensemble.
        """
        tok = tok if tok is not None else Tokenizer()
        train_tokens = tok.tokenize_texts(list(train_texts))
        valid_tokens = tok.tokenize_texts(list(valid_texts)) if len(valid_texts) else []
        vocab = _as_vocab(text_vocab) or Vocab.build(train_tokens, min_freq, max_vocab)
        train_docs = _ordered(vocab.numericalize_many(train_tokens), backwards)
        valid_docs = _ordered(vocab.numericalize_many(valid_tokens), backwards)
        valid_bs = valid_bs or 2 * bs  # no gradients: twice the texts fit
        if is_lm:
            train: Any = LMLoader(train_docs, bs, seq_len, shuffle=True)
            valid: Any = LMLoader(valid_docs, valid_bs, seq_len) if valid_docs else None
            return cls(train, valid, vocab, tok, None, seq_len, device, backwards)
        if train_labels is None:
            raise ValueError("a classifier needs labels: pass train_labels (or is_lm=True)")
        block = as_block(y_block if y_block is not None else CategoryBlock)
        block.setup(list(train_labels))
        pad = vocab.stoi.get(PAD, 1)
        y_train = _encode_labels(block, train_labels, "training")
        train = SortedTextLoader(train_docs, y_train, bs, pad, shuffle=True)
        valid = None
        if valid_docs:
            y_valid = _encode_labels(block, valid_labels or [], "validation")
            valid = SortedTextLoader(valid_docs, y_valid, valid_bs, pad)
        return cls(train, valid, vocab, tok, block, seq_len, device, backwards)

    @classmethod
    def from_df(
        cls,
        df: pd.DataFrame,
        text_col: str | Sequence[str] = "text",
        label_col: str | None = "label",
        valid_col: str | None = None,
        valid_pct: float = 0.2,
        seed: int | None = None,
        is_lm: bool = False,
        label_delim: str | None = None,
        **kwargs: Any,
    ) -> TextDataLoaders:
        """Loaders from a DataFrame: texts in `text_col` (several columns are joined with
        `xxfld` markers), labels in `label_col`, validation rows flagged in `valid_col` or a
        random `valid_pct` (0.2, drawn with `seed`). `label_delim` splits a label column into
        several labels (multi-label). Other arguments as for `from_texts`.

        Example:
            >>> dls = TextDataLoaders.from_df(df, text_col="text", label_col="label",
            ...                               valid_col="is_valid")
        """
        text_cols = [text_col] if isinstance(text_col, str) else list(text_col)
        label_cols = [] if is_lm or label_col is None else [label_col]
        _check_columns(df, [*text_cols, *label_cols, *([valid_col] if valid_col else [])])
        texts = _joined_texts(df, text_cols)
        train_idx, valid_idx = _split_rows(df, valid_col, valid_pct, seed)
        labels: list[Any] | None = None
        if label_cols:
            labels = _labels(df[label_cols[0]], label_delim)
            if label_delim is not None:
                kwargs.setdefault("y_block", MultiCategoryBlock)
        return cls.from_texts(
            [texts[i] for i in train_idx],
            [texts[i] for i in valid_idx],
            None if labels is None else [labels[i] for i in train_idx],
            None if labels is None else [labels[i] for i in valid_idx],
            is_lm=is_lm,
            **kwargs,
        )

    @classmethod
    def from_csv(
        cls, path: str | Path, csv_fname: str = "texts.csv", **kwargs: Any
    ) -> TextDataLoaders:
        """`from_df` on a CSV file: `path` is the file, or the folder holding `csv_fname`."""
        csv = Path(path)
        csv = csv / csv_fname if csv.is_dir() else csv
        if not csv.exists():
            raise FileNotFoundError(f"CSV file {str(csv)!r} not found; check the path")
        return cls.from_df(pd.read_csv(csv), **kwargs)

    @classmethod
    def from_folder(
        cls,
        path: str | Path,
        train: str = "train",
        valid: str = "valid",
        valid_pct: float | None = None,
        seed: int | None = None,
        is_lm: bool = False,
        extensions: Sequence[str] = (".txt",),
        **kwargs: Any,
    ) -> TextDataLoaders:
        """Loaders from text files labelled by their folder (`path/train/pos/1.txt`).

        With `valid_pct`, every text file under `path` is used and a random share validates;
        otherwise the files under `path/train` train and those under `path/valid` validate.
        A file that isn't UTF-8 is read as Latin-1, with a warning naming it.

        Example:
            >>> dls = TextDataLoaders.from_folder(path / "txt_sentoken", valid_pct=0.2, seed=42)
        """
        root = Path(path)
        if not root.is_dir():
            raise FileNotFoundError(f"text folder {str(root)!r} not found; check the path")
        if valid_pct is not None:
            files = _text_files(root, extensions)
            train_idx, valid_idx = RandomSplitter(valid_pct, seed)(files)
            train_files = [files[i] for i in train_idx]
            valid_files = [files[i] for i in valid_idx]
        else:
            train_files = _text_files(root / train, extensions)
            valid_files = _text_files(root / valid, extensions) if (root / valid).is_dir() else []
        return cls.from_texts(
            read_text_files(train_files),
            read_text_files(valid_files),
            [f.parent.name for f in train_files],
            [f.parent.name for f in valid_files],
            is_lm=is_lm,
            **kwargs,
        )

    @classmethod
    def from_text_file(
        cls, path: str | Path, valid_pct: float = 0.1, **kwargs: Any
    ) -> TextDataLoaders:
        """Language-model loaders from one long text (a book): the first `1 - valid_pct` of
        its lines train, the rest validates. Pass `tok=CharTokenizer()` for a character model.

        Example:
            >>> dls = TextDataLoaders.from_text_file("nietzsche.txt", tok=CharTokenizer())
        """
        lines = read_text_files([Path(path)])[0].splitlines(keepends=True)
        cut = round(len(lines) * (1 - valid_pct))
        train, valid = "".join(lines[:cut]), "".join(lines[cut:])
        return cls.from_texts([train], [valid] if valid else [], is_lm=True, **kwargs)

    # ----- what the data is -----
    @property
    def vocab(self) -> list[Any]:
        """The class names (classifier) or the tokens (language model)."""
        if self.label_block is None:
            return list(self.text_vocab.itos)
        return list(self.label_block.vocab)

    @property
    def target_block(self) -> TransformBlock | None:
        """The targets' block (decodes predictions), None for a language model."""
        return self.label_block

    @property
    def c(self) -> int | None:
        """Outputs a model needs: classes (classifier) or tokens (language model)."""
        return len(self.text_vocab) if self.label_block is None else self.label_block.n_out

    @property
    def loss_spec(self) -> tuple[str, dict[str, Any]] | None:
        """Cross-entropy over tokens for a language model; the label block's loss otherwise."""
        if self.label_block is None:
            return ("CrossEntropyLossFlat", {})
        return self.label_block.loss_spec

    def describe(self) -> list[str]:
        """The vocabulary, the tokenizer and the sequence length."""
        return [
            f"vocabulary: {len(self.text_vocab)} tokens; tokenizer: "
            f"{type(self.tokenizer).__name__}; seq_len {self.seq_len}"
            + (" (backwards)" if self.backwards else "")
        ]

    # ----- using it -----
    @property
    def application(self) -> str:  # type: ignore[override]
        """'text_lm' for language-model data, else 'text'."""
        return "text_lm" if self.is_lm else "text"

    def item_encoder(self) -> TextEncoder:
        """Texts to token ids with this data's tokenizer and vocabulary, for export."""
        return TextEncoder(self.tokenizer, self.text_vocab, self.pad_idx, self.backwards,
                           self.is_lm)  # fmt: skip

    def numericalize(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Token ids of `texts`, with this data's tokenizer and vocabulary (reversed when
        the data is `backwards`)."""
        ids = self.text_vocab.numericalize_many(self.tokenizer.tokenize_texts(list(texts)))
        return _ordered(ids, self.backwards)

    def test_dl(
        self,
        items: Sequence[Any],
        with_labels: bool = False,
        bs: int | None = None,
        skip_bad: bool = False,
    ) -> Any:
        """A loader of new `texts` (classifier data), batched like the validation set; its
        `item_order` says which text each prediction belongs to.

        Args:
            items: texts; with `with_labels`, `(text, label)` pairs (labels as in training).
            with_labels: batches carry the labels, encoded by the label block.
            bs: batch size (default: the data's).
            skip_bad: leave out items that are not strings (with one warning) instead of
                failing on the first.
        """
        texts = items
        if not len(texts):
            raise ValueError("test_dl got no texts; pass a list of strings")
        labels = None
        if with_labels:
            if self.label_block is None:
                raise ValueError("with_labels needs classifier data; this is language-model data")
            if not all(isinstance(t, tuple | list) and len(t) == 2 for t in texts):
                raise TypeError("with_labels=True takes (text, label) pairs")
            texts, raw_labels = [t for t, _ in texts], [y for _, y in texts]
            labels = torch.stack([torch.as_tensor(self.label_block.encode(y)) for y in raw_labels])
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad and not skip_bad:
            raise TypeError(
                f"texts must be strings; item {bad[0]} is a {type(texts[bad[0]]).__name__} "
                "(pass skip_bad=True to leave such items out)"
            )
        if bad:
            warn(f"left out {len(bad)} item(s) that are not strings: positions {bad[:5]}")
            dropped = set(bad)
            keep = [i for i in range(len(texts)) if i not in dropped]
            texts = [texts[i] for i in keep]
            labels = labels[keep] if labels is not None else None
        loader = SortedTextLoader(self.numericalize(texts), labels, bs or self.bs, self.pad_idx)
        return DataLoaders(loader, device=self.device).train

    def decode_text(self, ids: Any) -> str:
        """Readable text from token ids (padding dropped; a backward text reads forward)."""
        tokens = self.text_vocab.textify(ids)
        return decode_tokens(tokens[::-1] if self.backwards else tokens, self.tokenizer)

    def show_batch(
        self, max_n: int = 6, max_chars: int = 300, split: str = "train"
    ) -> pd.DataFrame:
        """A table of `max_n` texts of a batch (decoded, cut at `max_chars`) with their
        labels (classifier) or the text that follows them (language model); printed and
        returned."""
        table = self._batch_table(self.one_batch(split), max_n, max_chars)
        with pd.option_context("display.max_colwidth", max_chars):
            print(table.to_string())
        return table

    def show_results(
        self, batch: Sequence[Any], preds: Sequence[Any], max_n: int = 6, max_chars: int = 300
    ) -> pd.DataFrame:
        """The texts of `batch` with their labels and the decoded predictions (a language
        model's: the predicted next tokens)."""
        table = self._batch_table(batch, max_n, max_chars)
        shown = preds[: len(table)]
        if self.label_block is None:  # a language model predicts a token per position
            table["prediction"] = [self.decode_text(torch.as_tensor(p))[:max_chars] for p in shown]
        else:
            table["prediction"] = self.decode_preds(shown)
        return table

    def _batch_table(self, batch: Sequence[Any], max_n: int, max_chars: int) -> pd.DataFrame:
        x, y = batch[0], (batch[1] if len(batch) > 1 else None)
        rows = []
        for i in range(min(max_n, x.shape[0])):
            row = {"text": self.decode_text(x[i].cpu())[:max_chars]}
            if y is not None and self.label_block is None:
                row["text_"] = self.decode_text(y[i].cpu())[:max_chars]
            elif y is not None and self.label_block is not None:
                row["label"] = self.label_block.decode(y[i].cpu())
            rows.append(row)
        return pd.DataFrame(rows)

    def decode_rows(
        self, indices: Iterable[int], split: str = "valid", max_chars: int = 300
    ) -> pd.DataFrame:
        """Texts `indices` of the `split` set (in the data's order, cut at `max_chars`) with
        their labels: reports use it to show the texts with the highest losses."""
        loader = self.train if split == "train" else self.valid
        if loader is None or not hasattr(loader.loader, "docs"):
            raise ValueError(f"no {split!r} set of texts in these TextDataLoaders")
        docs, labels = loader.loader.docs, getattr(loader.loader, "labels", None)
        rows = []
        for i in indices:
            row = {"text": self.decode_text(docs[i])[:max_chars]}
            if labels is not None and self.label_block is not None:
                row["label"] = self.label_block.decode(torch.as_tensor(labels[i]))
            rows.append(row)
        return pd.DataFrame(rows)


def read_text_files(files: Sequence[Path]) -> list[str]:
    """The contents of text files; files that aren't UTF-8 are read as Latin-1, with one
    warning naming them."""
    texts, not_utf8 = [], []
    for file in files:
        raw = Path(file).read_bytes()
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            texts.append(raw.decode("latin-1"))
            not_utf8.append(str(file))
    if not_utf8:
        warnings.warn(
            f"{len(not_utf8)} file(s) are not UTF-8 and were read as Latin-1: "
            f"{', '.join(not_utf8[:5])}; re-encode them as UTF-8 if characters look wrong",
            stacklevel=2,
        )
    return texts


def _text_files(folder: Path, extensions: Sequence[str]) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(
            f"folder {str(folder)!r} not found; pass train=/valid= folder names or valid_pct"
        )
    files = get_files(folder, extensions=extensions)
    if not files:
        raise FileNotFoundError(f"no {'/'.join(extensions)} files under {str(folder)!r}")
    return files


def _ordered(docs: list[np.ndarray], backwards: bool) -> list[np.ndarray]:
    """The token ids of each text, reversed when `backwards`."""
    return [reverse_ids(doc) for doc in docs] if backwards else docs


def _as_vocab(vocab: Vocab | Sequence[str] | None) -> Vocab | None:
    if vocab is None or isinstance(vocab, Vocab):
        return vocab
    return Vocab(list(vocab))


def _encode_labels(block: TransformBlock, labels: Sequence[Any], where: str) -> torch.Tensor:
    """The targets as one tensor; an unknown label fails naming its row."""
    encoded = []
    for row, label in enumerate(labels):
        try:
            encoded.append(block.encode(label))
        except KeyError as err:
            raise KeyError(f"{where} text {row}: {err.args[0]}") from None
    return torch.stack([torch.as_tensor(e) for e in encoded])


def _check_columns(df: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"column(s) {missing} not in the data; the columns are {list(df.columns)}")


def _joined_texts(df: pd.DataFrame, text_cols: Sequence[str]) -> list[str]:
    """One text per row; empty cells become empty texts, several columns get xxfld markers."""
    columns = [df[c].fillna("").astype(str).tolist() for c in text_cols]
    if len(columns) == 1:
        return columns[0]
    return [join_fields(cells) for cells in zip(*columns)]


def join_fields(cells: Sequence[str]) -> str:
    """One text from several fields, each after an `xxfld n` marker (n from 1)."""
    return " ".join(f"{FLD} {i + 1} {cell}" for i, cell in enumerate(cells))


def _labels(column: pd.Series, label_delim: str | None) -> list[Any]:
    if column.isna().any():
        row = int(np.flatnonzero(column.isna().to_numpy())[0])
        raise ValueError(f"label column {column.name!r} is empty in row {row}; fill or drop it")
    values = column.tolist()
    if label_delim is None:
        return values
    return [[part for part in str(v).split(label_delim) if part] for v in values]


def _split_rows(
    df: pd.DataFrame, valid_col: str | None, valid_pct: float, seed: int | None
) -> tuple[list[int], list[int]]:
    splitter = RandomSplitter(valid_pct, seed) if valid_col is None else ColSplitter(valid_col)
    train, valid = splitter(df)
    return list(train), list(valid)
