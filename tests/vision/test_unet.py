"""DynamicUnet: skips where each family downsamples, output at the input's size for any size,
ICNR upsampling, options, memory formats, copies, rebuild from the spec, and that it learns."""

from __future__ import annotations

import copy
import io
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

from mentor.core.spec import spec_name
from mentor.inference.load import resolve_factory
from mentor.vision.models.unet import (
    DynamicUnet,
    PixelShuffleICNR,
    SelfAttention,
    unet_model,
    unet_splitter,
)

SIZES = [(64, 64), (96, 128), (97, 131)]
# per family, at 64 x 64: the encoder children the skips come from and their channels
# (the resolutions are 32, 16, 8, 4: the last output before each downsampling)
FAMILY_SKIPS = {
    "efficientnet_lite0": ((3, 5, 7, 13), (16, 24, 40, 112)),  # MBConv blocks 0, 2, 4, 10
    "resnet18": ((2, 4, 5, 6), (64, 64, 128, 256)),  # stem ReLU, layer1, layer2, layer3
    "xresnet18": ((2, 4, 5, 6), (64, 64, 128, 256)),  # third stem conv, stages 1-3
    "resnext50_32x4d": ((2, 4, 5, 6), (64, 256, 512, 1024)),
}
# the bottleneck family's decoder has 339M parameters (fastai's doubling middle conv over
# 2048 channels): its shapes are checked on the meta device, which allocates nothing
ON_META = {"resnext50_32x4d"}
SPEC: dict[str, Any] = {
    "arch": "resnet18", "n_out": 3, "img_size": [32, 32], "c_in": 3, "blur": False,
    "blur_final": True, "self_attention": False, "y_range": None, "last_cross": True,
    "bottle": False, "act_cls": "relu", "norm_type": "batch",
}  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny batches gain nothing from intra-op threads, and they stall on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def unet() -> DynamicUnet:
    """A resnet18 U-Net from scratch for 32 x 32 images, 3 classes, in eval mode."""
    torch.manual_seed(0)
    return unet_model(**SPEC).eval()


def halvings(size: tuple[int, int], times: int) -> list[tuple[int, int]]:
    """The sizes after 1..times stride-2 layers that round up (padded convs, TF 'SAME')."""
    h, w = size
    return [(math.ceil(h / 2**k), math.ceil(w / 2**k)) for k in range(1, times + 1)]


@pytest.mark.parametrize("arch", sorted(FAMILY_SKIPS))
def test_output_has_input_size_and_skips_sit_at_each_resolution(arch: str) -> None:
    indices, channels = FAMILY_SKIPS[arch]
    device = torch.device("meta" if arch in ON_META else "cpu")
    torch.manual_seed(0)
    with device:
        model = unet_model(arch, n_out=5, img_size=(64, 64)).eval()
    assert model.skip_indices == indices
    assert model.skip_sizes == tuple((c, *hw) for c, hw in zip(channels, halvings((64, 64), 4)))
    for size in SIZES:
        x = torch.randn(1, 3, *size, device=device)
        with torch.no_grad():
            _, skips = model.encode(x)
            out = model(x)
        assert [tuple(s.shape[-2:]) for s in skips] == halvings(size, 4)
        assert [s.shape[1] for s in skips] == list(channels)
        assert out.shape == (1, 5, *size)
        if arch not in ON_META:
            assert torch.isfinite(out).all()


def test_greyscale_input() -> None:
    model = unet_model("xresnet18", n_out=2, img_size=(64, 64), c_in=1).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 33, 47))
    assert out.shape == (2, 2, 33, 47)
    assert model.c_in == 1 and model.encoder[0][0].in_channels == 1


def test_icnr_starts_as_nearest_neighbour_upsampling(unet: DynamicUnet) -> None:
    shuffle = PixelShuffleICNR(8, 4).eval()
    with torch.no_grad():
        out = shuffle(torch.randn(2, 8, 5, 7))
        block_out = unet.blocks[0].shuffle(torch.randn(1, 512, 3, 3))
    assert out.shape == (2, 4, 10, 14)
    for up in (out, block_out):
        top_left = up[..., ::2, ::2]
        for dy, dx in [(0, 1), (1, 0), (1, 1)]:
            # equal weights for the four sub-pixels; a 512-channel convolution may still sum
            # them in different orders (oneDNN's blocked kernels): equal to float rounding
            torch.testing.assert_close(up[..., dy::2, dx::2], top_left, rtol=0, atol=1e-5)
        assert top_left.std() > 0  # not equal by being constant


def test_y_range_bounds_the_output() -> None:
    torch.manual_seed(0)
    model = unet_model("resnet18", n_out=1, img_size=(32, 32), y_range=(0.25, 0.3)).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32) * 5)
    assert out.min() >= 0.25 and out.max() <= 0.3
    assert out.std() > 0


