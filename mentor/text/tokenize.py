"""Fast rule-based tokenization for text models: the course's rules and a regex word splitter.

A `Tokenizer` runs three stages on each text:

1. string rules (`fix_html`, `replace_rep`, `replace_wrep`, `spec_add_spaces`,
   `rm_useless_spaces`): `str -> str`, they see the raw text;
2. the word splitter: one `findall` of a compiled regular expression;
3. token rules (`replace_all_caps`, `replace_maj`, `lowercase`, `add_bos`):
   `list[str] -> list[str]`, they see whole tokens, so `"DON'T"` gives `xxup do xxup n't`.

Rules are plain functions registered by name in `RULES`, so a tokenizer is saved as data
(`to_dict`). To use a rule of your own and still save the tokenizer, register it first:
`RULES["my_rule"] = my_rule`.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import itertools
import json
import multiprocessing
import operator
import os
import re
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mentor.core.spec import register_spec

UNK, PAD, BOS, EOS, FLD = "xxunk", "xxpad", "xxbos", "xxeos", "xxfld"
TK_REP, TK_WREP, TK_UP, TK_MAJ = "xxrep", "xxwrep", "xxup", "xxmaj"
SPECIAL_TOKENS = [UNK, PAD, BOS, EOS, FLD, TK_REP, TK_WREP, TK_UP, TK_MAJ]

StrRule = Callable[[str], str]
TokenRule = Callable[[list[str]], list[str]]
Rule = str | Callable[..., Any]
PARALLEL_MIN_CHARS = 1_000_000  # below this much text, worker start-up costs more than it saves

# --- string rules -------------------------------------------------------------------------

_HTML_REPLACEMENTS = [
    ("#39;", "'"), ("#146;", "'"), ("#36;", "$"), ("nbsp;", " "), ("quot;", '"'),
    ("\\n", "\n"), ('\\"', '"'), ("<br />", "\n"), ("<br/>", "\n"), ("<br>", "\n"),
    ("<unk>", UNK), (" @.@ ", "."), (" @-@ ", "-"), (" @,@ ", ","),
]  # fmt: skip
_RE_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
# `(.)` then back-references is several times faster in `re` than `([^\s\d])`
_RE_REP = re.compile(r"(.)\1\1\1+", re.DOTALL)
# a leading whitespace character gives `re` a fast prefix scan
_RE_WREP = re.compile(r"\s(\w++)((?:\s+\1(?!\w)){2,})")
_RE_SPEC = re.compile(r"((?:https?://|www\.)\S+)|([/#])")
_RE_SPEC_PLAIN = re.compile(r"([/#])")
_RE_SPACES = re.compile(r" {2,}")


def fix_html(text: str) -> str:
    """Undo HTML and WikiText escapes: `<br />`, `&amp;`, `&quot;`, `#39;`, ` @-@ `, tags."""
    if "&" in text:
        text = html.unescape(text)
    for old, new in _HTML_REPLACEMENTS:  # IMDB's escapes that lost their `&`
        if old in text:
            text = text.replace(old, new)
    return _RE_TAG.sub(" ", text) if "<" in text else text


def _rep(match: re.Match[str]) -> str:
    char = match.group(1)
    if char.isspace() or char.isdigit():
        return match.group()
    return f" {TK_REP} {len(match.group())} {char} "


def replace_rep(text: str) -> str:
    """Replace a character repeated 4+ times by `xxrep n c`: `"sooooo"` -> `"s xxrep 5 o "`.

    Digits are left alone so that numbers such as `10000` stay whole.
    """
    return _RE_REP.sub(_rep, text)


def _wrep(match: re.Match[str]) -> str:
    return f" {TK_WREP} {len(match.group(2).split()) + 1} {match.group(1)} "


def replace_wrep(text: str) -> str:
    """Replace a word repeated 3+ times in a row by `xxwrep n w`: `"very very very"`."""
    return _RE_WREP.sub(_wrep, " " + text)[1:]


def _spec(match: re.Match[str]) -> str:
    return match.group(1) or f" {match.group(2)} "


def spec_add_spaces(text: str) -> str:
    """Put spaces around `/` and `#` (URLs are left whole)."""
    if "/" not in text and "#" not in text:
        return text
    if "://" not in text and "www." not in text:
        return _RE_SPEC_PLAIN.sub(r" \1 ", text)
    return _RE_SPEC.sub(_spec, text)


def rm_useless_spaces(text: str) -> str:
    """Collapse runs of spaces into one."""
    return _RE_SPACES.sub(" ", text) if "  " in text else text


# --- token rules --------------------------------------------------------------------------


def replace_all_caps(tokens: list[str]) -> list[str]:
    """Put `xxup` before an all-caps token longer than one character and lowercase it."""
    out: list[str] = []
    for tok in tokens:
        if len(tok) > 1 and tok.isupper():
            out += [TK_UP, tok.lower()]
        else:
            out.append(tok)
    return out


def replace_maj(tokens: list[str]) -> list[str]:
    """Put `xxmaj` before a capitalised token (`"Hello"`, `"I"`) and lowercase it."""
    out: list[str] = []
    for tok in tokens:
        if tok[:1].isupper() and tok[1:] == tok[1:].lower():
            out += [TK_MAJ, tok.lower()]
        else:
            out.append(tok)
    return out


def lowercase(tokens: list[str]) -> list[str]:
    """Lowercase every token."""
    return [tok.lower() for tok in tokens]


def add_bos(tokens: list[str]) -> list[str]:
    """Put `xxbos` first."""
    return [BOS, *tokens]


RULES: dict[str, Callable[..., Any]] = {
    "fix_html": fix_html,
    "replace_rep": replace_rep,
    "replace_wrep": replace_wrep,
    "spec_add_spaces": spec_add_spaces,
    "rm_useless_spaces": rm_useless_spaces,
    "replace_all_caps": replace_all_caps,
    "replace_maj": replace_maj,
    "lowercase": lowercase,
    "add_bos": add_bos,
}
DEFAULT_RULES = ["fix_html", "replace_rep", "replace_wrep", "spec_add_spaces", "rm_useless_spaces"]
DEFAULT_POST_RULES = ["replace_all_caps", "replace_maj", "lowercase"]

# --- the word splitter and the fused case rules ---------------------------------------------


def _char_class(test: Callable[[str], bool]) -> str:
    """A regex character class body of the BMP characters that pass `test`, as ranges."""
    parts, start, prev = [], -2, -2
    for code in [*(c for c in range(0x10000) if test(chr(c))), -5]:
        if code != prev + 1:
            if start >= 0:
                last = "-" + re.escape(chr(prev)) if prev > start else ""
                parts.append(re.escape(chr(start)) + last)
            start = code
        prev = code
    return "".join(parts)


_MARKS = _char_class(lambda c: unicodedata.category(c)[0] == "M")
_WORD = rf"[\w{_MARKS}]"
_TOKEN_RE = re.compile(
    rf"""\s*+(
      {_WORD}++(?![.@:/,'’+-])                              # fast path: a plain word
    | (?:https?://|www\.)[^\s<>"]*[^\s<>".,;:!?)\]'`]      # URLs
    | [\w.+-]+@[\w-]+(?:\.[\w-]+)+                          # e-mail addresses
    | \d+(?:[.,:]\d+)+                                      # 3.14, 1,000, 10:30
    | (?:[^\W\d_]\.){{2,}}                                  # U.S., e.g.
    | (?i:mr|mrs|ms|dr|st|jr|sr|vs|etc)\.(?!\w)             # Mr., Dr., etc.
    | n['’]t\b | N['’]T\b                                   # n't of don't
    | ['’](?i:s|m|d|ll|re|ve)(?!\w)                         # 's 'm 'd 'll 're 've
    | {_WORD}+ | \.\.+ | \S )""",
    re.VERBOSE,
)


def split_words(text: str) -> list[str]:
    """Split `text` into words and punctuation (spaCy-like: `"don't"` -> `["do", "n't"]`)."""
    if "n't" in text or "N'T" in text or "n’t" in text:
        text = text.replace("n't", " n't").replace("N'T", " N'T").replace("n’t", " n’t")
    return _TOKEN_RE.findall(text)


def mark_case(tokens: list[str]) -> list[str]:
    """`replace_all_caps`, `replace_maj` then `lowercase`, in one pass: the same tokens, faster.

    Everything is lowercased at C speed; only the tokens that changed get Python attention.
    """
    lowered = " ".join(tokens).lower().split(" ")
    if len(lowered) != len(tokens):  # tokens with spaces: take the slow road
        return lowercase(replace_maj(replace_all_caps(tokens)))
    out: list[str] = []
    start = 0
    for i in itertools.compress(itertools.count(), map(operator.ne, tokens, lowered)):
        out += lowered[start:i]
        token = tokens[i]
        if len(token) > 1 and token.isupper():
            out.append(TK_UP)
        elif token[:1].isupper() and token[1:] == token[1:].lower():
            out.append(TK_MAJ)
        out.append(lowered[i])
        start = i + 1
    out += lowered[start:]
    return out


def _resolve(rule: Rule) -> Callable[..., Any]:
    if callable(rule):
        return rule
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; known rules are {sorted(RULES)}")
    return RULES[rule]


def rule_name(rule: Rule) -> str:
    """The name `rule` is registered under in `RULES` (ValueError when it is not there)."""
    if isinstance(rule, str):
        return rule
    for name, registered in RULES.items():
        if registered is rule:
            return name
    label = getattr(rule, "__name__", repr(rule))
    raise ValueError(
        f"rule {label!r} is not registered, so the tokenizer can't be saved as data; "
        f"register it first: `from mentor.text.tokenize import RULES; RULES[{label!r}] = {label}`"
    )


# --- tokenizers ---------------------------------------------------------------------------


@register_spec
class Tokenizer:
    """Rule-based word tokenizer: string rules, a regex word splitter, token rules.

    Args:
        rules: string rules (names in `RULES` or functions `str -> str`); default
            `DEFAULT_RULES` (fastai's `fix_html`, `replace_rep`, `replace_wrep`,
            `spec_add_spaces`, `rm_useless_spaces`).
        post_rules: token rules (`list[str] -> list[str]`); default `DEFAULT_POST_RULES`
            (`replace_all_caps`, `replace_maj`, `lowercase`).
        add_bos: put `xxbos` before every text (default True).
        n_workers: processes for `tokenize_texts` on large corpora (default: all CPUs).
        cache_dir: folder where `tokenize_texts` caches its results (default: no cache).

    Example:
        >>> Tokenizer()("I don't LIKE it!")
        ['xxbos', 'xxmaj', 'i', 'do', "n't", 'xxup', 'like', 'it', '!']
    """

    def __init__(
        self,
        rules: Sequence[Rule] | None = None,
        post_rules: Sequence[Rule] | None = None,
        add_bos: bool = True,
        n_workers: int | None = None,
        cache_dir: Path | str | None = None,
    ) -> None:
        self.rules = list(DEFAULT_RULES if rules is None else rules)
        self.post_rules = list(DEFAULT_POST_RULES if post_rules is None else post_rules)
        self.add_bos = add_bos
        self.n_workers = n_workers if n_workers is not None else (os.cpu_count() or 1)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._string_fns: list[StrRule] = [_resolve(r) for r in self.rules]
        post_fns: list[TokenRule] = [_resolve(r) for r in self.post_rules]
        default_case = [RULES[name] for name in DEFAULT_POST_RULES]
        if post_fns[:3] == default_case:  # the fused version gives the same tokens, faster
            post_fns = [mark_case, *post_fns[3:]]
        self._token_fns = post_fns

    def split(self, text: str) -> list[str]:
        """Split a text that went through the string rules into tokens."""
        return split_words(text)

    def __call__(self, text: str) -> list[str]:
        """The tokens of one text."""
        for string_rule in self._string_fns:
            text = string_rule(text)
        tokens = self.split(text)
        for token_rule in self._token_fns:
            tokens = token_rule(tokens)
        return [BOS, *tokens] if self.add_bos else tokens

    def _tokenize_serial(self, texts: Sequence[str]) -> list[list[str]]:
        return [self(text) for text in texts]

    def tokenize_texts(self, texts: Sequence[str]) -> list[list[str]]:
        """The tokens of every text, in parallel processes for large corpora, cached on disk.

        Runs in `n_workers` processes when there are more than `PARALLEL_MIN_CHARS` characters
        of text; with `cache_dir`, the result is read back from there when the same texts
        were tokenized with the same settings before.
        """
        texts = list(texts)
        cache = self._cache_file(texts) if self.cache_dir is not None else None
        if cache is not None and cache.exists():
            return _read_tokens(cache)
        n_chars = sum(len(t) for t in texts)
        if self.n_workers > 1 and n_chars > PARALLEL_MIN_CHARS and len(texts) > 1:
            tokens = self._tokenize_parallel(texts)
        else:
            tokens = self._tokenize_serial(texts)
        if cache is not None:
            _write_tokens(cache, tokens)
        return tokens

    def _tokenize_parallel(self, texts: list[str]) -> list[list[str]]:
        n_chunks = self.n_workers * 4
        size = -(-len(texts) // n_chunks)
        chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        with context.Pool(min(self.n_workers, len(chunks))) as pool:
            joined = pool.map(_tokenize_chunk, [(self, chunk) for chunk in chunks])
        return [line.split() for block in joined for line in block.split("\n")]

    def settings(self) -> dict[str, Any]:
        """The settings that decide the tokens (what `to_dict` saves and the cache keys on)."""
        return {
            "type": type(self).__name__,
            "rules": [rule_name(r) for r in self.rules],
            "post_rules": [rule_name(r) for r in self.post_rules],
            "add_bos": self.add_bos,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings; `Tokenizer.from_dict` rebuilds the tokenizer."""
        return {**self.settings(), "n_workers": self.n_workers}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tokenizer:
        """Rebuild a tokenizer saved with `to_dict`."""
        if data.get("type", cls.__name__) != cls.__name__:
            raise ValueError(f"{data['type']!r} settings can't build a {cls.__name__}")
        return cls(data["rules"], data["post_rules"], data["add_bos"], data.get("n_workers"))

    def to_spec(self) -> dict[str, Any]:
        """The settings for export (`to_dict` without the class name, which the spec holds)."""
        return {k: v for k, v in self.to_dict().items() if k != "type"}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Tokenizer:
        """The tokenizer `to_spec` described."""
        return cls.from_dict({**spec, "type": cls.__name__})

    def _cache_file(self, texts: list[str]) -> Path:
        digest = hashlib.sha256(json.dumps(self.settings(), sort_keys=True).encode())
        for text in texts:
            digest.update(f"{len(text)}:".encode())
            digest.update(text.encode("utf-8", "surrogatepass"))
        assert self.cache_dir is not None
        return self.cache_dir / f"tokens-{digest.hexdigest()[:32]}.txt.gz"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rules={self.rules}, post_rules={self.post_rules})"


def _tokenize_chunk(job: tuple[Tokenizer, list[str]]) -> str:
    # one string per chunk: sending it back costs far less than pickling lists of tokens
    tokenizer, texts = job
    return "\n".join(" ".join(tokenizer(text)) for text in texts)


def _write_tokens(path: Path, tokens: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + f".{os.getpid()}.part")
    with gzip.open(partial, "wt", encoding="utf-8", compresslevel=1) as file:
        # a first line with the count tells "no texts" from "one empty text"
        file.write(f"{len(tokens)}\n" + "\n".join(" ".join(doc) for doc in tokens))
    os.replace(partial, path)


def _read_tokens(path: Path) -> list[list[str]]:
    with gzip.open(path, "rt", encoding="utf-8") as file:
        count, _, body = file.read().partition("\n")
    return [line.split() for line in body.split("\n")][: int(count)]


@register_spec
class CharTokenizer:
    """Split a text into its characters, for character-level models.

    Args:
        add_bos: put `xxbos` first (default True).
        rules: string rules applied first (default none).
    """

    def __init__(self, add_bos: bool = True, rules: Sequence[Rule] | None = None) -> None:
        self.add_bos = add_bos
        self.rules = list(rules or [])
        self._string_fns: list[StrRule] = [_resolve(r) for r in self.rules]

    def __call__(self, text: str) -> list[str]:
        """The characters of one text."""
        for string_rule in self._string_fns:
            text = string_rule(text)
        return [BOS, *text] if self.add_bos else list(text)

    def tokenize_texts(self, texts: Sequence[str]) -> list[list[str]]:
        """The characters of every text."""
        return [self(text) for text in texts]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings; `CharTokenizer.from_dict` rebuilds the tokenizer."""
        return {"type": "CharTokenizer", "add_bos": self.add_bos,
                "rules": [rule_name(r) for r in self.rules]}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CharTokenizer:
        """Rebuild a tokenizer saved with `to_dict`."""
        if data.get("type") != "CharTokenizer":
            raise ValueError(f"{data.get('type')!r} settings can't build a CharTokenizer")
        return cls(add_bos=data["add_bos"], rules=data.get("rules"))

    def to_spec(self) -> dict[str, Any]:
        """The settings for export."""
        return {"add_bos": self.add_bos, "rules": [rule_name(r) for r in self.rules]}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> CharTokenizer:
        """The tokenizer `to_spec` described."""
        return cls(add_bos=spec["add_bos"], rules=spec.get("rules"))


AnyTokenizer = Tokenizer | CharTokenizer
"""The tokenizers text data accepts (the backends subclass `Tokenizer`)."""
