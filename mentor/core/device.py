"""Device helpers: pick the default device and move nested batches onto it."""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Mapping
from typing import Any

import torch


def default_device(use_cuda: bool | None = None) -> torch.device:
    """The device mentor trains on: CUDA when available (or asked for), then Apple's MPS,
    else the CPU.

    Args:
        use_cuda: None picks CUDA, then MPS, when present; True requires CUDA; False forces
            the CPU.
    """
    if use_cuda is False:
        return torch.device("cpu")
    if torch.cuda.is_available():  # under torchrun, this process's GPU
        local_rank = os.environ.get("LOCAL_RANK")
        return torch.device("cuda", int(local_rank)) if local_rank else torch.device("cuda")
    if use_cuda:
        raise RuntimeError("use_cuda=True but torch sees no CUDA device; pass use_cuda=None")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def uncompiled(module: torch.nn.Module) -> torch.nn.Module:
    """The module that `torch.compile` wrapped (whose weights have no `_orig_mod.` prefix),
    or `module` itself when it is not compiled."""
    if "torch._dynamo" not in sys.modules:  # nothing was compiled in this process
        return module
    from torch._dynamo.eval_frame import OptimizedModule

    return module._orig_mod if isinstance(module, OptimizedModule) else module


def keep_batch_memory() -> bool:
    """Ask glibc to keep freed batch-sized buffers instead of returning them to the system.

    Batch transforms, activations and a language model's logits (32 x 72 tokens x 8,000
    words: 74 MB) are large tensors allocated anew at every batch; by default glibc maps
    each one fresh and returns it when freed, so every batch faults its memory back in page
    by page. On 2 CPU cores that was ~0.3 s per pass over 2,000 images at 128 px, and a
    third of a small AWD-LSTM's step (213 -> 136 ms per batch of 32 x 72). Raising the
    mmap and trim thresholds keeps up to 256 MiB of freed memory for reuse. Process-wide
    and harmless for training; `Learner` and the image loaders call it on the CPU. Skipped
    off glibc and when `MENTOR_KEEP_BATCH_MEMORY=0`. Returns whether it was applied.
    """
    if os.environ.get("MENTOR_KEEP_BATCH_MEMORY", "1") == "0" or sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    return bool(mallopt(m_mmap_threshold, 128 << 20)) and bool(mallopt(m_trim_threshold, 256 << 20))


def is_main_process() -> bool:
    """True on the process that prints, plots and writes files: rank 0, or the only one."""
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def to_device(batch: Any, device: torch.device | str | None, non_blocking: bool = False) -> Any:
    """Move every tensor in a (nested) tuple, list or dict to `device`; the rest passes through."""
    if device is None:
        return batch
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, tuple | list):
        return type(batch)(to_device(b, device, non_blocking) for b in batch)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device, non_blocking) for k, v in batch.items()}
    return batch


def to_cpu(batch: Any) -> Any:
    """Move every tensor in a (nested) batch to the CPU, detached."""
    if isinstance(batch, torch.Tensor):
        return batch.detach().cpu()
    if isinstance(batch, tuple | list):
        return type(batch)(to_cpu(b) for b in batch)
    if isinstance(batch, Mapping):
        return {k: to_cpu(v) for k, v in batch.items()}
    return batch


def find_bs(batch: Any) -> int:
    """The batch size of a (nested) batch: the length of its first tensor."""
    if isinstance(batch, torch.Tensor):
        return batch.shape[0] if batch.ndim else 1
    if isinstance(batch, tuple | list) and batch:
        return find_bs(batch[0])
    if isinstance(batch, Mapping) and batch:
        return find_bs(next(iter(batch.values())))
    raise TypeError(f"cannot find a batch size in {type(batch).__name__}; batches hold tensors")


def split_batch(batch: Any, n_inp: int | None = None) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """`(x, y)` -> ((x,), (y,)); `(*xs, y)` -> (xs, (y,)); a lone tensor -> ((x,), ()).

    With `n_inp`, the first `n_inp` parts are inputs and the rest targets, so unlabelled
    batches of several inputs (tabular `(x_cat, x_cont)`) split right.
    """
    if isinstance(batch, tuple | list) and n_inp is not None:
        return tuple(batch[:n_inp]), tuple(batch[n_inp:])
    if isinstance(batch, tuple | list):
        if len(batch) == 1:
            return (batch[0],), ()
        return tuple(batch[:-1]), (batch[-1],)
    return (batch,), ()
