"""Masks and points export and predict on the raw image: class maps at the input's size,
points in its pixels, mapped back through the validation resize, crop or pad."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mentor.core.seed import set_seed
from mentor.data import DataBlock
from mentor.inference.predictor import Predictor
from mentor.train import Learner
from mentor.vision.blocks import ImageBlock, MaskBlock, PointBlock
from mentor.vision.resize import Resize

WIDTH, HEIGHT = 60, 40  # raw images wider than tall, resized to 20 x 20
MODELS = "tests.inference.fixture_models"


def _boxes(n: int) -> tuple[list[np.ndarray], list[np.ndarray], list[list[list[float]]]]:
    """Noisy images with one bright box each, its mask, and its centre as a point."""
    rng = np.random.default_rng(0)
    images, masks, centres = [], [], []
    for _ in range(n):
        left, top = int(rng.integers(12, 36)), int(rng.integers(4, 20))
        image = rng.integers(0, 60, size=(HEIGHT, WIDTH, 3)).astype(np.uint8)
        image[top : top + 14, left : left + 14] = 230
        mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
        mask[top : top + 14, left : left + 14] = 1
        images.append(image)
        masks.append(mask)
        centres.append([[left + 7.0, top + 7.0]])
    return images, masks, centres


@pytest.mark.parametrize(
    ("method", "to_pixels"),
    [
        # crop: the centre 40 x 40 scaled by 1/2; squish: each axis scaled to 20
        ("crop", lambda p: ((p[0] + 1) / 2 * 40 + 10, (p[1] + 1) / 2 * 40)),
        ("squish", lambda p: ((p[0] + 1) / 2 * 60, (p[1] + 1) / 2 * 40)),
        # pad: scaled by 1/3 to 20 x 13, 3 rows of padding above
        ("pad", lambda p: ((p[0] + 1) / 2 * 60, ((p[1] + 1) / 2 * 20 - 3) * 40 / 13)),
    ],
)
def test_geometry_maps_model_input_positions_to_raw_pixels(method: str, to_pixels) -> None:
    from mentor.data.encoders import BlockEncoder
    from mentor.data.transforms import IntToFloat, ToTensor

    encoder = BlockEncoder([ImageBlock()], [Resize(20, method=method), ToTensor()], [IntToFloat()])
    geometry = encoder.geometry(np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8))
    assert geometry is not None and (geometry.width, geometry.height) == (WIDTH, HEIGHT)
    for point in ([-1.0, -1.0], [0.3, -0.6], [1.0, 1.0]):
        got = geometry.to_pixels(torch.tensor([point]))[0].tolist()
        assert got == pytest.approx(to_pixels(point), abs=1e-4)


def _learner(target, images, targets, model, loss_func=None) -> Learner:
    block = DataBlock(
        blocks=(ImageBlock(), target),
        get_x=lambda i: images[i],
        get_y=lambda i: targets[i],
        splitter=lambda items: (list(range(24)), list(range(24, 32))),
        item_tfms=[Resize(20)],
    )
    dls = block.dataloaders(list(range(32)), bs=8, num_workers=0, device="cpu")
    learn = Learner(dls, model, loss_func=loss_func)
    learn.progress.show = False
    return learn


def test_a_segmentation_model_predicts_a_mask_of_the_raw_image(tmp_path: Path) -> None:
    from mentor.train.losses import CrossEntropyLossFlat
    from tests.inference.fixture_models import TinySegmenter

    set_seed(0)
    images, masks, _ = _boxes(32)
    mask_images = [Image.fromarray(m) for m in masks]
    learn = _learner(MaskBlock(["background", "box"]), images, mask_images, TinySegmenter(2),
                     CrossEntropyLossFlat(axis=1))  # fmt: skip
    learn.model_spec = {"factory": f"{MODELS}:TinySegmenter", "kwargs": {"n_classes": 2}}
    learn.fit_one_cycle(6, 3e-2)
    fig = learn.show_results(max_n=2)  # the target mask beside the predicted one, per item
    assert len(fig.axes) == 4 and all(len(ax.get_images()) == 2 for ax in fig.axes)
    predictor = Predictor.load(learn.export(tmp_path / "boxes"), trusted_modules=["tests"])

    mask, probs = predictor.predict(images[30])
    assert mask.shape == (HEIGHT, WIDTH) and probs.shape == (2, 20, 20)
    out = probs.argmax(0).numpy()  # the model's map of the centre 40 x 40, scaled by 1/2
    rows = np.floor((np.arange(HEIGHT) + 0.5) / 2).astype(int)
    cols = np.clip(np.floor((np.arange(WIDTH) + 0.5 - 10) / 2), 0, 19).astype(int)
    assert np.array_equal(mask, out[np.ix_(rows, cols)])
    inside = (slice(None), slice(10, 50))  # the part the model saw
    assert (mask[inside] == masks[30][inside]).mean() >= 0.9
    masks_batch, _ = predictor.predict_batch(images[24:], bs=3)
    assert [m.shape for m in masks_batch] == [(HEIGHT, WIDTH)] * 8
    assert np.array_equal(masks_batch[6], mask)


def test_a_point_model_predicts_pixels_of_the_raw_image(tmp_path: Path) -> None:
    from tests.inference.fixture_models import TinyCNN

    set_seed(0)
    images, _, centres = _boxes(32)
    learn = _learner(PointBlock(), images, centres, TinyCNN(2))
    learn.model_spec = {"factory": f"{MODELS}:TinyCNN", "kwargs": {"n_out": 2}}
    learn.fit_one_cycle(2, 1e-2)
    predictor = Predictor.load(learn.export(tmp_path / "centres"), trusted_modules=["tests"])

    points, outputs = predictor.predict(images[30])
    x_out, y_out = outputs.tolist()
    expected = [(x_out + 1) / 2 * 40 + 10, (y_out + 1) / 2 * 40]
    assert points == [pytest.approx(expected, abs=1e-4)]
    batch, _ = predictor.predict_batch(images[28:32], bs=3)
    assert batch[2] == [pytest.approx(expected, abs=1e-4)]
