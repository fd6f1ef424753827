"""Reading a `.mentor` file safely: zip + JSON + safetensors, every part checked.

Nothing is unpickled. The archive must hold exactly the four documented members; the format
version must be one this mentor reads (1 is migrated to 2 as it is read); the model factory
named in `model.json` must be registered (`mentor.core.spec`: mentor's own, or a user's
whose module is imported) or lie in a module the caller trusts (`trusted_modules`), so a
file can't make the loader import or call arbitrary code. Each failure is a `ValueError`
that names the problem.
"""

from __future__ import annotations

import importlib
import json
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from torch import nn

from mentor.core.spec import resolve, trusted
from mentor.inference.migrate import migrate_v1

FORMAT = "mentor"
FORMAT_VERSION = 2
READS_VERSIONS = (1, 2)
MEMBERS = ("meta.json", "model.json", "pipeline.json", "weights.safetensors")
MAX_JSON_BYTES = 512 * 2**20


@dataclass
class ExportedModel:
    """The parsed members of a `.mentor` file (weights still on the CPU)."""

    meta: dict[str, Any]
    model: dict[str, Any]
    pipeline: dict[str, Any]
    weights: dict[str, torch.Tensor]


def read_exported(path: str | Path) -> ExportedModel:
    """Open and check a `.mentor` file; see the module docstring for what is refused."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"model file {str(file)!r} does not exist; check the path")
    if not zipfile.is_zipfile(file):
        raise ValueError(f"{str(file)!r} is not a .mentor file (not a zip archive); export one "
                         "with learn.export(path)")  # fmt: skip
    with zipfile.ZipFile(file) as archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        extra = sorted(set(names) - set(MEMBERS))
        missing = sorted(set(MEMBERS) - set(names))
        if extra or missing or len(names) != len(MEMBERS):
            raise ValueError(
                f"{str(file)!r} is not a valid .mentor file: it must hold exactly {list(MEMBERS)}"
                f"; unexpected members {extra}, missing {missing}"
                + ("; refusing to load a pickle" if _has_pickle(extra) else "")
            )
        for info in infos:
            if info.filename.endswith(".json") and info.file_size > MAX_JSON_BYTES:
                raise ValueError(f"{info.filename} in {str(file)!r} is {info.file_size} bytes, "
                                 "too large for a .mentor member")  # fmt: skip
        meta = _json(archive, "meta.json", file)
        check_meta(meta, file)
        model, pipeline = _json(archive, "model.json", file), _json(archive, "pipeline.json", file)
        try:
            weights = load_safetensors(archive.read("weights.safetensors"))
        except Exception as err:  # safetensors raises its own error types
            raise ValueError(
                f"weights.safetensors in {str(file)!r} is not readable: {err}"
            ) from None
    if meta["format_version"] == 1:
        pipeline, model = migrate_v1(pipeline, model)
    return ExportedModel(meta, model, pipeline, weights)


def _has_pickle(names: Sequence[str]) -> bool:
    return any(name.endswith((".pkl", ".pickle", ".pt", ".pth", ".bin")) for name in names)


def _json(archive: zipfile.ZipFile, name: str, file: Path) -> dict[str, Any]:
    try:
        data = json.loads(archive.read(name).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{name} in {str(file)!r} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(
            f"{name} in {str(file)!r} must hold a JSON object, got {type(data).__name__}"
        )
    return data


def check_meta(meta: dict[str, Any], file: Path | str = "<file>") -> None:
    """Refuse a file whose format or version this mentor does not read."""
    if meta.get("format") != FORMAT:
        raise ValueError(f"{str(file)!r} is not a mentor export (meta.json format is "
                         f"{meta.get('format')!r}, expected {FORMAT!r})")  # fmt: skip
    version = meta.get("format_version")
    if version not in READS_VERSIONS:
        raise ValueError(
            f"{str(file)!r} has format version {version!r}; this mentor reads versions "
            f"{list(READS_VERSIONS)}: export it again with this version, or upgrade mentor"
        )


def resolve_factory(name: Any, trusted_modules: Sequence[str] = ()) -> Callable[..., Any]:
    """The model factory `module:qualname` names: a registered one (mentor's, or a user's
    whose module is imported), or any class or function of a trusted module.

    Args:
        name: e.g. 'mentor.vision.models.head:build_vision_model' or 'mypkg.models:MyNet'.
        trusted_modules: modules (and their submodules) whose classes and functions may be
            imported, e.g. ['mypkg']; only list code you trust.
    """
    try:
        factory: Callable[..., Any] = resolve(name, trusted_modules, kind="model factory")
        return factory
    except ValueError:
        module_name = name.split(":")[0] if isinstance(name, str) else ""
        if not trusted(module_name, trusted_modules):
            raise
    target: Any = importlib.import_module(module_name)  # trusted: any class or function
    for part in name.split(":")[1].split("."):
        target = getattr(target, part, None)
    if not callable(target):
        raise ValueError(f"model.json factory {name!r} does not name a class or function")
    return target  # type: ignore[no-any-return]


def build_model(
    exported: ExportedModel, trusted_modules: Sequence[str] = (), device: str | torch.device = "cpu"
) -> nn.Module:
    """The exported model: rebuilt by its factory, weights loaded, in eval mode on `device`."""
    spec = exported.model
    kwargs = spec.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise ValueError(f"model.json kwargs must be a JSON object, got {kwargs!r}")
    factory = resolve_factory(spec.get("factory"), trusted_modules)
    model = factory(**kwargs)
    if not isinstance(model, nn.Module):
        raise ValueError(f"model.json factory {spec.get('factory')!r} did not build an nn.Module")
    try:
        model.load_state_dict(exported.weights, strict=True)
    except RuntimeError as err:
        raise ValueError(
            f"the weights don't fit the model that model.json describes ({err}); the file was "
            "changed or written by an incompatible mentor: export it again"
        ) from None
    return model.to(device).eval()
