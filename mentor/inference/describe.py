"""A learner's data pipeline and loss described as JSON data, for `pipeline.json`.

Every function here reads a trained learner (its `dls` and `loss_func`) and returns plain
dicts, lists, strings and numbers. Whatever cannot be written as data (a custom transform, a
proc without `to_dict`, a loss with its own activation) raises a `ValueError` naming it:
export never falls back to pickle.
"""

from __future__ import annotations

import json
from typing import Any

from torch import nn
from torch.nn import functional as F

from mentor.data.transforms import BatchTransform, IntToFloat, ItemTransform, Normalize, ToTensor

PIPELINE_VERSION = 1


def describe_pipeline(learn: Any) -> dict[str, Any]:
    """`pipeline.json` for `learn`: application, inputs, target and the loss's decoding."""
    dls = learn.dls
    inputs = describe_inputs(dls)
    return {
        "application": inputs.pop("application"),
        "inputs": inputs,
        "target": describe_target(getattr(dls, "target_block", None)),
        "loss": describe_loss(learn.loss_func),
    }


def describe_inputs(dls: Any) -> dict[str, Any]:
    """How raw items become model inputs, for the four applications' data loaders."""
    from mentor.collab.data import CollabDataLoaders
    from mentor.data.block_loaders import BlockDataLoaders
    from mentor.tabular.data import TabularDataLoaders
    from mentor.text.data import TextDataLoaders

    if isinstance(dls, BlockDataLoaders):
        return _vision_inputs(dls)
    if isinstance(dls, TabularDataLoaders):
        return {"application": "tabular", "preprocessor": _checked_procs(dls.preprocessor)}
    if isinstance(dls, CollabDataLoaders):
        return {
            "application": "collab",
            "user_name": _json_value(dls.user_name, "the user column name"),
            "item_name": _json_value(dls.item_name, "the item column name"),
            "user_classes": _json_value(dls.classes[dls.user_name], "the user vocabulary"),
            "item_classes": _json_value(dls.classes[dls.item_name], "the item vocabulary"),
        }
    if isinstance(dls, TextDataLoaders):
        return _text_inputs(dls)
    raise ValueError(
        f"export cannot describe the data of type {type(dls).__name__}: it knows image "
        "DataBlock loaders, TabularDataLoaders, CollabDataLoaders and TextDataLoaders; build "
        "the learner's data with one of them"
    )


def _vision_inputs(dls: Any) -> dict[str, Any]:
    from mentor.vision.data import ImageBlock

    block = dls.block
    first = block.blocks[0]
    if block.n_inp != 1 or not isinstance(first, ImageBlock):
        kinds = [type(b).__name__ for b in block.blocks[: block.n_inp]]
        raise ValueError(
            f"export supports DataBlocks with one ImageBlock input, got inputs {kinds}"
        )
    item_tfms = sorted(block.item_tfms, key=lambda t: t.order)
    batch_tfms = sorted(
        (t for t in block.batch_tfms if not t.train_only), key=lambda t: t.order
    )  # augmentations (train_only) never run at inference
    return {
        "application": "vision",
        "mode": first.mode,
        "item_tfms": [describe_item_tfm(t) for t in item_tfms],
        "batch_tfms": [describe_batch_tfm(t) for t in batch_tfms],
    }


def describe_item_tfm(tfm: ItemTransform) -> dict[str, Any]:
    """The settings of a validation-time item transform."""
    from mentor.vision.image import ConvertMode
    from mentor.vision.resize import CenterCrop, RandomResizedCrop, Resize

    if isinstance(tfm, Resize):
        return {"type": "Resize", "size": list(tfm.size), "method": tfm.method,
                "pad_mode": tfm.pad_mode}  # fmt: skip
    if isinstance(tfm, RandomResizedCrop):
        return {"type": "RandomResizedCrop", "size": list(tfm.size), "min_scale": tfm.min_scale,
                "ratio": list(tfm.ratio), "val_xtra": tfm.val_xtra}  # fmt: skip
    if isinstance(tfm, CenterCrop):
        return {"type": "CenterCrop", "size": list(tfm.size)}
    if isinstance(tfm, ConvertMode):
        return {"type": "ConvertMode", "mode": tfm.mode}
    if isinstance(tfm, ToTensor):
        return {"type": "ToTensor"}
    raise ValueError(
        f"export cannot describe the item transform {type(tfm).__name__} as data (it knows "
        "Resize, RandomResizedCrop, CenterCrop, ConvertMode and ToTensor); remove it from "
        "item_tfms or replace it with one of those, then export again"
    )


def describe_batch_tfm(tfm: BatchTransform) -> dict[str, Any]:
    """The settings of a batch transform that runs at validation time."""
    if isinstance(tfm, IntToFloat):
        return {"type": "IntToFloat"}
    if isinstance(tfm, Normalize):
        return {"type": "Normalize", "mean": tfm.mean.flatten().tolist(),
                "std": tfm.std.flatten().tolist()}  # fmt: skip
    raise ValueError(
        f"export cannot describe the batch transform {type(tfm).__name__} as data (it knows "
        "IntToFloat, Normalize, and drops train_only augmentations); mark it train_only or "
        "remove it from batch_tfms, then export again"
    )


