"""Vision architectures: every registered model builds, runs forward and backward, loads weights."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

import mentor.vision.models as models
from mentor.core.registry import create_model, list_models

TORCHVISION_PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "resnext50_32x4d": 25_028_904,
}


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny batches gain nothing from intra-op threads, and they stall on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", list_models())
def test_forward_backward(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, n_out=10)
    x = torch.randn(2, 3, 64, 64)
    out = model(x)
    out.pow(2).mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads)
    norms = torch.stack([g.norm() for g in grads if g is not None])
    assert torch.isfinite(norms).all() and norms.sum() > 0
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()
    print(f"{name}: {n_params(model):,} parameters with 10 outputs")


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_parameter_counts_match_torchvision(name: str) -> None:
    assert n_params(create_model(name)) == TORCHVISION_PARAMS[name]


def test_resnet18_state_dict_names() -> None:
    keys = list(models.resnet18().state_dict())
    # 62 parameters + 20 BN layers x 3 buffers (running mean/var, num_batches_tracked)
    assert len(keys) == 122
    for key in ["conv1.weight", "bn1.num_batches_tracked", "layer1.0.conv1.weight"]:
        assert key in keys
    for key in ["layer2.0.downsample.0.weight", "layer4.1.bn2.running_var", "fc.bias"]:
        assert key in keys
    assert "layer1.0.downsample.0.weight" not in keys


def test_bottleneck_names_and_resnext_groups() -> None:
    state = models.resnet50().state_dict()
    assert "layer1.0.downsample.1.running_mean" in state
    assert state["layer4.2.conv3.weight"].shape == (2048, 512, 1, 1)
    resnext = models.resnext50_32x4d().state_dict()
    assert resnext["layer1.0.conv2.weight"].shape == (128, 4, 3, 3)


def test_c_in_changes_first_conv() -> None:
    model = models.resnet18(n_out=5, c_in=1)
    assert model.conv1.weight.shape == (64, 1, 7, 7)
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 5)


def test_load_weights_from_path(tmp_path: Path) -> None:
    source = models.resnet18()
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    loaded = models.resnet18(weights=path)
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_load_weights_keeps_new_head_when_n_out_differs(tmp_path: Path) -> None:
    source = models.resnet18()
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    loaded = models.resnet18(n_out=7, weights=str(path))
    assert loaded.fc.weight.shape == (7, 512)
    assert torch.equal(loaded.layer3[1].conv2.weight, source.layer3[1].conv2.weight)


def test_mismatched_weights_give_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save(models.resnet34(c_in=1).state_dict(), path)
    with pytest.raises(ValueError) as info:
        models.resnet18(weights=path)
    message = str(info.value)
    assert "unexpected (96)" in message and "layer1.2.conv1.weight" in message
    assert "shape (1): conv1.weight" in message and "conv1.weight" in message


def test_missing_keys_are_listed(tmp_path: Path) -> None:
    state = models.resnet18().state_dict()
    del state["layer2.0.bn1.running_mean"]
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"missing \(1\): layer2.0.bn1.running_mean"):
        models.resnet18(weights=path)


def test_pretrained_without_file_explains_where_to_put_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MENTOR_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        models.resnet18(pretrained=True)
    assert str(tmp_path / "weights" / "resnet18.pth") in str(info.value)
    assert "download" in str(info.value)


def test_pretrained_finds_file_in_mentor_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MENTOR_HOME", str(tmp_path))
    source = models.resnet18()
    (tmp_path / "weights").mkdir()
    torch.save(source.state_dict(), tmp_path / "weights" / "resnet18.pth")
    loaded = models.resnet18(n_out=3, pretrained=True)
    assert torch.equal(loaded.conv1.weight, source.conv1.weight)


def test_xresnet18_single_channel_and_zero_bn() -> None:
    model = models.xresnet18(n_out=10, c_in=1)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    blocks = [m for m in model.modules() if isinstance(m, models.ResBlock)]
    assert len(blocks) == 8
    for block in blocks:
        last_bn = block.convs[-1][1]
        assert isinstance(last_bn, nn.BatchNorm2d)
        assert torch.all(last_bn.weight == 0)
    first_conv = model[0][0]
    assert first_conv.weight.shape == (32, 1, 3, 3) and first_conv.stride == (2, 2)


def test_xresnet_shortcut_uses_average_pool() -> None:
    block = models.xresnet50()[5][0]  # first block of the second stage
    assert isinstance(block.shortcut[0], nn.AvgPool2d)
    assert block.shortcut[1][0].weight.shape == (512, 256, 1, 1)


def test_every_registered_model_has_metadata() -> None:
    assert set(list_models()) <= set(models.MODEL_META)


@pytest.mark.parametrize("name", sorted(models.MODEL_META))
def test_body_cut_gives_n_features(name: str) -> None:
    cut, n_features = models.body_and_features(name)
    body = nn.Sequential(*list(create_model(name).children())[:cut]).eval()
    with torch.no_grad():
        features = body(torch.randn(1, 3, 32, 32))
    assert features.ndim == 4 and features.shape[1] == n_features


def test_body_and_features_unknown_name() -> None:
    with pytest.raises(KeyError, match="resnet18"):
        models.body_and_features("resnet9000")


def test_res_block_and_conv_layer_shapes() -> None:
    conv = models.ConvLayer(3, 8, stride=2)
    assert conv[0].bias is None and conv(torch.randn(1, 3, 16, 16)).shape == (1, 8, 8, 8)
    plain = models.ConvLayer(3, 8, bn=False, act=False)
    assert len(plain) == 1 and plain[0].bias is not None
    block = models.ResBlock(4, 64, 32, stride=2)
    assert block(torch.randn(1, 64, 15, 15)).shape == (1, 128, 8, 8)
    identity = models.ResBlock(1, 16, 16)
    assert len(identity.shortcut) == 0


def test_simple_cnn_trains_a_step() -> None:
    torch.manual_seed(0)
    model = models.simple_cnn((1, 8, 16), n_out=4)
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 4, (8,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(5):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    with pytest.raises(ValueError, match="at least 2"):
        models.simple_cnn((3,))


def test_small_cnn_shapes_and_cut() -> None:
    from mentor.vision.models import MODEL_META, small_cnn

    model = small_cnn(n_out=3, c_in=1)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 3)
    assert model(torch.zeros(2, 1, 64, 48)).shape == (2, 3)
    meta = MODEL_META["small_cnn"]
    body = torch.nn.Sequential(*list(model.children())[: meta.cut])
    assert body(torch.zeros(1, 1, 28, 28)).shape == (1, meta.n_features, 4, 4)
    assert not meta.has_weights
    assert sum(p.numel() for p in model.parameters()) < 120_000
