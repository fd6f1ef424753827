"""Tokens back to readable text: undo the case markers, expand repetitions, glue punctuation.

`detokenize` reverses the rules of `mentor.text.tokenize` well enough to read (`xxmaj i do
n't` -> `I don't`); `decode_tokens` also handles character tokenizers and padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mentor.text.tokenize import (
    BOS,
    EOS,
    FLD,
    PAD,
    TK_MAJ,
    TK_REP,
    TK_UP,
    TK_WREP,
    UNK,
    CharTokenizer,
)

_DROPPED = {BOS, EOS, PAD, FLD, "xxfake"}
_NO_SPACE_BEFORE = {".", ",", "!", "?", ";", ":", ")", "]", "}", "%", "...", "-", "/"}
_NO_SPACE_BEFORE |= {"'s", "'m", "'d", "'ll", "'re", "'ve", "n't"}
_NO_SPACE_AFTER = {"(", "[", "{", "$", "#", "-", "/"}


def _cased(token: str, case: str) -> str:
    if token == UNK:  # an unknown word stays visibly unknown, whatever its case was
        return token
    if case == TK_UP:
        return token.upper()
    return token[:1].upper() + token[1:] if case == TK_MAJ else token


def detokenize(tokens: Sequence[str]) -> str:
    """Readable text back from tokens: undo `xxmaj`/`xxup`, expand `xxrep`/`xxwrep`, drop markers.

    Example:
        >>> detokenize(["xxbos", "xxmaj", "i", "do", "n't", "xxup", "like", "it", "!"])
        "I don't LIKE it!"
    """
    words: list[str] = []
    glue_next, quote_open = True, False
    case, repeat, rep_char = "", 0, 0
    for i, token in enumerate(tokens):
        if token in _DROPPED:
            continue
        if token in (TK_UP, TK_MAJ):
            case = token
            continue
        if token in (TK_REP, TK_WREP) and i + 1 < len(tokens) and tokens[i + 1].isdigit():
            repeat, rep_char = -1, token == TK_REP
            continue
        if repeat == -1:  # the count after xxrep / xxwrep
            repeat = int(token)
            continue
        word, glue = _cased(token, case), token.lower() in _NO_SPACE_BEFORE
        if repeat > 0:
            word = (word if rep_char else " ".join([word] * repeat)) * (repeat if rep_char else 1)
            after_word = bool(words) and words[-1][-1:].isalnum()
            glue = bool(rep_char) and (after_word or not word.isalnum())
        if token == '"':
            glue, quote_open = quote_open, not quote_open
        words.append(word if (glue or glue_next) else " " + word)
        glue_next = token in _NO_SPACE_AFTER or (token == '"' and quote_open)
        case, repeat = "", 0
    return "".join(words)


def decode_tokens(tokens: Sequence[str], tokenizer: Any) -> str:
    """Readable text from tokens, padding dropped: joined characters for a `CharTokenizer`
    (markers dropped), `detokenize` for word tokens."""
    kept = [t for t in tokens if t != PAD]
    if isinstance(tokenizer, CharTokenizer):
        return "".join(t for t in kept if not t.startswith("xx"))
    return detokenize(kept)
