"""`Predictor`: an exported model with its preprocessing, for fast single and batch prediction.

The model runs in eval mode under `torch.inference_mode()`; items go through the exported
transforms directly (no data loader per call). This module never imports the training loop.

Example:
    >>> predictor = Predictor.load("pets.mentor")
    >>> label, probs = predictor.predict("cat.jpg")
    >>> labels, probs = predictor.predict_batch(paths, bs=64)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mentor.core.decoding import Decoding
from mentor.core.spec import from_spec, trusting
from mentor.data.encoders import ItemEncoder, decoded_output
from mentor.data.loaders import TargetBlock
from mentor.inference.load import ExportedModel, build_model, read_exported


class Predictor:
    """A model, the encoder of its raw items, the decoding of its outputs and the target
    block that reads them as labels, all rebuilt from the file's specs.

    Build one with `Predictor.load(path)`. Items: images (a path, bytes, a PIL image, a
    uint8 numpy array), texts (str), tabular rows (a dict or Series; a DataFrame or list of
    rows for `predict_batch`), collab pairs (`(user, item)` or a dict with the user and item
    columns; a DataFrame for `predict_batch`).

    Args:
        model: the model (eval mode). inputs: the item encoder. decoding: the loss's
            activation and decoding. target: the target block (None for a language model).
        exported: the file's parsed JSON (meta, model, pipeline).
    """

    def __init__(
        self,
        model: nn.Module,
        inputs: ItemEncoder,
        decoding: Decoding,
        target: TargetBlock | None,
        exported: ExportedModel,
    ) -> None:
        self.model = model.eval()
        self.inputs, self.decoding, self.target = inputs, decoding, target
        self.meta, self.pipeline = exported.meta, exported.pipeline
        self.model_spec = exported.model
        self.application: str = exported.pipeline["application"]
        self.device = next(model.parameters(), torch.zeros(())).device

    @classmethod
    def load(
        cls,
        path: str | Path,
        device: str | torch.device = "cpu",
        trusted_modules: Sequence[str] = (),
    ) -> Predictor:
        """Load a `.mentor` file (zip + JSON + safetensors; nothing is unpickled).

        Args:
            path: the file. device: where the model runs ('cpu').
            trusted_modules: modules a user's own model class or registered pieces may be
                imported from (e.g. ['mypkg']); mentor's need none, nor a user's whose
                module is already imported.

        Raises ValueError for a file whose version, members or model factory are not
        understood or allowed, naming the problem.
        """
        exported = read_exported(path)
        pipeline = exported.pipeline
        for key in ("application", "inputs", "target", "decoding"):
            if key not in pipeline:
                raise ValueError(f"pipeline.json in {str(path)!r} has no {key!r} entry")
        dev = torch.device(device)
        model = build_model(exported, trusted_modules, dev)
        with trusting(trusted_modules):
            inputs = from_spec(pipeline["inputs"], kind="item encoder")
            decoding = from_spec(pipeline["decoding"], kind="decoding", expect=Decoding)
            target_spec = pipeline["target"]
            target = None if target_spec is None else from_spec(target_spec, kind="target block")
        return cls(model, inputs, decoding, target, exported)

    @property
    def vocab(self) -> list[Any]:
        """The class names (empty for regression); a language model's tokens."""
        if self.application == "text_lm":
            return list(self.inputs.vocab.itos)  # type: ignore[attr-defined]
        return [] if self.target is None else list(self.target.vocab)

    def predict(self, item: Any) -> tuple[Any, Tensor]:
        """`(decoded, probs)` for one raw item.

        `decoded` is the label (single-label), the list of labels above the threshold
        (multi-label), the number(s) (regression), the mask or the image (an `[H, W(, C)]`
        uint8 array at the raw image's size); `probs` the activated output of the
        item on the CPU (class probabilities, label probabilities, or the values).

        Example:
            >>> label, probs = predictor.predict("images/3/7463.png")
        """
        if self.application == "text_lm":
            return self._next_token(item)
        with torch.inference_mode():
            out = self.model(*self.inputs.encode_one(item, self.device)).float()
            probs = self.decoding.activate(out)
            decoded = decoded_output(self.target, self.inputs, self.decoding.decode(probs)[0].cpu())
        return self.label(decoded, item), probs[0].cpu()

    def label(self, decoded: Tensor, item: Any) -> Any:
        """One item's decoded output read by the target block: a label, labels, numbers; a
        mask or points on the item's raw image."""
        if self.target is None:
            return decoded
        if self.target.needs_geometry:
            return self.target.decode_in_input(decoded, self.inputs.geometry(item))
        return self.target.decode(decoded)

    def predict_batch(self, items: Any, bs: int = 64) -> tuple[list[Any], Tensor]:
        """`(decoded labels, probs)` for many items, in the items' order; `probs` is
        `[n, ...]` on the CPU. Items are batched `bs` at a time (texts of similar length
        together).
        """
        if self.application == "text_lm":  # one stream per text: the state is per prompt
            tokens, dists = zip(*(self._next_token(text) for text in items), strict=True)
            return list(tokens), torch.stack(dists)
        probs_of: dict[int, Tensor] = {}
        with torch.inference_mode():
            for xb, positions in self.inputs.batches(items, bs, self.device):
                probs = self.decoding.activate(self.model(*xb).float()).cpu()
                probs_of.update(zip(positions, probs))
        if not probs_of:
            raise ValueError("predict_batch got no items")
        probs = torch.stack([probs_of[i] for i in range(len(probs_of))])
        decoded = decoded_output(self.target, self.inputs, self.decoding.decode(probs))
        spatial = self.target is not None and self.target.needs_geometry  # reads the items
        labels = [
            self.label(value, items[i] if spatial else None) for i, value in enumerate(decoded)
        ]
        return labels, probs

    # ----- language models -----
    def _prompt(self, text: Any) -> list[int]:
        """The token ids of a prompt, without a closing xxeos (the text goes on)."""
        if self.application != "text_lm":
            raise ValueError(
                f"this is a {self.application} model; generating text needs a language model "
                "(exported from language_model_learner)"
            )
        from mentor.text.models.lm_tools import BACKWARD_PROMPT, prompt_ids

        if getattr(self.inputs, "backwards", False):
            raise ValueError(BACKWARD_PROMPT)
        return prompt_ids(self.inputs.ids(text).tolist(), self.vocab)  # type: ignore[attr-defined]

    def _next_token(self, text: Any) -> tuple[str, Tensor]:
        """The most likely next token after `text`, and the distribution over the tokens."""
        from mentor.text.models.lm_tools import next_token_logits

        logits = next_token_logits(self.model, self._prompt(text))
        probs = logits.float().softmax(dim=-1).cpu()
        return self.vocab[int(probs.argmax())], probs

    def generate(
        self,
        text: str,
        n_words: int = 20,
        temperature: float = 1.0,
        no_unk: bool = True,
        seed: int | None = None,
    ) -> str:
        """`text` followed by `n_words` tokens sampled from a language model, as text.

        Args:
            text: the prompt. n_words: tokens to add (20). temperature: sampling temperature
                (1.0; 0 takes the most likely token). no_unk: never produce xxunk.
                seed: for reproducible samples (None: torch's global generator).

        Example:
            >>> Predictor.load("wiki_lm.mentor").generate("The history of", 30, 0.75)
        """
        from mentor.text.detokenize import decode_tokens
        from mentor.text.models.lm_tools import generate

        ids = self._prompt(text)
        generator = None if seed is None else torch.Generator(self.device).manual_seed(seed)
        new = generate(self.model, ids, n_words, temperature, no_unk, generator=generator)
        tokenizer = self.inputs.tokenizer  # type: ignore[attr-defined]
        return decode_tokens([self.vocab[i] for i in ids + new], tokenizer)


__all__ = ["Predictor"]
