"""Predicted segmentation masks as files and figures: the PNG of class indices that
`mentor predict` writes and `mentor serve` returns, and each class's share of the pixels."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image


def mask_png(mask: np.ndarray) -> bytes:
    """A `[h, w]` mask of class indices as PNG bytes (8-bit, or 16-bit from 256 classes)."""
    dtype = np.uint8 if int(mask.max(initial=0)) < 256 else np.uint16
    buffer = io.BytesIO()
    Image.fromarray(mask.astype(dtype)).save(buffer, format="PNG")
    return buffer.getvalue()


def class_shares(mask: np.ndarray, classes: list[Any]) -> list[tuple[Any, int, float]]:
    """`(class, pixels, share)` of every class present, in class-index order (an index past
    `classes` is named by its number)."""
    counts = np.bincount(mask.ravel().astype(np.int64))
    return [
        (classes[i] if i < len(classes) else int(i), int(c), float(c / mask.size))
        for i, c in enumerate(counts)
        if c
    ]


__all__ = ["class_shares", "mask_png"]
