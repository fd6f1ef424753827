"""Text learners: an AWD-LSTM language model and the ULMFiT classifier built on its encoder.

The workflow of the course (lessons 4 and 8): fine-tune a language model on your texts,
`save_encoder`, build a classifier with the same vocabulary, `load_encoder`, then train it
with gradual unfreezing (`freeze_to(-2)`, `freeze_to(-3)`, `unfreeze()`) and discriminative
learning rates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import nn

from mentor.callbacks.gradients import GradientClip
from mentor.core.device import is_main_process
from mentor.core.spec import is_registered, spec_name
from mentor.text.callbacks import ModelResetter, RNNRegularizer
from mentor.text.data import TextDataLoaders
from mentor.text.models import (
    AWD_LSTM,
    AWD_LSTM_SIZES,
    LinearDecoder,
    SentenceEncoder,
    SequentialRNN,
    awd_lstm_clas_split,
    awd_lstm_lm_split,
    generate,
    get_language_model,
    get_text_classifier,
)
from mentor.text.models.lm_tools import BACKWARD_PROMPT, prompt_ids
from mentor.text.pretrained import LMWeights, load_lm_weights
from mentor.train.callback import Callback
from mentor.train.learner import Learner
from mentor.train.metrics import Perplexity, accuracy


class TextLearner(Learner):
    """A `Learner` for text models, with `save_encoder` / `load_encoder` for ULMFiT.

    Built by `language_model_learner` and `text_classifier_learner`.
    """

    @property
    def encoder(self) -> nn.Module:
        """The AWD-LSTM encoder (shared by the language model and the classifier)."""
        first = self.model[0] if isinstance(self.model, nn.Sequential) else self.model
        return first.module if isinstance(first, SentenceEncoder) else first

    def save_encoder(self, name: str) -> Path:
        """Save the encoder's weights to `path/model_dir/name.safetensors`; returns the file."""
        file = self.path / self.model_dir / f"{name}.safetensors"
        if not is_main_process():  # rank 0 writes it in a distributed run
            return file
        file.parent.mkdir(parents=True, exist_ok=True)
        # tied weights share storage; safetensors wants each tensor on its own
        weights = self.encoder.state_dict()
        state = {k: v.detach().cpu().clone().contiguous() for k, v in weights.items()}
        save_file(state, str(file))
        return file

    def load_encoder(self, name: str | Path, freeze: bool = True) -> TextLearner:
        """Load encoder weights saved by `save_encoder` (a name in `path/model_dir`, or a
        file) and, for a classifier, freeze all but the head (`freeze`, True), as a
        pretrained classifier starts; `unfreeze()` or `freeze_to(-2)` to train more."""
        file = Path(name)
        if not file.suffix:
            file = self.path / self.model_dir / f"{name}.safetensors"
        if not file.exists():
            raise FileNotFoundError(
                f"encoder file {str(file)!r} not found; save one with "
                "language_model_learner(...).save_encoder(name) first"
            )
        state = load_file(str(file), device=str(self.dls.device))
        try:
            self.encoder.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(
                f"the encoder in {str(file)!r} doesn't fit this model ({err}); build both "
                "learners with the same size= and config=, and the classifier's data with "
                "text_vocab=the language model's dls.text_vocab"
            ) from None
        if freeze and not isinstance(self, LMLearner):
            self.freeze()
        return self


class LMLearner(TextLearner):
    """A language-model learner: also generates text with `predict`."""

    def predict(  # type: ignore[override]
        self, text: str, n_words: int = 1, temperature: float = 1.0, no_unk: bool = True
    ) -> str:
        """`text` followed by `n_words` generated tokens, as readable text.

        Args:
            text: the prompt. n_words: tokens to generate (1). temperature: sampling
                temperature (1.0; 0 takes the most likely token). no_unk: never produce xxunk.

        Example:
            >>> learn.predict("The history of", n_words=20, temperature=0.75)
        """
        dls = self.dls
        if not isinstance(dls, TextDataLoaders):
            raise TypeError("predict needs TextDataLoaders to tokenize the prompt")
        if dls.backwards:
            raise ValueError(BACKWARD_PROMPT)
        ids = prompt_ids(dls.numericalize([text])[0].tolist(), dls.text_vocab.itos)
        new = generate(self.model, ids, n_words, temperature, no_unk=no_unk)
        return dls.decode_text(ids + new)


