"""`vision_learner`: a pretrained (or fresh) body with a new head, ready for transfer learning.

The body is a registered architecture cut before its pooling and classifier
(`MODEL_META[name].cut`); the head pools, flattens and classifies with batch norm and
dropout. Pretrained models get the normalization their weights expect and start frozen,
so only the head (and batch norm) trains until `unfreeze()`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor, nn

from mentor.core.registry import MODELS
from mentor.core.spec import spec_name
from mentor.data.block_loaders import BlockDataLoaders
from mentor.data.loaders import DataLoaders
from mentor.data.transforms import IMAGE, Normalize
from mentor.train.callback import Callback
from mentor.train.freeze import FixedBnStats
from mentor.train.learner import Learner
from mentor.train.report import Section
from mentor.train.report_plots import figure_html, table_html
from mentor.vision.blocks import MaskBlock
from mentor.vision.feature_loss import UsesStats, normalize_stats
from mentor.vision.interpret import grad_cam
from mentor.vision.models import MODEL_META, SMALL_IMAGE
from mentor.vision.models.head import build_vision_model, model_name
from mentor.vision.models.resnet import ModelMeta
from mentor.vision.models.unet import unet_model, unet_splitter
from mentor.vision.precompute import FeatureCache, body_and_head, body_is_frozen, precomputed
from mentor.vision.seg_interpret import SegmentationInterpretation

# Families whose body ends with four stages: the first group is the stem and the first two
# stages, the second the last two (the deep stages, which pretrained features adapt most).
_STAGED_FAMILIES = ("resnet", "resnext", "xresnet")


def known_class_rows(dls: DataLoaders, known_classes: Mapping[Any, int]) -> list[int | None]:
    """For each class of the data (`dls.vocab`), its row in the pretrained classifier
    (`known_classes[label]`), or None when the mapping does not name it."""
    vocab = dls.vocab
    if not vocab:
        raise ValueError("known_classes needs data with classes (a vocab); this data has none")
    unknown = [label for label in known_classes if label not in vocab]
    if unknown:
        raise ValueError(
            f"known_classes names labels the data does not have: {unknown[:5]}; "
            f"the data's labels are {list(vocab)[:10]}"
        )
    return [known_classes.get(label) for label in vocab]


def split_body_head(model: nn.Module, body_split: int) -> list[list[nn.Parameter]]:
    """Three parameter groups for `nn.Sequential(body, head)`: the body's children before
    `body_split`, those from it on, and the head."""
    body, head = model.get_submodule("0"), model.get_submodule("1")
    children = list(body.children())
    first = [p for child in children[:body_split] for p in child.parameters()]
    second = [p for child in children[body_split:] for p in child.parameters()]
    return [first, second, list(head.parameters())]


def body_split_index(name: str, body: nn.Module) -> int:
    """Where the body's children divide into the first two parameter groups."""
    n_children = len(list(body.children()))
    if name.startswith(_STAGED_FAMILIES):
        return n_children - 2  # stem + stages 1-2 | stages 3-4
    return n_children // 2


def first_images(dls: DataLoaders) -> Tensor:
    """The images of the first training batch (`[B, C, H, W]`)."""
    batch = dls.one_batch()
    x = batch[0] if isinstance(batch, tuple | list) else batch
    if not isinstance(x, Tensor) or x.ndim != 4:
        shape = getattr(x, "shape", type(x).__name__)
        raise ValueError(f"vision_learner needs image batches [B, C, H, W]; got inputs {shape}")
    return x


def default_arch(images: Tensor) -> str:
    """The architecture `vision_learner` picks for a batch of images: `small_cnn` from scratch
    when their shorter side is under `SMALL_IMAGE` (64) pixels, else EfficientNet-Lite0 with
    its ImageNet weights (the fastest of the pretrained bodies on a CPU)."""
    return "small_cnn" if min(images.shape[-2:]) < SMALL_IMAGE else "efficientnet_lite0"


