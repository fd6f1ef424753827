"""Grad-CAM on a model whose answer is known, and interpretation of a real image learner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from mentor.core.seed import set_seed
from mentor.data.loaders import TensorLoader
from mentor.train import CrossEntropyLossFlat, Learner
from mentor.vision import ClassificationInterpretation, grad_cam, show_heatmap
from mentor.vision.data import ImageDataLoaders
from mentor.vision.learner import vision_learner
from tests.helpers import tiny_folder


class CamLearner(Learner):
    """A learner with `grad_cam`, as vision learners have."""

    def grad_cam(
        self, img: Any, target: int | None = None, layer: nn.Module | None = None
    ) -> Tensor:
        return grad_cam(self, img, target=target, layer=layer)


def corner_image() -> Tensor:
    """A 16x16 greyscale image, dark but for a bright 4x4 square in the top-left corner."""
    img = torch.zeros(1, 16, 16)
    img[:, :4, :4] = 1.0
    return img


def brightness_learner() -> Learner:
    """Class 0 scores the mean brightness, class 1 its negative; the body is frozen."""
    conv = nn.Conv2d(1, 1, kernel_size=2, stride=2, bias=False)
    head_linear = nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        conv.weight.fill_(0.25)  # a 2x2 average: the activation is the image at half size
        head_linear.weight.copy_(torch.tensor([[1.0], [-1.0]]))
    body = nn.Sequential(conv, nn.ReLU())
    model = nn.Sequential(body, nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), head_linear))
    for p in body.parameters():
        p.requires_grad_(False)
    images = corner_image().expand(4, 1, 16, 16).clone()
    train = TensorLoader(images, torch.zeros(4, dtype=torch.long), bs=2)
    learn = Learner((train, None), model, loss_func=CrossEntropyLossFlat())
    learn.progress.show = False
    return learn


def test_grad_cam_peaks_where_the_class_evidence_is() -> None:
    learn = brightness_learner()
    learn.model.train()
    cam = grad_cam(learn, corner_image())
    assert cam.shape == (16, 16)
    assert cam.min() >= 0 and cam.max() == pytest.approx(1.0)
    row, col = divmod(int(cam.argmax()), 16)
    assert row < 4 and col < 4
    assert cam[8:, 8:].max() == 0  # nothing bright there: no evidence
    assert learn.model.training  # its mode is restored
    assert all(len(m._forward_hooks) == 0 for m in learn.model.modules())
    assert all(p.grad is None for p in learn.model.parameters())


def test_grad_cam_of_a_class_the_bright_square_argues_against_is_empty() -> None:
    learn = brightness_learner()
    learn.model.eval()
    cam = grad_cam(learn, corner_image().unsqueeze(0), target=1)
    assert cam.shape == (16, 16)
    assert cam.max() == 0
    assert not learn.model.training


def test_grad_cam_errors_say_what_to_pass() -> None:
    learn = brightness_learner()
    with pytest.raises(ValueError, match="one image"):
        grad_cam(learn, torch.zeros(2, 1, 16, 16))
    with pytest.raises(ValueError, match="target=5"):
        grad_cam(learn, corner_image(), target=5)
    with pytest.raises(ValueError, match=r"feature maps \[1, K, h, w\]"):
        grad_cam(learn, corner_image(), layer=learn.model[1][1])
    flat = Learner(learn.dls, nn.Linear(3, 2), loss_func=CrossEntropyLossFlat())
    with pytest.raises(ValueError, match="pass layer="):
        grad_cam(flat, torch.zeros(3, 4, 4))
    with pytest.raises(ValueError, match="test_dl"):
        grad_cam(learn, "picture.png")


def test_show_heatmap_draws_the_image_and_the_map(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    show_heatmap(corner_image()[0].numpy(), grad_cam(brightness_learner(), corner_image()), ax)
    assert len(ax.get_images()) == 2
    fname = tmp_path / "heatmap.png"
    fig.savefig(fname)
    assert fname.stat().st_size > 0


def test_interpretation_of_a_trained_image_learner(mnist_tiny: Path, tmp_path: Path) -> None:
    set_seed(0)
    path = tiny_folder(mnist_tiny, tmp_path / "tiny", n_train=8, n_valid=8)
    dls = ImageDataLoaders.from_folder(path, img_mode="L", bs=16, num_workers=0, device="cpu")
    learn = vision_learner(dls, "resnet18", pretrained=False)
    learn.progress.show = False
    learn.fit(1, 1e-3)  # one batch of 16: a short epoch
    cam_learn = CamLearner(dls, learn.model, loss_func=learn.loss_func)
    interp = ClassificationInterpretation.from_learner(cam_learn)
    matrix = interp.confusion_matrix()
    assert matrix.shape == (2, 2) and matrix.sum() == len(dls.valid_ds) == 16
    assert interp.vocab == ["3", "7"]
    confused = interp.most_confused()
    for actual, predicted, count in confused:
        assert actual != predicted
        assert count == matrix[interp.vocab.index(actual), interp.vocab.index(predicted)]
    assert sum(count for *_, count in confused) == matrix.sum() - matrix.trace()
    fname = tmp_path / "top_losses.png"
    fig = interp.plot_top_losses(4, heatmap=True, fname=fname)
    assert fname.stat().st_size > 0
    assert len(fig.axes[0].get_images()) == 2  # the digit and its heat map
    image_file = sorted((path / "valid" / "7").glob("*.png"))[0]
    stage = learn.model[0][5]  # the body's last maps are 1x1 at 28 pixels: look earlier
    cam = grad_cam(learn, image_file, layer=stage)
    assert cam.shape == (28, 28) and cam.min() >= 0 and cam.max() <= 1
    prepared = next(iter(dls.test_dl([image_file])))[0][0]  # [1, 28, 28], model scale
    torch.testing.assert_close(cam, grad_cam(learn, prepared, layer=stage))
