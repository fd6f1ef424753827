"""`Learner.predict` on raw items and `Learner.tta`, on DataBlocks of generated rows (no
images): decoding per target block, errors, and the test-time augmentation blend."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
import torch
from torch import nn

from mentor.core.seed import set_seed
from mentor.data.blocks import CategoryBlock, RegressionBlock, TransformBlock
from mentor.data.datablock import DataBlock
from mentor.data.loaders import DataLoaders
from mentor.data.splitters import ColSplitter
from mentor.data.transforms import BatchTransform, ItemTransform, Kinds
from mentor.train import Learner, MSELossFlat
from mentor.train.tta import replay_loader


def rows(n: int = 48) -> pd.DataFrame:
    """Two features, a class ('neg'/'pos' from their sum), a number, and a validation flag."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 2, generator=gen)
    total = x.sum(1)
    labels = ["pos" if t > 0 else "neg" for t in total.tolist()]
    return pd.DataFrame(
        {"a": x[:, 0].tolist(), "b": x[:, 1].tolist(), "label": labels,
         "value": total.tolist(), "is_valid": [i % 3 == 0 for i in range(n)]}
    )  # fmt: skip


def features(row: Any) -> torch.Tensor:
    return torch.tensor([row["a"], row["b"]], dtype=torch.float32)


def label(row: Any) -> Any:
    return row["label"]


def value(row: Any) -> Any:
    return row["value"]


class Double(BatchTransform):
    """A deterministic 'augmentation': inputs times two, on training batches only."""

    train_only = True

    def encode(self, batch: list[Any], kinds: Kinds) -> list[Any]:
        return [batch[0] * 2, *batch[1:]]


class AddOneWhenTraining(ItemTransform):
    """An item transform whose training mode differs: +1 on the inputs."""

    def __call__(self, sample: list[Any], kinds: Kinds, train: bool) -> list[Any]:
        return [sample[0] + 1 if train else sample[0], *sample[1:]]


def row_learner(target: Any = None, get_y: Any = label, **block_kw: Any) -> Learner:
    set_seed(0)
    target = target if target is not None else CategoryBlock()
    block = DataBlock(
        blocks=(TransformBlock(), target), get_x=features, get_y=get_y,
        splitter=ColSplitter("is_valid"), **block_kw,
    )  # fmt: skip
    dls = block.dataloaders(rows(), bs=8, num_workers=0, device="cpu")
    n_out = dls.c or 1
    learn = Learner(dls, nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, n_out)))
    learn.progress.show = False
    return learn


def test_predict_a_dataframe_row_and_a_dict_decodes_through_the_vocab() -> None:
    learn = row_learner()
    learn.fit(2, 3e-2)
    df = rows()
    learn.model.train()
    for item in (df.iloc[0], df.to_dict("records")[1]):
        decoded, index, probs = learn.predict(item)
        with torch.no_grad():
            learn.model.eval()
            expected = torch.softmax(learn.model(features(item)[None]), 1)[0]
            learn.model.train()
        torch.testing.assert_close(probs, expected)
        assert probs.sum().item() == pytest.approx(1.0, abs=1e-6)
        assert int(index) == int(expected.argmax())
        assert decoded == learn.dls.vocab[int(index)]
        assert decoded in ("neg", "pos")
    assert learn.model.training  # predict restores the model's mode


def test_predict_regression_gives_the_number_and_the_raw_output() -> None:
    learn = row_learner(RegressionBlock(), get_y=value)
    assert isinstance(learn.loss_func, MSELossFlat)
    item = rows().iloc[3]
    decoded, tensor, raw = learn.predict(item)
    with torch.no_grad():
        expected = learn.model.eval()(features(item)[None])[0]
    torch.testing.assert_close(raw, expected)
    torch.testing.assert_close(tensor, expected)
    assert isinstance(decoded, float) and decoded == pytest.approx(expected.item())


