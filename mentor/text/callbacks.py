"""Callbacks the text learners carry: resetting a stateful model, and AWD-LSTM's activation
regularization (AR) and temporal activation regularization (TAR)."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from mentor.text.models.awd_lstm import AWD_LSTM
from mentor.text.models.char_rnn import CharRNN
from mentor.text.models.core import Resettable
from mentor.train.callback import Callback


class ModelResetter(Callback):
    """Reset the model's recurrent state at the start of training, of validation and of
    every fit, so no state leaks from one text stream into another. A checkpoint keeps the
    state (a language model carries it from batch to batch), so a mid-epoch resume goes on
    from the same hidden state."""

    def state_dict(self) -> dict[str, object]:
        """The hidden state of each recurrent module of the model, by module name."""
        return {name: module.hidden for name, module in _recurrent(self.learn.model)}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Put the saved hidden states back."""
        for name, module in _recurrent(self.learn.model):
            if name in state:
                module.hidden = state[name]  # type: ignore[assignment]

    def before_train(self) -> None:
        if not self.learn.skip_batches:  # a resumed epoch goes on from the saved state
            _reset(self.learn.model)

    def before_validate(self) -> None:
        _reset(self.learn.model)

    def after_fit(self) -> None:
        _reset(self.learn.model)


class RNNRegularizer(Callback):
    """AR and TAR of AWD-LSTM (Merity et al.), added to the training loss.

    AR, `alpha * mean(dropped ** 2)`, keeps the last layer's activations (after the output
    dropout) small; TAR, `beta * mean((raw[t + 1] - raw[t]) ** 2)`, keeps them from jumping
    between time steps (before dropout). Only non-padding positions count. The activations
    are caught with forward hooks on two modules the learner names: `raw_module` returns the
    last layer's output (`[bs, sl, n]`, or the `(outputs, mask, lengths)` of a
    `SentenceEncoder`), `dropped_module` the same after dropout (default: `raw_module`'s).

    Args:
        raw_module, dropped_module: the modules to watch. alpha: AR weight (2).
        beta: TAR weight (1).
    """

    order = 5  # before the loss is read by the recorder and before gradient clipping
    run_valid = False

    def __init__(
        self,
        raw_module: nn.Module,
        dropped_module: nn.Module | None = None,
        alpha: float = 2.0,
        beta: float = 1.0,
    ) -> None:
        super().__init__()
        self.raw_module, self.dropped_module = raw_module, dropped_module
        self.alpha, self.beta = alpha, beta
        self.raw: tuple[Tensor, Tensor | None] | None = None
        self.dropped: tuple[Tensor, Tensor | None] | None = None
        self._handles: list[Any] = []

    def before_fit(self) -> None:
        self._handles = [self.raw_module.register_forward_hook(self._keep_raw)]
        if self.dropped_module is not None:
            self._handles.append(self.dropped_module.register_forward_hook(self._keep_dropped))

    def after_fit(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles, self.raw, self.dropped = [], None, None

    def _keep_raw(self, module: nn.Module, inputs: Any, output: Any) -> None:
        self.raw = _with_mask(output) if module.training else None

    def _keep_dropped(self, module: nn.Module, inputs: Any, output: Any) -> None:
        self.dropped = _with_mask(output) if module.training else None

    def after_loss(self) -> None:
        if not self.learn.training or self.raw is None:
            return
        raw, mask = self.raw
        dropped = self.dropped[0] if self.dropped is not None else raw
        extra = raw.new_zeros(())
        if self.alpha:
            extra = extra + self.alpha * _masked_mean(dropped.float().pow(2), mask)
        if self.beta and raw.shape[1] > 1:
            step = (raw[:, 1:] - raw[:, :-1]).float().pow(2)
            pair_mask = None if mask is None else mask[:, 1:] & mask[:, :-1]
            extra = extra + self.beta * _masked_mean(step, pair_mask)
        self.learn.loss_grad = self.learn.loss_grad + extra
        self.raw = self.dropped = None


def _with_mask(output: Any) -> tuple[Tensor, Tensor | None]:
    """The activations `[bs, sl, n]` and, for a SentenceEncoder, its padding mask."""
    if isinstance(output, tuple):
        return output[0], output[1]
    return output, None


def _masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return values.mean()
    weights = mask.unsqueeze(-1).to(values.dtype)
    return (values * weights).sum() / (weights.sum() * values.shape[-1]).clamp_min(1.0)


def _recurrent(model: nn.Module) -> list[tuple[str, AWD_LSTM | CharRNN]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, AWD_LSTM | CharRNN)]


def _reset(model: nn.Module) -> None:
    target = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    if isinstance(target, Resettable):
        target.reset()