def language_model_learner(
    dls: TextDataLoaders,
    arch: Any = AWD_LSTM,
    config: Mapping[str, Any] | None = None,
    size: str = "small",
    drop_mult: float = 1.0,
    pretrained: bool = False,
    pretrained_fnames: Sequence[str | Path] | None = None,
    metrics: Sequence[Any] | Any = None,
    clip: float | None = 0.25,
    alpha: float = 2.0,
    beta: float = 1.0,
    **learner_kw: Any,
) -> LMLearner:
    """A language-model `Learner` on language-model data (`is_lm=True`).

    Args:
        dls: the data. arch: `AWD_LSTM`, or any `vocab_sz -> model` function returning
            `[bs, seq_len, vocab]` logits (e.g. `simple_lstm` for characters).
        config: AWD-LSTM settings over `awd_lstm_lm_config` (dropouts, sizes). size: a
            preset of `AWD_LSTM_SIZES`: 'small' (embedding 128, hidden 384, 2 layers; the
            default, sized for CPUs), 'tiny', or 'default' (the paper's 400/1152/3).
        drop_mult: scales every dropout (1.0). pretrained: start from fastai's WikiText-103
            model (forward, or backward for `backwards` data), downloaded once into
            `$MENTOR_HOME/weights`, or from `pretrained_fnames` = (weights file, vocabulary
            file) (see `mentor.text.pretrained`); the sizes then come from the file, and the
            learner starts frozen but for the embedding and decoder.
        metrics: default `[accuracy, Perplexity()]`. clip: gradient-norm clipping (0.25;
            None: off). alpha, beta: AR and TAR weights (AWD-LSTM only).
        learner_kw: passed on to `Learner` (lr, wd, cbs, path, ...).

    Example:
        >>> learn = language_model_learner(dls_lm, AWD_LSTM, drop_mult=0.3, pretrained=True)
        >>> learn.fit_one_cycle(1, 2e-2)
    """
    _check_data(dls, is_lm=True)
    vocab_sz = len(dls.text_vocab)
    cbs: list[Callback] = [ModelResetter()]
    splitter = None
    if arch is AWD_LSTM:
        weights = _pretrained(dls, pretrained, pretrained_fnames)
        sizes = weights.sizes if weights is not None else AWD_LSTM_SIZES[_size(size)]
        lm = get_language_model(vocab_sz, {**sizes, **(config or {})}, drop_mult)
        if weights is not None:
            lm.load_state_dict(weights.state_dict)
        decoder = lm[1]
        assert isinstance(decoder, LinearDecoder)
        cbs.append(RNNRegularizer(lm[0], decoder.output_dp, alpha, beta))
        model: nn.Module = lm
        splitter = awd_lstm_lm_split
        spec = {"vocab_sz": vocab_sz, "config": {**sizes, **(config or {})}, "drop_mult": drop_mult}
        model_spec: dict[str, Any] | None = {
            "factory": spec_name(get_language_model),
            "kwargs": spec,
        }
    else:
        model = arch(vocab_sz)
        # a registered factory (mentor's character models, a user's own) exports by name;
        # otherwise the user sets learn.model_spec
        kwargs = {"vocab_sz": vocab_sz}
        model_spec = {"factory": spec_name(arch), "kwargs": kwargs} if is_registered(arch) else None
    if clip:
        cbs.append(GradientClip(clip))
    metrics = [accuracy, Perplexity()] if metrics is None else metrics
    learn_cbs = [*cbs, *learner_kw.pop("cbs", [])]
    learn = LMLearner(dls, model, splitter=splitter, metrics=metrics, cbs=learn_cbs, **learner_kw)
    if pretrained and splitter is not None:
        learn.freeze()
    if model_spec is not None:
        learn.model_spec = model_spec
    return learn