def add_normalize(dls: DataLoaders, meta: ModelMeta, c_in: int) -> None:
    """Add `Normalize` with the pretrained weights' statistics to the data's batch transforms,
    unless the data already normalizes (or is not block-built: then warn)."""
    if not isinstance(dls, BlockDataLoaders):
        warnings.warn(
            "vision_learner cannot add normalization to plain DataLoaders; normalize the "
            f"images yourself with mean={meta.mean} and std={meta.std} (the pretrained stats)",
            stacklevel=3,
        )
        return
    if any(isinstance(t, Normalize) for t in dls.block.batch_tfms):
        return
    mean, std = meta.mean, meta.std
    if c_in != len(mean):  # e.g. greyscale into an adapted RGB stem: the channel average
        mean, std = (sum(mean) / len(mean),) * c_in, (sum(std) / len(std),) * c_in
    dls.add_batch_tfms([Normalize.from_stats(mean, std)])


class VisionLearner(Learner):
    """A `Learner` for a vision model `nn.Sequential(body, head)`, as `vision_learner` builds.

    With `precompute=True`, a fit while the body is frozen (as after `vision_learner(...,
    pretrained=True)` or `freeze()`) trains only the head on cached activations: the body
    and the head's pooling run once over the training and validation items with the
    validation transforms (no augmentation), and each epoch then only runs the rest of the
    head, many times faster. The cache is rebuilt when the data or the body's weights
    change. Batch norm in the frozen body does not train then (it does without
    precompute, with `train_bn`). Once the body trains (`unfreeze()`, `freeze_to(n)`), fits
    use the full model with augmentation, whatever `precompute` says (fastai v0.7).
    Callbacks, metrics and schedules see the head and the features' loaders as
    `learn.model` and `learn.dls` during such a fit; afterwards the full model and the real
    data are back, for `predict`, `get_preds`, `validate`, `save`.

    Args:
        dls, model, loss_func: as for `Learner`. precompute: train a frozen body's head on
            cached activations (False). learner_kw: the other `Learner` arguments.
    """

    def __init__(
        self,
        dls: DataLoaders,
        model: nn.Module,
        loss_func: Callable[..., Tensor] | None = None,
        precompute: bool = False,
        **learner_kw: Any,
    ) -> None:
        super().__init__(dls, model, loss_func, **learner_kw)
        self.precompute = precompute
        self.feature_cache: FeatureCache | None = None

    @property
    def precomputing(self) -> bool:
        """Whether the next fit trains the head on cached activations."""
        return self.precompute and body_is_frozen(body_and_head(self.model)[0])

    def fit(
        self,
        n_epoch: int,
        lr: float | slice | Sequence[float] | np.ndarray | None = None,
        wd: float | None = None,
        cbs: Sequence[Callback] | None = None,
        reset_opt: bool = False,
        checkpoint_every: str | int | None = None,
        resume_from: str | Path | None = None,
    ) -> None:
        """`Learner.fit`, on cached activations while `precomputing` (checkpoints, which
        save the full model, turn precompute off for their fit)."""
        checkpoints = checkpoint_every is not None or resume_from is not None
        if not self.precomputing or checkpoints:
            super().fit(n_epoch, lr, wd, cbs, reset_opt, checkpoint_every, resume_from)
            return
        if reset_opt:  # the splitter needs the full model
            self.create_opt()
        with precomputed(self, self.feature_cache) as cache:
            self.feature_cache = cache
            super().fit(n_epoch, lr, wd, cbs)

    def grad_cam(
        self, img: Any, target: int | None = None, layer: nn.Module | None = None
    ) -> Tensor:
        """The Grad-CAM heat map of `img`; see `mentor.vision.interpret.grad_cam`."""
        return grad_cam(self, img, target, layer)


