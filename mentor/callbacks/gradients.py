"""Gradient callbacks: clipping by norm, and accumulation over several batches."""

from __future__ import annotations

import torch

from mentor.train.callback import Callback, CancelBatch


class GradientClip(Callback):
    """Clips the gradients' global norm to `max_norm` before each step.

    Args:
        max_norm: the largest allowed norm (default 1.0). norm_type: the p of the p-norm (2).
    """

    order = 20

    def __init__(self, max_norm: float = 1.0, norm_type: float = 2.0) -> None:
        super().__init__()
        self.max_norm, self.norm_type = max_norm, norm_type

    def before_step(self) -> None:
        """Unscale (under float16 loss scaling) and clip."""
        learn = self.learn
        learn.scaler.unscale_(learn.opt)
        params = [p for group in learn.opt.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, self.max_norm, self.norm_type, foreach=True)


class GradientAccumulation(Callback):
    """Accumulates gradients over `n_acc` batches and steps once: the step of a batch
    `n_acc` times larger, for models that don't fit a large batch in memory.

    Each loss is divided by the size of its group of batches, so the accumulated gradient is
    their mean; a smaller group at the end of an epoch steps too, with its own mean. With
    checkpoints every N batches, make N a multiple of `n_acc` so no group is split.

    Args:
        n_acc: the number of batches per optimizer step (default 2).
    """

    order = 15

    def __init__(self, n_acc: int = 2) -> None:
        super().__init__()
        if n_acc < 1:
            raise ValueError(f"n_acc must be at least 1, got {n_acc}")
        self.n_acc = n_acc

    def before_backward(self) -> None:
        """Scale the loss so the group's gradients sum to their mean."""
        learn = self.learn
        group_start = learn.iter - learn.iter % self.n_acc
        left = learn.n_iter - group_start if learn.n_iter else self.n_acc
        learn.loss_grad = learn.loss_grad / min(self.n_acc, left)

    def steps_now(self) -> bool:
        """Whether the current batch completes a group (the optimizer steps after it)."""
        learn = self.learn
        last_batch = bool(learn.n_iter) and learn.iter + 1 == learn.n_iter
        return not (learn.iter + 1) % self.n_acc or last_batch

    def before_step(self) -> None:
        """Skip the step (and the zeroing of gradients) until the group is complete."""
        if not self.steps_now():
            raise CancelBatch()
