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

from mentor.inference.load import ExportedModel, build_model, read_exported
from mentor.inference.pipelines import Inputs, OutputDecoder, make_inputs


class Predictor:
    """A model, the preprocessing of its raw items and the decoding of its outputs.

    Build one with `Predictor.load(path)`. Items: images (a path, bytes, a PIL image, a
    uint8 numpy array), texts (str), tabular rows (a dict or Series; a DataFrame or list of
    rows for `predict_batch`), collab pairs (`(user, item)` or a dict with the user and item
    columns; a DataFrame for `predict_batch`).

    Args:
        model: the model (eval mode). inputs: the preprocessing. decoder: the output
            decoding. exported: the file's parsed JSON (meta, model, pipeline).
    """

    def __init__(
        self, model: nn.Module, inputs: Inputs, decoder: OutputDecoder, exported: ExportedModel
    ) -> None:
        self.model = model.eval()
        self.inputs, self.decoder = inputs, decoder
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
            trusted_modules: modules a user's own model class may be imported from (e.g.
                ['mypkg']); mentor's factories need none.

        Raises ValueError for a file whose version, members or model factory are not
        understood or allowed, naming the problem.
        """
        exported = read_exported(path)
        pipeline = exported.pipeline
        for key in ("application", "inputs", "loss"):
            if key not in pipeline:
                raise ValueError(f"pipeline.json in {str(path)!r} has no {key!r} entry")
        dev = torch.device(device)
        model = build_model(exported, trusted_modules, dev)
        inputs = make_inputs(pipeline["application"], pipeline["inputs"], dev)
        decoder = OutputDecoder(pipeline["loss"], pipeline.get("target"))
        return cls(model, inputs, decoder, exported)

    @property
    def vocab(self) -> list[Any]:
        """The class names (empty for regression); a language model's tokens."""
        if self.application == "text_lm":
            return list(self.inputs.vocab.itos)  # type: ignore[attr-defined]
        return list(self.decoder.vocab)

    def predict(self, item: Any) -> tuple[Any, Tensor]:
        """`(decoded, probs)` for one raw item.

        `decoded` is the label (single-label), the list of labels above the threshold
        (multi-label) or the number(s) (regression); `probs` the activated output of the
        item on the CPU (class probabilities, label probabilities, or the values).

        Example:
            >>> label, probs = predictor.predict("images/3/7463.png")
        """
        if self.application == "text_lm":
            return self._next_token(item)
        with torch.inference_mode():
            out = self.model(*self.inputs.encode_one(item)).float()
            probs = self.decoder.activate(out)
            decoded = self.decoder.decode_tensor(probs)[0].cpu()
        return self.decoder.decode(decoded), probs[0].cpu()

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
            for xb, positions in self.inputs.batches(items, bs):
                probs = self.decoder.activate(self.model(*xb).float()).cpu()
                probs_of.update(zip(positions, probs))
        if not probs_of:
            raise ValueError("predict_batch got no items")
        probs = torch.stack([probs_of[i] for i in range(len(probs_of))])
        decoded = self.decoder.decode_tensor(probs)
        return [self.decoder.decode(value) for value in decoded], probs

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
