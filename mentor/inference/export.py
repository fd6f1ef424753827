"""`export_learner`: a trained learner as one `.mentor` file, without pickle.

A `.mentor` file is a zip archive holding exactly four members:

- `weights.safetensors`: the model's state dict (tensors that share storage, such as tied
  weights, are written as separate copies; safetensors refuses shared ones).
- `model.json`: how to rebuild the model, `{"factory": "module:qualname", "kwargs": {...}}`.
  The application learners record a mentor factory (`vision_learner` ->
  `mentor.vision.learner:build_vision_model` with arch, n_out, c_in and the head's settings;
  `tabular_learner` -> `mentor.tabular.learner:build_tabular_model`; `collab_learner` ->
  `mentor.collab.learner:build_collab_model`; `text_classifier_learner` ->
  `mentor.text.models.core:get_text_classifier`), always built with `pretrained=False`
  since the weights come from the file. A plain `Learner` on your own `nn.Module` writes its
  class as `module:qualname` with no arguments, or whatever you set in `learn.model_spec`;
  loading such a file needs `trusted_modules=[...]`.
- `pipeline.json`: `{"version": 1, "application": "vision" | "tabular" | "collab" | "text",
  "inputs": {...}, "target": {...} | null, "loss": {...}}`. `inputs` holds what turns a raw
  item into model inputs: vision: the image mode and the validation-time item transforms
  (Resize size, method and pad mode; RandomResizedCrop; CenterCrop; ConvertMode; ToTensor)
  and batch transforms (IntToFloat, Normalize mean and std); tabular: the fitted procs
  (Categorify vocabularies, FillMissing fill values, Normalize means and stds) with the
  column names; collab: the user and item columns and vocabularies (index 0 unknown); text:
  the tokenizer's rules, the token vocabulary and the padding id. `target` reads decoded
  predictions as labels (`category` with `vocab`, `multi_category` with `vocab` and
  `thresh`, `regression` with `n_out` and `log_y`). `loss` is the activation and decoding
  (`softmax` over `axis` then argmax, `sigmoid` then `> thresh`, or `identity`).
- `meta.json`: `{"format": "mentor", "format_version": 1, "mentor_version", "torch_version",
  "created" (UTC, ISO 8601), "application", "metrics" (the last recorded epoch)}`.

Example:
    >>> learn.export("pets")            # writes pets.mentor
    >>> Predictor.load("pets.mentor").predict("cat.jpg")
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as save_safetensors

from mentor.inference.describe import PIPELINE_VERSION, _json_value, describe_pipeline
from mentor.inference.load import FORMAT, FORMAT_VERSION

SUFFIX = ".mentor"


def export_learner(learn: Any, path: str | Path) -> Path:
    """Write `learn`'s model and data pipeline to `path` (`.mentor` added when missing).

    Fails with a `ValueError` naming the part that can't be written as data (a custom
    transform, proc, loss or model); nothing is pickled. In a distributed run only rank 0
    writes. Returns the file's path.

    Args:
        learn: a trained `Learner` (from `vision_learner`, `tabular_learner`,
            `collab_learner` or `text_classifier_learner`; or any learner whose
            `model_spec` is set).
        path: the file to write.
    """
    file = Path(path)
    if file.suffix != SUFFIX:
        file = file.with_name(file.name + SUFFIX)
    pipeline = {"version": PIPELINE_VERSION, **describe_pipeline(learn)}
    members = {
        "meta.json": _dumps(describe_meta(learn, pipeline["application"]), "meta.json"),
        "model.json": _dumps(describe_model(learn), "model.json"),
        "pipeline.json": _dumps(pipeline, "pipeline.json"),
        "weights.safetensors": model_weights(learn.model),
    }
    if _rank() != 0:
        return file
    file.parent.mkdir(parents=True, exist_ok=True)
    partial = file.with_name(file.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    os.replace(partial, file)  # a reader never sees a half-written file
    return file


def describe_model(learn: Any) -> dict[str, Any]:
    """`model.json`: the learner's `model_spec`, or the model's own importable class."""
    spec = getattr(learn, "model_spec", None)
    if spec is not None:
        return _json_value(dict(spec), "learn.model_spec")
    cls = type(learn.model)
    module, qualname = cls.__module__, cls.__qualname__
    if module == "__main__" or "<locals>" in qualname or module.split(".")[0] == "torch":
        raise ValueError(
            f"export cannot tell how to rebuild the model {qualname} (module {module!r}): put "
            "its class in an importable module, or set learn.model_spec = {'factory': "
            "'mypkg.models:make_model', 'kwargs': {...}} before exporting"
        )
    return {"factory": f"{module}:{qualname}", "kwargs": {}}


def model_weights(model: torch.nn.Module) -> bytes:
    """The state dict as safetensors bytes; shared tensors become separate copies."""
    state = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
    return save_safetensors(state)


def describe_meta(learn: Any, application: str) -> dict[str, Any]:
    """`meta.json`: format, versions, date and the last recorded metrics."""
    import mentor

    recorder = getattr(learn, "recorder", None)
    values = getattr(recorder, "values", None) or [{}]
    metrics = {str(k): _finite(v) for k, v in values[-1].items()}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "mentor_version": mentor.__version__,
        "torch_version": torch.__version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "application": application,
        "metrics": metrics,
    }


def _finite(value: Any) -> Any:
    number = float(value) if isinstance(value, int | float) else None
    return number if number is not None and math.isfinite(number) else None


def _dumps(data: dict[str, Any], name: str) -> bytes:
    try:
        return json.dumps(data, allow_nan=False, indent=1).encode("utf-8")
    except (TypeError, ValueError) as err:
        raise ValueError(f"export cannot write {name} as JSON: {err}") from None


def _rank() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return int(torch.distributed.get_rank())
    return 0


__all__ = ["SUFFIX", "describe_model", "export_learner", "model_weights"]
