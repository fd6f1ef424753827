"""A `Predictor` as the server uses it: requests' raw values checked into items, batches of
items predicted in one call, each result as JSON-ready data.

No web framework here: `mentor.serve.app` calls these from its handlers (parsing, in a
worker thread) and from the batcher's inference thread (`predict_items`).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from mentor.inference.masks import class_shares, mask_png
from mentor.inference.predictor import Predictor
from mentor.serve.describe import describe, plain
from mentor.serve.limits import (
    Limits,
    RequestError,
    decode_image,
    image_from_json,
    pair_item,
    row_item,
    text_item,
)

MAX_GENERATED_WORDS = 500
TOP_TOKENS = 10


class ServedModel:
    """The loaded model, its description (`info`) and the request limits.

    Args:
        path: the `.mentor` file. limits: what a request may hold. device: where it runs.
    """

    def __init__(self, path: str | Path, limits: Limits | None = None, device: str = "cpu") -> None:
        self.path = Path(path)
        self.predictor = Predictor.load(self.path, device=device)
        self.limits = limits or Limits()
        self.info = describe(self.predictor, self.path)
        self.task: str = self.info["task"]
        self.version: str = self.info["version"]
        self.classes: list[Any] = self.info["classes"]
        if self.info["input"] == "image":
            # batched convolutions on the CPU run about 1.3x faster on channels-last weights
            # (efficientnet_lite0, 16 images of 128 px: 76 ms instead of 98); one image alike
            self.predictor.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    # ----- requests -> items (in a worker thread: images are decoded here) -----
    def item_from_json(self, value: Any, position: int | None = None) -> Any:
        """One item of a JSON request, checked; raises RequestError naming what is wrong."""
        name = "the input" if position is None else f"input {position}"
        kind = self.info["input"]
        if kind == "image":
            return image_from_json(value, self.limits, name)
        if kind == "text":
            return text_item(value, self.limits, name)
        if kind == "row":
            return row_item(value, self.info["schema"]["columns"], name)
        if kind == "pair":
            schema = self.info["schema"]
            user, item = pair_item(value, schema["user"], schema["item"], name)
            inputs = self.predictor.inputs
            return inputs.known(user, "user"), inputs.known(item, "item")  # type: ignore[attr-defined]
        raise RequestError(422, f"the JSON API does not serve {self.task!r} models; use "
                                "Predictor in Python")  # fmt: skip

    def item_from_upload(self, data: bytes, name: str) -> Image.Image:
        """An uploaded image file."""
        if self.info["input"] != "image":
            raise RequestError(415, f"this {self.task} model takes JSON, not a file upload")
        return decode_image(data, self.limits, repr(name))

    # ----- items -> results (in the inference thread) -----
    def predict_items(self, items: list[Any]) -> list[dict[str, Any]]:
        """The results of many items, predicted together."""
        labels, outputs = self.predictor.predict_batch(items, bs=max(1, len(items)))
        return [self._result(label, out) for label, out in zip(labels, outputs, strict=True)]

    def _result(self, label: Any, out: torch.Tensor) -> dict[str, Any]:
        task = self.task
        if task == "language_model":
            values, idx = out.topk(min(TOP_TOKENS, out.numel()))
            vocab = self.predictor.vocab
            top = {vocab[int(i)]: float(v) for v, i in zip(values, idx)}
            return {"next_token": label, "top": top}
        if task == "collab":
            return {"rating": float(out)}
        if task == "segmentation":
            return _mask_result(np.asarray(label), self.classes)
        if task == "points":
            return {"points": label}
        if task == "multi_label":
            return {"labels": [plain(c) for c in label], "probabilities": self._by_class(out)}
        if self.classes and out.dim() == 1 and out.numel() == len(self.classes):
            probs = self._by_class(out)
            return {"label": plain(label), "probability": max(probs.values()),
                    "probabilities": probs}  # fmt: skip
        numbers = out.reshape(-1).tolist()
        return {"value": numbers[0]} if len(numbers) == 1 else {"values": numbers}

    def _by_class(self, probs: torch.Tensor) -> dict[str, float]:
        return {str(c): float(p) for c, p in zip(self.classes, probs.tolist(), strict=True)}

    def generate(self, prompt: str, n_words: int, temperature: float) -> dict[str, Any]:
        """A language model's continuation of `prompt`."""
        text = self.predictor.generate(prompt, n_words, temperature)
        return {"text": text}

    def recommend(self, user: Any, n: int) -> dict[str, Any]:
        """The `n` items with the highest predicted rating for `user` (collab models)."""
        inputs = self.predictor.inputs
        user = inputs.known(user, "user")  # type: ignore[attr-defined]
        if user not in inputs.user_index:  # type: ignore[attr-defined]
            raise RequestError(404, f"user {user!r} is not one the model was trained on")
        items = inputs.item_classes[1:]  # type: ignore[attr-defined]
        _, ratings = self.predictor.predict_batch([(user, i) for i in items], bs=1024)
        order = torch.argsort(ratings.reshape(-1), descending=True)[:n].tolist()
        top = [{"item": plain(items[i]), "rating": float(ratings.reshape(-1)[i])} for i in order]
        return {"user": plain(user), "items": top}


def _mask_result(mask: np.ndarray, classes: list[Any]) -> dict[str, Any]:
    """A predicted mask as a base64 PNG of class indices, its size and each class's share."""
    shares = {str(label): share for label, _, share in class_shares(mask, classes)}
    return {"mask_png": base64.b64encode(mask_png(mask)).decode(), "height": mask.shape[0],
            "width": mask.shape[1], "shares": shares}  # fmt: skip


__all__ = ["MAX_GENERATED_WORDS", "ServedModel"]