def _checked_procs(pre: Any) -> dict[str, Any]:
    """The preprocessor's fitted state, checked to rebuild from data alone."""
    from mentor.tabular.procs import proc_from_dict

    for proc in pre.procs:
        to_dict = getattr(proc, "to_dict", None)
        try:
            proc_from_dict(to_dict()) if callable(to_dict) else proc_from_dict({})
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(
                f"export cannot describe the tabular proc {type(proc).__name__} as data "
                f"({err}); use Categorify, FillMissing and Normalize, or apply your own "
                "step to the DataFrame before building the data"
            ) from None
    return _json_value(pre.to_dict(), "the tabular procs' state")


def _text_inputs(dls: Any) -> dict[str, Any]:
    to_dict = getattr(dls.tokenizer, "to_dict", None)
    if not callable(to_dict):
        raise ValueError(
            f"export cannot describe the tokenizer {type(dls.tokenizer).__name__} as data; "
            "use Tokenizer or CharTokenizer"
        )
    try:
        tokenizer = to_dict()
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"export cannot describe the tokenizer's rules as data: {err}") from None
    return {
        "application": "text_lm" if dls.is_lm else "text",
        "tokenizer": _json_value(tokenizer, "the tokenizer settings"),
        "vocab": _json_value(dls.text_vocab.to_dict(), "the token vocabulary"),
        "pad_idx": int(dls.pad_idx),
        "backwards": bool(dls.backwards),
    }


def describe_target(block: Any) -> dict[str, Any] | None:
    """How a decoded prediction reads as a label: category, multi_category or regression."""
    from mentor.data.blocks import CategoryBlock, MultiCategoryBlock, RegressionBlock
    from mentor.tabular.target import TabularTarget

    if block is None:
        return None
    if isinstance(block, TabularTarget):
        if block.kind == "category":
            return {"type": "category", "vocab": _json_value(block.vocab, "the target vocab")}
        return {"type": "regression", "n_out": block.n_out, "log_y": bool(block.log_y)}
    if isinstance(block, CategoryBlock):
        return {"type": "category", "vocab": _json_value(block.vocab, "the target vocab")}
    if isinstance(block, MultiCategoryBlock):
        vocab = _json_value(block.vocab, "the target vocab")
        return {"type": "multi_category", "vocab": vocab, "thresh": float(block.thresh)}
    if isinstance(block, RegressionBlock):
        return {"type": "regression", "n_out": block.n_out, "log_y": False}
    raise ValueError(
        f"export cannot describe the target block {type(block).__name__} (it knows "
        "CategoryBlock, MultiCategoryBlock and RegressionBlock targets)"
    )


def describe_loss(loss_func: Any) -> dict[str, Any]:
    """The loss's activation and decoding, as `get_preds` and `predict` apply them."""
    from mentor.train.losses import BCEWithLogitsLossFlat, CrossEntropyLossFlat, MSELossFlat

    name = getattr(loss_func, "__name__", type(loss_func).__name__)
    if isinstance(loss_func, CrossEntropyLossFlat):
        return {"name": name, "activation": "softmax", "axis": loss_func.axis}
    if isinstance(loss_func, nn.CrossEntropyLoss) or loss_func is F.cross_entropy:
        return {"name": name, "activation": "softmax", "axis": 1}
    if isinstance(loss_func, BCEWithLogitsLossFlat):
        return {"name": name, "activation": "sigmoid", "thresh": float(loss_func.thresh)}
    if (
        isinstance(loss_func, nn.BCEWithLogitsLoss)
        or loss_func is F.binary_cross_entropy_with_logits
    ):
        return {"name": name, "activation": "sigmoid", "thresh": 0.5}
    custom = callable(getattr(loss_func, "activation", None)) or callable(
        getattr(loss_func, "decodes", None)
    )
    known_identity = isinstance(loss_func, MSELossFlat | nn.MSELoss | nn.L1Loss)
    if custom and not known_identity:
        raise ValueError(
            f"export cannot describe the activation of the loss {name}: it knows "
            "cross-entropy (softmax, argmax), binary cross-entropy (sigmoid, threshold) and "
            "regression losses (identity); use one of those for the exported learner"
        )
    return {"name": name, "activation": "identity"}


def _json_value(value: Any, what: str) -> Any:
    """`value` when JSON writes and reads it back unchanged; else a ValueError naming it."""
    try:
        same = json.loads(json.dumps(value, allow_nan=False)) == value
    except (TypeError, ValueError):
        same = False
    if not same:
        shown = repr(value)
        shown = shown if len(shown) < 200 else shown[:200] + "..."
        raise ValueError(
            f"export cannot write {what} as JSON: {shown}; use strings, numbers, booleans "
            "and lists of them (e.g. map labels to strings before building the data)"
        )
    return value