def vision_learner(
    dls: DataLoaders,
    arch: str | Callable[..., nn.Module] | None = None,
    pretrained: bool | None = None,
    n_out: int | None = None,
    loss_func: Callable[..., Tensor] | None = None,
    metrics: Sequence[Any] | Any = None,
    normalize: bool = True,
    ps: float = 0.5,
    lin_ftrs: Sequence[int] = (512,),
    concat_pool: bool = True,
    y_range: tuple[float, float] | None = None,
    weights: str | Path | None = None,
    precompute: bool = False,
    known_classes: Mapping[Any, int] | None = None,
    **learner_kw: Any,
) -> VisionLearner:
    """A `VisionLearner` for images: the body of `arch` with a new head for `n_out` outputs.

    Args:
        dls: the data (images `[B, C, H, W]`; any number of channels, the stem adapts).
        arch: a registered architecture name ('resnet34', 'efficientnet_lite0', ...) or
            its factory; None picks from the images (`default_arch`): `small_cnn` for images
            under 64 px, else 'efficientnet_lite0'.
        pretrained: load its weights, normalize the data as they expect and freeze the body
            (default: when the architecture has published weights; `small_cnn` has none, so
            it trains from scratch and `fine_tune` trains it whole).
        weights: a weight file instead of the default.
        n_out: outputs (default `dls.c`). loss_func: default from the data.
        metrics: as for `Learner`. normalize: add the pretrained `Normalize` (True).
        ps, lin_ftrs, concat_pool, y_range: the head, see `create_head`.
        precompute: while the body is frozen, train the head on cached activations
            (False); see `VisionLearner`. Pretrained bodies whose metadata says
            `fixed_bn_stats` (EfficientNet-Lite) get `FixedBnStats`.
        known_classes: when the data's classes are among the pretrained ones (a subset of
            ImageNet), `{label: index of that class in the pretrained classifier}`: the head
            is then the pretrained classifier restricted to those rows (average pooling,
            dropout `ps`, linear), so it starts from what the weights know about these
            classes instead of from nothing; labels left out start from zero weights.
        learner_kw: passed on to `Learner` (opt_func, lr, cbs, wd, path, ...).

    Example:
        >>> learn = vision_learner(dls, "resnet34", metrics=error_rate)
        >>> learn.fine_tune(1)
    """
    images = first_images(dls)
    if arch is None:
        arch = default_arch(images)
    name = model_name(arch)
    meta = MODEL_META[name]
    pretrained = meta.has_weights if pretrained is None else pretrained
    target = dls.target_block
    if isinstance(target, MaskBlock):
        raise ValueError(
            "vision_learner builds a classifier (one prediction per image), but this data's "
            "target is a MaskBlock (one class per pixel): segmentation needs a U-Net, "
            f"unet_learner(dls, {name!r}); vision_learner would give {dls.c} outputs per image"
        )
    n_out = n_out if n_out is not None else dls.c
    if n_out is None:
        raise ValueError(
            "vision_learner cannot tell how many outputs the model needs: the data has no "
            "`c` (number of classes); pass n_out=..."
        )
    c_in = int(images.shape[1])
    known_rows = None
    if known_classes is not None:
        if not pretrained:
            raise ValueError(
                "known_classes starts from the pretrained classifier: it needs pretrained=True"
            )
        if y_range is not None:
            raise ValueError(
                f"known_classes is for classes, not a regression: drop y_range={y_range}"
            )
        known_rows = known_class_rows(dls, known_classes)
        if len(known_rows) != n_out:
            raise ValueError(
                f"known_classes needs one output per class: n_out={n_out}, "
                f"classes {len(known_rows)}"
            )
    spec: dict[str, Any] = {
        "arch": name, "n_out": n_out, "c_in": c_in, "lin_ftrs": list(lin_ftrs), "ps": ps,
        "concat_pool": concat_pool, "y_range": None if y_range is None else list(y_range),
        "known_rows": known_rows,
    }  # fmt: skip
    model = build_vision_model(**spec, pretrained=pretrained, weights=weights, factory=arch)
    if normalize and pretrained:
        add_normalize(dls, meta, c_in)
    body = model[0]
    splitter = partial(split_body_head, body_split=body_split_index(name, body))
    if pretrained and meta.fixed_bn_stats:
        learner_kw["cbs"] = [*(learner_kw.get("cbs") or ()), FixedBnStats([body])]
    learn = VisionLearner(
        dls, model, loss_func, precompute, splitter=splitter, metrics=metrics, **learner_kw,
    )  # fmt: skip
    if isinstance(arch, str) or MODELS.factories.get(name) is arch:  # rebuildable by name
        learn.model_spec = {"factory": spec_name(build_vision_model), "kwargs": spec}
    if pretrained:
        learn.freeze()
    else:
        learn.from_scratch = True
    return learn


