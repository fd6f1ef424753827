"""`DynamicUnet`: a U-Net decoder over the body of any registered architecture (fastai's).

The encoder (a body as `vision_learner` cuts it, an `nn.Sequential`) runs once on a dummy
image of `img_size`; the outputs of the children after which the spatial size changes (the
last before each downsampling) are the skips. Each decoder step upsamples by pixel shuffle
initialised with ICNR (it starts as nearest-neighbour upsampling, free of checkerboard
artefacts), joins the skip's features and convolves; a cross connection to the input, a
residual block and a 1x1 convolution give `n_out` maps at the input's size, for any size.
The skips are kept by `forward` itself, which runs the encoder's children one by one, not by
forward hooks: nothing outlives a call and a `copy.deepcopy` taps its own encoder.

Example:
    >>> model = unet_model("resnet34", n_out=32, img_size=(96, 128))
    >>> model(torch.zeros(2, 3, 97, 131)).shape
    torch.Size([2, 32, 97, 131])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mentor.core.layers import SigmoidRange
from mentor.core.registry import MODELS
from mentor.core.spec import register_spec

ActCls = Callable[[], nn.Module]
Init = Callable[[Tensor], Any]
NORM_TYPES = ("batch", "instance", None)
# the activations `unet_model` takes by name, so a model spec stays JSON data
ACTIVATIONS: dict[str, ActCls] = {"relu": nn.ReLU, "relu6": nn.ReLU6, "leaky_relu": nn.LeakyReLU,
                                  "silu": nn.SiLU, "gelu": nn.GELU, "mish": nn.Mish}  # fmt: skip


def conv_norm_act(
    c_in: int,
    c_out: int,
    ks: int = 3,
    act_cls: ActCls | None = nn.ReLU,
    norm_type: str | None = "batch",
) -> nn.Sequential:
    """A convolution (stride 1, size kept), then the normalization `norm_type` ('batch',
    'instance' or None) and an activation `act_cls()` (None: none); the convolution has a
    bias only when no normalization follows it."""
    if norm_type not in NORM_TYPES:
        raise ValueError(f"norm_type {norm_type!r} is not one of {list(NORM_TYPES)}")
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, ks, padding=ks // 2, bias=not norm_type)]
    if norm_type == "batch":
        layers.append(nn.BatchNorm2d(c_out))
    elif norm_type == "instance":
        layers.append(nn.InstanceNorm2d(c_out, affine=True))
    if act_cls is not None:
        layers.append(act_cls())
    return nn.Sequential(*layers)


def init_convs(module: nn.Module, init: Init) -> None:
    """`init` every convolution's weight in `module`; zero their biases."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            init(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def icnr_(weight: Tensor, scale: int = 2, init: Init = nn.init.kaiming_normal_) -> Tensor:
    """ICNR initialisation, in place, of a convolution followed by `nn.PixelShuffle(scale)`.

    The `scale**2` output channels that the shuffle spreads over one output pixel block get
    the same kernel, so the shuffled result starts as a nearest-neighbour upsampling of one
    convolution (Aitken et al. 2017, "Checkerboard artifact free sub-pixel convolution").
    """
    c_out, c_in, *kernel = weight.shape
    if c_out % scale**2:
        raise ValueError(f"ICNR needs output channels divisible by {scale**2}, got {c_out}")
    base = weight.new_empty(c_out // scale**2, c_in, *kernel)
    init(base)
    with torch.no_grad():
        weight.copy_(base.repeat_interleave(scale**2, dim=0))
    return weight


class PixelShuffleICNR(nn.Sequential):
    """Upsample by `scale`: 1x1 conv to `c_out * scale**2` channels (ICNR), pixel shuffle,
    optional blur (replication pad + 2x2 average, stride 1: smooths what is left of
    checkerboard artefacts), activation.

    Args:
        c_in: input channels. c_out: output channels (default `c_in`). scale: factor (2).
        blur: add the blur (False). act_cls, norm_type: as in `conv_norm_act`.
        init: ICNR's kernel initialiser (kaiming normal).
    """

    def __init__(
        self,
        c_in: int,
        c_out: int | None = None,
        scale: int = 2,
        blur: bool = False,
        act_cls: ActCls = nn.ReLU,
        norm_type: str | None = "batch",
        init: Init = nn.init.kaiming_normal_,
    ) -> None:
        c_out = c_in if c_out is None else c_out
        conv = conv_norm_act(c_in, c_out * scale**2, 1, act_cls=None, norm_type=norm_type)
        first = conv[0]
        assert isinstance(first, nn.Conv2d)
        icnr_(first.weight, scale, init)
        layers: list[nn.Module] = [conv, nn.PixelShuffle(scale)]
        if blur:
            layers += [nn.ReplicationPad2d((1, 0, 1, 0)), nn.AvgPool2d(2, stride=1)]
        super().__init__(*layers, act_cls())


class SelfAttention(nn.Module):
    """Self-attention over the positions of a feature map (SAGAN), added to its input with a
    learned weight that starts at zero, so the block starts as the identity.

    Args:
        channels: the feature map's channels (queries and keys have `channels // 8`).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        c_key = max(channels // 8, 1)
        self.query = nn.Conv2d(channels, c_key, 1, bias=False)
        self.key = nn.Conv2d(channels, c_key, 1, bias=False)
        self.value = nn.Conv2d(channels, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        query = self.query(x).flatten(2)  # [B, C/8, N]
        key = self.key(x).flatten(2)
        value = self.value(x).flatten(2)  # [B, C, N]
        weights = torch.softmax(query.transpose(1, 2) @ key, dim=-1)  # [B, N, N]
        attended = (value @ weights.transpose(1, 2)).view_as(x)
        return self.gamma * attended + x


class UnetBlock(nn.Module):
    """One decoder step: upsample the decoder's features, join the encoder's skip features
    of that resolution (after batch norm), two convolutions.

    The upsampled map is resized to the skip's size when they differ (odd sizes: the encoder
    rounded them when it downsampled).

    Args:
        c_up: channels coming up the decoder. c_skip: channels of the skip features.
        final_div: keep the joined channels (True); False halves them (the last block).
        blur, act_cls, norm_type: as in `PixelShuffleICNR`. self_attention: add
            `SelfAttention` after the convolutions (False). init: the convs' initialiser.
    """

    def __init__(
        self,
        c_up: int,
        c_skip: int,
        final_div: bool = True,
        blur: bool = False,
        act_cls: ActCls = nn.ReLU,
        self_attention: bool = False,
        init: Init = nn.init.kaiming_normal_,
        norm_type: str | None = "batch",
    ) -> None:
        super().__init__()
        self.shuffle = PixelShuffleICNR(c_up, c_up // 2, 2, blur, act_cls, norm_type, init)
        self.skip_norm = nn.BatchNorm2d(c_skip)
        self.act = act_cls()
        c_joined = c_up // 2 + c_skip
        self.c_out = c_joined if final_div else c_joined // 2
        self.conv1 = conv_norm_act(c_joined, self.c_out, 3, act_cls, norm_type)
        self.conv2 = conv_norm_act(self.c_out, self.c_out, 3, act_cls, norm_type)
        init_convs(nn.Sequential(self.conv1, self.conv2), init)
        self.attention: nn.Module = SelfAttention(self.c_out) if self_attention else nn.Identity()

    def forward(self, up_in: Tensor, skip: Tensor) -> Tensor:
        up = self.shuffle(up_in)
        if up.shape[-2:] != skip.shape[-2:]:
            up = F.interpolate(up, size=skip.shape[-2:], mode="nearest")
        joined = self.act(torch.cat([up, self.skip_norm(skip)], dim=1))
        return self.attention(self.conv2(self.conv1(joined)))


class ResidualBlock(nn.Module):
    """Two convolutions (`c_in -> c_hidden -> c_hidden`) added to the input (through a 1x1
    convolution when the channels change), then the activation. The second normalization's
    scale starts at zero, so the block starts as the identity."""

    def __init__(
        self,
        c_in: int,
        c_hidden: int,
        act_cls: ActCls = nn.ReLU,
        norm_type: str | None = "batch",
    ) -> None:
        super().__init__()
        second = conv_norm_act(c_hidden, c_hidden, 3, None, norm_type)
        if norm_type is not None:
            nn.init.zeros_(second[1].weight)  # type: ignore[arg-type]
        self.convs = nn.Sequential(conv_norm_act(c_in, c_hidden, 3, act_cls, norm_type), second)
        self.shortcut: nn.Module = (
            nn.Identity() if c_in == c_hidden else nn.Conv2d(c_in, c_hidden, 1, bias=False)
        )
        self.act = act_cls()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.convs(x) + self.shortcut(x))


def encoder_sizes(
    encoder: nn.Sequential, c_in: int, img_size: tuple[int, int]
) -> list[tuple[int, int, int]]:
    """The `(channels, height, width)` after each child of `encoder` for one image of
    `img_size`, from a pass in eval mode without gradients (batch-norm statistics stay)."""
    param = next(encoder.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    x = torch.zeros(1, c_in, *img_size, device=device, dtype=dtype)
    was_training = encoder.training
    encoder.eval()
    sizes: list[tuple[int, int, int]] = []
    try:
        with torch.no_grad():
            for layer in encoder:
                x = layer(x)
                sizes.append((int(x.shape[1]), int(x.shape[2]), int(x.shape[3])))
    finally:
        encoder.train(was_training)
    return sizes


def size_change_indices(sizes: Sequence[tuple[int, int, int]]) -> list[int]:
    """The indices whose output's height and width differ from the next one's: the last
    output at each resolution before the encoder downsamples (where the skips are taken)."""
    return [i for i in range(len(sizes) - 1) if sizes[i][1:] != sizes[i + 1][1:]]


def input_channels(encoder: nn.Module) -> int:
    """The input channels of the first convolution of `encoder`."""
    for layer in encoder.modules():
        if isinstance(layer, nn.Conv2d):
            return int(layer.in_channels)
    raise ValueError(f"the encoder {type(encoder).__name__} has no Conv2d to read its channels")


class DynamicUnet(nn.Module):
    """A U-Net over `encoder`, with skips where the encoder's spatial size changes.

    Args:
        encoder: the body of an architecture, an `nn.Sequential` (as `create_body` cuts it).
        n_out: output channels (classes per pixel, or regression targets).
        img_size: `(height, width)` of the dummy image that finds the skips; the model then
            takes any size and returns maps of the input's size.
        blur: blur after each pixel shuffle (False); blur_final: in the last block too (True).
        self_attention: `SelfAttention` in the third block from the end (False).
        y_range: end with `SigmoidRange(*y_range)` for regression outputs (None).
        last_cross: join the input image before the last residual block (True).
        bottle: the last residual block halves its channels (False).
        act_cls: the activation's class (`nn.ReLU`). init: the convolutions' initialiser
            (`nn.init.kaiming_normal_`). norm_type: 'batch', 'instance' or None ('batch').
        residual: the output is the input plus what the network adds (image restoration:
            the last convolution starts at zero, so an untrained model returns its input and
            training learns the correction); needs `n_out` equal to the input's channels.

    Attributes:
        skip_indices: the encoder children whose outputs are the skips, in encoder order.
        skip_sizes: their `(channels, height, width)` at `img_size`.
    """

    def __init__(
        self,
        encoder: nn.Module,
        n_out: int,
        img_size: Sequence[int],
        blur: bool = False,
        blur_final: bool = True,
        self_attention: bool = False,
        y_range: tuple[float, float] | None = None,
        last_cross: bool = True,
        bottle: bool = False,
        act_cls: ActCls = nn.ReLU,
        init: Init = nn.init.kaiming_normal_,
        norm_type: str | None = "batch",
        residual: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(encoder, nn.Sequential):
            raise TypeError(
                f"DynamicUnet needs the encoder as an nn.Sequential of layers (it takes the "
                f"skips between them), got {type(encoder).__name__}; cut a model with "
                "mentor.vision.models.head.create_body"
            )
        if len(img_size) != 2:
            raise ValueError(f"img_size is (height, width), got {img_size!r}")
        self.img_size = (int(img_size[0]), int(img_size[1]))
        self.c_in = input_channels(encoder)
        sizes = encoder_sizes(encoder, self.c_in, self.img_size)
        self.skip_indices = tuple(size_change_indices(sizes))
        if not self.skip_indices:
            raise ValueError(
                f"the encoder never changes the spatial size of a {self.img_size} image, so "
                f"a U-Net has no skips to take (output sizes {sizes}); use a larger img_size"
            )
        self.skip_sizes = tuple(sizes[i] for i in self.skip_indices)
        self.encoder = encoder
        c_body = sizes[-1][0]
        self.body_norm = nn.BatchNorm2d(c_body)
        self.body_act = act_cls()
        self.middle = nn.Sequential(
            conv_norm_act(c_body, c_body * 2, 3, act_cls, norm_type),
            conv_norm_act(c_body * 2, c_body, 3, act_cls, norm_type),
        )
        blocks = decoder_blocks(
            c_body, [size[0] for size in self.skip_sizes[::-1]], blur, blur_final,
            self_attention, act_cls, init, norm_type,
        )  # fmt: skip
        self.blocks = nn.ModuleList(blocks)
        c_dec = blocks[-1].c_out
        top = self.skip_sizes[0][1:]  # the last block's resolution, at img_size
        self.final_shuffle: nn.Module = (
            PixelShuffleICNR(c_dec, act_cls=act_cls, norm_type=norm_type, init=init)
            if top != self.img_size
            else nn.Identity()
        )
        self.last_cross = last_cross
        c_head = c_dec + self.c_in if last_cross else c_dec
        c_res = c_head // 2 if bottle else c_head
        last = nn.Conv2d(c_res, n_out, 1)
        self.head = nn.Sequential(ResidualBlock(c_head, c_res, act_cls, norm_type), last)
        init_convs(nn.Sequential(self.middle, self.head), init)
        if residual and n_out != self.c_in:
            raise ValueError(
                f"a residual U-Net adds its output to its input: n_out ({n_out}) must equal "
                f"the input's channels ({self.c_in})"
            )
        self.residual = residual
        if residual:  # start as the identity
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)  # type: ignore[arg-type]  # Conv2d(bias=True) has one
        self.y_range: nn.Module = nn.Identity() if y_range is None else SigmoidRange(*y_range)

    def encode(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The encoder's output for `x` and the skip features, in encoder order (the largest
        first)."""
        skips: list[Tensor] = []
        for i, layer in enumerate(self.encoder):
            x = layer(x)
            if i in self.skip_indices:
                skips.append(x)
        return x, skips

    def forward(self, x: Tensor) -> Tensor:
        features, skips = self.encode(x)
        out = self.middle(self.body_act(self.body_norm(features)))
        for block, skip in zip(self.blocks, reversed(skips)):
            out = block(out, skip)
        out = self.final_shuffle(out)
        if out.shape[-2:] != x.shape[-2:]:
            out = F.interpolate(out, size=x.shape[-2:], mode="nearest")
        if self.last_cross:
            out = torch.cat([out, x], dim=1)
        out = self.head(out)
        return self.y_range(out + x if self.residual else out)


