"""Reading a `.mentor` file safely: zip + JSON + safetensors, every part checked.

Nothing is unpickled. The archive must hold exactly the four documented members; the format
version must be one this mentor reads (1 is migrated to 2 as it is read); the model factory
named in `model.json` must be registered (`mentor.core.spec`: mentor's own, or a user's
whose module is imported) or lie in a module the caller trusts (`trusted_modules`), so a
file can't make the loader import or call arbitrary code. Each failure is a `ValueError`
that names the problem.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
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
DEFAULT_NAME = "export.mentor"  # learn.export() with no path writes learn.path / this
READS_VERSIONS = (1, 2)
MEMBERS = ("meta.json", "model.json", "pipeline.json", "weights.safetensors")
MAX_JSON_BYTES = 8 * 2**20  # a 60,000-token vocabulary and its tokenizer take under 1 MiB
MAX_JSON_DEPTH = 32  # pipeline.json nests about 8 deep
MAX_HEADER_BYTES = 16 * 2**20  # the safetensors header: names, dtypes, shapes, offsets
SAFETENSORS_DTYPES = {
    torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}  # fmt: skip


@dataclass
class ExportedModel:
    """The parsed JSON members of a `.mentor` file; the weights are read by `build_model`,
    once the architecture says how large they may be."""

    meta: dict[str, Any]
    model: dict[str, Any]
    pipeline: dict[str, Any]
    file: Path


# what a damaged zip raises: zipfile's own errors are not OSErrors, and an unknown version or
# compression method (a flipped byte in a header) is NotImplementedError
CORRUPT_ZIP = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError)


def read_exported(path: str | Path) -> ExportedModel:
    """Open and check a `.mentor` file (a folder: its `export.mentor`, where `learn.export()`
    writes); see the module docstring for what is refused."""
    file = Path(path)
    if file.is_dir():
        file = file / DEFAULT_NAME
    if not file.is_file():
        raise FileNotFoundError(f"model file {str(file)!r} does not exist; check the path")
    if not zipfile.is_zipfile(file):
        raise ValueError(f"{str(file)!r} is not a .mentor file (not a zip archive); export one "
                         "with learn.export(path)")  # fmt: skip
    with _corrupt_is_refused(repr(str(file))), zipfile.ZipFile(file) as archive:
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
        meta = _json(archive, "meta.json", file)
        check_meta(meta, file)
        model, pipeline = _json(archive, "model.json", file), _json(archive, "pipeline.json", file)
    if meta["format_version"] == 1:
        pipeline, model = migrate_v1(pipeline, model)
    return ExportedModel(meta, model, pipeline, file)


def read_member(archive: zipfile.ZipFile, name: str, limit: int, file: Path) -> bytes:
    """At most `limit` bytes of member `name`, read through a bounded stream: whatever the
    zip headers declare, inflating stops at the limit. A longer member, a corrupt one or
    one that ends early is refused naming it."""
    try:
        with archive.open(name) as stream:
            data = stream.read(limit + 1)
    except (*CORRUPT_ZIP, OSError) as err:
        raise ValueError(f"{name} in {str(file)!r} is corrupt: {err}") from None
    if len(data) > limit:
        raise ValueError(
            f"{name} in {str(file)!r} is larger than the {limit:,} bytes it may hold; the file "
            "was changed or is not a mentor export"
        )
    return data


def _has_pickle(names: Sequence[str]) -> bool:
    return any(name.endswith((".pkl", ".pickle", ".pt", ".pth", ".bin")) for name in names)


def _json(archive: zipfile.ZipFile, name: str, file: Path) -> dict[str, Any]:
    return parse_json(read_member(archive, name, MAX_JSON_BYTES, file), f"{name} in {str(file)!r}")


def parse_json(raw: bytes, what: str) -> dict[str, Any]:
    """A JSON object from `raw`, nested at most `MAX_JSON_DEPTH` deep."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{what} is not valid JSON: {err}") from None
    except RecursionError:
        data = None  # deeper than Python's parser goes: refused below
    if data is None or _depth(data) > MAX_JSON_DEPTH:
        raise ValueError(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep; refused")
    if not isinstance(data, dict):
        raise ValueError(f"{what} must hold a JSON object, got {type(data).__name__}")
    return data


def _depth(value: Any) -> int:
    """How deep lists and objects nest in `value` (without recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth <= MAX_JSON_DEPTH:  # no need to walk further than the limit
            children = item.values() if isinstance(item, dict) else item
            if isinstance(item, dict | list):
                stack.extend((child, depth + 1) for child in children)
    return deepest


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
    """The exported model: rebuilt by its factory, weights loaded, in eval mode on `device`.

    The factory first builds the model on PyTorch's meta device (no memory), which says
    which tensors the weights must hold: their names, shapes and dtypes. The weights member
    is then read only as far as that: a header that differs, a member that is longer, or
    values that are not finite are refused before the model is built for real.
    """
    spec = exported.model
    kwargs = spec.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise ValueError(f"model.json kwargs must be a JSON object, got {kwargs!r}")
    factory = resolve_factory(spec.get("factory"), trusted_modules)
    with torch.device("meta"):
        skeleton = factory(**kwargs)
    if not isinstance(skeleton, nn.Module):
        raise ValueError(f"model.json factory {spec.get('factory')!r} did not build an nn.Module")
    weights = read_weights(exported.file, skeleton.state_dict())
    model = factory(**kwargs)
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        raise ValueError(
            f"the weights don't fit the model that model.json describes ({err}); the file was "
            "changed or written by an incompatible mentor: export it again"
        ) from None
    return model.to(device).eval()


def read_weights(file: Path, expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weights member of `file`, checked against the state dict the model expects."""
    what = f"weights.safetensors in {str(file)!r}"
    n_data = sum(t.numel() * t.element_size() for t in expected.values())
    with (
        _corrupt_is_refused(what),
        zipfile.ZipFile(file) as archive,
        archive.open("weights.safetensors") as stream,
    ):
        head = stream.read(8)
        header_len = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        if not 0 < header_len <= MAX_HEADER_BYTES:
            raise ValueError(f"{what} has no valid safetensors header; refused")
        header_raw = stream.read(header_len)
        header = parse_json(header_raw, f"the header of {what}")
        _check_header(header, expected, n_data, what)
        data = stream.read(n_data + 1)
    if len(data) != n_data:
        raise ValueError(f"{what} holds {len(data):,} bytes of tensors; its header says {n_data:,}")
    try:
        weights = load_safetensors(head + header_raw + data)
    except Exception as err:  # safetensors raises its own error types
        raise ValueError(f"{what} is not readable: {err}") from None
    bad = [name for name, t in weights.items() if t.is_floating_point() and not t.isfinite().all()]
    if bad:
        raise ValueError(f"{what} holds values that are not finite (NaN or inf) in {bad[:5]}")
    return weights


@contextlib.contextmanager
def _corrupt_is_refused(what: str) -> Iterator[None]:
    try:
        yield
    except CORRUPT_ZIP as err:
        raise ValueError(
            f"{what} is corrupt ({type(err).__name__}: {err}); copy or export it again"
        ) from None


def _check_header(
    header: dict[str, Any], expected: dict[str, torch.Tensor], n_data: int, what: str
) -> None:
    """The header must list exactly the expected tensors, with their dtypes and shapes,
    packed one after another into `n_data` bytes."""
    entries = {name: entry for name, entry in header.items() if name != "__metadata__"}
    if sorted(entries) != sorted(expected):
        extra, missing = sorted(set(entries) - set(expected)), sorted(set(expected) - set(entries))
        raise ValueError(
            f"the weights don't fit the model that model.json describes ({what}: unexpected "
            f"tensors {extra[:5]}, missing {missing[:5]}); the file was changed or written by an "
            "incompatible mentor: export it again"
        )
    spans = []
    for name, entry in entries.items():
        want = expected[name]
        dtype = SAFETENSORS_DTYPES.get(want.dtype)
        if not isinstance(entry, dict) or entry.get("dtype") != dtype:
            got = entry.get("dtype") if isinstance(entry, dict) else entry
            named = {"F64": "float64", "I8": "int8", "F16": "float16"}.get(str(got), got)
            raise ValueError(f"{what}: tensor {name!r} is {named}, the model needs {dtype}")
        if entry.get("shape") != list(want.shape):
            raise ValueError(
                f"the weights don't fit the model that model.json describes ({what}: tensor "
                f"{name!r} has shape {entry.get('shape')}, the model needs {list(want.shape)})"
            )
        offsets = entry.get("data_offsets")
        size = want.numel() * want.element_size()
        if not (
            isinstance(offsets, list) and len(offsets) == 2 and offsets[1] - offsets[0] == size
        ):
            raise ValueError(f"{what}: tensor {name!r} has bad data offsets {offsets}")
        spans.append((offsets[0], offsets[1]))
    ends = [end for _, end in sorted(spans)]
    starts = [start for start, _ in sorted(spans)]
    if spans and (starts[0] != 0 or starts[1:] != ends[:-1] or ends[-1] != n_data):
        raise ValueError(f"{what}: the tensors' data offsets overlap or leave gaps; refused")
