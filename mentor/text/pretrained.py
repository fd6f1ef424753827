"""Pretrained language-model weights for ULMFiT (fastai's WikiText-103 AWD-LSTM), found or
downloaded, and loaded without running code from the files.

`load_lm_weights` (used by `language_model_learner(pretrained=True)` and
`text_classifier_learner(pretrained=True)`) takes, in order: `pretrained_fnames=(weights,
vocabulary)`; `$MENTOR_HOME/weights/wt103/` (forward models only: `lstm_fwd.safetensors` or
`lstm_fwd.pth`, with `itos.json`, `itos.txt` or `itos_wt103.pkl`); `weights/wt103-fwd/` (or
`wt103-bwd/` for `backwards` data), where a download is extracted; and last the download of
fastai's archive (`URLs.WT103_FWD` / `URLs.WT103_BWD`, or the same file under
`$MENTOR_WEIGHTS_URL`; `MENTOR_OFFLINE=1` never downloads).

Weights are read from safetensors or with `weights_only`, and fastai's key names
(`0.encoder.weight`, `0.rnns.0.module.weight_ih_l0`, ..., `1.decoder.weight`) map onto
`get_language_model`'s (`fastai_names`); the model's sizes are read from them. A vocabulary
pickle is read by an unpickler that admits no globals at all: a list of strings loads, a pickle
that would import or call anything is refused.
"""

from __future__ import annotations

import io
import json
import pickle
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import Tensor

from mentor.core.download import ChecksumError, DownloadError, mirrored
from mentor.core.paths import mentor_home
from mentor.data.external import archive_stem, untar_data
from mentor.data.urls import URLs
from mentor.text.models import VocabMatch, match_vocab

WEIGHT_PATTERNS = ("lstm_{direction}.safetensors", "lstm_{direction}.pth", "*.safetensors", "*.pth")
VOCAB_PATTERNS = ("itos.json", "itos.txt", "itos*.pkl", "*.pkl")
MAX_VOCAB_BYTES = 64 << 20  # fastai's itos_wt103.pkl is under 1 MB


@dataclass
class LMWeights:
    """Pretrained weights mapped onto a new vocabulary, and the model sizes they imply."""

    state_dict: dict[str, Tensor]
    sizes: dict[str, int]
    match: VocabMatch


def load_lm_weights(
    new_itos: Sequence[str],
    fnames: Sequence[str | Path] | None = None,
    backwards: bool = False,
) -> LMWeights:
    """Read pretrained weights and their vocabulary, and map their embedding and decoder rows
    onto `new_itos` (new words start at the mean row, as in ULMFiT).

    Args:
        new_itos: the data's vocabulary. fnames: (weights file, vocabulary file); default:
            found or downloaded as the module docstring says. backwards: the backward model.

    Example:
        >>> weights = load_lm_weights(dls.text_vocab.itos)   # downloads wt103-fwd once
    """
    weights_file, vocab_file = _files(fnames, backwards)
    old_itos = read_vocab_file(vocab_file)
    state = fastai_names(_read_weights(weights_file))
    mapped, match = match_vocab(state, old_itos, list(new_itos))
    return LMWeights(mapped, _sizes(state, weights_file), match)


def read_vocab_file(file: Path) -> list[str]:
    """A vocabulary from a JSON list, a text file with one token per line, or a pickled list
    of strings (read without admitting any global)."""
    if file.suffix in (".pkl", ".pickle"):
        return read_pickled_tokens(file)
    text = file.read_text(encoding="utf-8")
    if file.suffix == ".json":
        itos = json.loads(text)
        if not isinstance(itos, list) or not all(isinstance(t, str) for t in itos):
            raise ValueError(f"{str(file)!r} must hold a JSON list of tokens")
        return itos
    return text.splitlines()


