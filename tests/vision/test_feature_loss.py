"""FeatureLoss (lesson 7's perceptual loss): its parts, weights, frozen network and the data's
normalization undone; LossMetrics in the epoch table."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from mentor.vision.feature_loss import (
    FeatureLoss,
    LossMetrics,
    default_layers,
    gram_matrix,
    relative_l1,
)
from mentor.vision.models.unet import encoder_sizes


@pytest.fixture(scope="module")
def loss() -> FeatureLoss:
    return FeatureLoss("efficientnet_lite0")


def _images(n: int = 2, size: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_gram_matrix_is_the_channel_correlations_over_c_h_w() -> None:
    x = torch.tensor([[[[1.0, 2.0]], [[3.0, -1.0]]]])  # [1, 2 channels, 1, 2]
    expected = torch.tensor([[[5.0, 1.0], [1.0, 10.0]]]) / (2 * 1 * 2)
    assert torch.allclose(gram_matrix(x), expected)


def test_default_layers_are_the_last_at_a_quarter_an_eighth_and_a_sixteenth(
    loss: FeatureLoss,
) -> None:
    assert loss.layers == [5, 7, 13]  # EfficientNet-Lite0's 24-, 40- and 112-channel ends
    sizes = encoder_sizes(loss.net, 3, (128, 128))
    assert [sizes[i] for i in loss.layers] == [(24, 32, 32), (40, 16, 16), (112, 8, 8)]
    shallow = copy.deepcopy(loss.net[:8])  # a net without 1/16 of the input: the others
    assert default_layers(shallow) == [5, 7]


def test_the_loss_is_the_weighted_sum_of_its_parts_and_zero_on_the_target(
    loss: FeatureLoss,
) -> None:
    targ, pred = _images(seed=1), _images(seed=2)
    total = loss(pred, targ)
    weights = [loss.pixel_wgt, *loss.layer_wgts, *loss.style_wgts]
    assert list(loss.parts) == loss.part_names == [
        "pixel", "feat_0", "feat_1", "feat_2", "gram_0", "gram_1", "gram_2",
    ]  # fmt: skip
    assert float(total) == pytest.approx(float(sum(loss.parts.values())), rel=1e-5)
    assert float(loss.parts["pixel"]) == pytest.approx(float(F.l1_loss(pred, targ)), rel=1e-6)
    feats_p, feats_t = loss.features(pred), loss.features(targ)
    feat_1 = weights[2] * relative_l1(feats_p[1], feats_t[1])
    assert float(loss.parts["feat_1"]) == pytest.approx(float(feat_1), rel=1e-5)
    gram_2 = weights[6] * relative_l1(gram_matrix(feats_p[2]), gram_matrix(feats_t[2]))
    assert float(loss.parts["gram_2"]) == pytest.approx(float(gram_2), rel=1e-5)
    assert float(loss(targ, targ)) == pytest.approx(0.0, abs=1e-6)


def test_gradients_reach_the_prediction_but_not_the_frozen_network(loss: FeatureLoss) -> None:
    pred = _images(seed=3).requires_grad_(True)
    loss.train()  # as a learner's fit would: the network keeps its pretrained BN statistics
    loss(pred, _images(seed=4)).backward()
    assert not loss.net.training
    assert pred.grad is not None and float(pred.grad.abs().sum()) > 0
    assert all(p.grad is None and not p.requires_grad for p in loss.net.parameters())


def test_the_datas_normalization_is_undone_before_the_network() -> None:
    imagenet = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    plain = FeatureLoss("efficientnet_lite0", pretrained=False)
    normalized = FeatureLoss("efficientnet_lite0", pretrained=False, stats=imagenet)
    normalized.load_state_dict(plain.state_dict())
    pixels = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    mean, std = (torch.tensor(s).view(1, 3, 1, 1) for s in imagenet)
    as_net_sees = (pixels - 0.5) / 0.5  # EfficientNet-Lite's weights expect [-1, 1]
    got = normalized.features((pixels - mean) / std)
    for a, b in zip(got, plain.features(as_net_sees)):
        assert torch.allclose(a, b, atol=1e-4)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match=r"one weight per layer: 2 layers \[1, 2\]"):
        FeatureLoss(pretrained=False, layers=[1, 2])
    with pytest.raises(ValueError, match="indices 0 to"):
        FeatureLoss(pretrained=False, layers=[99], layer_wgts=[1.0])
    with pytest.raises(KeyError, match="does not know where to cut 'not_a_model'"):
        FeatureLoss("not_a_model", pretrained=False)
    loss = FeatureLoss(pretrained=False)
    with pytest.raises(ValueError, match=r"predictions \[2, 3, 8, 8\] and targets \[2, 3, 9"):
        loss(torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 9, 9))
    with pytest.raises(ValueError, match="positive std"):
        loss.use_stats([0.5, 0.5, 0.5], [0.5, 0.0, 0.5])


def test_loss_metrics_are_the_batch_size_weighted_parts(loss: FeatureLoss) -> None:
    metrics = LossMetrics(loss)
    assert [m.name for m in metrics] == loss.part_names
    batches = [(_images(3, seed=6), _images(3, seed=7)), (_images(1, seed=8), _images(1, seed=9))]
    expected = {name: 0.0 for name in loss.part_names}
    for metric in metrics:
        metric.reset()
    for pred, targ in batches:
        loss(pred, targ)  # the loop computes the loss before the metrics read it
        for name, value in loss.parts.items():
            expected[name] += float(value) * len(pred)
        for metric in metrics:
            metric.accumulate(pred, targ)
    for metric in metrics:
        assert metric.value == pytest.approx(expected[metric.name] / 4, rel=1e-5)
    stale = metrics[0]  # parts of another prediction: the metric runs the loss itself
    stale.reset()
    pred, targ = batches[0]
    loss(*batches[1])
    stale.accumulate(pred, targ)
    assert stale.value == pytest.approx(float(F.l1_loss(pred, targ)), rel=1e-5)
