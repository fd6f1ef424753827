"""A hostile `.mentor` file can't hurt the process that loads it: every member is read through
a bounded stream, the weights must be what the architecture needs, JSON is small and shallow,
and refusing any of these files stays within 100 MB of the process's memory."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as save_safetensors

from mentor.inference.predictor import Predictor

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "inference" / "format1"
GOOD = FIXTURES / "collab.mentor"  # a dot-product model: two embeddings and two biases


def _members(source: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(source) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write(dest: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return dest


def _weights_bomb(dest: Path, n_bytes: int) -> Path:
    """The good file with a weights member whose header declares one `n_bytes` tensor of
    zeros: a small file that inflates to `n_bytes`."""
    members = _members(GOOD)
    header = json.dumps({"x": {"dtype": "F32", "shape": [n_bytes // 4],
                               "data_offsets": [0, n_bytes]}}).encode()  # fmt: skip
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            if name != "weights.safetensors":
                archive.writestr(name, data)
        with archive.open("weights.safetensors", "w", force_zip64=True) as out:
            out.write(struct.pack("<Q", len(header)) + header)
            chunk = bytes(2**24)
            for _ in range(n_bytes // len(chunk)):
                out.write(chunk)
    return dest


def _lying_json(dest: Path) -> Path:
    """pipeline.json that inflates to 300 MB while its zip headers declare 100 bytes."""
    members = _members(GOOD)
    members["pipeline.json"] = b'{"a": "' + b" " * (300 * 2**20) + b'"}'
    _write(dest, members)
    data = bytearray(dest.read_bytes())
    with zipfile.ZipFile(dest) as archive:
        info = archive.getinfo("pipeline.json")
    true_size = struct.pack("<I", info.file_size)
    for at in range(len(data) - 4):  # the local header and the central directory entry
        if data[at : at + 4] == true_size and data[at - 4 : at] == struct.pack(
            "<I", info.compress_size
        ):
            data[at : at + 4] = struct.pack("<I", 100)
    dest.write_bytes(bytes(data))
    return dest


def _pipeline(dest: Path, text: bytes) -> Path:
    members = _members(GOOD)
    members["pipeline.json"] = text
    return _write(dest, members)


def _weights_as(dest: Path, change) -> Path:
    members = _members(GOOD)
    from safetensors.torch import load

    weights = {name: change(t) for name, t in load(members["weights.safetensors"]).items()}
    members["weights.safetensors"] = save_safetensors(weights)
    return _write(dest, members)


def _nan_first(t: torch.Tensor) -> torch.Tensor:
    t = t.clone()
    t.view(-1)[0] = float("nan")
    return t


def _vision_pipeline_with(dest: Path, size: int) -> Path:
    members = _members(FIXTURES / "vision_category.mentor")
    pipeline = json.loads(members["pipeline.json"])
    pipeline["inputs"]["item_tfms"][0]["size"] = [size, size]
    members["pipeline.json"] = json.dumps(pipeline).encode()
    return _write(dest, members)


BAD_FILES = {
    "weights_bomb": (lambda d: _weights_bomb(d, 512 * 2**20), "weights.safetensors"),
    "lying_json": (_lying_json, "pipeline.json"),
    "huge_json": (lambda d: _pipeline(d, b"[" + b"{}," * (40 * 2**20) + b"{}]"), "pipeline.json"),
    "deep_json": (lambda d: _pipeline(d, b"[" * 100_000 + b"]" * 100_000), "nested"),
    "float64": (lambda d: _weights_as(d, lambda t: t.double()), "float64"),
    "int8": (lambda d: _weights_as(d, lambda t: t.to(torch.int8)), "int8"),
    "nan": (lambda d: _weights_as(d, _nan_first), "not finite"),
    "huge_resize": (lambda d: _vision_pipeline_with(d, 60_000), "60000"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_hostile_file_is_refused_with_a_message(name: str, tmp_path: Path) -> None:
    make, message = BAD_FILES[name]
    bad = make(tmp_path / f"{name}.mentor")
    assert bad.stat().st_size < 2 * 2**20  # small on disk
    with pytest.raises(ValueError, match=message):
        Predictor.load(bad, trusted_modules=["tests"])


_MEASURE = """
import resource, sys
from mentor.inference.predictor import Predictor
Predictor.load(sys.argv[1], trusted_modules=["tests"])  # a good file: imports and warms up
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for file in sys.argv[2:]:
    try:
        Predictor.load(file, trusted_modules=["tests"])
    except ValueError:
        pass
    else:
        raise SystemExit(f"{file} loaded")
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
"""


@pytest.mark.slow
def test_refusing_hostile_files_stays_within_100_mb(tmp_path: Path) -> None:
    files = [str(make(tmp_path / f"{name}.mentor")) for name, (make, _) in BAD_FILES.items()]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-c", _MEASURE, str(FIXTURES / "vision_category.mentor"), *files]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) <= 100  # MB above the baseline's peak
