"""Tests for mentor.text.loaders and mentor.text.data: streams, padding, factories, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mentor.core.seed import set_seed
from mentor.text import CharTokenizer, LMLoader, SortedTextLoader, TextDataLoaders, pad_docs


def _docs(lengths: list[int]) -> list[np.ndarray]:
    start, docs = 0, []
    for n in lengths:
        docs.append(np.arange(start, start + n, dtype=np.int64))
        start += n
    return docs


def test_lm_loader_rows_continue_across_batches_and_targets_shift_by_one() -> None:
    loader = LMLoader(_docs([50, 30, 41]), bs=4, seq_len=7)
    batches = list(loader)
    x = torch.cat([b[0] for b in batches], dim=1)
    y = torch.cat([b[1] for b in batches], dim=1)
    row_len = (121 - 1) // 4
    assert len(batches) == len(loader) == -(-row_len // 7)
    # unshuffled: the stream is 0..120, row r holds [r * row_len, (r + 1) * row_len)
    expected = torch.arange(4 * row_len).view(4, row_len)
    assert torch.equal(x, expected)
    assert torch.equal(y, expected + 1)


def test_lm_loader_shuffles_documents_and_jitters_lengths() -> None:
    set_seed(0)
    loader = LMLoader(_docs([200] * 20), bs=4, seq_len=20, shuffle=True)
    lengths = [b[0].shape[1] for b in loader]
    assert len(set(lengths)) > 2 and all(n >= 5 for n in lengths[:-1])  # the last: what is left
    first = next(iter(loader))[0][0, 0].item()
    firsts = {next(iter(loader))[0][0, 0].item() for _ in range(5)}
    assert len(firsts | {first}) > 1  # the document order changes between passes
    tokens = torch.cat([b[0] for b in loader], dim=1)
    assert tokens.shape == (4, (4000 - 1) // 4)


def test_lm_loader_too_little_text_says_so() -> None:
    with pytest.raises(ValueError, match="too few"):
        LMLoader(_docs([3]), bs=8)


def test_sorted_loader_pads_right_and_yields_every_text_once() -> None:
    set_seed(0)
    lengths = [int(n) for n in torch.randint(1, 40, (150,))]
    docs = _docs(lengths)
    labels = torch.arange(150)
    loader = SortedTextLoader(docs, labels, bs=16, pad_idx=1, shuffle=True)
    seen = []
    for x, y in loader:
        for row, label in zip(x, y.tolist()):
            n = lengths[label]
            assert torch.equal(row[:n], torch.from_numpy(docs[label]))
            assert (row[n:] == 1).all()
        seen += y.tolist()
        assert x.shape[1] == max(lengths[i] for i in y.tolist())  # no wasted columns
    assert sorted(seen) == list(range(150))
    assert loader.item_order == seen


def test_sorted_loader_without_shuffle_sorts_by_length() -> None:
    docs = _docs([3, 9, 1, 5])
    loader = SortedTextLoader(docs, None, bs=2)
    batches = [b[0] for b in loader]
    assert loader.item_order == [1, 3, 0, 2]
    assert [b.shape[1] for b in batches] == [9, 3]


def test_pad_docs_of_empty_docs_is_one_column_of_padding() -> None:
    assert pad_docs([np.array([], dtype=np.int64)], pad_idx=1).tolist() == [[1]]


def test_from_df_builds_vocab_labels_and_valid_split(imdb_texts: pd.DataFrame) -> None:
    dls = TextDataLoaders.from_df(
        imdb_texts, text_col="text", label_col="label", valid_col="is_valid", bs=16, device="cpu"
    )
    assert dls.vocab == ["negative", "positive"] and dls.c == 2
    assert dls.text_vocab.itos[:2] == ["xxunk", "xxpad"]
    assert len(dls.valid_ds.docs) == 200 and len(dls.train_ds.docs) == 800
    x, y = dls.one_batch()
    assert x.dtype == torch.int64 and y.shape == (16,)
    assert (x[:, 0] == dls.text_vocab.stoi["xxbos"]).all()
    table = dls.show_batch(max_n=3)
    assert list(table.columns) == ["text", "label"] and len(table) == 3


def test_from_df_language_model_and_text_vocab_reuse(imdb_texts: pd.DataFrame) -> None:
    lm = TextDataLoaders.from_df(imdb_texts, is_lm=True, valid_pct=0.1, seed=0, bs=8, seq_len=20)
    x, y = lm.one_batch()
    assert x.shape == y.shape and x.shape[0] == 8
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert lm.c == len(lm.text_vocab) and lm.loss_spec == ("CrossEntropyLossFlat", {})
    clas = TextDataLoaders.from_df(imdb_texts, valid_col="is_valid", text_vocab=lm.text_vocab)
    assert clas.text_vocab is lm.text_vocab


def test_backwards_data_reverses_every_text_and_reads_forward(
    imdb_texts: pd.DataFrame,
) -> None:
    kw = dict(text_col="text", label_col="label", valid_col="is_valid", bs=16, device="cpu")
    forward = TextDataLoaders.from_df(imdb_texts, **kw)
    backward = TextDataLoaders.from_df(imdb_texts, text_vocab=forward.text_vocab,
                                       backwards=True, **kw)  # fmt: skip
    assert backward.backwards and not forward.backwards
    for fwd_doc, bwd_doc in zip(forward.valid_ds.docs, backward.valid_ds.docs, strict=True):
        assert np.array_equal(bwd_doc, fwd_doc[::-1])
    bos = forward.text_vocab.stoi["xxbos"]
    assert all(doc[-1] == bos for doc in backward.train_ds.docs)  # xxbos closes each text
    assert backward.decode_text(backward.valid_ds.docs[0]) == forward.decode_text(
        forward.valid_ds.docs[0]
    )
    text = "A fine film, not a dull one."
    assert np.array_equal(backward.numericalize([text])[0], forward.numericalize([text])[0][::-1])
    x, _ = backward.one_batch("valid")
    assert (x[:, 0] != bos).all()  # texts start with their last token now
    lm = TextDataLoaders.from_df(imdb_texts, is_lm=True, valid_pct=0.1, seed=0, bs=8,
                                 seq_len=20, backwards=True)  # fmt: skip
    assert lm.backwards and lm.train_ds.docs[0][-1] == lm.text_vocab.stoi["xxbos"]


def test_missing_column_names_the_columns(imdb_texts: pd.DataFrame) -> None:
    with pytest.raises(KeyError, match=r"\['review'\].*'label', 'text', 'is_valid'"):
        TextDataLoaders.from_df(imdb_texts, text_col="review")


def test_unknown_validation_label_is_named() -> None:
    df = pd.DataFrame(
        {
            "text": ["good film", "bad film", "great", "awful", "meh"] * 4,
            "label": ["pos", "neg", "pos", "neg", "pos"] * 3
            + ["pos", "neg", "pos", "neg", "mixed"],
            "is_valid": [False] * 15 + [True] * 5,
        }
    )
    with pytest.raises(KeyError, match=r"validation text 4.*'mixed'"):
        TextDataLoaders.from_df(df, valid_col="is_valid")


def test_empty_and_one_token_texts_train_without_crashing() -> None:
    from mentor.text import text_classifier_learner

    df = pd.DataFrame(
        {"text": ["", "ok", "a fine film indeed", None, "bad", "terrible film"] * 6,
         "label": ["a", "b"] * 18}
    )  # fmt: skip
    dls = TextDataLoaders.from_df(df, valid_pct=0.25, seed=0, bs=8, min_freq=1, device="cpu")
    learn = text_classifier_learner(dls, size="tiny")
    learn.progress.show = False
    learn.fit(1)
    assert np.isfinite(learn.recorder.values[-1]["valid_loss"])


def test_from_folder_reads_latin1_files_with_a_warning(tmp_path: Path) -> None:
    for label, words in (("pos", "good great fine"), ("neg", "bad awful poor")):
        for split in ("train", "valid"):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            for i in range(4):
                (folder / f"{i}.txt").write_text(f"{words} film {i}", encoding="utf-8")
    (tmp_path / "train" / "pos" / "latin.txt").write_bytes("caf\xe9 good".encode("latin-1"))
    with pytest.warns(UserWarning, match="not UTF-8.*latin.txt"):
        dls = TextDataLoaders.from_folder(tmp_path, bs=4, min_freq=1, device="cpu")
    assert dls.vocab == ["neg", "pos"]
    assert "café" in dls.text_vocab


def test_from_folder_missing_path_is_clear(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        TextDataLoaders.from_folder(tmp_path / "nope")


def test_from_text_file_with_characters(tmp_path: Path) -> None:
    book = tmp_path / "book.txt"
    book.write_text("The quick brown fox jumps over the lazy dog.\n" * 40, encoding="utf-8")
    dls = TextDataLoaders.from_text_file(book, tok=CharTokenizer(), bs=4, seq_len=16)
    x, _ = dls.one_batch()
    assert dls.is_lm and x.shape[0] == 4 and x.shape[1] >= 5  # training lengths jitter
    assert "q" in dls.text_vocab
    assert dls.decode_text(x[0].cpu()) in ("The quick brown fox jumps over the lazy dog.\n" * 41)


def test_test_dl_rejects_non_strings(imdb_texts: pd.DataFrame) -> None:
    dls = TextDataLoaders.from_df(imdb_texts, valid_col="is_valid")
    with pytest.raises(TypeError, match="item 1 is a int"):
        dls.test_dl(["fine", 3])


def test_text_block_in_a_datablock_from_rows(imdb_texts: pd.DataFrame) -> None:
    from mentor.data import CategoryBlock, ColReader, DataBlock
    from mentor.data.splitters import ColSplitter
    from mentor.text import TextBlock

    block = DataBlock(
        blocks=(TextBlock.from_df("text", seq_len=40), CategoryBlock),
        get_y=ColReader("label"),
        splitter=ColSplitter("is_valid"),
    )
    dls = block.dataloaders(imdb_texts, bs=16, device="cpu")
    assert isinstance(dls, TextDataLoaders) and dls.vocab == ["negative", "positive"]
    assert len(dls.valid_ds.docs) == 200
    lm = DataBlock(blocks=(TextBlock.from_df("text", is_lm=True, seq_len=30),)).dataloaders(
        imdb_texts, bs=8, device="cpu"
    )
    x, y = lm.one_batch()
    assert lm.is_lm and x.shape[0] == 8 and torch.equal(x[:, 1:], y[:, :-1])


def test_text_block_from_files(tmp_path: Path) -> None:
    from mentor.data import CategoryBlock, DataBlock, get_text_files, parent_label
    from mentor.data.splitters import RandomSplitter
    from mentor.text import TextBlock

    for label, words in (("pos", "good great fine"), ("neg", "bad awful poor")):
        (tmp_path / label).mkdir()
        for i in range(6):
            (tmp_path / label / f"{i}.txt").write_text(f"{words} film {i}", encoding="utf-8")
    block = DataBlock(
        blocks=(TextBlock.from_folder(min_freq=1), CategoryBlock),
        get_items=get_text_files,
        get_y=parent_label,
        splitter=RandomSplitter(0.25, seed=0),
    )
    dls = block.dataloaders(tmp_path, bs=4, device="cpu")
    assert dls.vocab == ["neg", "pos"] and "awful" in dls.text_vocab
    with pytest.raises(TypeError, match="TextBlock.from_df"):
        DataBlock(blocks=(TextBlock(), CategoryBlock), get_items=get_text_files,
                  get_y=parent_label).dataloaders(tmp_path)  # fmt: skip
