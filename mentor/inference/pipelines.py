"""From `pipeline.json` back to fast preprocessing: raw items -> model inputs -> labels.

Each application's inputs class rebuilds the exported settings into the same transforms the
validation loader ran (so the inputs are bit-identical), and applies them to items directly:
no `DataLoader` per call. `encode_one(item)` gives the inputs of one item as a batch of one;
`batches(items, bs)` gives batches with the positions of their items. `OutputDecoder` applies
the loss's activation and decoding and reads labels from the target description.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from mentor.data.transforms import (
    IMAGE,
    BatchPipeline,
    BatchTransform,
    IntToFloat,
    ItemTransform,
    Normalize,
    ToTensor,
    apply_item_tfms,
)
from mentor.inference.tabular_rows import TabularRowEncoder, as_frame

Batch = tuple[tuple[Tensor, ...], list[int]]
APPLICATIONS = ("vision", "tabular", "collab", "text", "text_lm")


class Inputs(Protocol):
    """What `Predictor` needs from an application's preprocessing."""

    n_inp: int

    def encode_one(self, item: Any) -> tuple[Tensor, ...]: ...

    def batches(self, items: Sequence[Any], bs: int) -> Iterator[Batch]: ...


def make_inputs(application: str, data: dict[str, Any], device: torch.device) -> Inputs:
    """The preprocessing of `application` rebuilt from its `pipeline.json` inputs."""
    if application == "vision":
        return VisionInputs(data, device)
    if application == "tabular":
        return TabularInputs(data, device)
    if application == "collab":
        return CollabInputs(data, device)
    if application in ("text", "text_lm"):
        return TextInputs(data, device)
    raise ValueError(f"unknown application {application!r} in pipeline.json; known: {APPLICATIONS}")


def _ranges(n: int, bs: int) -> Iterator[list[int]]:
    if bs < 1:
        raise ValueError(f"bs must be at least 1, got {bs}")
    for start in range(0, n, bs):
        yield list(range(start, min(start + bs, n)))


def item_tfm_from_dict(data: dict[str, Any]) -> ItemTransform:
    """An item transform rebuilt from `describe_item_tfm` output."""
    from mentor.vision.image import ConvertMode
    from mentor.vision.resize import CenterCrop, RandomResizedCrop, Resize

    kind = data.get("type")
    if kind == "Resize":
        return Resize(tuple(data["size"]), data["method"], data["pad_mode"])
    if kind == "RandomResizedCrop":
        ratio = (float(data["ratio"][0]), float(data["ratio"][1]))
        return RandomResizedCrop(tuple(data["size"]), data["min_scale"], ratio, data["val_xtra"])
    if kind == "CenterCrop":
        return CenterCrop(tuple(data["size"]))
    if kind == "ConvertMode":
        return ConvertMode(data["mode"])
    if kind == "ToTensor":
        return ToTensor()
    raise ValueError(f"unknown item transform {kind!r} in pipeline.json")


def batch_tfm_from_dict(data: dict[str, Any]) -> BatchTransform:
    """A batch transform rebuilt from `describe_batch_tfm` output."""
    kind = data.get("type")
    if kind == "IntToFloat":
        return IntToFloat()
    if kind == "Normalize":
        return Normalize(data["mean"], data["std"])
    raise ValueError(f"unknown batch transform {kind!r} in pipeline.json")