class SegmentationLearner(Learner):
    """The `Learner` `unet_learner` builds: its training report shows the segmentation
    results (per-class IoU, the pixel confusion matrix, the images with the highest loss)."""

    def report_sections(self, top_k: int) -> list[Section]:
        """The report's validation sections, from `SegmentationInterpretation`."""
        interp = SegmentationInterpretation.from_learner(self)
        summary = (
            f"<p>Mean IoU {interp.mean_iou:.4f} over the classes present in "
            f"{len(interp.targets):,} validation images.</p>"
            + table_html(interp.per_class_iou().head(MAX_IOU_ROWS))
            + figure_html(interp.plot_confusion_matrix(min_pixels=1), "pixel confusion matrix")
        )
        top = figure_html(interp.plot_top_losses(min(top_k, 4)), "images with the highest loss")
        return [Section("Per-class IoU", summary), Section("Top losses (validation)", top)]


MAX_IOU_ROWS = 40  # the per-class table in the report


class RestorationLearner(Learner):
    """The `Learner` `unet_learner` builds for image targets (restoration,
    super-resolution): its training report shows inputs, targets and predictions."""

    def report_sections(self, top_k: int) -> list[Section]:
        """The report's validation section: a few validation images restored."""
        figure = self.show_results(max_n=min(top_k, 4))
        return [
            Section("Restored images (validation)", figure_html(figure, "input, target, output"))
        ]


def has_image_target(dls: DataLoaders) -> bool:
    """Whether the data's target is an image (image to image)."""
    if not isinstance(dls, BlockDataLoaders):
        return False
    kinds = dls.block.kinds
    return dls.block.n_inp < len(kinds) and kinds[-1] == IMAGE


def image_range(stats: tuple[Sequence[float], Sequence[float]] | None) -> tuple[float, float]:
    """The outputs' range that covers pixels 0 to 1 of every channel normalized by `stats`
    (`(mean, std)`; None: pixels in [0, 1])."""
    if stats is None:
        return (0.0, 1.0)
    lows = [(0 - m) / s for m, s in zip(*stats)]
    highs = [(1 - m) / s for m, s in zip(*stats)]
    return (min(lows), max(highs))