def text_classifier_learner(
    dls: TextDataLoaders,
    arch: Any = AWD_LSTM,
    seq_len: int = 72,
    config: Mapping[str, Any] | None = None,
    size: str = "small",
    drop_mult: float = 0.5,
    lin_ftrs: Sequence[int] | None = None,
    ps: Sequence[float] | None = None,
    max_len: int | None = 72 * 20,
    pretrained: bool = False,
    pretrained_fnames: Sequence[str | Path] | None = None,
    metrics: Sequence[Any] | Any = None,
    clip: float | None = 0.25,
    alpha: float = 2.0,
    beta: float = 1.0,
    **learner_kw: Any,
) -> TextLearner:
    """A text classifier (ULMFiT): the AWD-LSTM encoder read in chunks of `seq_len` tokens,
    then a head on the concatenated last, max-pooled and mean-pooled hidden states.

    Args:
        dls: classifier data; build it with `text_vocab=` the language model's vocabulary to
            use its encoder (`learn.load_encoder(name)`).
        arch: `AWD_LSTM`. seq_len: tokens per chunk (72). config, size: as for
            `language_model_learner` (use the same as the language model's).
        drop_mult: scales every dropout (0.5). lin_ftrs: hidden sizes of the head ([50]).
        ps: the head's dropouts. max_len: only the last `max_len` tokens of a text are
            pooled (1440; None: all). pretrained, pretrained_fnames: start the encoder from
            pretrained language-model weights, as `language_model_learner` does (frozen but
            for the head); usually you `load_encoder` your fine-tuned one instead.
            metrics: default `accuracy` (single label).
        clip, alpha, beta: as for `language_model_learner`.

    Example:
        >>> learn = text_classifier_learner(dls_clas, AWD_LSTM, drop_mult=0.5)
        >>> learn.load_encoder("finetuned")
        >>> learn.fit_one_cycle(1, 2e-2)
        >>> learn.freeze_to(-2)
        >>> learn.fit_one_cycle(1, slice(1e-2 / 2.6**4, 1e-2))
    """
    _check_data(dls, is_lm=False)
    if arch is not AWD_LSTM:
        raise ValueError(f"text_classifier_learner supports arch=AWD_LSTM, got {arch!r}")
    n_class = dls.c
    if n_class is None:
        raise ValueError("the data has no classes; build it with labels")
    weights = _pretrained(dls, pretrained, pretrained_fnames)
    sizes = weights.sizes if weights is not None else AWD_LSTM_SIZES[_size(size)]
    spec: dict[str, Any] = {
        "vocab_sz": len(dls.text_vocab), "n_class": n_class, "seq_len": seq_len,
        "config": {**sizes, **(config or {})}, "drop_mult": drop_mult,
        "lin_ftrs": None if lin_ftrs is None else list(lin_ftrs),
        "ps": None if ps is None else list(ps), "pad_idx": dls.pad_idx, "max_len": max_len,
    }  # fmt: skip
    model: SequentialRNN = get_text_classifier(**spec)
    if weights is not None:  # the language model's encoder: its keys after "0."
        sentence_encoder = model[0]
        assert isinstance(sentence_encoder, SentenceEncoder)
        encoder = {k[2:]: v for k, v in weights.state_dict.items() if k.startswith("0.")}
        sentence_encoder.module.load_state_dict(encoder)
    cbs: list[Callback] = [ModelResetter(), RNNRegularizer(model[0], None, alpha, beta)]
    if clip:
        cbs.append(GradientClip(clip))
    if metrics is None:
        metrics = [accuracy] if dls.loss_spec == ("CrossEntropyLossFlat", {}) else []
    learn_cbs = [*cbs, *learner_kw.pop("cbs", [])]
    learn = TextLearner(
        dls, model, splitter=awd_lstm_clas_split, metrics=metrics, cbs=learn_cbs, **learner_kw
    )
    learn.model_spec = {"factory": spec_name(get_text_classifier), "kwargs": spec}
    if weights is not None:
        learn.freeze()
    return learn


def _pretrained(
    dls: TextDataLoaders, pretrained: bool, fnames: Sequence[str | Path] | None
) -> LMWeights | None:
    """The pretrained weights for the data's vocabulary and direction, when asked for."""
    return load_lm_weights(dls.text_vocab.itos, fnames, dls.backwards) if pretrained else None


def _size(size: str) -> str:
    if size not in AWD_LSTM_SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {sorted(AWD_LSTM_SIZES)}")
    return size


def _check_data(dls: Any, is_lm: bool) -> None:
    if not isinstance(dls, TextDataLoaders):
        raise TypeError(f"expected TextDataLoaders, got {type(dls).__name__}")
    if dls.is_lm != is_lm:
        want = "language-model data (is_lm=True)" if is_lm else "classifier data (is_lm=False)"
        raise ValueError(f"this learner needs {want}; build the TextDataLoaders accordingly")


__all__ = [
    "LMLearner",
    "TextLearner",
    "language_model_learner",
    "text_classifier_learner",
]
