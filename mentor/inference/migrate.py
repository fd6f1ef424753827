"""Format 1 `.mentor` files (mentor before the spec registry) read as format 2.

Format 1 described each of the four applications its own way (`"application": "vision"` with
short transform names, a tabular preprocessor with short proc names, ...) and the loss as an
activation. This module rewrites such a `pipeline.json` and `model.json` into the format-2
layout (every piece a registered spec) when a file is read; the tables below are frozen:
they describe files already written, not today's code.
"""

from __future__ import annotations

from typing import Any

from mentor.core.spec import SPEC_KEY

# format 1's short names -> the registered names of the same classes
_PIECES = {
    "Resize": "mentor.vision.resize:Resize",
    "RandomResizedCrop": "mentor.vision.resize:RandomResizedCrop",
    "CenterCrop": "mentor.vision.resize:CenterCrop",
    "ConvertMode": "mentor.vision.image:ConvertMode",
    "ToTensor": "mentor.data.transforms:ToTensor",
    "IntToFloat": "mentor.data.transforms:IntToFloat",
    "Normalize": "mentor.data.transforms:Normalize",
    "Categorify": "mentor.tabular.procs:Categorify",
    "FillMissing": "mentor.tabular.procs:FillMissing",
    "TabularNormalize": "mentor.tabular.procs:Normalize",
    "Tokenizer": "mentor.text.tokenize:Tokenizer",
    "CharTokenizer": "mentor.text.tokenize:CharTokenizer",
    "SpacyTokenizer": "mentor.text.backends:SpacyTokenizer",
    "SentencePieceTokenizer": "mentor.text.backends:SentencePieceTokenizer",
}
_FACTORIES = {
    "mentor.vision.learner:build_vision_model": "mentor.vision.models.head:build_vision_model",
    "mentor.tabular.learner:build_tabular_model": "mentor.tabular.model:build_tabular_model",
    "mentor.collab.learner:build_collab_model": "mentor.collab.model:build_collab_model",
}


def migrate_v1(pipeline: dict[str, Any], model: dict[str, Any]) -> tuple[dict, dict]:
    """`(pipeline, model)` of a format-1 file in the format-2 layout."""
    application = pipeline.get("application")
    inputs = pipeline.get("inputs") or {}
    converters = {"vision": _vision, "tabular": _tabular, "collab": _collab,
                  "text": _text, "text_lm": _text}  # fmt: skip
    if application not in converters:
        raise ValueError(f"format 1 pipeline.json has an unknown application {application!r}")
    new_inputs = converters[application](inputs, application)
    target = _target(pipeline.get("target"), application)
    loss = pipeline.get("loss") or {}
    factory = model.get("factory")
    new_model = {
        **model,
        "factory": _FACTORIES.get(factory, factory) if isinstance(factory, str) else factory,
    }
    new_pipeline = {
        "version": 2,
        "application": application,
        "inputs": new_inputs,
        "target": target,
        "decoding": _decoding(loss),
        "loss": loss.get("name"),
    }
    return new_pipeline, new_model


def _renamed(spec: dict[str, Any], kind: str = "") -> dict[str, Any]:
    short = kind or spec.get("type")
    if short not in _PIECES:
        raise ValueError(f"format 1 pipeline.json names an unknown piece {spec.get('type')!r}")
    return {**{k: v for k, v in spec.items() if k != "type"}, SPEC_KEY: _PIECES[short]}


def _vision(inputs: dict[str, Any], application: str) -> dict[str, Any]:
    return {
        SPEC_KEY: "mentor.data.encoders:BlockEncoder",
        "blocks": [{SPEC_KEY: "mentor.vision.blocks:ImageBlock", "mode": inputs["mode"]}],
        "item_tfms": [_renamed(t) for t in inputs["item_tfms"]],
        "batch_tfms": [_renamed(t) for t in inputs["batch_tfms"]],
    }


def _tabular(inputs: dict[str, Any], application: str) -> dict[str, Any]:
    pre = dict(inputs["preprocessor"])
    pre["procs"] = [
        _renamed(p, "TabularNormalize" if p.get("type") == "Normalize" else "")
        for p in pre["procs"]
    ]
    return {SPEC_KEY: "mentor.tabular.encoder:TabularEncoder", "preprocessor": pre}


def _collab(inputs: dict[str, Any], application: str) -> dict[str, Any]:
    return {SPEC_KEY: "mentor.collab.encoder:CollabEncoder", **inputs}


def _text(inputs: dict[str, Any], application: str) -> dict[str, Any]:
    return {
        SPEC_KEY: "mentor.text.encoder:TextEncoder",
        "tokenizer": _renamed(inputs["tokenizer"]),
        "vocab": inputs["vocab"],
        "pad_idx": inputs["pad_idx"],
        "backwards": bool(inputs.get("backwards", False)),
        "is_lm": application == "text_lm",
    }


def _target(target: dict[str, Any] | None, application: str) -> dict[str, Any] | None:
    if target is None:
        return None
    kind = target.get("type")
    if kind == "category":
        return {SPEC_KEY: "mentor.data.blocks:CategoryBlock", "vocab": target["vocab"]}
    if kind == "multi_category":
        return {SPEC_KEY: "mentor.data.blocks:MultiCategoryBlock", "vocab": target["vocab"],
                "label_delim": None, "thresh": target.get("thresh", 0.5)}  # fmt: skip
    if kind == "regression" and application == "tabular":
        names = [f"y{i}" for i in range(int(target["n_out"]))]  # format 1 kept no names
        return {SPEC_KEY: "mentor.tabular.target:TabularTarget", "y_names": names,
                "kind": "regression", "vocab": [], "log_y": bool(target.get("log_y"))}  # fmt: skip
    if kind == "regression":
        return {SPEC_KEY: "mentor.data.blocks:RegressionBlock", "n_out": target.get("n_out")}
    raise ValueError(f"format 1 pipeline.json has an unknown target type {kind!r}")


def _decoding(loss: dict[str, Any]) -> dict[str, Any]:
    activation = loss.get("activation")
    if activation == "softmax":
        return {SPEC_KEY: "mentor.core.decoding:Softmax", "axis": int(loss.get("axis", -1))}
    if activation == "sigmoid":
        return {SPEC_KEY: "mentor.core.decoding:Sigmoid", "thresh": float(loss.get("thresh", 0.5))}
    if activation == "identity":
        return {SPEC_KEY: "mentor.core.decoding:Decoding"}
    raise ValueError(f"format 1 pipeline.json has an unknown activation {activation!r}")


__all__ = ["migrate_v1"]
