"""Optional tokenizer back-ends (`pip install mentor[text]`): spaCy's word splitter and
SentencePiece subwords, both with the course's rules of `mentor.text.tokenize`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mentor.core.spec import register_spec
from mentor.text.tokenize import PAD, SPECIAL_TOKENS, UNK, Rule, Tokenizer


def _require(module: str, package: str) -> Any:
    try:
        return __import__(module)
    except ImportError as err:
        raise ImportError(
            f"{module!r} is not installed; install it with `pip install {package}` "
            "(or `pip install mentor[text]`)"
        ) from err


@register_spec
class SpacyTokenizer(Tokenizer):
    """`Tokenizer` with spaCy's rule-based tokenizer (a blank pipeline) as word splitter.

    Args:
        lang: spaCy language code (default `"en"`); other arguments as in `Tokenizer`.
    """

    def __init__(self, lang: str = "en", **kwargs: Any) -> None:
        spacy = _require("spacy", "spacy")
        super().__init__(**kwargs)
        self.lang = lang
        self.nlp = spacy.blank(lang)

    def split(self, text: str) -> list[str]:
        """spaCy's tokens, whitespace tokens dropped."""
        return [tok.text for tok in self.nlp.tokenizer(text) if not tok.is_space]

    def settings(self) -> dict[str, Any]:
        """The settings that decide the tokens."""
        return {**super().settings(), "lang": self.lang}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpacyTokenizer:
        """Rebuild a tokenizer saved with `to_dict`."""
        return cls(data.get("lang", "en"), rules=data["rules"], post_rules=data["post_rules"],
                   add_bos=data["add_bos"], n_workers=data.get("n_workers"))  # fmt: skip


@register_spec
class SentencePieceTokenizer(Tokenizer):
    """Subword tokenizer: string rules, then a SentencePiece model trained with `train`.

    Args:
        vocab_sz: size of the subword vocabulary (default 30000).
        model_type: `"unigram"` (default) or `"bpe"`, `"char"`, `"word"`.
        model_file: a trained `.model` file (default: call `train` first).
        rules: string rules as in `Tokenizer`; there are no token rules by default, since
            the model keeps the case.
    """

    def __init__(
        self,
        vocab_sz: int = 30000,
        model_type: str = "unigram",
        model_file: Path | str | None = None,
        rules: Sequence[Rule] | None = None,
        add_bos: bool = True,
    ) -> None:
        self._spm = _require("sentencepiece", "sentencepiece")
        super().__init__(rules=rules, post_rules=[], add_bos=add_bos, n_workers=1)
        self.vocab_sz, self.model_type = vocab_sz, model_type
        self.model_file = Path(model_file) if model_file is not None else None
        self.processor = None
        if self.model_file is not None:
            self.processor = self._spm.SentencePieceProcessor(model_file=str(self.model_file))

    def train(self, texts: Sequence[str], folder: Path | str) -> Path:
        """Train the subword model on `texts` (after the string rules); returns the model file."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        corpus = folder / "spm_corpus.txt"
        with open(corpus, "w", encoding="utf-8") as file:
            for text in texts:
                for string_rule in self._string_fns:
                    text = string_rule(text)
                file.write(" ".join(text.split()) + "\n")
        self._spm.SentencePieceTrainer.train(
            input=str(corpus), model_prefix=str(folder / "spm"), vocab_size=self.vocab_sz,
            model_type=self.model_type, character_coverage=0.99995, unk_id=0, pad_id=1,
            bos_id=-1, eos_id=-1, unk_piece=UNK, pad_piece=PAD,
            user_defined_symbols=",".join(SPECIAL_TOKENS[2:]), hard_vocab_limit=False,
        )  # fmt: skip
        self.model_file = folder / "spm.model"
        self.processor = self._spm.SentencePieceProcessor(model_file=str(self.model_file))
        return self.model_file

    def split(self, text: str) -> list[str]:
        """The subword pieces of a text."""
        if self.processor is None:
            raise ValueError("the SentencePiece model is not trained; call `train(texts, folder)`")
        return list(self.processor.encode(text, out_type=str))

    def settings(self) -> dict[str, Any]:
        """The settings that decide the tokens."""
        model_file = None if self.model_file is None else str(self.model_file)
        return {**super().settings(), "vocab_sz": self.vocab_sz, "model_type": self.model_type,
                "model_file": model_file}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SentencePieceTokenizer:
        """Rebuild a tokenizer saved with `to_dict`."""
        return cls(data["vocab_sz"], data["model_type"], data.get("model_file"),
                   rules=data["rules"], add_bos=data["add_bos"])  # fmt: skip
