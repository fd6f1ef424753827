"""The few `torch.distributed` calls the rest of mentor makes: which process this is, and
the once-per-epoch exchanges (sums of metrics, gathered predictions, a broadcast value).

Process-group set-up, the model wrapper and the launcher live in `mentor.distributed`; these
helpers only run while a process group exists, and are never called per batch.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def launched_world_size() -> int:
    """The number of processes `torchrun` (or a launcher that sets the same variables, such
    as Slurm through `torchrun`) started: `WORLD_SIZE`, 1 when it is not set."""
    value = os.environ.get("WORLD_SIZE", "1")
    try:
        return max(int(value), 1)
    except ValueError:
        raise ValueError(
            f"WORLD_SIZE={value!r} is not a number of processes; unset it or start the run "
            "with torchrun, which sets it"
        ) from None


def group_ready() -> bool:
    """Whether a default process group exists in this process."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank in the default group (0 without one)."""
    return dist.get_rank() if group_ready() else 0


def world_size() -> int:
    """The number of processes in the default group (1 without one)."""
    return dist.get_world_size() if group_ready() else 1


def barrier() -> None:
    """Wait for every rank (a no-op without a process group)."""
    if group_ready():
        dist.barrier()


def gather_objects(value: Any) -> list[Any]:
    """Every rank's `value` (tensors are sent from the CPU), in rank order, on every rank."""
    if not group_ready():
        return [value]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, _to_cpu(value))
    return out


def broadcast_object(value: Any, src: int = 0) -> Any:
    """Rank `src`'s `value` on every rank (the others' `value` is ignored)."""
    if not group_ready():
        return value
    box = [_to_cpu(value) if dist.get_rank() == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def sum_totals(parts: list[list[torch.Tensor]], device: torch.device) -> list[torch.Tensor]:
    """The element-wise sum over ranks of lists of tensors gathered by `gather_objects`;
    empty lists (a rank that saw no batch) are skipped. Every rank adds in rank order, so
    every rank gets the same bits."""
    filled = [p for p in parts if p]
    if not filled:
        return []
    return [torch.stack([p[i] for p in filled]).sum(0).to(device) for i in range(len(filled[0]))]


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a NamedTuple
        return type(value)(*[_to_cpu(v) for v in value])
    if isinstance(value, list | tuple):
        return type(value)([_to_cpu(v) for v in value])
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    return value
