"""Item encoders: raw items -> model inputs, outside any data loader (for prediction).

`DataLoaders.item_encoder()` gives the encoder of a data set's inputs: the same blocks,
transforms and procs its validation loader runs, and registered (`mentor.core.spec`), so
export writes it as data and `Predictor` rebuilds it. `BlockEncoder` serves every
`DataBlock` (images, masks, points and a user's own blocks); tabular, collab and text
data have their own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from mentor.core.spec import from_spec, register_spec, to_spec
from mentor.data.blocks import TransformBlock
from mentor.data.transforms import (
    IMAGE,
    POINTS,
    BatchPipeline,
    BatchTransform,
    ItemTransform,
    apply_item_tfms,
)

Batch = tuple[tuple[Tensor, ...], list[int]]


@dataclass(frozen=True)
class InputGeometry:
    """Where the model's input image lies in the raw image it came from.

    The validation transforms (resize, crop, pad) scale and shift each axis, so a position
    in the model's input, in [-1, 1] (left/top = -1, as points are in batches), is
    `scale * pixel + offset` for a pixel position of the raw image (0 to width).

    Args:
        width, height: the raw image's size in pixels.
        scale, offset: per axis (x, y), as above.
    """

    width: int
    height: int
    scale: tuple[float, float]
    offset: tuple[float, float]

    def to_pixels(self, points: Tensor) -> Tensor:
        """`[n, 2]` positions in [-1, 1] of the model's input -> raw-image pixels (x, y)."""
        scale = torch.tensor(self.scale, dtype=torch.float64)
        offset = torch.tensor(self.offset, dtype=torch.float64)
        return (points.double().reshape(-1, 2) - offset) / scale

    def sample_map(self, values: Tensor) -> np.ndarray:
        """A `[h, w]` map over the model's input resampled to the raw image's `[height,
        width]` (nearest; pixels outside the input take the nearest edge value)."""
        h, w = values.shape[-2:]
        xs = (np.arange(self.width) + 0.5) * self.scale[0] + self.offset[0]
        ys = (np.arange(self.height) + 0.5) * self.scale[1] + self.offset[1]
        cols = np.clip(np.floor((xs + 1) / 2 * w), 0, w - 1).astype(np.int64)
        rows = np.clip(np.floor((ys + 1) / 2 * h), 0, h - 1).astype(np.int64)
        return np.asarray(values.cpu())[np.ix_(rows, cols)]

    def sample_image(self, image: Tensor) -> Tensor:
        """A `[C, h, w]` image over the model's input resampled (bilinear) to the raw
        image's `[C, height, width]`; pixels outside the input take the nearest edge."""
        xs = (torch.arange(self.width, dtype=torch.float64) + 0.5) * self.scale[0] + self.offset[0]
        ys = (torch.arange(self.height, dtype=torch.float64) + 0.5) * self.scale[1] + self.offset[1]
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).float()
        values = image.float().unsqueeze(0)
        out = torch.nn.functional.grid_sample(
            values, grid.unsqueeze(0).to(values.device), mode="bilinear",
            padding_mode="border", align_corners=False,
        )  # fmt: skip
        return (
            out[0].round().clamp(0, 255).to(image.dtype)
            if not image.is_floating_point()
            else out[0]
        )


class ItemEncoder(Protocol):
    """What `Predictor` needs from a kind of data's preprocessing."""

    n_inp: int

    def encode_one(self, item: Any, device: torch.device) -> tuple[Tensor, ...]:
        """The model inputs of one raw item, as a batch of one on `device`."""
        ...

    def batches(self, items: Any, bs: int, device: torch.device) -> Iterator[Batch]:
        """Batches of model inputs for many items, with the positions of their items."""
        ...

    def geometry(self, item: Any) -> InputGeometry | None:
        """Where the model's input image lies in the item's raw image (None: no image)."""
        ...

    def to_spec(self) -> dict[str, Any]:
        """The encoder's settings as JSON data."""
        ...


def item_ranges(n: int, bs: int) -> Iterator[list[int]]:
    """The positions `0..n-1` in chunks of `bs`."""
    if bs < 1:
        raise ValueError(f"bs must be at least 1, got {bs}")
    for start in range(0, n, bs):
        yield list(range(start, min(start + bs, n)))


