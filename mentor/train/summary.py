"""`learn.summary()`: a table of a model's layers with output shapes and parameter counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from mentor.core.device import split_batch

if TYPE_CHECKING:
    from mentor.train.learner import Learner


@dataclass
class LayerRow:
    """One row of the summary: a leaf module, its output shape and its parameters."""

    name: str
    kind: str
    output_shape: list[int]
    n_params: int
    trainable: bool


@dataclass
class ModelSummary:
    """The layers of a model as run on one batch, with totals; prints as a table."""

    rows: list[LayerRow] = field(default_factory=list)
    input_shape: list[int] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    frozen_layers: int = 0

    def __str__(self) -> str:
        width = max([len(f"{r.name} ({r.kind})") for r in self.rows] + [20])
        head = f"{'Layer (type)':<{width}}  {'Output Shape':<20}  {'Param #':>10}  Trainable"
        lines = [f"Input shape: {self.input_shape}", head, "=" * len(head)]
        for row in self.rows:
            label = f"{row.name} ({row.kind})"
            shape = str(row.output_shape)
            lines.append(f"{label:<{width}}  {shape:<20}  {row.n_params:>10,}  {row.trainable}")
        lines += [
            "=" * len(head),
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.total_params - self.trainable_params:,}",
            f"Frozen layers: {self.frozen_layers}",
        ]
        return "\n".join(lines)

    __repr__ = __str__


def model_summary(model: nn.Module, xb: tuple[Any, ...]) -> ModelSummary:
    """Run `model` on the inputs `xb` and tabulate every leaf module it called."""
    summary = ModelSummary(input_shape=_shape(xb[0]))
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    hooks = [m.register_forward_hook(_recorder(summary, n)) for n, m in leaves]
    training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(*xb)
    finally:
        model.train(training)
        for hook in hooks:
            hook.remove()
    params = list(model.parameters())
    summary.total_params = sum(p.numel() for p in params)
    summary.trainable_params = sum(p.numel() for p in params if p.requires_grad)
    summary.frozen_layers = sum(1 for r in summary.rows if r.n_params and not r.trainable)
    return summary


def learner_summary(learn: Learner) -> ModelSummary:
    """The summary of `learn.model` on one training batch."""
    xb, _ = split_batch(learn.dls.one_batch())
    summary = model_summary(learn.model, xb)
    print(summary)
    return summary


def _recorder(summary: ModelSummary, name: str) -> Any:
    def hook(module: nn.Module, _inputs: Any, output: Any) -> None:
        params = list(module.parameters(recurse=False))
        summary.rows.append(
            LayerRow(
                name=name,
                kind=type(module).__name__,
                output_shape=_shape(output),
                n_params=sum(p.numel() for p in params),
                trainable=any(p.requires_grad for p in params) if params else True,
            )
        )

    return hook


def _shape(value: Any) -> list[int]:
    if isinstance(value, torch.Tensor):
        return list(value.shape)
    if isinstance(value, tuple | list) and value:
        return _shape(value[0])
    return []
