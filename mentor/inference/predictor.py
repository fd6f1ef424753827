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
        """The class names (empty for regression)."""
        return list(self.decoder.vocab)

    def predict(self, item: Any) -> tuple[Any, Tensor]:
        """`(decoded, probs)` for one raw item.

        `decoded` is the label (single-label), the list of labels above the threshold
        (multi-label) or the number(s) (regression); `probs` the activated output of the
        item on the CPU (class probabilities, label probabilities, or the values).

        Example:
            >>> label, probs = predictor.predict("images/3/7463.png")
        """
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


__all__ = ["Predictor"]