class VisionInputs:
    """Images (a path, bytes, a PIL image or an `[H, W(, C)]` uint8 array) -> `[B, C, H, W]`
    floats, through the validation item transforms and batch transforms."""

    n_inp = 1

    def __init__(self, data: dict[str, Any], device: torch.device) -> None:
        from mentor.vision.data import ImageBlock

        self.block = ImageBlock(data["mode"])
        self.item_tfms = sorted(
            (item_tfm_from_dict(d) for d in data["item_tfms"]), key=lambda t: t.order
        )
        tfms = [batch_tfm_from_dict(d) for d in data["batch_tfms"]]
        self.pipeline = BatchPipeline(tfms, (IMAGE,), train=False)
        self.device = device

    def _image(self, item: Any) -> Any:
        from mentor.vision.image import open_image

        if isinstance(item, bytes | bytearray):
            return open_image(io.BytesIO(item), self.block.mode)  # type: ignore[arg-type]
        if isinstance(item, str | Path | np.ndarray) or hasattr(item, "convert"):
            return self.block.encode(item)
        raise TypeError(
            f"an image to predict must be a path, bytes, a PIL image or a numpy array, got "
            f"{type(item).__name__}"
        )

    def tensor(self, item: Any) -> Tensor:
        """One image as the uint8 `[C, H, W]` tensor the loader's workers produce."""
        sample = apply_item_tfms(self.item_tfms, [self._image(item)], (IMAGE,), False)
        return sample[0]

    def encode_one(self, item: Any) -> tuple[Tensor, ...]:
        return self.pipeline([self.tensor(item).unsqueeze(0).to(self.device)])

    def batches(self, items: Sequence[Any], bs: int) -> Iterator[Batch]:
        for positions in _ranges(len(items), bs):
            stacked = torch.stack([self.tensor(items[i]) for i in positions]).to(self.device)
            yield self.pipeline([stacked]), positions


class TabularInputs:
    """Rows (a dict or Series; a DataFrame or list of rows for batches) -> `(x_cat, x_cont)`."""

    n_inp = 2

    def __init__(self, data: dict[str, Any], device: torch.device) -> None:
        from mentor.tabular.preprocess import TabularPreprocessor

        self.preprocessor = TabularPreprocessor.from_dict(data["preprocessor"])
        self.rows = TabularRowEncoder(data["preprocessor"])
        self.device = device

    def encode_one(self, item: Any) -> tuple[Tensor, ...]:
        if isinstance(item, pd.DataFrame):
            if len(item) != 1:
                raise ValueError(f"predict takes one row, got a frame of {len(item)}")
            item = item.iloc[0]
        if not isinstance(item, Mapping | pd.Series):
            raise TypeError(
                f"a row to predict must be a dict or a Series, got {type(item).__name__}"
            )
        cats, conts = self.rows.encode(item)
        x_cat, x_cont = torch.from_numpy(cats[None]), torch.from_numpy(conts[None])
        return x_cat.to(self.device), x_cont.to(self.device)

    def batches(self, items: Any, bs: int) -> Iterator[Batch]:
        frame = self.preprocessor.transform(as_frame(items, self.rows.used_names))
        for positions in _ranges(len(frame), bs):
            part = slice(positions[0], positions[-1] + 1)
            yield (frame.cats[part].to(self.device), frame.conts[part].to(self.device)), positions


class CollabInputs:
    """(user, item) pairs or dicts (a DataFrame for batches) -> `[B, 2]` int64 indices; users
    and items unseen in training map to index 0, as the data loaders do."""

    n_inp = 1

    def __init__(self, data: dict[str, Any], device: torch.device) -> None:
        self.user_name, self.item_name = data["user_name"], data["item_name"]
        self.user_index = {name: i for i, name in enumerate(data["user_classes"]) if i > 0}
        self.item_index = {name: i for i, name in enumerate(data["item_classes"]) if i > 0}
        self.device = device

    def _pair(self, item: Any) -> tuple[Any, Any]:
        if isinstance(item, Mapping | pd.Series):
            missing = [n for n in (self.user_name, self.item_name) if n not in item]
            if missing:
                raise KeyError(f"the row {dict(item)!r} has no {missing} field; it needs "
                               f"{self.user_name!r} and {self.item_name!r}")  # fmt: skip
            return item[self.user_name], item[self.item_name]
        if isinstance(item, tuple | list) and len(item) == 2:
            return item[0], item[1]
        raise TypeError(
            f"a collab item must be a (user, item) pair or a dict with {self.user_name!r} and "
            f"{self.item_name!r}, got {item!r}"
        )

    def _indices(self, pairs: Sequence[tuple[Any, Any]]) -> Tensor:
        rows = [[self.user_index.get(u, 0), self.item_index.get(i, 0)] for u, i in pairs]
        return torch.tensor(rows, dtype=torch.int64, device=self.device).reshape(-1, 2)

    def encode_one(self, item: Any) -> tuple[Tensor, ...]:
        return (self._indices([self._pair(item)]),)

    def batches(self, items: Any, bs: int) -> Iterator[Batch]:
        if isinstance(items, pd.DataFrame):
            pairs = list(zip(items[self.user_name].tolist(), items[self.item_name].tolist()))
        else:
            pairs = [self._pair(item) for item in items]
        for positions in _ranges(len(pairs), bs):
            yield (self._indices([pairs[i] for i in positions]),), positions


