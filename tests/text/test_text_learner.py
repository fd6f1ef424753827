"""Tests for mentor.text.learner and mentor.text.callbacks on small real data."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from mentor.core.seed import set_seed
from mentor.text import (
    AWD_LSTM,
    RNNRegularizer,
    TextDataLoaders,
    generate,
    language_model_learner,
    text_classifier_learner,
)
from mentor.train.callback import Callback


@pytest.fixture(scope="module")
def small_df(imdb_texts: pd.DataFrame) -> pd.DataFrame:
    """120 imdb_sample reviews cut to 400 characters: 80 train, 40 valid."""
    df = pd.concat([imdb_texts[~imdb_texts.is_valid][:80], imdb_texts[imdb_texts.is_valid][:40]])
    return df.assign(text=df.text.str[:400]).reset_index(drop=True)


def _lm(df: pd.DataFrame, path: Path, **kw: object) -> object:
    set_seed(0)
    dls = TextDataLoaders.from_df(df, is_lm=True, valid_pct=0.2, seed=0, bs=8, seq_len=24,
                                  device="cpu")  # fmt: skip
    learn = language_model_learner(dls, AWD_LSTM, size="tiny", path=path, **kw)  # type: ignore[arg-type]
    learn.progress.show = False
    return learn


class _WatchState(Callback):
    """Checks, at every training batch, that the carried hidden state has no graph."""

    def __init__(self) -> None:
        super().__init__()
        self.checked = 0

    def before_batch(self) -> None:
        hidden = self.learn.model[0].hidden  # type: ignore[index]
        if self.learn.training and hidden is not None:
            assert all(h.grad_fn is None and not h.requires_grad for pair in hidden for h in pair)
            self.checked += 1


def test_lm_keeps_and_detaches_its_state_between_batches(
    small_df: pd.DataFrame, tmp_path: Path
) -> None:
    learn = _lm(small_df, tmp_path)
    watch = _WatchState()
    learn.fit(1, 1e-3, cbs=[watch])  # type: ignore[attr-defined]
    assert watch.checked >= 3
    # the state carries over: the same batch gives other outputs after a reset
    encoder = learn.model[0]  # type: ignore[attr-defined]
    x = next(iter(learn.dls.train))[0]  # type: ignore[attr-defined]
    learn.model.eval()  # type: ignore[attr-defined]
    with torch.no_grad():
        encoder.reset()
        fresh = encoder(x)
        carried = encoder(x)
    assert not torch.allclose(fresh, carried)


def test_lm_trains_predicts_and_round_trips_its_encoder(
    small_df: pd.DataFrame, tmp_path: Path
) -> None:
    learn = _lm(small_df, tmp_path)
    learn.fit_one_cycle(2, 1e-2)  # type: ignore[attr-defined]
    values = learn.recorder.values  # type: ignore[attr-defined]
    assert values[-1]["train_loss"] < values[0]["train_loss"] + 1.0
    assert "perplexity" in values[-1]
    dls = learn.dls  # type: ignore[attr-defined]
    prompt = "This movie was"
    n_prompt = len(dls.numericalize([prompt])[0])
    set_seed(1)
    text = learn.predict(prompt, n_words=12, temperature=1.0)  # type: ignore[attr-defined]
    assert text.startswith(prompt) and len(text.split()) > len(prompt.split())
    new_ids = generate(learn.model, list(dls.numericalize([prompt])[0]), 12)  # type: ignore[attr-defined]
    assert len(new_ids) == 12 and n_prompt == 5
    file = learn.save_encoder("enc")  # type: ignore[attr-defined]
    assert file.suffix == ".safetensors" and file.exists()

    clas_dls = TextDataLoaders.from_df(small_df, valid_pct=0.25, seed=0, bs=8, device="cpu",
                                       text_vocab=dls.text_vocab)  # fmt: skip
    clas = text_classifier_learner(clas_dls, AWD_LSTM, size="tiny", path=tmp_path)
    clas.load_encoder("enc")
    for key, value in learn.model[0].state_dict().items():  # type: ignore[attr-defined]
        assert torch.equal(clas.encoder.state_dict()[key], value)
    trainable = [p.requires_grad for p in clas.encoder.parameters()]
    assert not any(trainable)  # loading the encoder freezes it: only the head trains


def test_backward_language_model_trains_but_does_not_generate(
    small_df: pd.DataFrame, tmp_path: Path
) -> None:
    dls = TextDataLoaders.from_df(small_df, is_lm=True, valid_pct=0.2, seed=0, bs=8,
                                  seq_len=24, device="cpu", backwards=True)  # fmt: skip
    learn = language_model_learner(dls, AWD_LSTM, size="tiny", path=tmp_path)
    learn.progress.show = False
    learn.fit(1, 1e-2)
    assert torch.isfinite(torch.tensor(learn.recorder.values[-1]["valid_loss"]))
    with pytest.raises(ValueError, match="backwards"):
        learn.predict("This movie was", n_words=5)


def test_load_encoder_of_another_size_says_how_to_fix(
    small_df: pd.DataFrame, tmp_path: Path
) -> None:
    learn = _lm(small_df, tmp_path)
    learn.save_encoder("enc")  # type: ignore[attr-defined]
    clas_dls = TextDataLoaders.from_df(
        small_df, valid_pct=0.25, seed=0, device="cpu", text_vocab=learn.dls.text_vocab
    )  # type: ignore[attr-defined]
    clas = text_classifier_learner(clas_dls, size="small", path=tmp_path)
    with pytest.raises(ValueError, match="same size="):
        clas.load_encoder("enc")


def test_classifier_padding_does_not_change_the_prediction(small_df: pd.DataFrame) -> None:
    set_seed(0)
    dls = TextDataLoaders.from_df(small_df, valid_pct=0.25, seed=0, bs=8, device="cpu")
    learn = text_classifier_learner(dls, size="tiny", seq_len=16)
    learn.progress.show = False
    learn.fit(1, 1e-3)
    short, long_text = "A dull film.", " ".join(small_df.text[:3])
    model = learn.model.eval()
    ids = dls.numericalize([short, long_text])
    alone = torch.as_tensor(ids[0]).unsqueeze(0)
    batch = torch.full((2, len(ids[1])), dls.pad_idx)
    batch[0, : len(ids[0])] = torch.as_tensor(ids[0])
    batch[1] = torch.as_tensor(ids[1])
    with torch.no_grad():
        assert torch.allclose(model(alone)[0], model(batch)[0], atol=1e-5)
    label, index, probs = learn.predict(short)
    assert label in ("negative", "positive") and probs.shape == (2,)
    preds, targets = learn.get_preds()
    assert preds.shape == (len(targets), 2) and targets.tolist() == dls.valid_ds.labels.tolist()


def test_get_preds_follows_the_texts_order(small_df: pd.DataFrame) -> None:
    set_seed(0)
    dls = TextDataLoaders.from_df(small_df, valid_pct=0.25, seed=0, bs=4, device="cpu")
    learn = text_classifier_learner(dls, size="tiny")
    texts = list(small_df.text[:10])
    preds, _ = learn.get_preds(dl=dls.test_dl(texts))
    singles = torch.stack([learn.predict(t)[2] for t in texts])
    assert torch.allclose(preds, singles, atol=1e-5)


def test_regularizer_adds_ar_and_tar_to_the_training_loss(
    small_df: pd.DataFrame, tmp_path: Path
) -> None:
    learn = _lm(small_df, tmp_path)
    seen: list[tuple[float, float]] = []

    class Grab(Callback):
        order = 10  # after the regularizer

        def after_loss(self) -> None:
            if self.learn.training:
                seen.append((float(self.learn.loss_grad.detach()), float(self.learn.loss)))

    learn.fit(1, 1e-3, cbs=[Grab()])  # type: ignore[attr-defined]
    assert seen and all(with_reg > plain for with_reg, plain in seen)
    assert any(isinstance(cb, RNNRegularizer) for cb in learn.cbs)  # type: ignore[attr-defined]


def test_pretrained_weights_map_onto_a_new_vocabulary(
    small_df: pd.DataFrame, tmp_path: Path
) -> None:
    source = _lm(small_df, tmp_path)
    weights = {k: v.clone() for k, v in source.model.state_dict().items()}  # type: ignore[attr-defined]
    old_itos = list(source.dls.text_vocab.itos)  # type: ignore[attr-defined]
    save_file(weights, str(tmp_path / "lm.safetensors"))
    (tmp_path / "itos.json").write_text(json.dumps(old_itos))
    other = small_df.assign(text=small_df.text + " zzzword zzzword zzzword")
    dls = TextDataLoaders.from_df(other, is_lm=True, valid_pct=0.2, seed=0, bs=8, device="cpu")
    learn = language_model_learner(
        dls,
        pretrained=True,
        pretrained_fnames=(tmp_path / "lm.safetensors", tmp_path / "itos.json"),
    )
    emb = learn.model[0].encoder.weight  # type: ignore[index]
    new_itos = dls.text_vocab.itos
    word = next(w for w in new_itos if w in old_itos and w.isalpha())
    assert torch.equal(emb[new_itos.index(word)], weights["0.encoder.weight"][old_itos.index(word)])
    mean = weights["0.encoder.weight"].mean(0)
    assert torch.allclose(emb[new_itos.index("zzzword")], mean)
    assert emb.shape[1] == weights["0.encoder.weight"].shape[1]  # sizes come from the file


def test_pickled_vocabulary_is_refused(small_df: pd.DataFrame, tmp_path: Path) -> None:
    (tmp_path / "lm.safetensors").write_bytes(b"")
    (tmp_path / "itos.pkl").write_bytes(b"not read")
    dls = TextDataLoaders.from_df(small_df, is_lm=True, valid_pct=0.2, seed=0, bs=8, device="cpu")
    with pytest.raises(ValueError, match="pickle"):
        language_model_learner(
            dls,
            pretrained=True,
            pretrained_fnames=(tmp_path / "lm.safetensors", tmp_path / "itos.pkl"),
        )


def test_learners_check_the_kind_of_data(small_df: pd.DataFrame) -> None:
    lm_dls = TextDataLoaders.from_df(
        small_df, is_lm=True, valid_pct=0.2, seed=0, bs=8, device="cpu"
    )
    with pytest.raises(ValueError, match="classifier data"):
        text_classifier_learner(lm_dls)
    with pytest.raises(ValueError, match="unknown size"):
        language_model_learner(lm_dls, size="huge")
