"""predict on raw images (paths, PIL images, arrays), multi-label predict, and tta, with
vision learners on slices of mnist_tiny."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mentor.core.seed import set_seed
from mentor.data.blocks import MultiCategoryBlock
from mentor.data.datablock import DataBlock
from mentor.data.items import get_image_files
from mentor.data.labels import parent_label
from mentor.data.splitters import GrandparentSplitter
from mentor.vision.augment import Flip
from mentor.vision.blocks import ImageBlock
from mentor.vision.data import ImageDataLoaders
from mentor.vision.learner import VisionLearner, vision_learner


@pytest.fixture(scope="module")
def tiny(mnist_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 training and 8 validation images of each class."""
    dest = tmp_path_factory.mktemp("tiny")
    for split in ("train", "valid"):
        for label in ("3", "7"):
            (dest / split / label).mkdir(parents=True)
            for file in sorted((mnist_tiny / split / label).glob("*.png"))[:8]:
                shutil.copy(file, dest / split / label / file.name)
    return dest


def test_predict_a_path_a_pil_image_and_an_array_alike(tiny: Path) -> None:
    set_seed(0)
    dls = ImageDataLoaders.from_folder(tiny, img_mode="L", bs=8, num_workers=0, device="cpu")
    learn = vision_learner(dls, "resnet18", pretrained=False)
    assert isinstance(learn, VisionLearner)
    file = sorted(tiny.glob("valid/7/*.png"))[0]
    image = Image.open(file)
    results = [learn.predict(item) for item in (file, str(file), image, np.asarray(image))]
    label, index, probs = results[0]
    assert label == learn.dls.vocab[int(index)] and label in ("3", "7")
    assert int(index) == int(probs.argmax())
    assert probs.shape == (2,) and probs.sum().item() == pytest.approx(1.0, abs=1e-5)
    for other_label, other_index, other_probs in results[1:]:
        assert other_label == label and int(other_index) == int(index)
        torch.testing.assert_close(other_probs, probs)
    # the same as the model on the validation batch that holds the image
    preds, _ = learn.get_preds(dl=learn.dls.test_dl([file]))
    torch.testing.assert_close(preds[0], probs)


def test_predict_a_missing_file_names_it(tiny: Path) -> None:
    dls = ImageDataLoaders.from_folder(tiny, img_mode="L", bs=8, num_workers=0, device="cpu")
    learn = vision_learner(dls, "resnet18", pretrained=False)
    with pytest.raises(FileNotFoundError, match="nope.png' does not exist"):
        learn.predict(tiny / "nope.png")


def two_labels(path: Path) -> list[str]:
    return [parent_label(path), "digit"]


def test_multi_label_predict_returns_the_labels_above_the_loss_threshold(tiny: Path) -> None:
    set_seed(0)
    block = DataBlock(
        blocks=(ImageBlock("L"), MultiCategoryBlock), get_items=get_image_files,
        get_y=two_labels, splitter=GrandparentSplitter(),
    )  # fmt: skip
    dls = block.dataloaders(tiny, bs=8, num_workers=0, device="cpu")
    assert dls.vocab == ["3", "7", "digit"]
    learn = vision_learner(dls, "resnet18", pretrained=False)
    last = learn.model[1][-1]
    with torch.no_grad():  # an untrained random body saturates the sigmoid: tame the logits
        last.weight.mul_(1e-3 / last.weight.abs().max())
    files = sorted(tiny.glob("valid/*/*.png"))[::4]
    all_probs = torch.stack([learn.predict(file)[2] for file in files])
    assert ((all_probs > 0.01) & (all_probs < 0.99)).all()
    median = all_probs.median().item()
    for thresh in (0.5, median):
        learn.loss_func.thresh = thresh  # type: ignore[union-attr]
        for file, expected in zip(files, all_probs):
            labels, one_hot, probs = learn.predict(file)
            torch.testing.assert_close(probs, expected)
            assert one_hot.dtype == torch.bool and torch.equal(one_hot, probs > thresh)
            assert labels == [v for v, p in zip(dls.vocab, probs.tolist()) if p > thresh]
    assert 0 < (all_probs > median).sum() < all_probs.numel()  # some labels in, some out


def test_tta_on_images_blends_augmented_passes(tiny: Path) -> None:
    set_seed(0)
    flip = Flip(p=1.0)  # always flips: the augmented pass is the mirrored image
    dls = ImageDataLoaders.from_folder(
        tiny, img_mode="L", bs=8, num_workers=0, device="cpu", batch_tfms=[flip]
    )
    learn = vision_learner(dls, "resnet18", pretrained=False)
    plain, targets = learn.get_preds()
    preds, tta_targets = learn.tta(n=2)
    assert preds.shape == (16, 2) and torch.equal(tta_targets, targets)
    assert not torch.allclose(preds, plain)
    torch.testing.assert_close(learn.tta(n=0)[0], plain)
    learn.model.train()
    mirrored, _ = learn.tta(n=1, beta=0.0)
    assert learn.model.training  # tta restores the model's mode
    valid = learn.dls.valid
    assert valid is not None
    x = torch.cat([batch[0] for batch in valid])
    with torch.no_grad():
        expected = torch.softmax(learn.model.eval()(x.flip(-1)), 1)
    torch.testing.assert_close(mirrored, expected, atol=1e-5, rtol=1e-4)
