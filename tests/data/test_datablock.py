"""The DataBlock API on mnist_tiny: summary, unknown labels, test sets, new sizes, show_batch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mentor.data.blocks import CategoryBlock, MultiCategoryBlock, RegressionBlock
from mentor.data.datablock import DataBlock
from mentor.data.items import get_image_files
from mentor.data.labels import parent_label
from mentor.data.splitters import GrandparentSplitter, IndexSplitter
from mentor.train import BCEWithLogitsLossFlat, CrossEntropyLossFlat, Learner
from mentor.vision.augment import aug_transforms
from mentor.vision.blocks import ImageBlock
from mentor.vision.resize import Resize


def mnist_block(**kwargs) -> DataBlock:
    defaults = dict(
        blocks=(ImageBlock("L"), CategoryBlock),
        get_items=get_image_files,
        get_y=parent_label,
        splitter=GrandparentSplitter(),
    )
    return DataBlock(**{**defaults, **kwargs})


def test_summary_walks_every_step(mnist_tiny: Path, capsys) -> None:
    text = mnist_block(item_tfms=[Resize(20)]).summary(mnist_tiny)
    assert "1428 items" in text and "709 training, 699 validation items" in text
    assert "CategoryBlock vocab of 2: ['3', '7']" in text
    assert "item transform Resize" in text and "item transform ToTensor" in text
    assert "tensor of shape [4, 1, 20, 20] (float32)" in text  # after the batch transforms
    assert "FAILED" not in text and text in capsys.readouterr().out


def test_summary_names_the_failing_step(mnist_tiny: Path) -> None:
    def broken_label(path: Path) -> str:
        raise ValueError(f"cannot label {path.name}")

    text = mnist_block(get_y=broken_label).summary(mnist_tiny)
    assert "FAILED with ValueError: cannot label" in text
    assert "fails at step 'setup (vocabularies)'" in text


def test_unknown_validation_label_names_the_label_and_the_vocab(mnist_tiny: Path) -> None:
    odd_one = get_image_files(mnist_tiny / "valid")[0]

    def label(path: Path) -> str:  # one validation image gets a label training never has
        return "8" if path == odd_one else parent_label(path)

    with pytest.raises(KeyError, match=r"label '8' is not in the vocabulary \['3', '7'\]"):
        mnist_block(get_y=label).dataloaders(mnist_tiny, num_workers=0, device="cpu")


def test_a_given_vocab_keeps_its_order(mnist_tiny: Path) -> None:
    block = mnist_block(blocks=(ImageBlock("L"), CategoryBlock(vocab=["7", "3"])))
    dls = block.dataloaders(mnist_tiny, bs=8, num_workers=0, device="cpu")
    assert dls.vocab == ["7", "3"]
    item_label = dls.train_ds[0][1]
    assert dls.vocab[int(item_label)] == parent_label(dls.train_ds.items[0])


def test_test_dl_uses_validation_transforms_and_checks_labels(mnist_tiny: Path) -> None:
    block = mnist_block(item_tfms=[Resize(24)], batch_tfms=aug_transforms())
    dls = block.dataloaders(mnist_tiny, bs=16, num_workers=0, device="cpu")
    test_files = get_image_files(mnist_tiny / "test")
    assert len(test_files) == 20
    batches = list(dls.test_dl(test_files))
    assert len(batches) == 1 and len(batches[0]) == 1  # inputs only
    first = batches[0][0]
    assert first.shape == (20, 1, 24, 24) and first.dtype == torch.float32
    again = next(iter(dls.test_dl(test_files)))[0]
    assert torch.equal(first, again)  # no augmentation: deterministic
    labelled = next(iter(dls.test_dl(dls.valid_ds.items[:8], with_labels=True)))
    assert len(labelled) == 2 and labelled[1].tolist() == [0] * 8
    with pytest.raises(KeyError, match="'test_label_9' is not in the vocabulary"):
        dls.test_dl([mnist_tiny / "test_label_9" / "x.png"], with_labels=True)


def test_new_keeps_items_and_splits_with_another_size(mnist_tiny: Path) -> None:
    dls = mnist_block(item_tfms=[Resize(16)]).dataloaders(
        mnist_tiny, bs=8, num_workers=0, device="cpu"
    )
    bigger = dls.new(size=32, bs=4)
    assert bigger.train_ds.items == dls.train_ds.items
    assert bigger.valid_ds.items == dls.valid_ds.items
    assert dls.one_batch()[0].shape == (8, 1, 16, 16)
    assert bigger.one_batch()[0].shape == (4, 1, 32, 32)
    assert next(iter(bigger.valid))[0].shape[-1] == 32


def test_show_batch_unique_shows_augmented_copies_of_one_item(mnist_tiny: Path, tmp_path) -> None:
    block = mnist_block(item_tfms=[Resize(28)], batch_tfms=aug_transforms(max_rotate=30))
    dls = block.dataloaders(mnist_tiny, bs=8, num_workers=0, device="cpu")
    batch = dls._unique_batch(6)
    images = batch[0]
    assert images.shape == (6, 1, 28, 28)
    assert not all(torch.equal(images[0], images[i]) for i in range(1, 6))  # augmented apart
    assert len(set(batch[1].tolist())) == 1  # the same item, so the same label
    fig = dls.show_batch(max_n=6, unique=True, fname=tmp_path / "unique.png")
    assert len(fig.axes) == 6 and (tmp_path / "unique.png").stat().st_size > 2_000


def test_learner_takes_the_loss_the_blocks_imply(mnist_tiny: Path) -> None:
    dls = mnist_block().dataloaders(mnist_tiny, bs=8, num_workers=0, device="cpu")
    learn = Learner(dls, torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 2)))
    assert isinstance(learn.loss_func, CrossEntropyLossFlat)
    multi = DataBlock(
        blocks=(ImageBlock("L"), MultiCategoryBlock(label_delim=" ")),
        get_items=get_image_files,
        get_y=lambda p: f"{parent_label(p)} digit",
        splitter=GrandparentSplitter(),
    ).dataloaders(mnist_tiny, bs=8, num_workers=0, device="cpu")
    assert multi.vocab == ["3", "7", "digit"]
    y = multi.one_batch()[1]
    assert y.shape == (8, 3) and torch.equal(y[:, 2], torch.ones(8))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 3))
    assert isinstance(Learner(multi, model).loss_func, BCEWithLogitsLossFlat)


def test_regression_targets_from_a_list_of_rows() -> None:
    rows = [{"x": [float(i), 1.0], "y": 2.0 * i} for i in range(20)]
    block = DataBlock(
        blocks=(RegressionBlock(), RegressionBlock()),
        get_x=lambda r: r["x"],
        get_y=lambda r: r["y"],
        splitter=IndexSplitter(list(range(15, 20))),
    )
    dls = block.dataloaders(rows, bs=5, num_workers=0, device="cpu", shuffle=False)
    x, y = dls.one_batch()
    assert x.shape == (5, 2) and y.tolist() == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert dls.c == 1 and dls.loss_spec == ("MSELossFlat", {})


def test_single_transforms_need_no_list(mnist_tiny: Path) -> None:
    block = mnist_block(item_tfms=Resize(12), batch_tfms=None)
    dls = block.dataloaders(mnist_tiny, bs=4, num_workers=0, device="cpu")
    assert dls.one_batch()[0].shape == (4, 1, 12, 12)


def test_unlabelled_data_has_inputs_only(mnist_tiny: Path) -> None:
    block = DataBlock(
        blocks=(ImageBlock("L"),), get_items=get_image_files, splitter=GrandparentSplitter()
    )
    dls = block.dataloaders(mnist_tiny, bs=4, num_workers=0, device="cpu")
    batch = dls.one_batch()
    assert len(batch) == 1 and batch[0].shape == (4, 1, 28, 28)
    assert dls.c is None and dls.vocab == [] and dls.loss_spec is None
