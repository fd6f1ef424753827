"""Pretrained language-model weights (e.g. WikiText-103) for ULMFiT, loaded without pickle.

None ship with mentor. Give `pretrained_fnames=(weights, vocabulary)` to
`language_model_learner`, or put `lstm_fwd.safetensors` (or `lstm_fwd.pth`, read with
`weights_only`) and `itos.json` (or `itos.txt`, one token per line) in
`$MENTOR_HOME/weights/wt103/`. Weights use the key layout of `get_language_model`
(`0.encoder.weight`, `0.rnns.0.module.weight_ih_l0`, ..., `1.decoder.weight`), which is also
fastai's; the model's sizes are read from them. A vocabulary saved as a pickle (fastai's
`itos_wt103.pkl`) is refused: loading a pickle can run code. Convert a file you trust to a
JSON list of tokens once, outside mentor.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor

from mentor.data.external import cache_dir
from mentor.text.models import VocabMatch, match_vocab

WEIGHT_NAMES = ("lstm_fwd.safetensors", "lstm_fwd.pth")
VOCAB_NAMES = ("itos.json", "itos.txt")


@dataclass
class LMWeights:
    """Pretrained weights mapped onto a new vocabulary, and the model sizes they imply."""

    state_dict: dict[str, Tensor]
    sizes: dict[str, int]
    match: VocabMatch


def load_lm_weights(
    new_itos: Sequence[str], fnames: Sequence[str | Path] | None = None
) -> LMWeights:
    """Read pretrained weights and their vocabulary, and map their embedding and decoder rows
    onto `new_itos` (new words start at the mean row, as in ULMFiT).

    Args:
        new_itos: the data's vocabulary. fnames: (weights file, vocabulary file); default:
            the first of `WEIGHT_NAMES` and `VOCAB_NAMES` found in `$MENTOR_HOME/weights/wt103`.
    """
    weights_file, vocab_file = _files(fnames)
    old_itos = read_vocab_file(vocab_file)
    state = _read_weights(weights_file)
    mapped, match = match_vocab(state, old_itos, list(new_itos))
    return LMWeights(mapped, _sizes(state, weights_file), match)


def read_vocab_file(file: Path) -> list[str]:
    """A vocabulary from a JSON list or a text file with one token per line."""
    if file.suffix in (".pkl", ".pickle"):
        raise ValueError(
            f"{str(file)!r} is a pickle, which mentor never loads (it can run code); convert "
            "a file you trust to a JSON list of tokens (itos.json) once, outside mentor"
        )
    text = file.read_text(encoding="utf-8")
    if file.suffix == ".json":
        itos = json.loads(text)
        if not isinstance(itos, list) or not all(isinstance(t, str) for t in itos):
            raise ValueError(f"{str(file)!r} must hold a JSON list of tokens")
        return itos
    return text.splitlines()


def _files(fnames: Sequence[str | Path] | None) -> tuple[Path, Path]:
    if fnames is not None:
        if len(fnames) != 2:
            raise ValueError("pretrained_fnames takes two files: (weights, vocabulary)")
        files = (Path(fnames[0]), Path(fnames[1]))
        for file in files:
            if not file.exists():
                raise FileNotFoundError(f"pretrained file {str(file)!r} not found")
        return files
    folder = cache_dir() / "weights" / "wt103"
    weights = next((folder / n for n in WEIGHT_NAMES if (folder / n).exists()), None)
    vocab = next((folder / n for n in VOCAB_NAMES if (folder / n).exists()), None)
    if weights is None or vocab is None:
        raise FileNotFoundError(
            f"no pretrained language model in {str(folder)!r}: put {WEIGHT_NAMES[0]} (or "
            f"{WEIGHT_NAMES[1]}) and {VOCAB_NAMES[0]} there, pass pretrained_fnames=(weights, "
            "vocabulary), or train from scratch with pretrained=False"
        )
    return weights, vocab


def _read_weights(file: Path) -> dict[str, Tensor]:
    if file.suffix == ".safetensors":
        return load_file(str(file))
    loaded = torch.load(file, map_location="cpu", weights_only=True)
    state = loaded.get("model", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{str(file)!r} holds no state dict of tensors")
    return state


def _sizes(state: dict[str, Tensor], file: Path) -> dict[str, int]:
    """emb_sz, n_hid and n_layers of the AWD-LSTM these weights belong to."""
    try:
        emb_sz = state["0.encoder.weight"].shape[1]
        n_layers = len({k.split(".")[2] for k in state if k.startswith("0.rnns.")})
        n_hid = state["0.rnns.0.module.weight_ih_l0"].shape[0] // 4
    except KeyError as err:
        raise ValueError(
            f"{str(file)!r} is not an AWD-LSTM language model: no key {err.args[0]!r}"
        ) from None
    return {"emb_sz": emb_sz, "n_hid": n_hid, "n_layers": n_layers}
