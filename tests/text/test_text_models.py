"""Tests for mentor.text.models: AWD-LSTM pieces, LM and classifier, char RNNs (tiny sizes)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from mentor.optim import freeze_to
from mentor.text.models import (
    AWD_LSTM,
    AWD_LSTM_SIZES,
    EmbeddingDropout,
    RNNDropout,
    SentenceEncoder,
    WeightDropout,
    awd_lstm_clas_split,
    awd_lstm_lm_split,
    generate,
    get_language_model,
    get_text_classifier,
    load_pretrained_lm,
    simple_gru,
    simple_lstm,
    simple_rnn,
)

TINY = AWD_LSTM_SIZES["tiny"]
VOCAB = 50


def tiny_encoder(**kwargs: float) -> AWD_LSTM:
    return AWD_LSTM(VOCAB, emb_sz=8, n_hid=12, n_layers=2, **kwargs)  # type: ignore[arg-type]


def test_awd_lstm_shapes_and_key_layout() -> None:
    model = tiny_encoder()
    assert model(torch.randint(0, VOCAB, (3, 7))).shape == (3, 7, 8)
    keys = set(model.state_dict())
    assert {"encoder.weight", "encoder_dp.emb.weight", "rnns.0.weight_hh_l0_raw"} <= keys
    assert {"rnns.1.module.weight_ih_l0", "rnns.1.module.bias_ih_l0"} <= keys
    assert "rnns.0.module.weight_hh_l0" not in keys
    assert model.rnns[1].module.hidden_size == 8  # the last layer outputs emb_sz


def test_embedding_dropout_drops_whole_rows() -> None:
    torch.manual_seed(0)
    emb = nn.Embedding(20, 6)
    drop = EmbeddingDropout(emb, 0.5)
    words = torch.arange(20).repeat(2, 1)  # every word twice
    out = drop(words)
    zero_rows = (out == 0).all(-1)
    assert zero_rows.any() and not zero_rows.all()
    assert torch.equal(zero_rows[0], zero_rows[1])  # same word, same fate
    kept = ~zero_rows[0]
    assert torch.allclose(out[0][kept], emb.weight[kept] * 2)
    drop.eval()
    assert torch.equal(drop(words), emb(words))


def test_rnn_dropout_mask_is_shared_across_time() -> None:
    torch.manual_seed(0)
    out = RNNDropout(0.5)(torch.ones(4, 9, 10))
    assert torch.equal(out, out[:, :1].expand_as(out))
    assert (out == 0).any() and (out == 2).any()
    dropout = RNNDropout(0.5).eval()
    x = torch.randn(2, 3, 4)
    assert dropout(x) is x


def test_weight_dropout_changes_weight_in_training_only() -> None:
    torch.manual_seed(0)
    wrapped = WeightDropout(nn.LSTM(4, 5, batch_first=True), 0.5)
    assert set(wrapped.state_dict()) == {
        "weight_hh_l0_raw", "module.weight_ih_l0", "module.bias_ih_l0", "module.bias_hh_l0",
    }  # fmt: skip
    x, state = torch.randn(2, 6, 4), (torch.randn(1, 2, 5), torch.randn(1, 2, 5))
    first, second = wrapped(x, state)[0], wrapped(x, state)[0]
    assert not torch.allclose(first, second)
    wrapped.eval()
    assert torch.equal(wrapped(x, state)[0], wrapped(x, state)[0])
    assert {name for name, _ in wrapped.named_parameters()} == set(wrapped.state_dict())
    wrapped.train()
    wrapped(x, state)[0].sum().backward()
    assert wrapped.weight_hh_l0_raw.grad is not None
    assert wrapped.module.weight_hh_l0.grad_fn is None  # no dropped tensor kept
    copy.deepcopy(wrapped)  # fails when a non-leaf tensor is held


def test_language_model_ties_decoder_to_embedding() -> None:
    lm = get_language_model(VOCAB, TINY)
    assert lm[1].decoder.weight is lm[0].encoder.weight
    assert lm(torch.randint(0, VOCAB, (2, 5))).shape == (2, 5, VOCAB)


def test_state_is_carried_and_detached() -> None:
    torch.manual_seed(0)
    model = tiny_encoder().eval()
    x = torch.randint(2, VOCAB, (2, 5))
    fresh = model(x)
    carried = model(x)
    assert not torch.allclose(fresh, carried)
    model.reset()
    assert torch.allclose(model(x), fresh)

    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):  # a growing graph would make the second backward fail
        model(x).sum().backward()
        opt.step()
        opt.zero_grad()
    assert model.hidden is not None
    for h, c in model.hidden:
        assert h.grad_fn is None and not h.requires_grad
        assert c.grad_fn is None and not c.requires_grad


def test_batch_size_change_and_reset_reinitialise_state() -> None:
    model = tiny_encoder().eval()
    model(torch.randint(2, VOCAB, (3, 4)))
    assert model.hidden is not None and model.hidden[0][0].shape[1] == 3
    single = torch.randint(2, VOCAB, (1, 4))
    out = model(single)
    model.reset()
    assert model.hidden is None
    assert torch.allclose(model(single), out)  # the new batch size started from zeros


def test_sentence_encoder_chunked_equals_unchunked() -> None:
    torch.manual_seed(0)
    module = tiny_encoder().eval()
    x = torch.randint(2, VOCAB, (3, 23))
    x[1, 15:] = 1
    x[2, 4:] = 1
    chunked, mask, lengths = SentenceEncoder(5, module)(x)
    whole, mask_whole, _ = SentenceEncoder(1000, module)(x)
    assert torch.allclose(chunked[mask], whole[mask], atol=1e-5)
    assert torch.equal(mask, mask_whole)
    assert lengths.tolist() == [23, 15, 4]


def test_classifier_is_padding_invariant() -> None:
    torch.manual_seed(0)
    clas = get_text_classifier(VOCAB, 3, seq_len=4, config=TINY).eval()
    text = torch.randint(2, VOCAB, (1, 9))
    longer = torch.randint(2, VOCAB, (1, 30))
    batch = torch.ones(2, 30, dtype=torch.long)
    batch[0] = longer
    batch[1, :9] = text
    alone, together = clas(text), clas(batch)
    assert together.shape == (2, 3)
    assert torch.allclose(alone[0], together[1], atol=1e-5)


def test_max_len_masks_only_the_last_tokens() -> None:
    module = tiny_encoder().eval()
    x = torch.full((2, 10), 1)
    x[0, :10] = 5
    x[1, :6] = 5
    _, mask, _ = SentenceEncoder(4, module, max_len=3)(x)
    assert mask[0].nonzero().flatten().tolist() == [7, 8, 9]
    assert mask[1].nonzero().flatten().tolist() == [3, 4, 5]


def test_classifier_split_and_freeze_to() -> None:
    clas = get_text_classifier(VOCAB, 3, config=TINY)
    groups = awd_lstm_clas_split(clas)
    assert len(groups) == 1 + TINY["n_layers"] + 1
    encoder = clas[0].module
    assert len(groups[0]) == 1 and groups[0][0] is encoder.encoder.weight
    assert {id(p) for p in groups[-1]} == {id(p) for p in clas[1].parameters()}
    assert sum(len(g) for g in groups) == len(list(clas.parameters()))
    freeze_to(clas, groups, -1, train_bn=False)
    trainable = {id(p) for p in clas.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in clas[1].parameters()}


def test_lm_split_puts_tied_embedding_last() -> None:
    lm = get_language_model(VOCAB, TINY)
    groups = awd_lstm_lm_split(lm)
    assert len(groups) == TINY["n_layers"] + 1
    assert any(p is lm[0].encoder.weight for p in groups[-1])
    assert sum(len(g) for g in groups) == len(list(lm.parameters()))


def test_generate() -> None:
    torch.manual_seed(0)
    lm = get_language_model(VOCAB, TINY)
    with torch.no_grad():
        lm[1].decoder.bias[0] = 50.0  # xxunk would win every draw
    ids = generate(lm, [3, 4, 5], 12, generator=torch.Generator().manual_seed(1))
    assert len(ids) == 12 and 0 not in ids
    assert lm.training  # mode restored
    greedy = generate(lm, [3, 4, 5], 6, temperature=0)
    assert greedy == generate(lm, [3, 4, 5], 6, temperature=0)
    assert generate(lm, [3], 4, temperature=0, no_unk=False) == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="prompt"):
        generate(lm, [], 3)


def test_load_pretrained_lm_maps_rows_and_means() -> None:
    old_itos = ["xxunk", "xxpad", "the", "cat"]
    new_itos = ["xxunk", "xxpad", "cat", "dog", "the"]
    old = get_language_model(len(old_itos), TINY)
    new = get_language_model(len(new_itos), TINY)
    report = load_pretrained_lm(new, old.state_dict(), old_itos, new_itos)
    assert (report.n_found, report.n_missing, report.missing) == (4, 1, ["dog"])
    old_emb, new_emb = old[0].encoder.weight, new[0].encoder.weight
    assert torch.equal(new_emb[2], old_emb[3]) and torch.equal(new_emb[4], old_emb[2])
    assert torch.allclose(new_emb[3], old_emb.mean(0))
    assert torch.allclose(new[1].decoder.bias[3], old[1].decoder.bias.mean())
    assert new[1].decoder.weight is new_emb
    with pytest.raises(ValueError, match="old_itos"):
        load_pretrained_lm(new, old.state_dict(), old_itos[:3], new_itos)


@pytest.mark.parametrize("factory", [simple_rnn, simple_gru, simple_lstm])
def test_char_rnns(factory) -> None:  # type: ignore[no-untyped-def]
    model = factory(30, n_hid=16, n_layers=2)
    x = torch.randint(0, 30, (2, 7))
    out = model(x)
    assert out.shape == (2, 7, 30)
    out.sum().backward()
    assert model.embedding.weight.grad is not None
    model(x).sum().backward()  # the state is detached between calls
    assert len(generate(model, [1, 2], 5)) == 5


def test_gradients_reach_embedding() -> None:
    clas = get_text_classifier(VOCAB, 2, seq_len=3, config=TINY)
    x = torch.randint(2, VOCAB, (4, 8))
    x[0, 5:] = 1
    clas(x).sum().backward()
    grad = clas[0].module.encoder.weight.grad
    assert grad is not None and grad.abs().sum() > 0
