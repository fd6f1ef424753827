"""AWD-LSTM (Merity et al., 2017): a stateful LSTM encoder with four kinds of dropout.

Layout of the parameters (the names of a fastai AWD-LSTM, so its state dict maps 1:1)::

    encoder.weight                     [vocab_sz, emb_sz]  the embedding
    encoder_dp.emb.weight              the same tensor again (EmbeddingDropout wraps it)
    rnns.{i}.weight_hh_l0_raw          [4 * n_out_i, n_out_i]  hidden-to-hidden, before dropout
    rnns.{i}.module.weight_ih_l0       [4 * n_out_i, n_in_i]
    rnns.{i}.module.bias_ih_l0         [4 * n_out_i]
    rnns.{i}.module.bias_hh_l0         [4 * n_out_i]
    (bidirectional: `*_l0_reverse` keys as well, `n_out_i` halved per direction)

where layer `i` reads `emb_sz` (i == 0) or `n_hid` features and writes `n_hid`, except the
last layer, which writes `emb_sz` so that a decoder can share the embedding's weight.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

LSTMState = list[tuple[Tensor, Tensor]]

awd_lstm_lm_config: dict[str, float | int | bool] = dict(
    emb_sz=400, n_hid=1152, n_layers=3, pad_token=1, bidir=False, output_p=0.1,
    hidden_p=0.15, input_p=0.25, embed_p=0.02, weight_p=0.2, tie_weights=True, out_bias=True,
)  # fmt: skip
awd_lstm_clas_config: dict[str, float | int | bool] = dict(
    emb_sz=400, n_hid=1152, n_layers=3, pad_token=1, bidir=False, output_p=0.4,
    hidden_p=0.3, input_p=0.4, embed_p=0.05, weight_p=0.5,
)  # fmt: skip
# Sizes to merge over a config: 'default' is the paper's model, 'small' the CPU-sized one
# (its language model with 8000 words: about 140 ms forward + backward per batch of 32 x 72
# tokens on two CPU cores, with the Learner's `keep_batch_memory`), 'tiny' for tests and demos.
AWD_LSTM_SIZES: dict[str, dict[str, int]] = {
    "default": dict(emb_sz=400, n_hid=1152, n_layers=3),
    "small": dict(emb_sz=128, n_hid=384, n_layers=2),
    "tiny": dict(emb_sz=64, n_hid=128, n_layers=2),
}


def _check_p(name: str, p: float) -> float:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {p!r}; it is a dropout probability")
    return float(p)


class RNNDropout(nn.Module):
    """Locked (variational) dropout: one mask per sequence, shared by all its time steps.

    Args:
        p: probability of zeroing a feature (default 0.5); identity in eval mode or at 0.

    Example:
        >>> RNNDropout(0.3)(torch.ones(2, 5, 4)).shape
        torch.Size([2, 5, 4])
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = _check_p("p", p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.dim() != 3:
            raise ValueError(f"RNNDropout expects [bs, seq_len, features], got {tuple(x.shape)}")
        mask = x.new_empty(x.size(0), 1, x.size(2)).bernoulli_(1 - self.p)
        return x * mask / (1 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class EmbeddingDropout(nn.Module):
    """Dropout of whole words: zeroes rows of the embedding matrix (in training only).

    Every occurrence of a dropped word in the batch gets a zero vector; the kept rows are
    scaled by `1 / (1 - embed_p)`.

    Args:
        embedding: the embedding to wrap (shared, not copied). embed_p: row drop probability.
    """

    def __init__(self, embedding: nn.Embedding, embed_p: float) -> None:
        super().__init__()
        self.emb = embedding
        self.embed_p = _check_p("embed_p", embed_p)

    def forward(self, words: Tensor) -> Tensor:
        weight = self.emb.weight
        if self.training and self.embed_p > 0.0:
            mask = weight.new_empty(weight.size(0), 1).bernoulli_(1 - self.embed_p)
            weight = weight * mask / (1 - self.embed_p)
        return F.embedding(
            words, weight, self.emb.padding_idx, self.emb.max_norm, self.emb.norm_type,
            self.emb.scale_grad_by_freq, self.emb.sparse,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return f"embed_p={self.embed_p}"


class WeightDropout(nn.Module):
    """DropConnect on an LSTM's hidden-to-hidden weights (a new mask on every forward).

    The raw weight lives here as the parameter `{name}_raw` and is removed from the
    wrapped LSTM's parameters; each call runs the LSTM through `torch.func.functional_call`
    with the dropped copy (training) or the raw weight itself (eval), so nothing is swapped
    into the module's parameters and the state dict keys never change. Between calls the
    LSTM's slot holds a detached view of the raw weight (a plain attribute, not a
    parameter): the LSTM never keeps a dropped tensor, or its graph, alive, and the model
    can be deep-copied.

    Args:
        module: the `nn.LSTM` to wrap. weight_p: probability of dropping a weight.
        layer_names: the weights to drop (default `("weight_hh_l0",)`).
    """

    def __init__(
        self, module: nn.LSTM, weight_p: float, layer_names: Sequence[str] = ("weight_hh_l0",)
    ) -> None:
        super().__init__()
        self.module = module
        self.weight_p = _check_p("weight_p", weight_p)
        self.layer_names = tuple(layer_names)
        own = dict(module.named_parameters(recurse=False))
        for name in self.layer_names:
            if name not in own:
                raise ValueError(
                    f"the module has no weight {name!r} to drop; its weights are {sorted(own)}"
                )
            delattr(module, name)
            raw = nn.Parameter(own[name].detach().clone())
            self.register_parameter(f"{name}_raw", raw)
            setattr(module, name, raw.detach())  # placeholder, see the class docstring

    def raw_weight(self, name: str) -> nn.Parameter:
        """The raw (undropped) parameter for the wrapped weight `name`."""
        return self.get_parameter(f"{name}_raw")

    def forward(
        self, x: Tensor, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        weights: dict[str, Tensor] = {}
        for name in self.layer_names:
            raw = self.raw_weight(name)
            # refresh the placeholder (the raw weight may have moved device), which
            # functional_call puts back when it returns
            setattr(self.module, name, raw.detach())
            # a view, not the Parameter itself, which setattr would register on the LSTM
            dropped = F.dropout(raw, self.weight_p) if self.training else raw.view_as(raw)
            weights[name] = dropped
        output, new_state = functional_call(self.module, weights, (x, state))
        return output, new_state

    def extra_repr(self) -> str:
        return f"weight_p={self.weight_p}, layer_names={self.layer_names}"


class AWD_LSTM(nn.Module):  # noqa: N801 - the name users know from the paper and fastai
    """The AWD-LSTM encoder: embedding -> dropouts -> stacked LSTMs, keeping its state.

    The hidden state of each layer is kept in `self.hidden` between calls (truncated
    back-propagation through time): it starts at zeros, restarts when the batch size
    changes or after `reset()`, and is detached after every call so the graph never grows
    across batches. See the module docstring for the parameter names.

    Args:
        vocab_sz: vocabulary size. emb_sz=400: embedding size (and output size).
        n_hid=1152: hidden size of the inner layers. n_layers=3: number of LSTMs.
        pad_token=1: padding index of the embedding. hidden_p=0.3: dropout between layers.
        input_p=0.4: dropout on the embedded input. embed_p=0.1: word dropout.
        weight_p=0.5: DropConnect on hidden-to-hidden weights. bidir=False: bidirectional.

    Example:
        >>> AWD_LSTM(100, emb_sz=8, n_hid=16, n_layers=2)(torch.zeros(2, 5).long()).shape
        torch.Size([2, 5, 8])
    """

    def __init__(
        self,
        vocab_sz: int,
        emb_sz: int = 400,
        n_hid: int = 1152,
        n_layers: int = 3,
        pad_token: int = 1,
        hidden_p: float = 0.3,
        input_p: float = 0.4,
        embed_p: float = 0.1,
        weight_p: float = 0.5,
        bidir: bool = False,
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.n_dir = 2 if bidir else 1
        if emb_sz % self.n_dir or n_hid % self.n_dir:
            raise ValueError(f"bidir needs even emb_sz and n_hid, got {emb_sz} and {n_hid}")
        self.vocab_sz, self.emb_sz, self.n_hid, self.n_layers = vocab_sz, emb_sz, n_hid, n_layers
        self.pad_token, self.bidir = pad_token, bidir
        self.encoder = nn.Embedding(vocab_sz, emb_sz, padding_idx=pad_token)
        self.encoder_dp = EmbeddingDropout(self.encoder, embed_p)
        self.rnns = nn.ModuleList([self._make_rnn(i, weight_p) for i in range(n_layers)])
        self.input_dp = RNNDropout(input_p)
        self.hidden_dps = nn.ModuleList([RNNDropout(hidden_p) for _ in range(n_layers - 1)])
        self.hidden: LSTMState | None = None
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)

    def _out_size(self, layer: int) -> int:
        return self.emb_sz if layer == self.n_layers - 1 else self.n_hid

    def _make_rnn(self, layer: int, weight_p: float) -> WeightDropout:
        n_in = self.emb_sz if layer == 0 else self.n_hid
        n_out = self._out_size(layer) // self.n_dir
        lstm = nn.LSTM(n_in, n_out, 1, batch_first=True, bidirectional=self.bidir)
        names = ["weight_hh_l0", "weight_hh_l0_reverse"] if self.bidir else ["weight_hh_l0"]
        return WeightDropout(lstm, weight_p, names)

    def init_state(self, bs: int) -> LSTMState:
        """Zero hidden and cell states for a batch of `bs` sequences, one pair per layer."""
        weight = self.encoder.weight
        state: LSTMState = []
        for layer in range(self.n_layers):
            size = (self.n_dir, bs, self._out_size(layer) // self.n_dir)
            zeros = weight.new_zeros(size)
            state.append((zeros, zeros.clone()))
        return state

    def run(self, x: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
        """Encode `x` [bs, sl] from `state` without touching `self.hidden` (nothing detached).

        Returns the last layer's output [bs, sl, emb_sz] and the new state.
        """
        if x.dim() != 2:
            raise ValueError(f"AWD_LSTM expects token ids [bs, seq_len], got {tuple(x.shape)}")
        output = self.input_dp(self.encoder_dp(x))
        new_state: LSTMState = []
        for layer, rnn in enumerate(self.rnns):
            output, layer_state = rnn(output, state[layer])
            new_state.append(layer_state)
            if layer < self.n_layers - 1:
                output = self.hidden_dps[layer](output)
        return output, new_state

    def forward(self, x: Tensor) -> Tensor:
        bs = x.size(0)
        state = self.hidden
        if state is None or state[0][0].size(1) != bs or state[0][0].device != x.device:
            state = self.init_state(bs)
        output, new_state = self.run(x, state)
        self.hidden = [(h.detach(), c.detach()) for h, c in new_state]
        return output

    def reset(self) -> None:
        """Forget the hidden state: the next call starts from zeros."""
        self.hidden = None


__all__ = [
    "AWD_LSTM",
    "AWD_LSTM_SIZES",
    "EmbeddingDropout",
    "LSTMState",
    "RNNDropout",
    "WeightDropout",
    "awd_lstm_clas_config",
    "awd_lstm_lm_config",
]