def decoder_blocks(
    c_body: int,
    skip_channels: Sequence[int],
    blur: bool,
    blur_final: bool,
    self_attention: bool,
    act_cls: ActCls,
    init: Init,
    norm_type: str | None,
) -> list[UnetBlock]:
    """The `UnetBlock`s from the deepest skip (`skip_channels[0]`) to the shallowest; the
    last one halves its channels, blurs only with `blur_final`, and the third from the end
    (or the first, when there are fewer) has the self-attention."""
    blocks: list[UnetBlock] = []
    attention_at = max(len(skip_channels) - 3, 0)
    c_up = c_body
    for i, c_skip in enumerate(skip_channels):
        last = i == len(skip_channels) - 1
        block = UnetBlock(
            c_up, c_skip, final_div=not last, blur=blur and (blur_final or not last),
            act_cls=act_cls, self_attention=self_attention and i == attention_at,
            init=init, norm_type=norm_type,
        )  # fmt: skip
        blocks.append(block)
        c_up = block.c_out
    return blocks


@register_spec
def unet_model(
    arch: str,
    n_out: int,
    img_size: Sequence[int] = (224, 224),
    c_in: int = 3,
    pretrained: bool = False,
    weights: str | Path | None = None,
    blur: bool = False,
    blur_final: bool = True,
    self_attention: bool = False,
    y_range: Sequence[float] | None = None,
    last_cross: bool = True,
    bottle: bool = False,
    act_cls: str | ActCls = "relu",
    norm_type: str | None = "batch",
    init: Init = nn.init.kaiming_normal_,
    residual: bool = False,
) -> DynamicUnet:
    """A `DynamicUnet` over the body of the registered architecture `arch`.

    `load_learner` and `Predictor.load` call it (with `pretrained=False`) to rebuild an
    exported model before loading its weights; record every argument but `pretrained`,
    `weights` and `init` (they don't change the model's tensors) in the model spec.

    Args:
        arch: a registered architecture with metadata ('resnet34', 'efficientnet_lite0', ...).
        n_out: output channels. img_size: `(height, width)` the skips are found at.
        c_in: input channels (3; the stem adapts). pretrained, weights: load the encoder's
            weights (False; see `create_model`).
        act_cls: the activation, a class or a name of `ACTIVATIONS` (a name exports).
        blur, blur_final, self_attention, y_range, last_cross, bottle, norm_type, init,
            residual: see `DynamicUnet`.

    Example:
        >>> model = unet_model("efficientnet_lite0", n_out=3, img_size=(64, 64))
        >>> spec = {"factory": spec_name(unet_model), "kwargs": {"arch": ...}}
    """
    # head imports this package's __init__, which imports this module: import it late
    from mentor.vision.models.head import create_body

    act = ACTIVATIONS.get(act_cls) if isinstance(act_cls, str) else act_cls
    if act is None:
        raise ValueError(f"unknown activation {act_cls!r}; known: {sorted(ACTIVATIONS)}")
    if arch not in MODELS.meta:
        known = ", ".join(sorted(MODELS.meta))
        raise KeyError(f"unet_model does not know where to cut {arch!r}; it knows: {known}")
    model = MODELS.create(arch, n_out=1000, c_in=c_in, pretrained=pretrained, weights=weights)
    low_high = None if y_range is None else (float(y_range[0]), float(y_range[1]))
    return DynamicUnet(
        without_pointwise_head(create_body(model, MODELS.meta[arch])), n_out, img_size,
        blur=blur, blur_final=blur_final, self_attention=self_attention, y_range=low_high,
        last_cross=last_cross, bottle=bottle, act_cls=act, init=init,
        norm_type=norm_type, residual=residual,
    )  # fmt: skip