class _NoGlobals(pickle.Unpickler):
    """An unpickler for plain data: it refuses every global, so nothing can be imported or
    called (lists, strings and numbers need none)."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"it refers to the global {module}.{name}")


def read_pickled_tokens(file: Path) -> list[str]:
    """The list of strings pickled in `file` (fastai's `itos_wt103.pkl`), read by an
    unpickler that admits no globals: any pickle that would import or call something, or
    holds anything but a list of strings, is refused."""
    size = file.stat().st_size
    if size > MAX_VOCAB_BYTES:
        raise ValueError(
            f"{str(file)!r} is {size} bytes, more than a vocabulary pickle may be "
            f"({MAX_VOCAB_BYTES}); pass a vocabulary as itos.json or itos.txt instead"
        )
    try:
        itos = _NoGlobals(io.BytesIO(file.read_bytes())).load()
    except Exception as err:  # a damaged pickle fails in many ways; all mean the same here
        raise ValueError(
            f"{str(file)!r} is not a pickle of a plain list of tokens ({err}); mentor reads "
            "vocabulary pickles without any globals, since loading one can run code: give "
            "the vocabulary as itos.json (a JSON list) or itos.txt (one token per line)"
        ) from None
    if not isinstance(itos, list) or not all(isinstance(t, str) for t in itos):
        raise ValueError(f"{str(file)!r} holds a {type(itos).__name__}, not a list of tokens")
    return itos


def fastai_names(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A language model's state dict in `get_language_model`'s names. fastai's files also
    hold each LSTM's hidden-to-hidden weight under `0.rnns.{i}.module.weight_hh_l0`, a copy
    of `0.rnns.{i}.weight_hh_l0_raw` (used when the raw one is missing), and may leave out
    the tied copies of the embedding (`0.encoder_dp.emb.weight`, `1.decoder.weight`)."""
    named: dict[str, Tensor] = {}
    for key, value in state.items():
        copy = re.fullmatch(r"(0\.rnns\.\d+\.)module\.(weight_hh_l0(?:_reverse)?)", key)
        if copy is None:
            named[key] = value
        elif f"{copy[1]}{copy[2]}_raw" not in state:
            named[f"{copy[1]}{copy[2]}_raw"] = value
    if "0.encoder.weight" in named:
        named.setdefault("0.encoder_dp.emb.weight", named["0.encoder.weight"])
        named.setdefault("1.decoder.weight", named["0.encoder.weight"])
    return named


def _files(fnames: Sequence[str | Path] | None, backwards: bool) -> tuple[Path, Path]:
    if fnames is not None:
        if len(fnames) != 2:
            raise ValueError("pretrained_fnames takes two files: (weights, vocabulary)")
        files = (Path(fnames[0]), Path(fnames[1]))
        for file in files:
            if not file.exists():
                raise FileNotFoundError(f"pretrained file {str(file)!r} not found")
        return files
    direction = "bwd" if backwards else "fwd"
    url = URLs.WT103_BWD if backwards else URLs.WT103_FWD
    weights = mentor_home() / "weights"
    folders = [weights / "wt103"] if not backwards else []
    folders.append(weights / archive_stem(url.rsplit("/", 1)[-1]))
    for folder in folders:
        found = _in_folder(folder, direction)
        if found is not None:
            return found
    try:
        folder = untar_data(mirrored(url), dest=weights)
    except ChecksumError:
        raise
    except DownloadError as err:
        looked = " and ".join(repr(str(f)) for f in folders)
        raise FileNotFoundError(
            f"no pretrained language model in {looked}, and the download failed: {err}; "
            "or pass pretrained_fnames=(weights, vocabulary), or train from scratch with "
            "pretrained=False"
        ) from err
    found = _in_folder(folder, direction)
    if found is None:
        raise FileNotFoundError(
            f"the archive from {mirrored(url)} holds no weights (.pth, .safetensors) and "
            f"vocabulary (itos*.pkl, itos.json) in {str(folder)!r}; delete that folder and "
            "run again, or pass pretrained_fnames=(weights, vocabulary)"
        )
    return found


def _in_folder(folder: Path, direction: str) -> tuple[Path, Path] | None:
    """The weights and vocabulary files in `folder` (or below it), if both are there."""
    if not folder.is_dir():
        return None
    patterns = [p.format(direction=direction) for p in WEIGHT_PATTERNS]
    weights = next((f for p in patterns for f in sorted(folder.rglob(p))), None)
    vocab = next((f for p in VOCAB_PATTERNS for f in sorted(folder.rglob(p))), None)
    return (weights, vocab) if weights is not None and vocab is not None else None


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


__all__ = [
    "LMWeights",
    "fastai_names",
    "load_lm_weights",
    "read_pickled_tokens",
    "read_vocab_file",
]
