"""The course's from-scratch recurrent language models (vanilla RNN, GRU, LSTM)."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from mentor.core.spec import register_spec

CellKind = Literal["rnn", "gru", "lstm"]
RNNState = Tensor | tuple[Tensor, Tensor]
_CELLS = ("rnn", "gru", "lstm")


def _detach(state: RNNState) -> RNNState:
    if isinstance(state, tuple):
        return (state[0].detach(), state[1].detach())
    return state.detach()


def _make_rnn(cell: str, n_in: int, n_hid: int, n_layers: int, p: float) -> nn.RNNBase:
    if cell == "rnn":
        return nn.RNN(n_in, n_hid, n_layers, batch_first=True, dropout=p)
    if cell == "gru":
        return nn.GRU(n_in, n_hid, n_layers, batch_first=True, dropout=p)
    return nn.LSTM(n_in, n_hid, n_layers, batch_first=True, dropout=p)


class CharRNN(nn.Module):
    """A stateful recurrent language model: embedding -> RNN -> dropout -> linear.

    The state is kept between calls and detached after each (truncated back-propagation
    through time); it restarts after `reset()` or when the batch size changes.

    Args:
        vocab_sz: vocabulary size. n_hid=256: hidden size. n_layers=2: stacked layers.
        cell='lstm': 'lstm', 'gru' or 'rnn'. emb_sz=None: embedding size (64 when None).
        p=0.2: dropout before the output layer (and between layers).

    Example:
        >>> CharRNN(30, n_hid=16, cell="gru")(torch.zeros(2, 5).long()).shape
        torch.Size([2, 5, 30])
    """

    def __init__(
        self,
        vocab_sz: int,
        n_hid: int = 256,
        n_layers: int = 2,
        cell: CellKind = "lstm",
        emb_sz: int | None = None,
        p: float = 0.2,
    ) -> None:
        super().__init__()
        if cell not in _CELLS:
            raise ValueError(f"unknown cell {cell!r}; use one of {sorted(_CELLS)}")
        self.vocab_sz, self.n_hid, self.n_layers, self.cell = vocab_sz, n_hid, n_layers, cell
        self.emb_sz = 64 if emb_sz is None else emb_sz
        self.embedding = nn.Embedding(vocab_sz, self.emb_sz)
        self.rnn = _make_rnn(cell, self.emb_sz, n_hid, n_layers, p if n_layers > 1 else 0.0)
        self.dropout = nn.Dropout(p)
        self.head = nn.Linear(n_hid, vocab_sz)
        self.hidden: RNNState | None = None

    def _state_fits(self, bs: int, x: Tensor) -> bool:
        if self.hidden is None:
            return False
        first = self.hidden[0] if isinstance(self.hidden, tuple) else self.hidden
        return first.size(1) == bs and first.device == x.device

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2:
            raise ValueError(f"CharRNN expects token ids [bs, seq_len], got {tuple(x.shape)}")
        state = self.hidden if self._state_fits(x.size(0), x) else None
        output, new_state = self.rnn(self.embedding(x), state)
        self.hidden = _detach(new_state)
        return self.head(self.dropout(output))

    def reset(self) -> None:
        """Forget the hidden state: the next call starts from zeros."""
        self.hidden = None


@register_spec
def simple_rnn(
    vocab_sz: int, n_hid: int = 256, n_layers: int = 2, emb_sz: int | None = None, p: float = 0.2
) -> CharRNN:
    """A `CharRNN` with vanilla RNN cells (tanh); the arguments are those of `CharRNN`."""
    return CharRNN(vocab_sz, n_hid, n_layers, "rnn", emb_sz, p)


@register_spec
def simple_gru(
    vocab_sz: int, n_hid: int = 256, n_layers: int = 2, emb_sz: int | None = None, p: float = 0.2
) -> CharRNN:
    """A `CharRNN` with GRU cells; the arguments are those of `CharRNN`."""
    return CharRNN(vocab_sz, n_hid, n_layers, "gru", emb_sz, p)


@register_spec
def simple_lstm(
    vocab_sz: int, n_hid: int = 256, n_layers: int = 2, emb_sz: int | None = None, p: float = 0.2
) -> CharRNN:
    """A `CharRNN` with LSTM cells; the arguments are those of `CharRNN`."""
    return CharRNN(vocab_sz, n_hid, n_layers, "lstm", emb_sz, p)


__all__ = ["CharRNN", "simple_gru", "simple_lstm", "simple_rnn"]