def unet_learner(
    dls: DataLoaders,
    arch: str,
    pretrained: bool = True,
    n_out: int | None = None,
    loss_func: Callable[..., Tensor] | None = None,
    metrics: Sequence[Any] | Any = None,
    normalize: bool = True,
    weights: str | Path | None = None,
    blur: bool = False,
    blur_final: bool = True,
    self_attention: bool = False,
    y_range: tuple[float, float] | None = None,
    last_cross: bool = True,
    bottle: bool = False,
    act_cls: str = "relu",
    norm_type: str | None = "batch",
    residual: bool | None = None,
    **learner_kw: Any,
) -> SegmentationLearner | RestorationLearner:
    """A `SegmentationLearner` with a U-Net over the body of `arch` (`DynamicUnet`): one
    prediction per pixel, for segmentation (`MaskBlock` targets); a `RestorationLearner`
    for image-to-image regression (`ImageBlock` targets: restoration, super-resolution).

    For image targets the outputs are images in the data's normalization: `n_out` defaults
    to the target's channels, and the U-Net is residual (it returns its input plus a
    learned correction, starting as the identity) when the input has as many channels;
    otherwise `y_range` defaults to the range of pixels 0 to 1 after the normalization. A
    loss or metric that compares pixels (`FeatureLoss`, `PSNR`, `SSIM`) gets the data's
    `Normalize` statistics unless it was given its own.

    The encoder is the body `vision_learner` would cut; its skips are found by running a
    batch-sized dummy image through it. Pretrained encoders get the normalization their
    weights expect and start frozen (the decoder trains; `unfreeze()` or `fine_tune` for
    all). Two parameter groups: encoder, decoder (`slice(lo, hi)` rates).

    Args:
        dls: image data whose target is a `MaskBlock` (its codes give `n_out`) or images.
        arch: a registered architecture name ('resnet34', 'efficientnet_lite0', ...).
        pretrained: load the encoder's weights, normalize, freeze (True). weights: a file.
        n_out: outputs per pixel (default `dls.c`: the number of codes, or the target
            image's channels). loss_func: default from the data (cross-entropy over the
            class axis for masks, MSE for images; `FeatureLoss(...)` for restoration).
        metrics: as for `Learner` (e.g. `foreground_acc`, `Dice`, `SegmentationIoU`).
        normalize: add the pretrained `Normalize` (True).
        blur, blur_final, self_attention, y_range, last_cross, bottle, act_cls, norm_type,
            residual: the decoder, see `DynamicUnet` (residual None: True for image targets
            with the input's channels). learner_kw: passed on to `Learner`.

    Example:
        >>> learn = unet_learner(dls, "efficientnet_lite0", metrics=foreground_acc)
        >>> learn.fine_tune(8)
        >>> loss = FeatureLoss("efficientnet_lite0")  # image targets: restoration
        >>> learn = unet_learner(dls, "efficientnet_lite0", loss_func=loss, metrics=PSNR())
    """
    name = model_name(arch)
    meta = MODEL_META[name]
    image_target = has_image_target(dls)
    n_out = n_out if n_out is not None else dls.c
    if n_out is None:
        raise ValueError(
            "unet_learner cannot tell how many outputs per pixel the model needs: the data "
            "has no classes (a MaskBlock without codes?); pass MaskBlock(codes) or n_out=..."
        )
    batch = dls.one_batch()
    x = batch[0] if isinstance(batch, tuple | list) else batch
    if not isinstance(x, Tensor) or x.ndim != 4:
        shape = getattr(x, "shape", type(x).__name__)
        raise ValueError(f"unet_learner needs image batches [B, C, H, W]; got inputs {shape}")
    c_in, img_size = int(x.shape[1]), [int(x.shape[2]), int(x.shape[3])]
    if normalize and pretrained:
        add_normalize(dls, meta, c_in)
    stats = normalize_stats(dls)
    if residual is None:
        residual = image_target and n_out == c_in
    if image_target and y_range is None and not residual:
        y_range = image_range(stats)
    spec: dict[str, Any] = {
        "arch": name, "n_out": n_out, "img_size": img_size, "c_in": c_in, "blur": blur,
        "blur_final": blur_final, "self_attention": self_attention,
        "y_range": None if y_range is None else list(y_range), "last_cross": last_cross,
        "bottle": bottle, "act_cls": act_cls, "norm_type": norm_type, "residual": residual,
    }  # fmt: skip
    model = unet_model(**spec, pretrained=pretrained, weights=weights)
    if pretrained and meta.fixed_bn_stats:
        learner_kw["cbs"] = [*(learner_kw.get("cbs") or ()), FixedBnStats([model.encoder])]
    kind = RestorationLearner if image_target else SegmentationLearner
    learn = kind(dls, model, loss_func, splitter=unet_splitter, metrics=metrics, **learner_kw)
    if stats is not None:  # losses and metrics that compare pixels undo the normalization
        for part in [learn.loss_func, *learn.metrics]:
            if isinstance(part, UsesStats) and part.stats is None:
                part.use_stats(*stats)
    learn.model_spec = {"factory": spec_name(unet_model), "kwargs": spec}
    if pretrained:
        learn.freeze()
    else:
        learn.from_scratch = True
    return learn


__all__ = [
    "RestorationLearner",
    "SegmentationLearner",
    "VisionLearner",
    "split_body_head",
    "unet_learner",
    "vision_learner",
]
