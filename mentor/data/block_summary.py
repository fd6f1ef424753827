"""`DataBlock.summary`: one item walked through every step, and the step where it fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import default_collate

from mentor.data.transforms import BatchPipeline

if TYPE_CHECKING:
    from mentor.data.datablock import DataBlock


def describe(value: Any) -> str:
    """A short description of a value: tensors by shape and dtype, images by size and mode."""
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).removeprefix("torch.")
        if value.numel() <= 8:
            return f"tensor {value.tolist()} ({dtype})"
        return f"tensor of shape {list(value.shape)} ({dtype})"
    if hasattr(value, "size") and hasattr(value, "mode"):
        return f"{type(value).__name__} {value.size[0]}x{value.size[1]} mode {value.mode}"
    if isinstance(value, list | tuple):
        return "(" + ", ".join(describe(v) for v in value) + ")"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def walk_one_item(block: DataBlock, source: Any) -> str:
    """Every step for the first training item (and a batch of up to 4), as text."""
    lines: list[str] = []
    state: dict[str, Any] = {}
    steps: list[tuple[str, Callable[[], str]]] = [
        ("get_items", lambda: _items(block, source, state)),
        ("splitter", lambda: _split(block, state)),
        ("setup (vocabularies)", lambda: _setup(block, state)),
        ("get_x / get_y and the blocks' encode", lambda: _encode(block, state)),
        *[(f"item transform {type(t).__name__}", _item_step(block, t, state))
          for t in sorted(block.item_tfms, key=lambda t: t.order)],
        ("collate 4 items into a batch", lambda: _collate(block, state)),
        ("batch transforms (training)", lambda: _batch(block, state)),
    ]  # fmt: skip
    for name, step in steps:
        try:
            lines.append(f"{name}: {step()}")
        except Exception as err:  # the summary's job is to show where and why it fails
            lines.append(f"{name}: FAILED with {type(err).__name__}: {err}")
            lines.append(f"-> the data block fails at step '{name}'")
            break
    return "\n".join(lines)


def _items(block: DataBlock, source: Any, state: dict[str, Any]) -> str:
    state["items"] = block.items(source)
    return f"{len(state['items'])} items, the first: {describe(state['items'][0])}"


def _split(block: DataBlock, state: dict[str, Any]) -> str:
    train_idx, valid_idx = block.splitter(state["items"])
    state["train"] = [state["items"][i] for i in train_idx]
    return f"{len(train_idx)} training, {len(valid_idx)} validation items"


def _setup(block: DataBlock, state: dict[str, Any]) -> str:
    found = []
    for get, b in zip(block.getters, block.blocks):
        b.setup([get(item) for item in state["train"]])
        vocab = list(b.vocab)
        if vocab:
            found.append(f"{type(b).__name__} vocab of {len(vocab)}: {vocab[:10]}")
    return "; ".join(found) or "nothing to learn"


def _encode(block: DataBlock, state: dict[str, Any]) -> str:
    item = state["train"][0]
    raws = [get(item) for get in block.getters]
    state["sample"] = [b.encode(raw) for raw, b in zip(raws, block.blocks)]
    return f"raw {describe(raws)} -> {describe(state['sample'])}"


def _item_step(block: DataBlock, tfm: Any, state: dict[str, Any]) -> Callable[[], str]:
    def step() -> str:
        state["sample"] = tfm(state["sample"], block.kinds, True)
        return describe(state["sample"])

    return step


def _collate(block: DataBlock, state: dict[str, Any]) -> str:
    from mentor.data.datablock import Datasets

    ds = Datasets(state["train"][:4], block.getters, block.blocks, block.item_tfms, True)
    state["batch"] = default_collate([ds[i] for i in range(len(ds))])
    return describe(state["batch"])


def _batch(block: DataBlock, state: dict[str, Any]) -> str:
    batch = BatchPipeline(block.batch_tfms, block.kinds, train=True)(state["batch"])
    return describe(batch)