class TextInputs:
    """Texts -> token ids `[B, longest]`, padded on the right; batches group texts of
    similar length (longest first), as the validation loader does. A backward model's texts
    are reversed, as its data was."""

    n_inp = 1

    def __init__(self, data: dict[str, Any], device: torch.device) -> None:
        from mentor.text.tokenize import CharTokenizer, Tokenizer
        from mentor.text.vocab import Vocab

        settings = data["tokenizer"]
        char = settings.get("type") == "CharTokenizer"
        self.tokenizer = (
            CharTokenizer.from_dict(settings) if char else Tokenizer.from_dict(settings)
        )
        self.vocab = Vocab.from_dict(data["vocab"])
        self.pad_idx = int(data["pad_idx"])
        self.backwards = bool(data.get("backwards", False))
        self.device = device

    def ids(self, text: Any) -> np.ndarray:
        """The token ids of one text."""
        if not isinstance(text, str):
            raise TypeError(f"a text to predict must be a str, got {type(text).__name__}")
        from mentor.text.vocab import reverse_ids

        ids = self.vocab.numericalize(self.tokenizer(text))
        return reverse_ids(ids) if self.backwards else ids

    def encode_one(self, item: Any) -> tuple[Tensor, ...]:
        return (torch.from_numpy(self.ids(item))[None].to(self.device),)

    def batches(self, items: Sequence[Any], bs: int) -> Iterator[Batch]:
        from mentor.text.loaders import pad_docs

        docs = [self.ids(text) for text in items]
        lengths = np.array([len(doc) for doc in docs], dtype=np.int64)
        order = np.argsort(-lengths, kind="stable").tolist()
        for chunk in _ranges(len(order), bs):
            positions = [order[i] for i in chunk]
            x = pad_docs([docs[i] for i in positions], self.pad_idx)
            yield (x.to(self.device),), positions


class OutputDecoder:
    """The loss's activation and decoding, then labels from the target's description.

    Args:
        loss: `{"activation": "softmax" | "sigmoid" | "identity", "axis": ..., "thresh": ...}`.
        target: `{"type": "category" | "multi_category" | "regression", ...}` or None.
    """

    def __init__(self, loss: dict[str, Any], target: dict[str, Any] | None) -> None:
        self.activation = loss["activation"]
        if self.activation not in ("softmax", "sigmoid", "identity"):
            raise ValueError(f"unknown activation {self.activation!r} in pipeline.json")
        self.axis = int(loss.get("axis", -1))
        self.thresh = float(loss.get("thresh", 0.5))
        self.target = target
        self.vocab: list[Any] = list((target or {}).get("vocab", []))

    def activate(self, out: Tensor) -> Tensor:
        """Raw model outputs -> probabilities (or values)."""
        if self.activation == "softmax":
            return out.softmax(dim=self.axis)
        return out.sigmoid() if self.activation == "sigmoid" else out

    def decode_tensor(self, probs: Tensor) -> Tensor:
        """Probabilities -> class indices, label flags, or the values themselves."""
        if self.activation == "softmax":
            return probs.argmax(dim=self.axis)
        return probs > self.thresh if self.activation == "sigmoid" else probs

    def decode(self, value: Tensor) -> Any:
        """One item's decoded tensor as a label, a list of labels, or a number."""
        kind = (self.target or {}).get("type")
        if kind == "category":
            return self.vocab[int(value)]
        if kind == "multi_category":
            thresh = float(self.target.get("thresh", 0.5)) if self.target else 0.5
            return [self.vocab[i] for i, v in enumerate(value.tolist()) if v > thresh]
        if kind == "regression":
            log_y = bool(self.target and self.target.get("log_y"))
            numbers = value.float().exp() if log_y else value.float()
            return numbers.item() if numbers.numel() == 1 else numbers.tolist()
        return value
