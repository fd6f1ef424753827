"""Language-model helpers: sampling text, and moving pretrained weights to a new vocabulary."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from mentor.text.models.core import Resettable
from mentor.text.tokenize import EOS

# keys (suffixes) whose first dimension runs over the vocabulary
VOCAB_ROW_KEYS = ("encoder.weight", "encoder_dp.emb.weight", "decoder.weight", "decoder.bias")


def _next_id(
    logits: Tensor,
    temperature: float,
    no_unk: bool,
    unk_idx: int,
    generator: torch.Generator | None,
) -> int:
    logits = logits.float().clone()
    if no_unk:
        logits[unk_idx] = float("-inf")
    if temperature == 0:
        return int(logits.argmax().item())
    probs = torch.softmax(logits / temperature, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator).item())


@contextlib.contextmanager
def _fresh_state(model: nn.Module) -> Iterator[None]:
    """Eval mode, no gradients and a reset state inside; the training mode is restored and
    the state reset again after (it holds inference tensors that autograd cannot use)."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            if isinstance(model, Resettable):
                model.reset()
            yield
    finally:
        if isinstance(model, Resettable):
            model.reset()
        model.train(was_training)


def _check_prompt(ids: Sequence[int]) -> None:
    if len(ids) == 0:
        raise ValueError("a language model needs a prompt of at least one token; got none")


BACKWARD_PROMPT = (
    "this language model reads texts backwards (its data had backwards=True): it predicts "
    "the words before a text, not after; generate with a forward model"
)


def prompt_ids(ids: Sequence[int], itos: Sequence[str]) -> list[int]:
    """A prompt's token ids without the closing `xxeos` the tokenizer may add: generation
    continues the text rather than starting a new one."""
    ids = list(ids)
    return ids[:-1] if ids and itos[ids[-1]] == EOS else ids


def next_token_logits(model: nn.Module, ids: Sequence[int]) -> Tensor:
    """The logits `[vocab]` of the token after the prompt `ids`, from a fresh state."""
    _check_prompt(ids)
    device = next(model.parameters()).device
    with _fresh_state(model):
        return model(torch.tensor([list(ids)], device=device))[0, -1]


def generate(
    model: nn.Module,
    ids: Sequence[int],
    n_words: int,
    temperature: float = 1.0,
    no_unk: bool = True,
    unk_idx: int = 0,
    generator: torch.Generator | None = None,
) -> list[int]:
    """Sample `n_words` token ids after the prompt `ids` from a language model.

    The model (e.g. `get_language_model(...)` or a `CharRNN`) maps ids [bs, sl] to logits
    [bs, sl, vocab]. It runs in eval mode without gradients, starting from a reset state;
    its training mode is restored and its state reset afterwards.

    Args:
        model: the language model. ids: the prompt (at least one id). n_words: how many ids
        to sample. temperature=1.0: softmax temperature (0: always the most likely id).
        no_unk=True: never sample `unk_idx` (default 0, 'xxunk'). generator=None: a
        `torch.Generator` on the model's device, for reproducible samples.

    Returns:
        The `n_words` new ids (the prompt not included).
    """
    _check_prompt(ids)
    if n_words < 0 or temperature < 0:
        raise ValueError(f"need n_words >= 0 and temperature >= 0, got {n_words}, {temperature}")
    device = next(model.parameters()).device
    new_ids: list[int] = []
    with _fresh_state(model):
        logits = model(torch.tensor([list(ids)], device=device))[0, -1]
        for step in range(n_words):
            new_ids.append(_next_id(logits, temperature, no_unk, unk_idx, generator))
            if step < n_words - 1:
                logits = model(torch.tensor([[new_ids[-1]]], device=device))[0, -1]
    return new_ids


@dataclass
class VocabMatch:
    """How a new vocabulary matched the pretrained one in `load_pretrained_lm`.

    Attributes: n_found (new words with a pretrained row), n_missing (words that got the
    mean row), missing (those words, in vocabulary order).
    """

    n_found: int = 0
    n_missing: int = 0
    missing: list[str] = field(default_factory=list)


def _remap_rows(old: Tensor, new_to_old: list[int]) -> Tensor:
    """Rows of `old` in the new vocabulary's order; -1 picks the mean of the old rows."""
    mean = old.mean(dim=0, keepdim=True)
    padded = torch.cat([old, mean])
    index = torch.tensor([i if i >= 0 else old.size(0) for i in new_to_old], device=old.device)
    return padded[index].clone()


def match_vocab(
    state_dict: Mapping[str, Tensor], old_itos: Sequence[str], new_itos: Sequence[str]
) -> tuple[dict[str, Tensor], VocabMatch]:
    """A copy of `state_dict` with its vocabulary rows reordered for `new_itos`.

    Each new word takes its row of the embedding, the decoder weight and the decoder bias
    from `old_itos` where present, else the mean of all the old rows (ULMFiT).
    """
    old_index: dict[str, int] = {}
    for index, word in enumerate(old_itos):
        old_index.setdefault(word, index)
    new_to_old = [old_index.get(word, -1) for word in new_itos]
    missing = [word for word, i in zip(new_itos, new_to_old, strict=True) if i < 0]
    remapped = dict(state_dict)
    n_remapped = 0
    for key, value in state_dict.items():
        if key.endswith(VOCAB_ROW_KEYS) and value.size(0) == len(old_itos):
            remapped[key] = _remap_rows(value, new_to_old)
            n_remapped += 1
    if n_remapped == 0:
        sizes = {k: tuple(v.shape) for k, v in state_dict.items() if k.endswith(VOCAB_ROW_KEYS)}
        raise ValueError(
            f"no embedding or decoder of {len(old_itos)} rows in the state dict (found {sizes});"
            " pass the vocabulary the weights were trained with as old_itos"
        )
    report = VocabMatch(len(new_itos) - len(missing), len(missing), missing)
    return remapped, report


def load_pretrained_lm(
    model: nn.Module,
    state_dict: Mapping[str, Tensor],
    old_itos: Sequence[str],
    new_itos: Sequence[str],
) -> VocabMatch:
    """Load pretrained language-model weights into `model`, whose vocabulary is `new_itos`.

    Rows of the embedding and decoder follow the words (see `match_vocab`); every other
    weight loads as it is, with the model's own key names (`0.encoder.weight`, ...).

    Args:
        model: e.g. `get_language_model(len(new_itos), ...)`. state_dict: the pretrained
        weights. old_itos: their vocabulary. new_itos: the model's vocabulary.

    Returns:
        A `VocabMatch` saying how many new words had a pretrained row.
    """
    remapped, report = match_vocab(state_dict, old_itos, new_itos)
    model.load_state_dict(remapped)
    return report


__all__ = ["VocabMatch", "generate", "load_pretrained_lm", "match_vocab"]
