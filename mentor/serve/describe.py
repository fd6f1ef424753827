"""What a served model is, for `GET /info` and the page: its task, classes, input schema,
training metrics and version, read from the exported file through `Predictor`.

Tasks: 'classification', 'multi_label', 'regression', 'points' and 'segmentation' (image
inputs, or a DataBlock's own inputs), 'text_classification', 'language_model', 'tabular'
(classification or regression by its classes) and 'collab'.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from mentor.inference.predictor import Predictor

# a DataBlock's target block class -> the task the page and the API present
_BLOCK_TASKS = {
    "CategoryBlock": "classification",
    "MultiCategoryBlock": "multi_label",
    "RegressionBlock": "regression",
    "PointBlock": "points",
    "MaskBlock": "segmentation",
}
_MAX_LISTED = 5000  # users, items or category values listed in /info (the page's pickers)


def task_of(predictor: Predictor) -> str:
    """The task of a loaded model (see the module docstring)."""
    app = predictor.application
    if app == "text_lm":
        return "language_model"
    if app in ("tabular", "collab"):
        return app
    if app == "text":
        return "text_classification"
    return _BLOCK_TASKS.get(type(predictor.target).__name__, "custom")


def input_kind(predictor: Predictor) -> str:
    """What one input is: 'image', 'text', 'row' (tabular), 'pair' (collab) or 'custom'."""
    app = predictor.application
    return {"vision": "image", "text": "text", "text_lm": "text", "tabular": "row",
            "collab": "pair"}.get(app, "custom")  # fmt: skip


def model_version(file: Path, meta: dict[str, Any]) -> str:
    """`<created date>-<first 12 hex digits of the file's sha256>`: changes with every export."""
    digest = hashlib.sha256()
    with open(file, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    created = str(meta.get("created", "unknown"))[:10]
    return f"{created}-{digest.hexdigest()[:12]}"


def describe(predictor: Predictor, file: Path) -> dict[str, Any]:
    """The JSON of `GET /info`: task, input, classes, schema, metrics, created, version."""
    meta = predictor.meta
    info: dict[str, Any] = {
        "task": task_of(predictor),
        "application": predictor.application,
        "input": input_kind(predictor),
        "classes": [plain(c) for c in predictor.vocab]
        if task_of(predictor) != "language_model"
        else [],
        "schema": input_schema(predictor),
        "metrics": meta.get("metrics", {}),
        "created": meta.get("created"),
        "mentor_version": meta.get("mentor_version"),
        "version": model_version(file, meta),
        "file": file.name,
    }
    threshold = getattr(predictor.decoding, "threshold", None)
    if threshold is not None:
        info["threshold"] = float(threshold)
    return info


def input_schema(predictor: Predictor) -> dict[str, Any]:
    """How to send one input: the JSON field types, and for tabular models every column
    (with the training data's mode or median as its default), for collab the known users and
    items."""
    kind = input_kind(predictor)
    if kind == "image":
        return {"type": "image", "json": "base64 string (or a data: URL)",
                "multipart": "one or more files in the field 'file'"}  # fmt: skip
    if kind == "text":
        return {"type": "text", "json": "string"}
    if kind == "row":
        return {"type": "row", "json": "object of column -> value", "columns": _columns(predictor)}
    if kind == "pair":
        inputs = predictor.inputs
        users = inputs.user_classes[1:]  # type: ignore[attr-defined]
        items = inputs.item_classes[1:]  # type: ignore[attr-defined]
        return {
            "type": "pair",
            "json": f"object with {inputs.user_name!r} and {inputs.item_name!r}, or [user, item]",  # type: ignore[attr-defined]
            "user": inputs.user_name,  # type: ignore[attr-defined]
            "item": inputs.item_name,  # type: ignore[attr-defined]
            "users": [plain(u) for u in users[:_MAX_LISTED]],
            "items": [plain(i) for i in items[:_MAX_LISTED]],
            "n_users": len(users),
            "n_items": len(items),
        }
    return {"type": "custom"}


def _columns(predictor: Predictor) -> list[dict[str, Any]]:
    """A tabular model's input columns: name, kind, choices (categorical), default."""
    pre = predictor.inputs.preprocessor  # type: ignore[attr-defined]
    vocabs: dict[str, list[Any]] = {}
    fills: dict[str, float] = {}
    for proc in pre.procs:
        vocabs.update(getattr(proc, "vocabs", {}))
        fills.update(getattr(proc, "fill_values", {}))
    columns: list[dict[str, Any]] = []
    for name in pre.cat_names:
        choices = [plain(v) for v in vocabs.get(name, [])][:_MAX_LISTED]
        default = pre.defaults.get(name, choices[0] if choices else None)
        columns.append({"name": name, "kind": "categorical", "choices": choices,
                        "default": default})  # fmt: skip
    for name in pre.cont_names:
        default = pre.defaults.get(name, fills.get(name, 0.0))
        columns.append({"name": name, "kind": "continuous", "default": default})
    return columns


def plain(value: Any) -> Any:
    """A label, user, item or tensor as JSON-ready data."""
    if isinstance(value, torch.Tensor):
        return value.tolist()
    return value.item() if hasattr(value, "item") else value


__all__ = ["describe", "input_kind", "input_schema", "model_version", "plain", "task_of"]
