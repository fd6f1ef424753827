"""Weight averaging: `EMA` (an exponential moving average of the weights, updated after every
optimizer step) and `SWA` (stochastic weight averaging: the plain mean of the weights at the
end of the last epochs, with batch-norm statistics recomputed for it).

Both keep their averages on the model's device and update them with fused in-place kernels
(`torch._foreach_lerp_`) whose weights are Python floats: no device-to-host sync. Their state
(the averaged tensors and the counters) goes into checkpoints, so a resumed fit is exact.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from mentor.core.device import split_batch
from mentor.core.seed import get_rng_state, set_rng_state
from mentor.train.callback import Callback, sweeping_lr


def averaged_entries(model: nn.Module, with_buffers: bool) -> dict[str, torch.Tensor]:
    """The model's tensors that an average covers, by `state_dict` name, detached (they share
    the model's memory): every parameter, trainable or frozen, and, when `with_buffers`, the
    floating-point buffers (batch-norm running statistics; `num_batches_tracked` is not)."""
    entries = {name: param.detach() for name, param in model.named_parameters()}
    if with_buffers:
        buffers = model.named_buffers()
        entries.update({name: buf.detach() for name, buf in buffers if buf.is_floating_point()})
    return entries


def _copy(targets: list[torch.Tensor], sources: Iterable[torch.Tensor]) -> None:
    with torch.no_grad():
        for target, source in zip(targets, sources):
            target.copy_(source)


def _load_tensors(
    owner: str, names: list[str], targets: list[torch.Tensor], saved: dict[str, torch.Tensor]
) -> None:
    """Copy `saved` (name -> tensor, from a checkpoint) into `targets`, checking the names."""
    if list(saved) != names:
        missing, extra = sorted(set(names) - set(saved)), sorted(set(saved) - set(names))
        raise ValueError(
            f"the {owner} state does not fit this model: missing {missing[:5]}, unexpected "
            f"{extra[:5]}; resume with the model the checkpoint was written with"
        )
    _copy(targets, saved.values())


class EMA(Callback):
    """Keeps an exponential moving average of the model's weights, updated after every
    optimizer step; validation and, at the end of the fit, the model use the average.

    The k-th update (k = 1, 2, ...) is `ema = d * ema + (1 - d) * param` with
    `d = min(decay, (1 + t) / (10 + t))` and `t = k - 1` when `warmup` (the average follows the
    early, fast-moving weights instead of the random start), else `d = decay`. The average
    starts from the model's weights at the start of each fit.

    Args:
        decay: the decay per step (0.999: the average spans about 1 / (1 - decay) = 1000 steps).
        warmup: use the warm-up formula above (default True).
        validate_with_ema: validate the averaged weights (default True). From the start of
            validation to the start of the next training phase the model then holds them, so
            what reads the model at the end of an epoch (`SaveModelCallback`, checkpoints)
            sees the weights the metrics measured; training goes on from the training weights.
        use_at_end: at the end of the fit the model keeps the averaged weights (default
            True), so that `learn.export()` and `learn.save()` write them.
        average_buffers: average the floating-point buffers (batch-norm running statistics)
            too, as timm's `ModelEmaV2` does (default True); False: the averaged weights run
            with the model's current buffers. Integer buffers are always the model's.

    All parameters are averaged, frozen ones too (they stay equal to the model's). The average
    has the parameters' dtype and device (under autocast the parameters stay float32). A
    learning-rate sweep (`lr_find`, which restores the model after) leaves it alone.

    Example:
        >>> ema = EMA(decay=0.999)
        >>> learn.fit_one_cycle(10, 1e-3, cbs=[ema])  # valid_loss is the averaged model's
        >>> learn.export()  # the averaged weights
    """

    order = 62  # before the trackers (65): SaveModelCallback saves and reloads the average

    def __init__(
        self,
        decay: float = 0.999,
        warmup: bool = True,
        validate_with_ema: bool = True,
        use_at_end: bool = True,
        average_buffers: bool = True,
    ) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(
                f"EMA(decay={decay!r}): use a value in [0, 1), e.g. 0.999 (the average spans "
                "about 1 / (1 - decay) steps)"
            )
        self.decay, self.warmup = decay, warmup
        self.validate_with_ema, self.use_at_end = validate_with_ema, use_at_end
        self.average_buffers = average_buffers
        self.n_updates = 0
        self.in_fit = self.active = False
        self.names: list[str] = []
        self.live: list[torch.Tensor] = []  # the model's tensors (shared memory)
        self.averaged: list[torch.Tensor] = []  # the average, in the order of `names`
        self.stash: list[torch.Tensor] | None = None  # training weights while swapped out

    def current_decay(self) -> float:
        """The `d` of the next update: `min(decay, (1 + t) / (10 + t))` with warm-up, t the
        number of updates so far; else `decay`."""
        t = self.n_updates
        return min(self.decay, (1 + t) / (10 + t)) if self.warmup else self.decay

    def _bind(self) -> None:
        entries = averaged_entries(self.learn.model, self.average_buffers)
        self.names, self.live = list(entries), list(entries.values())
        self.averaged = [tensor.clone() for tensor in self.live]
        self.n_updates, self.stash = 0, None

    def before_fit(self) -> None:
        """Start a new average from the model's weights (a checkpoint then loads its own)."""
        self.active = not sweeping_lr(self.learn.cbs)
        if not self.active:
            return
        self._swap_out()  # a fit that crashed while the model held the average
        self._bind()
        self.in_fit = True

    def after_step(self) -> None:
        """`ema = d * ema + (1 - d) * param`, on the device, without a sync."""
        if not self.active:
            return
        if self.averaged:  # a model without parameters has nothing to average
            with torch.no_grad():
                torch._foreach_lerp_(self.averaged, self.live, 1.0 - self.current_decay())
        self.n_updates += 1

    def before_train(self) -> None:
        """Put the training weights back after the previous epoch's validation."""
        if self.stash is not None:
            self._swap_out()

    def before_validate(self) -> None:
        """Put the averaged weights in the model (when `validate_with_ema`)."""
        if self.validate_with_ema and self.averaged and self.stash is None:
            self.stash = [tensor.clone() for tensor in self.live]
            _copy(self.live, self.averaged)

    def after_validate(self) -> None:
        """Outside a fit (`learn.validate()`), put the model's weights back at once."""
        if self.stash is not None and not self.in_fit:
            self._swap_out()

    def after_fit(self) -> None:
        """Leave the averaged weights in the model (`use_at_end`), or the training ones."""
        if not self.active:
            return
        self.in_fit = self.active = False
        if self.use_at_end:
            _copy(self.live, self.averaged)
            self.stash = None
        elif self.stash is not None:
            self._swap_out()

    def _swap_out(self) -> None:
        if self.stash is not None:
            _copy(self.live, self.stash)
            self.stash = None

    def averaged_weights(self) -> dict[str, torch.Tensor]:
        """The model's `state_dict` with the averaged tensors in place of its own (copies):
        `model.load_state_dict(ema.averaged_weights())` gives the averaged model."""
        state = {name: value.clone() for name, value in self.learn.model.state_dict().items()}
        state.update({name: avg.clone() for name, avg in zip(self.names, self.averaged)})
        return state

    def state_dict(self) -> dict[str, Any]:
        """The number of updates and the averaged tensors; while the model holds the average
        (between validation and the next epoch), the training weights too."""
        state: dict[str, Any] = {
            "n_updates": self.n_updates,
            "averaged": dict(zip(self.names, self.averaged)),
        }
        if self.stash is not None:
            state["training"] = dict(zip(self.names, self.stash))
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned (the model's own weights load separately)."""
        if not self.names:
            self._bind()
        _load_tensors("EMA", self.names, self.averaged, state["averaged"])
        self.n_updates = int(state["n_updates"])
        self.stash = None
        if "training" in state:
            self.stash = [tensor.clone() for tensor in self.live]
            _load_tensors("EMA", self.names, self.stash, state["training"])


class SWA(Callback):
    """Stochastic weight averaging: the mean of the weights at the end of each epoch's
    training from `start_epoch` on (equal weights); at the end of the fit the model takes the
    mean and its batch-norm running statistics are recomputed with one pass over the training
    data (`update_bn`).

    Args:
        start_epoch: the first epoch averaged; None: the last quarter of the fit,
            `n_epoch - ceil(n_epoch / 4)` (the last 3 of 10 epochs). Pair it with a high
            constant or cyclical learning rate over those epochs (`learn.fit`).
        update_bn: recompute the batch-norm statistics for the averaged weights (default True).

    Runs after `SaveModelCallback` at the end of the fit: the average replaces the best model
    that one loads. Under data parallelism each process recomputes the statistics on its shard.
    A learning-rate sweep (`lr_find`) leaves it alone.

    Example:
        >>> learn.fit(20, 1e-2, cbs=[SWA(start_epoch=15)])  # epochs 15-19 averaged
    """

    order = 67  # after the trackers (65) at the end of the fit; before checkpoints (70)

    def __init__(self, start_epoch: int | None = None, update_bn: bool = True) -> None:
        super().__init__()
        if start_epoch is not None and start_epoch < 0:
            raise ValueError(f"SWA(start_epoch={start_epoch}): use an epoch >= 0, or None")
        self.start_epoch, self.update_bn = start_epoch, update_bn
        self.first_epoch = 0  # start_epoch, resolved for this fit
        self.n_averaged = 0
        self.active = False
        self.names: list[str] = []
        self.live: list[torch.Tensor] = []
        self.averaged: list[torch.Tensor] = []

    def before_fit(self) -> None:
        """Resolve the first averaged epoch and forget any previous average."""
        self.active = not sweeping_lr(self.learn.cbs)
        if not self.active:
            return
        n_epoch = self.learn.n_epoch
        first = n_epoch - math.ceil(n_epoch / 4) if self.start_epoch is None else self.start_epoch
        if n_epoch and first >= n_epoch:
            raise ValueError(
                f"SWA(start_epoch={first}), but the fit has {n_epoch} epochs (0 to "
                f"{n_epoch - 1}); pass a start_epoch below {n_epoch}, or None for the last quarter"
            )
        self.first_epoch = first
        entries = averaged_entries(self.learn.model, with_buffers=False)
        self.names, self.live = list(entries), list(entries.values())
        self.averaged, self.n_averaged = [], 0

    def after_train(self) -> None:
        """Add this epoch's weights to the mean: `avg += (param - avg) / (n + 1)`."""
        if not self.active or self.learn.epoch < self.first_epoch:
            return
        with torch.no_grad():
            if self.n_averaged == 0:
                self.averaged = [tensor.clone() for tensor in self.live]
            else:
                torch._foreach_lerp_(self.averaged, self.live, 1.0 / (self.n_averaged + 1))
        self.n_averaged += 1

    def after_fit(self) -> None:
        """Put the mean in the model and recompute its batch-norm statistics."""
        if not self.active:
            return
        self.active = False
        if not self.n_averaged:
            warnings.warn(
                f"SWA averaged no epoch: the fit ended before epoch {self.first_epoch}; the "
                "model keeps its weights",
                stacklevel=2,
            )
            return
        _copy(self.live, self.averaged)
        if self.update_bn:
            rng = get_rng_state()  # the pass shuffles: later draws stay as without it
            update_bn(self.learn.model, self.learn.dls.train, self.learn.autocast)
            set_rng_state(rng)

    def state_dict(self) -> dict[str, Any]:
        """The number of epochs averaged and the mean so far."""
        return {"n_averaged": self.n_averaged, "averaged": dict(zip(self.names, self.averaged))}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned (after `before_fit`, as resuming does)."""
        if not self.names:
            entries = averaged_entries(self.learn.model, with_buffers=False)
            self.names, self.live = list(entries), list(entries.values())
        self.n_averaged = int(state["n_averaged"])
        self.averaged = [tensor.clone() for tensor in self.live] if self.n_averaged else []
        if self.n_averaged:
            _load_tensors("SWA", self.names, self.averaged, state["averaged"])


def update_bn(
    model: nn.Module,
    batches: Iterable[Any],
    autocast: contextlib.AbstractContextManager[Any] | None = None,
) -> bool:
    """Recompute the running statistics of the model's batch-norm layers with one pass over
    `batches` (`(x, y)` or `(*xs, y)`; the inputs go to the model) in train mode, without
    gradients: the statistics are reset and averaged over the batches (`momentum=None`), then
    each layer's momentum and the model's mode are restored. Returns whether the model has
    batch-norm layers (without any, nothing runs).

    Example:
        >>> update_bn(learn.model, learn.dls.train)
    """
    norms = [
        module
        for module in model.modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats
    ]
    if not norms:
        return False
    momenta = [norm.momentum for norm in norms]
    was_training = model.training
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    try:
        with torch.no_grad():
            for batch in batches:
                inputs, _ = split_batch(batch)
                with autocast or contextlib.nullcontext():
                    model(*inputs)
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        model.train(was_training)
    return True
