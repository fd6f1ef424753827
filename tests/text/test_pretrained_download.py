"""Pretrained AWD-LSTM weights in fastai's layout (wt103-fwd.tgz: lstm_fwd.pth and
itos_wt103.pkl), downloaded from a local server, mapped onto the data's vocabulary; the
vocabulary pickle is read without admitting any global."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import pytest
import torch
from torch import Tensor

from mentor.core.seed import set_seed
from mentor.text import TextDataLoaders, language_model_learner, text_classifier_learner
from mentor.text.models import get_language_model
from mentor.text.pretrained import fastai_names, read_pickled_tokens
from tests.fileserver import FileServer

SPECIAL = ["xxunk", "xxpad", "xxbos", "xxeos", "xxfld", "xxrep", "xxwrep", "xxup", "xxmaj"]
WORDS = ["the", "a", "movie", "film", "was", "is", "good", "bad", "great", "awful", "plot",
         "actor", "and", "but", "very", "not", "i", "it", "this", "fun", "."]  # fmt: skip
OLD_ITOS = SPECIAL + WORDS  # 30 tokens
SIZES = {"emb_sz": 8, "n_hid": 16, "n_layers": 3}


def fastai_state() -> dict[str, Tensor]:
    """A small language model's weights with fastai's key names: each LSTM's hidden-to-hidden
    weight also under `0.rnns.{i}.module.weight_hh_l0`, as fastai's files hold it."""
    torch.manual_seed(0)
    state = {k: v.clone() for k, v in get_language_model(len(OLD_ITOS), SIZES).state_dict().items()}
    for i in range(SIZES["n_layers"]):
        state[f"0.rnns.{i}.module.weight_hh_l0"] = state[f"0.rnns.{i}.weight_hh_l0_raw"].clone()
    return state


def wt103_archive(top: str, state: dict[str, Tensor], direction: str) -> bytes:
    """A .tgz laid out like fastai's model zoo archive."""
    weights = io.BytesIO()
    torch.save(state, weights)
    files = {f"lstm_{direction}.pth": weights.getvalue(), "itos_wt103.pkl": pickle.dumps(OLD_ITOS)}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


TEXTS = [f"this movie was {w} and the plot is {v} ." for w in ("good", "bad", "great", "awful")
         for v in ("fun", "zzznew", "very good", "not bad")]  # fmt: skip


def lm_data(backwards: bool = False) -> TextDataLoaders:
    set_seed(0)
    return TextDataLoaders.from_texts(TEXTS[:12], TEXTS[12:], is_lm=True, min_freq=1, bs=4,
                                      seq_len=8, device="cpu", backwards=backwards)  # fmt: skip


def test_language_model_downloads_fastai_weights_and_matches_the_vocabulary(
    file_server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = fastai_state()
    file_server.serve("wt103-fwd.tgz", wt103_archive("wt103-fwd", state, "fwd"))
    monkeypatch.setenv("MENTOR_WEIGHTS_URL", file_server.base)
    dls = lm_data()
    with pytest.warns(UserWarning, match="no checksum"):  # fastai publishes none for it
        learn = language_model_learner(dls, pretrained=True)
    emb = learn.model[0].encoder.weight  # type: ignore[index]
    itos = dls.text_vocab.itos
    assert emb.shape == (len(itos), SIZES["emb_sz"])  # sizes from the file
    for word in ("movie", "plot", "xxbos"):
        assert torch.equal(emb[itos.index(word)], state["0.encoder.weight"][OLD_ITOS.index(word)])
    assert torch.allclose(emb[itos.index("zzznew")], state["0.encoder.weight"].mean(0))
    raw = learn.model[0].rnns[1].weight_hh_l0_raw  # type: ignore[index]
    assert torch.equal(raw, state["0.rnns.1.weight_hh_l0_raw"])
    assert not raw.requires_grad  # pretrained: frozen but for the embedding and decoder
    assert (tmp_path / "home" / "weights" / "wt103-fwd" / "itos_wt103.pkl").exists()
    language_model_learner(dls, pretrained=True)  # extracted already: no second request
    assert file_server.ranges("wt103-fwd.tgz") == [None]


def test_backwards_data_gets_the_backward_model_and_the_classifier_its_encoder(
    file_server: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = fastai_state()
    file_server.serve("wt103-bwd.tgz", wt103_archive("wt103-bwd", state, "bwd"))
    monkeypatch.setenv("MENTOR_WEIGHTS_URL", file_server.base)
    labels = ["pos", "neg", "pos", "neg"] * 4
    set_seed(0)
    dls = TextDataLoaders.from_texts(TEXTS[:12], TEXTS[12:], labels[:12], labels[12:],
                                     min_freq=1, bs=4, device="cpu", backwards=True)  # fmt: skip
    with pytest.warns(UserWarning, match="wt103-bwd"):
        learn = text_classifier_learner(dls, pretrained=True)
    encoder = learn.model[0].module  # type: ignore[index]
    itos = dls.text_vocab.itos
    row = state["0.encoder.weight"][OLD_ITOS.index("movie")]
    assert torch.equal(encoder.encoder.weight[itos.index("movie")], row)
    assert not encoder.rnns[0].module.weight_ih_l0.requires_grad  # frozen but for the head
    assert [path for path, _ in file_server.requests] == ["/wt103-bwd.tgz"]


def test_a_pickled_vocabulary_with_a_global_is_refused_and_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    evil = tmp_path / "itos_wt103.pkl"
    evil.write_bytes(f"cos\nsystem\n(S'touch {marker}'\ntR.".encode())
    with pytest.raises(ValueError, match="global os.system"):
        read_pickled_tokens(evil)
    assert not marker.exists()
    (tmp_path / "dict.pkl").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="not a list of tokens"):
        read_pickled_tokens(tmp_path / "dict.pkl")
    (tmp_path / "ok.pkl").write_bytes(pickle.dumps(OLD_ITOS))
    assert read_pickled_tokens(tmp_path / "ok.pkl") == OLD_ITOS


def test_fastai_names_keep_one_raw_weight_and_fill_the_tied_copies() -> None:
    state = fastai_state()
    del state["0.encoder_dp.emb.weight"], state["1.decoder.weight"]
    named = fastai_names(state)
    assert not any(".module.weight_hh_l0" in key for key in named)
    assert torch.equal(named["1.decoder.weight"], state["0.encoder.weight"])
    model = get_language_model(len(OLD_ITOS), SIZES)
    model.load_state_dict(named)  # strict: every name fits mentor's model
    only_copy = {k: v for k, v in state.items() if not k.endswith("_raw")}
    assert torch.equal(fastai_names(only_copy)["0.rnns.2.weight_hh_l0_raw"],
                       state["0.rnns.2.weight_hh_l0_raw"])  # fmt: skip


def test_offline_the_message_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MENTOR_HOME", str(tmp_path / "home"))  # MENTOR_OFFLINE is set
    with pytest.raises(FileNotFoundError) as err, pytest.warns(UserWarning):
        language_model_learner(lm_data(), pretrained=True)
    message = str(err.value)
    assert "MENTOR_OFFLINE" in message and "wt103-fwd.tgz" in message
    assert (
        "pretrained_fnames" in message and str(tmp_path / "home" / "weights" / "wt103") in message
    )