@register_spec
class BlockEncoder:
    """A DataBlock's input blocks and validation transforms, applied to raw items.

    An item is what the input block encodes (an image path, bytes, a PIL image or an array
    for `ImageBlock`); with several input blocks, a tuple of one value per block.

    Args:
        blocks: the input blocks. item_tfms: the item transforms (run with train=False).
        batch_tfms: the batch transforms (`train_only` ones never run here).
    """

    def __init__(
        self,
        blocks: Sequence[TransformBlock],
        item_tfms: Sequence[ItemTransform],
        batch_tfms: Sequence[BatchTransform],
    ) -> None:
        self.blocks = list(blocks)
        self.n_inp = len(self.blocks)
        self.kinds = tuple(block.kind for block in self.blocks)
        self.item_tfms = sorted(item_tfms, key=lambda t: t.order)
        self.batch_tfms = sorted((t for t in batch_tfms if not t.train_only), key=lambda t: t.order)
        self.pipeline = BatchPipeline(self.batch_tfms, self.kinds, train=False)

    def _encoded(self, item: Any) -> list[Any]:
        """The item's values through their blocks' `encode` (one value per input block)."""
        raws = item if self.n_inp > 1 else (item,)
        if len(raws) != self.n_inp:
            raise ValueError(f"an item needs {self.n_inp} values (one per input), got {item!r}")
        return [block.encode(raw) for block, raw in zip(self.blocks, raws)]

    def sample(self, item: Any) -> list[Any]:
        """One item through the blocks' `encode` and the item transforms, as the validation
        loader's workers produce it."""
        return apply_item_tfms(self.item_tfms, self._encoded(item), self.kinds, False)

    def encode_one(self, item: Any, device: torch.device) -> tuple[Tensor, ...]:
        """The inputs of one item, a batch of one. A TypeError says when the blocks and
        item transforms do not make a tensor of it (an item they cannot read)."""
        parts = self.sample(item)
        odd = [type(part).__name__ for part in parts if not isinstance(part, Tensor)]
        if odd:
            raise TypeError(
                f"the input blocks and item transforms turn {type(item).__name__} items into "
                f"{odd}, not tensors: pass a raw input they read (a file path for images)"
            )
        return self.pipeline([part.unsqueeze(0).to(device) for part in parts])

    def geometry(self, item: Any) -> InputGeometry | None:
        """Where the first input image lies in the item's raw image: two probe points (its
        corners) go through the item transforms with it, as key points do."""
        if IMAGE not in self.kinds:
            return None
        parts = self._encoded(item)
        image = parts[self.kinds.index(IMAGE)]
        if isinstance(image, Tensor):
            width, height = int(image.shape[-1]), int(image.shape[-2])
        else:
            width, height = image.size
        corners = np.array([[0, 0], [width, height]], dtype=np.float32)
        moved = apply_item_tfms(self.item_tfms, [*parts, corners], (*self.kinds, POINTS), False)
        (x0, y0), (x1, y1) = torch.as_tensor(moved[-1]).double().tolist()
        scale = ((x1 - x0) / width, (y1 - y0) / height)
        return InputGeometry(width, height, scale, (x0, y0))

    def batches(self, items: Sequence[Any], bs: int, device: torch.device) -> Iterator[Batch]:
        """Batches of `bs` items in their order."""
        for positions in item_ranges(len(items), bs):
            samples = [self.sample(items[i]) for i in positions]
            parts = [torch.stack([s[j] for s in samples]).to(device) for j in range(self.n_inp)]
            yield self.pipeline(parts), positions

    def decode_images(self, values: Tensor) -> Tensor:
        """Image outputs of a model (`[C, H, W]` or `[B, C, H, W]`, normalized as the input
        images are) back to uint8 pixels: the batch transforms undone."""
        batched = values.unsqueeze(0) if values.ndim == 3 else values
        pixels = BatchPipeline(self.batch_tfms, (IMAGE,), train=False).decode([batched.float()])[0]
        return pixels[0] if values.ndim == 3 else pixels

    def to_spec(self) -> dict[str, Any]:
        """The input blocks and the validation-time transforms, each as its spec."""
        return {
            "blocks": [to_spec(b, f"the input block {type(b).__name__}") for b in self.blocks],
            "item_tfms": [to_spec(t, _what("item", t)) for t in self.item_tfms],
            "batch_tfms": [to_spec(t, _what("batch", t)) for t in self.batch_tfms],
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> BlockEncoder:
        """The encoder `to_spec` described; every piece must be registered."""
        return cls(
            [from_spec(b, kind="block", expect=TransformBlock) for b in spec["blocks"]],
            [from_spec(t, kind="item transform", expect=ItemTransform) for t in spec["item_tfms"]],
            [
                from_spec(t, kind="batch transform", expect=BatchTransform)
                for t in spec["batch_tfms"]
            ],
        )


def decoded_output(target: Any, encoder: ItemEncoder | None, decoded: Tensor) -> Tensor:
    """A loss's decoding of predictions, ready for the target block: an image-to-image
    model's output images get the data's batch transforms undone (uint8 pixels, as the
    target images are before them); other outputs stay as they are."""
    image_target = isinstance(target, TransformBlock) and target.kind == IMAGE
    if image_target and isinstance(encoder, BlockEncoder):
        return encoder.decode_images(decoded)
    return decoded


def _what(stage: str, tfm: Any) -> str:
    hint = " (mark an augmentation train_only)" if stage == "batch" else ""
    return f"the {stage} transform {type(tfm).__name__}{hint}"


__all__ = [
    "Batch", "BlockEncoder", "InputGeometry", "ItemEncoder", "decoded_output", "item_ranges",
]  # fmt: skip
