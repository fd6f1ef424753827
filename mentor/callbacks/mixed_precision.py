"""Mixed precision: bfloat16 autocast (CPU and CUDA), float16 with a gradient scaler (CUDA)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import torch

from mentor.train.callback import Callback

if TYPE_CHECKING:
    from mentor.train.learner import Learner


class MixedPrecision(Callback):
    """Runs the forward pass and the loss under `torch.autocast(dtype)`.

    With float16 it also scales the loss (a `GradScaler`) so small gradients don't underflow,
    skipping steps whose gradients overflowed; bfloat16 has float32's range and needs none.

    Args:
        dtype: `torch.bfloat16` (default; CPU and CUDA) or `torch.float16` (CUDA only).
    """

    order = 5

    def __init__(self, dtype: torch.dtype = torch.bfloat16) -> None:
        super().__init__()
        if dtype not in (torch.bfloat16, torch.float16):
            raise ValueError(f"mixed precision takes torch.bfloat16 or torch.float16, got {dtype}")
        self.dtype = dtype
        self.scaler: torch.amp.GradScaler | None = None

    def before_fit(self) -> None:
        """Switch the learner's autocast (and gradient scaler) on for this fit."""
        device_type = self.learn.dls.device.type
        check_precision(self.learn.dls.device, self.dtype)
        self.learn.autocast = torch.autocast(device_type, dtype=self.dtype)
        if self.dtype == torch.float16:
            self.scaler = self.scaler or torch.amp.GradScaler("cuda")
            self.learn.scaler = self.scaler

    def after_fit(self) -> None:
        """Back to full precision outside of fits (the scaler keeps its scale for the next)."""
        reset_precision(self.learn)

    def state_dict(self) -> dict[str, Any]:
        """The loss scale, so a resumed fit continues with it."""
        return {"scaler": self.scaler.state_dict()} if self.scaler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the loss scale."""
        if "scaler" in state:
            self.scaler = torch.amp.GradScaler("cuda")
            self.scaler.load_state_dict(state["scaler"])


def check_precision(device: torch.device, dtype: torch.dtype) -> None:
    """Refuse, with what to use instead, a precision that `device` cannot train in: float16
    outside CUDA (no gradient scaler elsewhere), bfloat16 on a GPU without it (before Ampere)."""
    if dtype == torch.float16 and device.type != "cuda":
        raise ValueError(
            f"float16 training needs a CUDA device, this learner runs on {device.type!r}; "
            "use learn.to_bf16() instead"
        )
    if dtype == torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        name = torch.cuda.get_device_name(device)
        raise ValueError(
            f"bfloat16 training needs a GPU that supports it (Ampere or newer); {name!r} does "
            "not: use learn.to_fp16() instead"
        )


def reset_precision(learn: Learner) -> None:
    """Full precision: no autocast, no loss scaling."""
    learn.autocast = contextlib.nullcontext()
    learn.scaler = torch.amp.GradScaler("cuda", enabled=False)


def set_precision(learn: Learner, dtype: torch.dtype | None) -> Learner:
    """Replace the learner's precision setting: a `MixedPrecision(dtype)` or none (float32)."""
    if dtype is not None:
        check_precision(learn.dls.device, dtype)
    learn.remove_cbs([cb for cb in learn.cbs if isinstance(cb, MixedPrecision)])
    reset_precision(learn)
    if dtype is not None:
        learn.add_cbs([MixedPrecision(dtype)])
    return learn
