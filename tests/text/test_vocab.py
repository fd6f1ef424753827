"""`Vocab`: building from counts, the index maps, numericalize / textify and saving."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mentor.text.tokenize import SPECIAL_TOKENS
from mentor.text.vocab import Vocab

CORPUS = [["b", "a", "c", "a"], ["a", "b", "d", "c"], ["e", "b", "c", "a"]]  # a4 b3 c3 d1 e1


def test_specials_first_then_by_frequency() -> None:
    vocab = Vocab.build(CORPUS, min_freq=1, pad_to=1)
    assert vocab.itos[: len(SPECIAL_TOKENS)] == SPECIAL_TOKENS
    # a (4), then b and c (3, in order of first appearance), then d and e (1)
    assert vocab.itos[len(SPECIAL_TOKENS) :] == ["a", "b", "c", "d", "e"]
    assert vocab.stoi["xxunk"] == 0 and vocab.stoi["xxpad"] == 1


def test_min_freq() -> None:
    vocab = Vocab.build(CORPUS, min_freq=3, pad_to=1)
    assert "c" in vocab and "d" not in vocab and len(vocab) == len(SPECIAL_TOKENS) + 3


def test_max_vocab_cap() -> None:
    vocab = Vocab.build(CORPUS, min_freq=1, max_vocab=11, pad_to=1)
    assert len(vocab) == 11 and vocab.itos[-2:] == ["a", "b"]
    padded = Vocab.build(CORPUS, min_freq=1, max_vocab=17, pad_to=8)
    assert len(padded) == 16 and padded.itos[-2:] == ["xxfake", "xxfake"]
    no_room = Vocab.build(CORPUS, min_freq=1, max_vocab=12, pad_to=8)  # 16 > 12: no padding
    assert len(no_room) == 12 and "xxfake" not in no_room


def test_pad_to_multiple_of_8() -> None:
    vocab = Vocab.build(CORPUS, min_freq=1)
    assert len(vocab) == 16 and vocab.itos[14:] == ["xxfake", "xxfake"]


def test_deterministic() -> None:
    shuffled = [list(reversed(tokens)) for tokens in CORPUS]
    assert Vocab.build(CORPUS, min_freq=1).itos == Vocab.build(CORPUS, min_freq=1).itos
    assert Vocab.build(shuffled, min_freq=1).itos[9] == "a"


def test_numericalize_textify_round_trip() -> None:
    vocab = Vocab.build(CORPUS, min_freq=1)
    ids = vocab.numericalize(["a", "zebra", "e"])
    assert ids.dtype == np.int64 and ids.tolist() == [9, 0, 13]
    assert vocab.textify(ids) == ["a", "xxunk", "e"]
    assert vocab.textify(torch.tensor([9, 1])) == ["a", "xxpad"]
    assert vocab.textify([10]) == ["b"]
    many = vocab.numericalize_many([["b"], []])
    assert [m.tolist() for m in many] == [[10], []]
    with pytest.raises(IndexError, match="index 99"):
        vocab.textify([99])


def test_dict_round_trip() -> None:
    vocab = Vocab.build(CORPUS, min_freq=1)
    again = Vocab.from_dict(json.loads(json.dumps(vocab.to_dict())))
    assert again.itos == vocab.itos and again.stoi == vocab.stoi
    assert "16 tokens: xxunk, xxpad" in repr(vocab)


def test_empty_corpus() -> None:
    with pytest.raises(ValueError, match="texts are empty"):
        Vocab.build([[], []])