def without_pointwise_head(body: nn.Sequential) -> nn.Sequential:
    """`body` without a trailing 1x1 convolution (and its norm and activation), as
    EfficientNet ends: that widening (320 to 1280 channels) serves the classifier, and a
    U-Net's middle block, which doubles the body's channels, would grow from 4 to 60 million
    parameters on it."""
    layers = list(body.children())
    end = len(layers)
    while end > 0 and isinstance(layers[end - 1], _NORM_OR_ACT):
        end -= 1
    last = layers[end - 1] if end > 0 else None
    if not isinstance(last, nn.Conv2d) or last.kernel_size != (1, 1) or last.stride != (1, 1):
        return body
    return nn.Sequential(*layers[: end - 1])


_NORM_OR_ACT = (nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish, nn.GELU)


def unet_splitter(model: nn.Module) -> list[list[nn.Parameter]]:
    """Two parameter groups of a `DynamicUnet`: the encoder, then the decoder (everything
    else), for discriminative learning rates and `freeze()` (which trains the decoder)."""
    if not isinstance(model, DynamicUnet):
        raise TypeError(f"unet_splitter splits a DynamicUnet, got {type(model).__name__}")
    encoder = list(model.encoder.parameters())
    known = {id(p) for p in encoder}
    return [encoder, [p for p in model.parameters() if id(p) not in known]]


__all__ = [
    "ACTIVATIONS", "DynamicUnet", "PixelShuffleICNR", "ResidualBlock", "SelfAttention",
    "UnetBlock", "conv_norm_act", "encoder_sizes", "icnr_", "unet_model", "unet_splitter",
]  # fmt: skip