def test_self_attention_and_blur_build_and_run() -> None:
    torch.manual_seed(0)
    model = unet_model(
        "resnet18", n_out=2, img_size=(32, 32), self_attention=True, blur=True, blur_final=False
    )
    attention = [isinstance(block.attention, SelfAttention) for block in model.blocks]
    assert attention == [False, True, False, False]  # the third block from the end
    blurs = [any(isinstance(m, nn.AvgPool2d) for m in block.modules()) for block in model.blocks]
    assert blurs == [True, True, True, False]  # blur_final=False: not the last block
    out = model(torch.randn(2, 3, 33, 45))
    out.mean().backward()
    assert out.shape == (2, 2, 33, 45)
    gamma = model.blocks[1].attention.gamma
    assert gamma.grad is not None and gamma.grad.abs() > 0


def test_channels_last_gives_the_same_output(unet: DynamicUnet) -> None:
    x = torch.randn(2, 3, 37, 41)
    with torch.no_grad():
        expected = unet(x)
        last = copy.deepcopy(unet).to(memory_format=torch.channels_last)
        out = last(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


def test_autocast_bfloat16_on_cpu(unet: DynamicUnet) -> None:
    x = torch.randn(2, 3, 33, 35)
    with torch.no_grad():
        expected = unet(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = unet(x)
    assert out.shape == expected.shape and torch.isfinite(out).all()
    assert torch.corrcoef(torch.stack([out.float().flatten(), expected.flatten()]))[0, 1] > 0.9


def test_deepcopy_taps_its_own_encoder(unet: DynamicUnet) -> None:
    x = torch.randn(1, 3, 32, 32)
    clone = copy.deepcopy(unet)
    with torch.no_grad():
        before = unet(x)
        clone.encoder[4][0].conv1.weight.mul_(3.0)  # layer1, whose output is the second skip
        _, clone_skips = clone.encode(x)
        _, skips = unet.encode(x)
        by_hand = clone.encoder[:5](x)
        torch.testing.assert_close(clone_skips[1], by_hand)
        assert not torch.allclose(clone_skips[1], skips[1])
        assert not torch.allclose(clone(x), before)
        torch.testing.assert_close(unet(x), before, rtol=0, atol=0)


def test_rebuilds_from_its_spec(unet: DynamicUnet) -> None:
    kwargs = json.loads(json.dumps(SPEC))  # as export writes it: JSON data only
    factory = resolve_factory(spec_name(unet_model))
    with torch.device("meta"):
        skeleton = factory(**kwargs)
    state = unet.state_dict()
    assert {k: v.shape for k, v in skeleton.state_dict().items()} == {
        k: v.shape for k, v in state.items()
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    rebuilt = factory(**kwargs)
    rebuilt.load_state_dict(torch.load(buffer, weights_only=True))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(x), unet(x), rtol=0, atol=0)


def test_splitter_gives_encoder_then_decoder(unet: DynamicUnet) -> None:
    encoder, decoder = unet_splitter(unet)
    assert [id(p) for p in encoder] == [id(p) for p in unet.encoder.parameters()]
    assert len(encoder) + len(decoder) == len(list(unet.parameters()))
    assert {id(p) for p in decoder}.isdisjoint(id(p) for p in encoder)
    with pytest.raises(TypeError, match="DynamicUnet"):
        unet_splitter(nn.Linear(2, 2))


def test_encoder_must_be_sequential() -> None:
    with pytest.raises(TypeError, match="nn.Sequential"):
        DynamicUnet(nn.Conv2d(3, 8, 3, stride=2), n_out=2, img_size=(32, 32))


def test_learns_a_mask_from_scratch() -> None:
    """Gradients reach the decoder, the skips and the encoder: a random 3-class mask on 4
    images is learnt to over 90% of the pixels in a few dozen steps."""
    torch.manual_seed(0)
    model = unet_model("resnet18", n_out=3, img_size=(32, 32), pretrained=False)
    x, mask = torch.randn(4, 3, 32, 32), torch.randint(0, 3, (4, 32, 32))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, fused=True)
    accuracy = 0.0
    for _ in range(40):
        out = model(x)
        loss = nn.functional.cross_entropy(out, mask)
        opt.zero_grad()
        loss.backward()
        stem_grad = model.encoder[0].weight.grad
        assert stem_grad is not None and stem_grad.abs().sum() > 0
        opt.step()
        accuracy = (out.argmax(1) == mask).float().mean().item()
        if accuracy > 0.95:
            break
    assert accuracy > 0.9


def test_efficientnet_s_pointwise_head_conv_is_left_out_of_the_encoder() -> None:
    from mentor.vision.models.unet import unet_model

    model = unet_model("efficientnet_lite0", n_out=3, img_size=(64, 64))
    last = list(model.encoder.children())[-1]
    assert not isinstance(last, nn.Conv2d | nn.BatchNorm2d | nn.ReLU6)  # an MBConv block
    assert sum(p.numel() for p in model.parameters()) < 12e6  # 82 million with the 1x1 head
