"""The rule-based tokenizer: exact tokens on tricky strings, decoding, parallel runs, cache."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mentor.text import backends
from mentor.text import tokenize as tk
from mentor.text.detokenize import detokenize
from mentor.text.tokenize import (
    RULES,
    SPECIAL_TOKENS,
    CharTokenizer,
    Tokenizer,
    fix_html,
    lowercase,
    replace_all_caps,
    replace_maj,
    replace_rep,
    replace_wrep,
)


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer(n_workers=1)


@pytest.fixture(scope="module")
def reviews(imdb_texts: pd.DataFrame) -> list[str]:
    """The imdb_sample reviews as strings (the shared `imdb_texts` fixture's text column)."""
    return list(imdb_texts["text"])


CASES = [
    ("I don't LIKE it!", "xxmaj i do n't xxup like it !"),
    ("It's sooooo good", "xxmaj it 's s xxrep 5 o good"),
    ("we'll see, I'm here, they're", "we 'll see , xxmaj i 'm here , they 're"),
    ("can't won't", "ca n't wo n't"),
    ("DON'T", "xxup do xxup n't"),
    ("a<br />b<br>c", "a b c"),
    ("Tom &amp; Jerry &quot;x&quot; #39;s", 'xxmaj tom & xxmaj jerry " x " \'s'),
    ("very very very good", "xxwrep 3 very good"),
    ("very very good", "very very good"),
    ("Wow!!!! ok", "xxmaj wow xxrep 4 ! ok"),
    ("see https://example.com/a/b?x=1. now", "see https://example.com/a/b?x=1 . now"),
    ("mail me@mail.example.org today", "mail me@mail.example.org today"),
    ("pi 3.14, 1,000 fans in 2019 paid 10000", "pi 3.14 , 1,000 fans in 2019 paid 10000"),
    ("Café über Straße 東京", "xxmaj café über xxmaj straße 東京"),
    ("wait... what?!", "wait ... what ? !"),
    ("and/or #1", "and / or # 1"),
    ("the U.S. and Mr. Smith", "the xxup u.s. and xxmaj mr. xxmaj smith"),
    ("well-made", "well - made"),
    ("xxunk stays", "xxunk stays"),
    ("R2 said: A", "xxup r2 said : xxmaj a"),
    ("", ""),
    ("  \n\t ", ""),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_exact_tokens(tok: Tokenizer, text: str, expected: str) -> None:
    assert tok(text) == ["xxbos", *expected.split()]


def test_no_token_has_whitespace(tok: Tokenizer, reviews: list[str]) -> None:
    tokens = [t for text in reviews[:300] for t in tok(text)]
    assert tokens and all(t and not any(c.isspace() for c in t) for t in tokens)


def test_string_rules() -> None:
    assert fix_html("x @-@ y @.@ z @,@ w\\nv") == "x-y.z,w\nv"
    assert fix_html("a <i>b</i> &lt;3") == "a  b  <3"
    assert replace_rep("zzzz 00000") == " xxrep 4 z  00000"
    assert replace_wrep("ha ha ha ha!") == "xxwrep 4 ha !"


def test_token_rules() -> None:
    tokens = ["I", "LIKE", "Paris", "iPhone", "."]
    marked = lowercase(replace_maj(replace_all_caps(tokens)))
    assert marked == ["xxmaj", "i", "xxup", "like", "xxmaj", "paris", "iphone", "."]


def test_fused_case_rules_match_the_rules(reviews: list[str]) -> None:
    slow = Tokenizer(post_rules=["replace_all_caps", "replace_maj", "lowercase"], n_workers=1)
    slow._token_fns = [replace_all_caps, replace_maj, lowercase]  # force the reference path
    fast = Tokenizer(n_workers=1)
    assert fast._token_fns == [tk.mark_case]
    for text in reviews[:300]:
        assert fast(text) == slow(text)


@pytest.mark.parametrize(
    "text",
    [
        "I don't LIKE it! It's sooooo good, isn't it?",
        'She said "hello" (twice) and left.',
        "Very very very good: 3.14 and 1,000.",
    ],
)
def test_detokenize_restores_text(tok: Tokenizer, text: str) -> None:
    assert detokenize(tok(text)) == text


def test_detokenize_keeps_unknown_words_as_they_are() -> None:
    assert detokenize(["xxmaj", "xxunk", "xxup", "xxunk", "is", "here"]) == "xxunk xxunk is here"


def test_detokenize_drops_markers() -> None:
    assert detokenize(["xxbos", "xxmaj", "hi", "xxpad", "xxpad"]) == "Hi"
    assert detokenize(["wow", "xxrep", "4", "!"]) == "wow!!!!"


def test_parallel_equals_serial(reviews: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tk, "PARALLEL_MIN_CHARS", 10_000)
    texts = reviews[:200]
    assert sum(map(len, texts)) > tk.PARALLEL_MIN_CHARS
    assert Tokenizer(n_workers=2).tokenize_texts(texts) == Tokenizer(n_workers=1).tokenize_texts(
        texts
    )


def test_cache_round_trip(tmp_path, reviews: list[str]) -> None:
    texts = [*reviews[:50], "", "Last one."]
    tokenizer = Tokenizer(n_workers=1, cache_dir=tmp_path)
    first = tokenizer.tokenize_texts(texts)
    files = list(tmp_path.glob("tokens-*.txt.gz"))
    assert len(files) == 1 and first[-2] == ["xxbos"]
    files[0].touch()
    mtime = files[0].stat().st_mtime_ns
    assert tokenizer.tokenize_texts(texts) == first
    assert files[0].stat().st_mtime_ns == mtime  # read, not rewritten
    other = Tokenizer(n_workers=1, cache_dir=tmp_path, add_bos=False).tokenize_texts(texts)
    assert len(list(tmp_path.glob("tokens-*.txt.gz"))) == 2 and other[0][0] != "xxbos"
    assert Tokenizer(cache_dir=tmp_path).tokenize_texts([]) == []


def test_cache_is_read_back(tmp_path) -> None:
    tokenizer = Tokenizer(n_workers=1, cache_dir=tmp_path)
    tokenizer.tokenize_texts(["a b"])
    (path,) = tmp_path.glob("tokens-*.txt.gz")
    tk._write_tokens(path, [["from", "cache"]])
    assert tokenizer.tokenize_texts(["a b"]) == [["from", "cache"]]


def test_dict_round_trip() -> None:
    tokenizer = Tokenizer(rules=["fix_html"], post_rules=["lowercase"], add_bos=False)
    data = json.loads(json.dumps(tokenizer.to_dict()))
    again = Tokenizer.from_dict(data)
    assert again.to_dict() == data and again("A<br />B") == ["a", "b"]


def test_unregistered_rule_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    def shout(text: str) -> str:
        return text.upper()

    tokenizer = Tokenizer(rules=[shout], post_rules=[])
    assert tokenizer("hi") == ["xxbos", "HI"]
    with pytest.raises(ValueError, match=r"'shout' is not registered.*RULES\['shout'\]"):
        tokenizer.to_dict()
    monkeypatch.setitem(RULES, "shout", shout)
    assert tokenizer.to_dict()["rules"] == ["shout"]
    with pytest.raises(ValueError, match="unknown rule 'nope'"):
        Tokenizer(rules=["nope"])


def test_special_tokens_order() -> None:
    assert SPECIAL_TOKENS[:2] == ["xxunk", "xxpad"] and len(SPECIAL_TOKENS) == 9


def test_char_tokenizer() -> None:
    chars = CharTokenizer()
    assert chars("ab c") == ["xxbos", "a", "b", " ", "c"]
    assert CharTokenizer(add_bos=False).tokenize_texts(["hé", ""]) == [["h", "é"], []]
    again = CharTokenizer.from_dict(json.loads(json.dumps(chars.to_dict())))
    assert again("x") == ["xxbos", "x"]


def test_spacy_tokenizer() -> None:
    pytest.importorskip("spacy")
    spacy_tok = backends.SpacyTokenizer("en")
    expected = ["xxbos", "xxmaj", "i", "do", "n't", "xxup", "like", "it", "!"]
    assert spacy_tok("I don't LIKE it!") == expected
    assert backends.SpacyTokenizer.from_dict(spacy_tok.to_dict()).lang == "en"


def test_sentencepiece_tokenizer(tmp_path, reviews: list[str]) -> None:
    pytest.importorskip("sentencepiece")
    sp_tok = backends.SentencePieceTokenizer(vocab_sz=400)
    model = sp_tok.train(reviews[:200], tmp_path)
    assert model.exists()
    pieces = sp_tok("This movie was great!")
    assert pieces[0] == "xxbos" and "".join(pieces[1:]).replace("▁", "") == "Thismoviewasgreat!"
