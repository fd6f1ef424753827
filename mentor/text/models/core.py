"""Language model and classifier built on an AWD-LSTM encoder, and their layer groups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, TypeVar, runtime_checkable

import torch
from torch import Tensor, nn

from mentor.core.spec import register_spec
from mentor.text.models.awd_lstm import (
    AWD_LSTM,
    LSTMState,
    RNNDropout,
    awd_lstm_clas_config,
    awd_lstm_lm_config,
)

ConfigValue = float | int | bool
ModuleT = TypeVar("ModuleT", bound=nn.Module)


@runtime_checkable
class Resettable(Protocol):
    """A module with a `reset()` that forgets its recurrent state."""

    def reset(self) -> None: ...


class SequentialRNN(nn.Sequential):
    """An `nn.Sequential` whose `reset()` resets every child that keeps a state."""

    def reset(self) -> None:
        """Call `reset()` on each child that has one."""
        for child in self.children():
            if isinstance(child, Resettable):
                child.reset()


class LinearDecoder(nn.Module):
    """Dropout then a linear layer from hidden states to vocabulary logits.

    Args:
        n_out: vocabulary size. n_hid: input features (the encoder's emb_sz).
        output_p=0.1: locked dropout on the input. tie_encoder=None: an embedding whose
        weight the decoder shares (the same Parameter). bias=True: add an output bias.
    """

    def __init__(
        self,
        n_out: int,
        n_hid: int,
        output_p: float = 0.1,
        tie_encoder: nn.Embedding | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.output_dp = RNNDropout(output_p)
        self.decoder = nn.Linear(n_hid, n_out, bias=bias)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)
        if self.decoder.bias is not None:
            nn.init.zeros_(self.decoder.bias)
        if tie_encoder is not None:
            if tuple(tie_encoder.weight.shape) != (n_out, n_hid):
                raise ValueError(
                    f"cannot tie a decoder of shape {(n_out, n_hid)} to an embedding of shape "
                    f"{tuple(tie_encoder.weight.shape)}; make the encoder output n_hid={n_hid}"
                )
            self.decoder.weight = tie_encoder.weight

    def forward(self, raw: Tensor) -> Tensor:
        return self.decoder(self.output_dp(raw))


def _merged_config(
    defaults: Mapping[str, ConfigValue],
    config: Mapping[str, ConfigValue] | None,
    drop_mult: float,
) -> dict[str, ConfigValue]:
    unknown = sorted(set(config or {}) - set(defaults))
    if unknown:
        raise ValueError(f"unknown config keys {unknown}; known keys: {sorted(defaults)}")
    merged = {**defaults, **(config or {})}
    return {k: v * drop_mult if k.endswith("_p") else v for k, v in merged.items()}


def _encoder(vocab_sz: int, config: Mapping[str, ConfigValue]) -> AWD_LSTM:
    return AWD_LSTM(
        vocab_sz,
        emb_sz=int(config["emb_sz"]),
        n_hid=int(config["n_hid"]),
        n_layers=int(config["n_layers"]),
        pad_token=int(config["pad_token"]),
        hidden_p=float(config["hidden_p"]),
        input_p=float(config["input_p"]),
        embed_p=float(config["embed_p"]),
        weight_p=float(config["weight_p"]),
        bidir=bool(config["bidir"]),
    )


@register_spec
def get_language_model(
    vocab_sz: int, config: Mapping[str, ConfigValue] | None = None, drop_mult: float = 1.0
) -> SequentialRNN:
    """An AWD-LSTM language model: `SequentialRNN(AWD_LSTM, LinearDecoder)`.

    Args:
        vocab_sz: vocabulary size. config=None: keys merged over `awd_lstm_lm_config`
        (e.g. `AWD_LSTM_SIZES['small']`). drop_mult=1.0: multiplies every `*_p` dropout.

    Example:
        >>> lm = get_language_model(100, AWD_LSTM_SIZES["tiny"])
        >>> lm(torch.zeros(2, 5).long()).shape
        torch.Size([2, 5, 100])
    """
    cfg = _merged_config(awd_lstm_lm_config, config, drop_mult)
    encoder = _encoder(vocab_sz, cfg)
    tie = encoder.encoder if cfg["tie_weights"] else None
    decoder = LinearDecoder(
        vocab_sz, int(cfg["emb_sz"]), float(cfg["output_p"]), tie, bool(cfg["out_bias"])
    )
    return SequentialRNN(encoder, decoder)


class SentenceEncoder(nn.Module):
    """Run an AWD-LSTM over whole right-padded texts, `bptt` tokens at a time.

    The state is carried from chunk to chunk (gradients flow through it within a text).
    Rows are sorted by length and each chunk only runs the rows whose text has not ended,
    so padding costs nothing and, the LSTM being causal, a text's outputs don't depend on
    the padding after it. Returns `(outputs [bs, sl, emb_sz], mask [bs, sl], lengths [bs])`;
    the mask is True on the positions to pool (the last `max_len` real tokens of each text).

    Args:
        bptt: tokens per chunk. module: the AWD_LSTM. pad_idx=1: the padding id.
        max_len=None: pool over at most the last `max_len` tokens (None: all of them).
    """

    def __init__(
        self, bptt: int, module: AWD_LSTM, pad_idx: int = 1, max_len: int | None = None
    ) -> None:
        super().__init__()
        if bptt < 1:
            raise ValueError(f"bptt must be >= 1, got {bptt}")
        if max_len is not None and max_len < 1:
            raise ValueError(f"max_len must be >= 1 or None, got {max_len}")
        self.bptt, self.module, self.pad_idx, self.max_len = bptt, module, pad_idx, max_len

    def reset(self) -> None:
        """Reset the wrapped encoder's state."""
        self.module.reset()

    def _run_sorted(self, x: Tensor, lengths: Tensor) -> Tensor:
        """Encode rows sorted by decreasing length, chunk by chunk, active rows only."""
        bs, sl = x.shape
        row_lengths = lengths.tolist()  # one sync per batch: the slicing needs them on host
        state: LSTMState = self.module.init_state(bs)
        chunks: list[Tensor] = []
        for start in range(0, sl, self.bptt):
            n_active = sum(length > start for length in row_lengths)
            if n_active == 0:  # every text has ended: the rest is padding
                break
            state = [(h[:, :n_active], c[:, :n_active]) for h, c in state]
            out, state = self.module.run(x[:n_active, start : start + self.bptt], state)
            if n_active < bs:
                out = torch.cat([out, out.new_zeros(bs - n_active, *out.shape[1:])])
            chunks.append(out)
        done = sum(chunk.size(1) for chunk in chunks)
        if done < sl:
            pad = self.module.encoder.weight.new_zeros(bs, sl - done, self.module.emb_sz)
            chunks.append(pad if not chunks else pad.to(chunks[0].dtype))
        return torch.cat(chunks, dim=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if x.dim() != 2:
            raise ValueError(f"SentenceEncoder expects ids [bs, seq_len], got {tuple(x.shape)}")
        self.reset()
        lengths = (x != self.pad_idx).sum(1)
        order = torch.argsort(lengths, descending=True, stable=True)
        outputs = self._run_sorted(x[order], lengths[order])
        outputs = outputs[torch.argsort(order)]
        positions = torch.arange(x.size(1), device=x.device).unsqueeze(0)
        mask = positions < lengths.unsqueeze(1)
        if self.max_len is not None:
            mask &= positions >= (lengths - self.max_len).unsqueeze(1)
        return outputs, mask, lengths

    def extra_repr(self) -> str:
        return f"bptt={self.bptt}, pad_idx={self.pad_idx}, max_len={self.max_len}"


def masked_concat_pool(outputs: Tensor, mask: Tensor, lengths: Tensor) -> Tensor:
    """Last real output, max and mean over the masked positions, concatenated [bs, 3 * n]."""
    last_index = (lengths - 1).clamp(min=0)
    last = outputs[torch.arange(outputs.size(0), device=outputs.device), last_index]
    keep = mask.unsqueeze(-1)
    max_pool = outputs.masked_fill(~keep, float("-inf")).amax(dim=1)
    max_pool = max_pool.masked_fill(~mask.any(dim=1, keepdim=True), 0.0)
    count = mask.sum(dim=1, keepdim=True).clamp(min=1).to(outputs.dtype)
    mean_pool = (outputs * keep).sum(dim=1) / count
    return torch.cat([last, max_pool, mean_pool], dim=1)


class PoolingLinearClassifier(nn.Module):
    """Classifier head on `SentenceEncoder` outputs: concat pooling then linear blocks.

    Each block is BatchNorm1d, Dropout(p), Linear, with ReLU after all but the last.

    Args:
        dims: layer sizes, `dims[0] == 3 * emb_sz`, `dims[-1]` the number of classes.
        ps: one dropout probability per block (`len(dims) - 1` of them).
    """

    def __init__(self, dims: Sequence[int], ps: Sequence[float]) -> None:
        super().__init__()
        if len(dims) < 2 or len(ps) != len(dims) - 1:
            raise ValueError(
                f"need at least two dims and one dropout per block, got dims={list(dims)}, "
                f"ps={list(ps)}; pass len(ps) == len(dims) - 1"
            )
        blocks: list[nn.Module] = []
        for index, (n_in, n_out, p) in enumerate(zip(dims[:-1], dims[1:], ps, strict=True)):
            blocks += [nn.BatchNorm1d(n_in), nn.Dropout(p), nn.Linear(n_in, n_out)]
            if index < len(ps) - 1:
                blocks.append(nn.ReLU(inplace=True))
        self.n_in = int(dims[0])
        self.layers = nn.Sequential(*blocks)

    def forward(self, inputs: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        outputs, mask, lengths = inputs
        pooled = masked_concat_pool(outputs, mask, lengths)
        if pooled.size(1) != self.n_in:
            raise ValueError(
                f"pooled features have size {pooled.size(1)} but dims[0] is {self.n_in}; "
                "set dims[0] to 3 * emb_sz"
            )
        return self.layers(pooled)


@register_spec
def get_text_classifier(
    vocab_sz: int,
    n_class: int,
    seq_len: int = 72,
    config: Mapping[str, ConfigValue] | None = None,
    drop_mult: float = 1.0,
    lin_ftrs: Sequence[int] | None = None,
    ps: Sequence[float] | None = None,
    pad_idx: int = 1,
    max_len: int | None = 72 * 20,
) -> SequentialRNN:
    """An AWD-LSTM text classifier: `SequentialRNN(SentenceEncoder, PoolingLinearClassifier)`.

    Args:
        vocab_sz: vocabulary size. n_class: number of classes. seq_len=72: tokens per chunk.
        config=None: keys merged over `awd_lstm_clas_config`. drop_mult=1.0: multiplies
        every dropout. lin_ftrs=None: hidden sizes of the head ([50]). ps=None: their
        dropouts ([0.1] each); the first block's dropout is `output_p * drop_mult`.
        pad_idx=1: padding id. max_len=1440: pool over the last `max_len` tokens only.

    Example:
        >>> clas = get_text_classifier(100, 3, config=AWD_LSTM_SIZES["tiny"]).eval()
        >>> clas(torch.tensor([[5, 6, 7], [8, 9, 1]])).shape
        torch.Size([2, 3])
    """
    cfg = _merged_config(awd_lstm_clas_config, config, drop_mult)
    lin_ftrs = [50] if lin_ftrs is None else list(lin_ftrs)
    ps = [0.1] * len(lin_ftrs) if ps is None else list(ps)
    if len(ps) != len(lin_ftrs):
        raise ValueError(f"need one dropout per hidden layer: lin_ftrs={lin_ftrs}, ps={ps}")
    encoder = _encoder(vocab_sz, cfg)
    dims = [3 * int(cfg["emb_sz"]), *lin_ftrs, n_class]
    head_ps = [float(cfg["output_p"]), *ps]
    sentence_encoder = SentenceEncoder(seq_len, encoder, pad_idx=pad_idx, max_len=max_len)
    return SequentialRNN(sentence_encoder, PoolingLinearClassifier(dims, head_ps))


def _unique(modules: Sequence[nn.Module]) -> list[nn.Parameter]:
    """The parameters of `modules`, each once (tied weights appear in several modules)."""
    seen: dict[int, nn.Parameter] = {}
    for module in modules:
        for param in module.parameters():
            seen.setdefault(id(param), param)
    return list(seen.values())


def _part(model: nn.Module, index: int, kind: type[ModuleT], what: str) -> ModuleT:
    if not isinstance(model, nn.Sequential) or len(model) <= index:
        raise TypeError(f"{what} expects a SequentialRNN, got {type(model).__name__}")
    part = model[index]
    if not isinstance(part, kind):
        raise TypeError(
            f"{what} expects {kind.__name__} at position {index}, got {type(part).__name__}; "
            "build the model with get_language_model / get_text_classifier"
        )
    return part


def awd_lstm_lm_split(model: nn.Module) -> list[list[nn.Parameter]]:
    """Layer groups of a language model: one per LSTM layer, then embedding + decoder.

    The embedding and the decoder share their weight, so they form one group, the last:
    `freeze_to(-1)` trains only them (the first ULMFiT step after a vocabulary change).
    """
    encoder = _part(model, 0, AWD_LSTM, "awd_lstm_lm_split")
    decoder = _part(model, 1, LinearDecoder, "awd_lstm_lm_split")
    groups = [_unique([rnn]) for rnn in encoder.rnns]
    return [*groups, _unique([encoder.encoder, decoder])]


def awd_lstm_clas_split(model: nn.Module) -> list[list[nn.Parameter]]:
    """Layer groups of a classifier: embedding, each LSTM layer, then the head.

    `freeze_to(-1)` trains the head only, `freeze_to(-2)` the head and the last LSTM, ...
    """
    sentence_encoder = _part(model, 0, SentenceEncoder, "awd_lstm_clas_split")
    head = _part(model, 1, PoolingLinearClassifier, "awd_lstm_clas_split")
    encoder = sentence_encoder.module
    groups = [_unique([encoder.encoder])]
    groups += [_unique([rnn]) for rnn in encoder.rnns]
    return [*groups, _unique([head])]


__all__ = [
    "LinearDecoder",
    "PoolingLinearClassifier",
    "Resettable",
    "SentenceEncoder",
    "SequentialRNN",
    "awd_lstm_clas_split",
    "awd_lstm_lm_split",
    "get_language_model",
    "get_text_classifier",
    "masked_concat_pool",
]
