"""`export_learner`: a trained learner as one `.mentor` file, without pickle.

A `.mentor` file is a zip archive holding exactly four members:

- `weights.safetensors`: the model's state dict (tensors that share storage, such as tied
  weights, are written as separate copies; safetensors refuses shared ones).
- `model.json`: how to rebuild the model, `{"factory": "module:qualname", "kwargs": {...}}`.
  The application learners record a registered factory (`vision_learner` ->
  `build_vision_model` with arch, n_out, c_in and the head's settings; `tabular_learner` ->
  `build_tabular_model`; `collab_learner` -> `build_collab_model`; the text learners ->
  `get_text_classifier` / `get_language_model`), always built with `pretrained=False`
  since the weights come from the file. A plain `Learner` on your own `nn.Module` writes
  `learn.model_spec` (a factory you registered with `register_spec` loads by name) or else
  the model's class, which loads with `trusted_modules=[...]`.
- `pipeline.json`: `{"version": 2, "application", "inputs", "target", "decoding", "loss"}`.
  Every piece is a spec of the registry (`mentor.core.spec`): `{"type": "module:qualname",
  ...settings}`. `inputs` is the data's item encoder (`dls.item_encoder()`): for DataBlock
  data the input blocks with the validation-time item and batch transforms; for tabular
  data the fitted procs; for collab the user and item vocabularies; for text the
  tokenizer, vocabulary and padding id. `target` is the target block that reads decoded
  predictions as labels (null for a language model); `decoding` the loss's activation and
  decoding (`mentor.core.decoding`); `loss` the loss's name, for people.
- `meta.json`: `{"format": "mentor", "format_version": 2, "mentor_version", "torch_version",
  "created" (UTC, ISO 8601), "application", "metrics" (the last recorded epoch)}`. Files of
  format 1 are migrated as they load (`mentor.inference.migrate`).

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

from mentor.core.decoding import decoding_for
from mentor.core.device import uncompiled
from mentor.core.spec import json_value, to_spec
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
    pipeline = describe_pipeline(learn)
    members = {
        "meta.json": _dumps(describe_meta(learn, pipeline["application"]), "meta.json"),
        "model.json": _dumps(describe_model(learn), "model.json"),
        "pipeline.json": _dumps(pipeline, "pipeline.json"),
        "weights.safetensors": model_weights(uncompiled(learn.model)),
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


def describe_pipeline(learn: Any) -> dict[str, Any]:
    """`pipeline.json`: the data's item encoder, its target block and the loss's decoding,
    each as a registered spec."""
    dls = learn.dls
    loss_name = getattr(learn.loss_func, "__name__", type(learn.loss_func).__name__)
    decoding = decoding_for(learn.loss_func)
    if decoding is None:
        raise ValueError(
            f"export cannot describe the activation of the loss {loss_name}: it knows "
            "mentor's losses, PyTorch's cross-entropy, binary cross-entropy and regression "
            "losses; give your loss a `decoding` (mentor.core.decoding) to export it"
        )
    target = dls.target_block
    target_name = type(target).__name__
    return {
        "version": FORMAT_VERSION,
        "application": dls.application,
        "inputs": to_spec(dls.item_encoder(), f"the item encoder of {type(dls).__name__}"),
        "target": None if target is None else to_spec(target, f"the target {target_name}"),
        "decoding": to_spec(decoding, "the loss's decoding"),
        "loss": loss_name,
    }


def describe_model(learn: Any) -> dict[str, Any]:
    """`model.json`: the learner's `model_spec`, or the model's own importable class."""
    spec = getattr(learn, "model_spec", None)
    if spec is not None:
        return json_value(dict(spec), "learn.model_spec")
    cls = type(uncompiled(learn.model))
    module, qualname = cls.__module__, cls.__qualname__
    if module == "__main__" or "<locals>" in qualname or module.split(".")[0] == "torch":
        raise ValueError(
            f"export cannot tell how to rebuild the model {qualname} (module {module!r}): put "
            "its class in an importable module, or set learn.model_spec = {'factory': "
            "'mypkg.models:make_model', 'kwargs': {...}} before exporting"
        )
    _check_rebuilds(uncompiled(learn.model), cls, f"{module}:{qualname}")
    return {"factory": f"{module}:{qualname}", "kwargs": {}}


def _check_rebuilds(model: torch.nn.Module, cls: type, name: str) -> None:
    """Refuse to describe `model` as `cls()` when `cls()` (built on the meta device, no
    memory) does not have the same tensors: it was built with arguments export can't see."""
    fix = (
        f"set learn.model_spec = {{'factory': {name!r}, 'kwargs': {{...}}}} with the "
        "arguments it was built with, before exporting"
    )
    try:
        with torch.device("meta"):
            rebuilt = cls().state_dict()
    except TypeError as err:
        raise ValueError(f"export would rebuild the model as {name}() but it needs arguments "
                         f"({err}); {fix}") from None  # fmt: skip
    state = model.state_dict()
    differ = sorted(set(rebuilt) ^ set(state))
    if differ:
        raise ValueError(f"{name}() has other tensors than the model ({differ[:5]}); {fix}")
    for key, tensor in state.items():
        if rebuilt[key].shape != tensor.shape:
            raise ValueError(
                f"{name}() gives {key!r} the shape {list(rebuilt[key].shape)}, the model has "
                f"{list(tensor.shape)}: it was built with other arguments; {fix}"
            )


def model_weights(model: torch.nn.Module) -> bytes:
    """The state dict as safetensors bytes; shared tensors become separate copies. Weights
    that are not finite (a diverged fit) are refused, naming them."""
    state = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
    bad = [k for k, v in state.items() if v.is_floating_point() and not v.isfinite().all()]
    if bad:
        raise ValueError(
            f"export refuses a model whose weights are not finite (NaN or inf in {bad[:5]}): "
            "the training diverged; train again with a lower learning rate"
        )
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


__all__ = ["SUFFIX", "describe_model", "describe_pipeline", "export_learner", "model_weights"]
