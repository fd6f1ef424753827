"""`export_onnx`: a vision or tabular learner's model as an ONNX file, checked with onnxruntime.

The graph holds the model only: what turns a raw item into model inputs is not in it, and
must run before the graph, as it does in the learner's data.

- Vision: one input `image`, float32 `[batch, C, H, W]`, what the model saw in training:
  resized or cropped to the export batch's `H x W` (item transforms), scaled to `[0, 1]`
  (`IntToFloat`) and normalized with the data's per-channel mean and std. `Normalize` is a
  batch transform of the data (`vision_learner` adds it with the pretrained weights' stats),
  not part of the model, so it is NOT in the graph: resize, divide by 255, subtract the
  mean and divide by the std yourself.
- Tabular: inputs `cat`, int64 `[batch, n_cat]` category codes (0 = unknown or missing), in
  the order of `dls.preprocessor.out_cat_names` (with FillMissing's `<col>_na` columns), and
  `cont`, float32 `[batch, n_cont]` in the order of `dls.preprocessor.cont_names`. The procs
  (Categorify, FillMissing, Normalize) run on the data frame and are NOT in the graph:
  prepare rows with `dls.preprocessor.transform(df)` (its `cats` and `conts`). The model's
  own BatchNorm on the continuous columns is in the graph. An input with no columns (no
  categorical or no continuous variables) is left out of the graph.

The output is `output`, `[batch, ...]` raw model outputs (no softmax or sigmoid). Only the
batch dimension is dynamic; the other sizes are those of the export batch.

Example:
    >>> result = learn.export_onnx("pets.onnx")
    >>> result.path, result.max_abs_diff    # max difference to PyTorch on one batch
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mentor.core.device import split_batch
from mentor.data.loaders import DataLoaders

SUFFIX = ".onnx"
INPUT_NAMES = {"vision": ("image",), "tabular": ("cat", "cont")}
OUTPUT_NAME = "output"


@dataclass(frozen=True)
class OnnxExport:
    """What `export_onnx` wrote.

    Args:
        path: the `.onnx` file.
        max_abs_diff: the largest absolute difference between onnxruntime's and PyTorch's
            outputs on one batch of the data; `None` when not checked (`check=False`, or
            onnxruntime is not installed).
    """

    path: Path
    max_abs_diff: float | None


def export_onnx(
    learn: Any,
    path: str | Path,
    opset: int | None = None,
    check: bool = True,
    atol: float = 1e-4,
) -> OnnxExport:
    """Write `learn`'s model to `path` as ONNX (`.onnx` added when missing), batch size dynamic.

    One validation batch (the training one when there is no validation data) is the example
    input. The learner's model is left as it was (device, dtype and train/eval mode). See the
    module docstring for the graph's inputs and the preprocessing that is not in it.

    Args:
        learn: a `Learner` on image DataBlock data (`vision_learner`, or your own model)
            or on `TabularDataLoaders` (`tabular_learner`).
        path: the file to write.
        opset: the ONNX opset version (None: the exporter's default).
        check: run the file with onnxruntime, when installed, on the example batch and
            compare with PyTorch's outputs (True).
        atol: the largest absolute difference the check accepts (1e-4).

    Raises:
        ImportError: the `onnx` package is missing.
        ValueError: the learner is not a vision or tabular one, or the check failed.
    """
    _require_onnx()
    application = learner_application(learn.dls)
    names = INPUT_NAMES[application]
    file = Path(path)
    if file.suffix != SUFFIX:
        file = file.with_name(file.name + SUFFIX)
    file.parent.mkdir(parents=True, exist_ok=True)
    inputs = example_inputs(learn.dls, application)
    with _eval_on_cpu(learn.model) as model:
        _torch_export(model, inputs, names, file, opset)
        max_abs_diff = _check(model, inputs, names, file, atol) if check else None
    return OnnxExport(file, max_abs_diff)


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401  (the exporter needs it to write the file)
    except ImportError as err:
        raise ImportError(
            "ONNX export needs the 'onnx' package, which is not installed; install it with "
            "`pip install 'mentor[onnx]'` (onnx, plus onnxruntime for the check)"
        ) from err


def learner_application(dls: DataLoaders) -> str:
    """'vision' or 'tabular' for data ONNX export covers; a `ValueError` for any other.

    Args:
        dls: a learner's data: image DataBlock loaders with one image input, or
            `TabularDataLoaders`.
    """
    application = dls.application
    if application == "tabular" or (application == "vision" and dls.n_inp == 1):
        return application
    raise ValueError(
        f"ONNX export covers vision and tabular models (one image input, or "
        f"TabularDataLoaders); this learner's application is {application!r} with "
        f"{dls.n_inp} input(s) (data of type {type(dls).__name__}). Use `learn.export(path)` "
        "to write a .mentor file instead"
    )


def example_inputs(dls: Any, application: str) -> tuple[Tensor, ...]:
    """The model inputs of one validation batch (or training batch), on the CPU.

    Args:
        dls: the learner's data. application: 'vision' or 'tabular'.
    """
    split = "valid" if dls.valid is not None else "train"
    n_inp = len(INPUT_NAMES[application])
    xs, _ = split_batch(dls.one_batch(split), n_inp)
    out = []
    for x in xs:
        if not isinstance(x, Tensor):
            raise ValueError(f"ONNX export needs tensor inputs; the batch holds a {type(x)}")
        x = x.detach().cpu()
        out.append(x.float() if x.is_floating_point() else x)
    return tuple(out)


@contextlib.contextmanager
def _eval_on_cpu(model: nn.Module) -> Iterator[nn.Module]:
    """`model` in eval mode, on the CPU, in float32; the learner's model is left as it was."""
    if isinstance(model, nn.DataParallel | nn.parallel.DistributedDataParallel):
        model = model.module
    tensors = [*model.parameters(), *model.buffers()]
    on_cpu = all(t.device.type == "cpu" for t in tensors)
    float32 = all(t.dtype == torch.float32 for t in tensors if t.is_floating_point())
    if not (on_cpu and float32):  # a copy, so the learner's model stays where it is
        copied = copy.deepcopy(model).to(device="cpu", dtype=torch.float32)
        yield copied.eval()
        return
    was_training = model.training
    try:
        yield model.eval()
    finally:
        model.train(was_training)


def _torch_export(
    model: nn.Module,
    inputs: tuple[Tensor, ...],
    names: tuple[str, ...],
    file: Path,
    opset: int | None,
) -> None:
    # The TorchScript exporter (`dynamo=False`): it needs only the `onnx` package and works
    # offline. The dynamo exporter (torch's default since 2.9) needs `onnxscript` and
    # `onnx-ir` too; on torch 2.13 both give the same graph outputs for these models, but
    # the TorchScript one exports a resnet18 several times faster (0.5 s vs 4 s here) and
    # prints no progress.
    # torch marks it deprecated; its warnings are silenced here since the choice is deliberate.
    # TabularModel's column-count check traces to a constant, rightly (the count is fixed);
    # other tracer warnings (data-dependent branches in your own model) are left to show.
    with warnings.catch_warnings():
        for message in ("You are using the legacy TorchScript", "The feature will be removed"):
            warnings.filterwarnings("ignore", message, DeprecationWarning)
        warnings.filterwarnings(
            "ignore", category=torch.jit.TracerWarning, module=r"mentor\.tabular\.model"
        )
        torch.onnx.export(
            model,
            inputs,
            str(file),
            dynamo=False,
            input_names=list(names),
            output_names=[OUTPUT_NAME],
            opset_version=opset,
            dynamic_axes={name: {0: "batch"} for name in (*names, OUTPUT_NAME)},
        )


def onnx_feeds(session: Any, inputs: tuple[Tensor, ...], names: tuple[str, ...]) -> dict[str, Any]:
    """onnxruntime's input dict: the named inputs the graph kept (unused ones are pruned).

    Args:
        session: an `onnxruntime.InferenceSession`. inputs: the tensors, in `names` order.
        names: their input names.
    """
    kept = {i.name for i in session.get_inputs()}
    return {name: x.numpy() for name, x in zip(names, inputs) if name in kept}


def _check(
    model: nn.Module, inputs: tuple[Tensor, ...], names: tuple[str, ...], file: Path, atol: float
) -> float | None:
    """The max abs difference between onnxruntime and PyTorch; None without onnxruntime."""
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(str(file), providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT_NAME], onnx_feeds(session, inputs, names))[0]
    with torch.no_grad():
        expected = model(*inputs)
    if not isinstance(expected, Tensor):
        raise ValueError(
            f"ONNX export checks models that return one tensor; this one returned a "
            f"{type(expected).__name__}; pass check=False to skip the check"
        )
    diff = float((torch.from_numpy(got).double() - expected.double()).abs().max())
    if not diff <= atol:  # `not <=` so that a NaN difference fails too
        file.unlink()
        raise ValueError(
            f"the ONNX model's outputs differ from PyTorch's by up to {diff:.3g} (more than "
            f"atol={atol:g}) on one batch; {file} was removed. Try another opset, or raise "
            "atol if the difference is acceptable"
        )
    return diff
