"""The vision blocks: images, segmentation masks and points, as the DataBlock carries them."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from mentor.core.spec import register_spec
from mentor.data.blocks import TransformBlock
from mentor.data.transforms import IMAGE, MASK, POINTS, IntToFloat
from mentor.vision.image import ConvertMode, finish_image, open_image, open_mask


@register_spec
class ImageBlock(TransformBlock):
    """Images from files (or PIL images / arrays), as uint8 tensors `[C, H, W]` in batches.

    As a target (image to image: restoration, super-resolution), a model's output images
    map back onto the raw input image (`decode_in_input`: resampled to its size).

    Args:
        mode: 'RGB' (3 channels, default) or 'L' (greyscale, 1 channel).
    """

    needs_geometry = True  # read of targets only: predicted images go back to the raw size

    def __init__(self, mode: str = "RGB") -> None:
        super().__init__(IMAGE, item_tfms=[ConvertMode()], batch_tfms=[IntToFloat()])
        self.mode = mode

    def to_spec(self) -> dict[str, Any]:
        """The image mode."""
        return {"mode": self.mode}

    def encode(self, raw: Any) -> Any:
        """Open a path lazily (so JPEGs can decode at reduced size) or the bytes of an image
        file; pass PIL images and uint8 arrays `[H, W(, C)]` through, in `mode`."""
        if isinstance(raw, str | Path):
            return open_image(raw, self.mode)
        if isinstance(raw, bytes | bytearray):
            return open_image(io.BytesIO(raw), self.mode)  # type: ignore[arg-type]
        if isinstance(raw, np.ndarray):
            return Image.fromarray(raw).convert(self.mode)
        if isinstance(raw, Image.Image):
            return finish_image(raw, self.mode)
        raise TypeError(
            f"an image must be a path, the bytes of an image file, a PIL image or a uint8 "
            f"numpy array, got {type(raw).__name__}"
        )

    def decode(self, value: Any) -> np.ndarray:
        """A `[C, H, W]` image as an `[H, W, C]` (or `[H, W]`) uint8 array."""
        array = value.permute(1, 2, 0).numpy()
        return array[:, :, 0] if array.shape[2] == 1 else array

    @property
    def n_out(self) -> int:
        """As a target: one output channel per channel of the mode (3 for RGB)."""
        return Image.getmodebands(self.mode)

    def decode_in_input(self, value: Any, geometry: Any) -> np.ndarray:
        """A predicted image (uint8 `[C, h, w]` pixels) at the raw image's size."""
        if geometry is None:
            return self.decode(value)
        return self.decode(geometry.sample_image(torch.as_tensor(value)))

    def show(self, value: Any, ax: Any) -> None:
        """Draw the image."""
        image = self.decode(value)
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None)


@register_spec
class MaskBlock(TransformBlock):
    """Segmentation masks (one class index per pixel) from image files.

    Args:
        codes: the class names, index = pixel value (e.g. the lines of `codes.txt`).
    """

    loss_spec = ("CrossEntropyLossFlat", {"axis": 1})
    needs_geometry = True

    def __init__(self, codes: Sequence[str] | None = None) -> None:
        super().__init__(MASK)
        self.vocab = list(codes) if codes is not None else []

    def to_spec(self) -> dict[str, Any]:
        """The class names."""
        return {"codes": self.vocab}

    def encode(self, raw: Any) -> Any:
        """Open the mask, keeping its pixel values as class indices."""
        return open_mask(raw) if isinstance(raw, str | Path) else raw

    def decode(self, value: Any) -> np.ndarray:
        """The mask as an `[H, W]` array of class indices."""
        return np.asarray(value)

    def decode_in_input(self, value: Any, geometry: Any) -> np.ndarray:
        """A predicted class map at the raw image's size `[height, width]`."""
        if geometry is None:
            return self.decode(value)
        return geometry.sample_map(value)

    @property
    def n_out(self) -> int | None:
        """One output channel per class."""
        return len(self.vocab) or None

    def show(self, value: Any, ax: Any) -> None:
        """Overlay the mask on the image already drawn."""
        n_classes = max(len(self.vocab), int(np.asarray(value).max()) + 1)
        ax.imshow(self.decode(value), cmap="tab20", alpha=0.5, vmin=0, vmax=n_classes - 1)

    def legend(self, ax: Any, values: Sequence[Any]) -> None:
        """A legend beside `ax` of the codes present in the masks `values`."""
        present = sorted({int(c) for v in values for c in np.unique(np.asarray(v))})
        n_classes = max(len(self.vocab), (present[-1] + 1) if present else 1)
        mask_legend(ax, present, self.vocab, n_classes)


def mask_legend(ax: Any, present: Sequence[int], names: Sequence[Any], n_classes: int) -> None:
    """A legend beside `ax` of the class indices `present`, each in the colour
    `MaskBlock.show` draws it (tab20 stretched over `n_classes`), named by `names`."""
    import matplotlib
    from matplotlib.patches import Patch

    top = max(n_classes - 1, 1)
    handles = [
        Patch(color=matplotlib.colormaps["tab20"](c / top),
              label=str(names[c]) if c < len(names) else str(c))
        for c in present
    ]  # fmt: skip
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=7,
              frameon=False, ncol=1 + len(handles) // 12)  # fmt: skip


@register_spec
class PointBlock(TransformBlock):
    """Points (x, y) in pixels of their image, e.g. key points; `[n, 2]` in [-1, 1] in batches.

    Args:
        n_out: the model's outputs, 2 per point (None: found from the first training item).
    """

    loss_spec = ("MSELossFlat", {})
    needs_geometry = True

    def __init__(self, n_out: int | None = None) -> None:
        super().__init__(POINTS)
        self._n_out = n_out

    def setup(self, raws: Sequence[Any]) -> None:
        """Find the number of outputs (2 per point) from the first training item."""
        if self._n_out is None and len(raws):
            self._n_out = self.encode(raws[0]).numel()

    @property
    def n_out(self) -> int | None:
        """Two outputs (x, y) per point."""
        return self._n_out

    def decode_in_input(self, value: Any, geometry: Any) -> list[list[float]]:
        """Predicted points `[[x, y], ...]` in pixels of the raw image (in [-1, 1] of the
        model's input when there is no image to map onto)."""
        points = torch.as_tensor(value).reshape(-1, 2)
        if geometry is None:
            return points.tolist()
        return geometry.to_pixels(points).tolist()

    def to_spec(self) -> dict[str, Any]:
        """The number of outputs."""
        return {"n_out": self._n_out}

    def encode(self, raw: Any) -> torch.Tensor:
        """Points as a float `[n, 2]` tensor of pixel coordinates."""
        return torch.as_tensor(raw, dtype=torch.float32).reshape(-1, 2)

    def show(self, value: Any, ax: Any) -> None:
        """Mark the points on the image already drawn."""
        height, width = ax.get_images()[0].get_array().shape[:2]
        points = value.reshape(-1, 2)
        xs = ((points[:, 0] + 1) * width - 1) / 2
        ys = ((points[:, 1] + 1) * height - 1) / 2
        ax.scatter(xs, ys, s=40, c="red", marker="x")


__all__ = ["ImageBlock", "MaskBlock", "PointBlock"]