def test_predict_on_unlabelled_data_returns_the_activated_output() -> None:
    block = DataBlock(blocks=(TransformBlock(),), get_x=features, splitter=ColSplitter("is_valid"))
    dls = block.dataloaders(rows(), bs=8, num_workers=0, device="cpu")
    assert dls.target_block is None
    learn = Learner(dls, nn.Linear(2, 3), loss_func=MSELossFlat())
    decoded, tensor, out = learn.predict(rows().iloc[0])
    assert out.shape == (3,)
    assert torch.equal(decoded, out) and torch.equal(tensor, out)


def test_predict_a_raw_item_without_test_dl_says_what_to_pass() -> None:
    x, y = torch.randn(16, 2), torch.randint(0, 2, (16,))
    learn = Learner(DataLoaders.from_tensors((x, y), (x, y), device="cpu"), nn.Linear(2, 2))
    with pytest.raises(TypeError, match="predict got a dict.*no test_dl.*model-ready tensor"):
        learn.predict({"a": 1.0, "b": 2.0})
    decoded, index, probs = learn.predict(x[0])  # a tensor still works: the model-ready path
    assert torch.equal(decoded, index) and probs.shape == (2,)


def test_tta_blends_plain_and_augmented_predictions_fastai_style() -> None:
    learn = row_learner(batch_tfms=[Double()])
    plain, targets = learn.get_preds()
    loader = learn.dls.valid
    assert loader is not None
    x_valid = torch.cat([batch[0] for batch in loader])
    with torch.no_grad():
        augmented = torch.softmax(learn.model.eval()(x_valid * 2), 1)
    preds, tta_targets = learn.tta(n=2, beta=0.25)
    assert preds.shape == plain.shape == (16, 2)
    assert torch.equal(tta_targets, targets)
    torch.testing.assert_close(preds, 0.25 * plain + 0.75 * augmented)
    torch.testing.assert_close(learn.tta(beta=0.0)[0], augmented)
    # n=0 (no augmented pass) and beta=1 (all weight on the plain pass) are get_preds
    torch.testing.assert_close(learn.tta(n=0)[0], plain)
    torch.testing.assert_close(learn.tta(beta=1.0)[0], plain)
    with pytest.raises(ValueError, match="beta=1.5"):
        learn.tta(beta=1.5)


def test_tta_with_deterministic_transforms_equals_get_preds_and_runs_on_test_dl() -> None:
    learn = row_learner()
    plain, targets = learn.get_preds()
    preds, _ = learn.tta(n=3)
    torch.testing.assert_close(preds, plain)
    test_rows = rows().iloc[:5]
    test_preds, test_targets = learn.tta(dl=learn.dls.test_dl(test_rows), n=2)
    assert test_preds.shape == (5, 2) and test_targets is None


def test_replay_loader_runs_item_transforms_in_the_asked_mode_in_order() -> None:
    learn = row_learner(item_tfms=[AddOneWhenTraining()])
    dls = learn.dls
    assert isinstance(dls, DataLoaders)
    in_order = replay_loader(dls.train, train=False, block=getattr(dls, "block", None), bs=5)
    x_plain = torch.cat([batch[0] for batch in in_order])
    assert x_plain.shape == (32, 2)  # every item, the last partial batch too
    train_rows = [r for r in rows().to_dict("records") if not r["is_valid"]]
    assert torch.equal(x_plain, torch.stack([features(r) for r in train_rows]))
    as_training = replay_loader(dls.train, train=True, block=getattr(dls, "block", None))
    assert torch.equal(torch.cat([batch[0] for batch in as_training]), x_plain + 1)


def test_tta_needs_a_datablock() -> None:
    x, y = torch.randn(16, 2), torch.randint(0, 2, (16,))
    learn = Learner(DataLoaders.from_tensors((x, y), (x, y), device="cpu"), nn.Linear(2, 2))
    with pytest.raises(TypeError, match="tta needs data built by a DataBlock"):
        learn.tta()
