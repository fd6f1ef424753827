"""Lesson 7: restoring crappified images with a U-Net, first on pixels, then on features.

The lesson's steps, with mentor's names: `crappify_folder` writes a spoiled copy of every
image (shrunk to 64 px, JPEG quality 10 to 70, scaled back up to 128 px), a DataBlock pairs
each spoiled image with its original (`(ImageBlock, ImageBlock)`: `Resize` crops both alike),
then `unet_learner` over a pretrained EfficientNet-Lite0 learns to undo the damage: once
with a pixel L1 loss and once with `FeatureLoss` (pixels, EfficientNet-Lite0 activations and
their Gram matrices; the course used VGG-16, whose weights are not available offline).

Measured on imagenette_small's 500 validation images at 128 px: PSNR and SSIM against the
originals, and the accuracy of an ImageNet classifier that is not the loss's network
(EfficientNet-Lite2, restricted to imagenette's ten classes), for the spoiled images, both
U-Nets and the originals. Floors: the feature-loss U-Net gains at least 1 dB of PSNR over the
spoiled images, and the classifier is at least as accurate on its output as on them.

Measured (100 training images a class, 4 epochs of one-cycle at 3e-3, bs 8, 2 cores):
spoiled 24.29 dB, SSIM 0.710, classifier 77.2% (originals: 94.0%); pixel-L1 U-Net 25.46 dB,
0.753, 78.2% in 842 s; FeatureLoss U-Net (pixel weight 5) 25.36 dB (+1.07), 0.747, 78.2% in
667 s. The pixel weight trades PSNR for what a classifier sees: 1 gave 25.04 dB (+0.75) and
80.8%, 3 gave 25.24 dB (+0.95) and 79.2%.
Run with `python -m examples.course.lesson7_superres` (`--quick`: 20 training and 20
validation images at 96 px, seconds).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from examples.course import lesson_main
from examples.imagenette import IMAGENET_INDEX, IMAGENETTE_NAMES
from mentor.core.registry import MODELS
from mentor.core.seed import set_seed
from mentor.data import DataBlock
from mentor.data.external import untar_data
from mentor.data.items import get_image_files
from mentor.data.labels import parent_label
from mentor.data.splitters import GrandparentSplitter
from mentor.data.transforms import Normalize
from mentor.train.losses import L1LossFlat
from mentor.vision import ImageBlock, Resize, aug_transforms
from mentor.vision.crappifier import crappify_folder
from mentor.vision.feature_loss import FeatureLoss, LossMetrics, normalize_stats
from mentor.vision.image_metrics import PSNR, SSIM
from mentor.vision.learner import unet_learner

SIZE, LOW_SIZE, QUALITY = 128, 64, (10, 70)
QUICK_SIZE = 96  # the quick run's images: the crappified 128 px ones scaled down
PSNR_GAIN = 1.0  # dB over the spoiled images, for the feature-loss U-Net
FEATURE_LOSS: dict[str, Any] = {"pixel_wgt": 5.0}  # pixel weight 1: +0.75 dB, 3: +0.95, 5: +1.07
QUICK_PSNR_GAIN = -0.3  # one short epoch on 20 images: no worse than the input


def restoration_data(out: Path, per_class: int | None, bs: int, quick: bool) -> Any:
    """Spoiled copies of imagenette_small (written once under `out`) paired with the
    originals; `per_class` training images of each class (None: all)."""
    root = untar_data("imagenette_small")
    spoiled = out / "crappified"
    if not (spoiled / "val").exists():
        crappify_folder(root, spoiled, size=SIZE, low_size=LOW_SIZE, quality=QUALITY, seed=42)
    keep = 2 if quick else per_class
    meta = MODELS.meta["efficientnet_lite0"]

    def items(path: Path) -> list[Path]:
        files = sorted(get_image_files(path))
        if keep is None:
            return files
        seen: dict[tuple[str, str], int] = {}
        chosen = []
        for file in files:
            key = (file.parent.parent.name, file.parent.name)
            seen[key] = seen.get(key, 0) + 1
            if seen[key] <= keep:
                chosen.append(file)
        return chosen

    dblock = DataBlock(
        blocks=(ImageBlock, ImageBlock), get_items=items,
        get_y=lambda p: root / p.relative_to(spoiled),
        splitter=GrandparentSplitter(valid_name="val"),
        item_tfms=Resize(QUICK_SIZE if quick else SIZE),
        batch_tfms=[
            *aug_transforms(max_rotate=0, max_zoom=1, max_lighting=0, max_warp=0),
            Normalize.from_stats(meta.mean, meta.std),  # the encoder's, as unet_learner adds
        ],
    )  # fmt: skip
    return dblock.dataloaders(spoiled, bs=bs, num_workers=0 if quick else None)


class TenClassClassifier:
    """An ImageNet classifier read on imagenette's ten classes only."""

    def __init__(self, arch: str = "efficientnet_lite2") -> None:
        self.model = MODELS.create(arch, n_out=1000, pretrained=True).eval()
        meta = MODELS.meta[arch]
        self.mean = torch.tensor(meta.mean).view(1, -1, 1, 1)
        self.std = torch.tensor(meta.std).view(1, -1, 1, 1)
        self.rows = [IMAGENET_INDEX[name] for name in IMAGENETTE_NAMES.values()]

    def predict(self, pixels: Tensor) -> Tensor:
        """The class index (of the ten) of each image of `pixels` in [0, 1]."""
        with torch.inference_mode():
            logits = self.model((pixels - self.mean) / self.std)
        return logits[:, self.rows].argmax(dim=1)


def measure(
    dls: Any, restore: Callable[[Tensor], Tensor] | None, classifier: TenClassClassifier
) -> dict[str, float]:
    """PSNR, SSIM and the classifier's accuracy over the validation set, for the spoiled
    inputs (`restore` None) or a model's restorations; and the classifier's accuracy on the
    originals."""
    stats = normalize_stats(dls)
    assert stats is not None, "the data normalizes (restoration_data)"
    mean, std = (torch.tensor(s).view(1, -1, 1, 1) for s in stats)
    psnr, ssim = PSNR(stats=stats), SSIM(stats=stats)
    psnr.reset(), ssim.reset()
    wnids = list(IMAGENETTE_NAMES)
    labels = torch.tensor([wnids.index(parent_label(p)) for p in dls.valid_ds.items])
    right, right_original, seen = 0, 0, 0
    for x, y in dls.valid:
        out = x if restore is None else restore(x)
        psnr.accumulate(out, y), ssim.accumulate(out, y)
        truth = labels[seen : seen + len(x)]
        right += int((classifier.predict((out * std + mean).clamp(0, 1)) == truth).sum())
        right_original += int((classifier.predict(y * std + mean) == truth).sum())
        seen += len(x)
    return {
        "psnr": psnr.value, "ssim": ssim.value, "accuracy": right / seen,
        "original_accuracy": right_original / seen,
    }  # fmt: skip


def model_restorer(model: nn.Module) -> Callable[[Tensor], Tensor]:
    """A function running `model` in eval mode without gradients."""

    def restore(x: Tensor) -> Tensor:
        model.eval()
        with torch.inference_mode():
            return model(x).float()

    return restore


def restoration_unet(dls: Any, loss: Any, path: Path, quick: bool) -> Any:
    """The lesson's generator: a residual U-Net over a pretrained EfficientNet-Lite0 (with
    blur and self-attention), unfrozen (it starts as the identity, so the decoder needs no
    head start with a frozen encoder); weights saved under `path / "models"`."""
    metrics = [PSNR(), SSIM()] + (LossMetrics(loss) if isinstance(loss, FeatureLoss) else [])
    learn = unet_learner(
        dls, "efficientnet_lite0", loss_func=loss, metrics=metrics, blur=True,
        self_attention=True, path=path,
    )  # fmt: skip
    learn.progress.show = not quick
    learn.unfreeze()
    return learn


def fit_unet(learn: Any, quick: bool) -> Any:
    """The lesson's recipe: one-cycle, 4 epochs at 3e-3 (quick: 1 at 1e-3)."""
    learn.fit_one_cycle(1 if quick else 4, 1e-3 if quick else 3e-3)
    return learn


LOSSES = ("pixel", "feature")
PER_CLASS_OPTION = ("--per-class", {"type": int, "default": 100, "help": "training images a class"})


def feature_loss() -> FeatureLoss:
    """The lesson's feature loss: EfficientNet-Lite0's activations, with `FEATURE_LOSS`."""
    return FeatureLoss("efficientnet_lite0", **FEATURE_LOSS)


def run(
    quick: bool = False,
    out: Path | None = None,
    per_class: int = 100,
    losses: Sequence[str] = LOSSES,
) -> dict[str, float]:
    """The lesson: the spoiled images, a pixel-loss U-Net and a feature-loss U-Net, each
    measured on the validation images (PSNR, SSIM, classifier accuracy) with its time."""
    out = out or Path("lesson7_out")
    start = time.perf_counter()
    set_seed(42)
    dls = restoration_data(out, per_class, bs=4 if quick else 8, quick=quick)
    classifier = TenClassClassifier()
    found: dict[str, float] = {"data_s": time.perf_counter() - start}
    spoiled = measure(dls, None, classifier)
    found["original_accuracy"] = spoiled.pop("original_accuracy")
    found |= {f"crappified_{k}": v for k, v in spoiled.items()}
    for name in losses:
        loss = L1LossFlat() if name == "pixel" else feature_loss()
        began = time.perf_counter()
        learn = fit_unet(restoration_unet(dls, loss, out, quick), quick)
        found[f"{name}_train_s"] = time.perf_counter() - began
        figures = measure(dls, model_restorer(learn.model), classifier)
        figures.pop("original_accuracy")
        found |= {f"{name}_{k}": v for k, v in figures.items()}
        if not quick:
            learn.show_results(max_n=4).savefig(out / f"{name}_results.png", dpi=80)
            learn.export(out / f"{name}_unet.mentor")
            learn.save(f"{name}_unet", with_opt=False)  # lesson7_gan's pretrained generator
    found["seconds"] = time.perf_counter() - start
    return found


def shortfalls(found: dict[str, float], quick: bool) -> list[str]:
    """The feature-loss U-Net's PSNR gain and classifier accuracy against the spoiled images."""
    # quick: five steps are too few for the feature loss, so the pixel U-Net stands in
    psnr = found.get("pixel_psnr" if quick else "feature_psnr")
    if psnr is None:
        return []  # that U-Net was not trained (--losses)
    gain = psnr - found["crappified_psnr"]
    floor = QUICK_PSNR_GAIN if quick else PSNR_GAIN
    missed = [] if gain >= floor else [f"PSNR gain {gain:.2f} dB below {floor} dB"]
    if not quick and found["feature_accuracy"] < found["crappified_accuracy"]:
        missed.append(
            f"classifier accuracy {found['feature_accuracy']:.1%} on the restored images is "
            f"below {found['crappified_accuracy']:.1%} on the spoiled ones"
        )
    return missed


def main(argv: list[str] | None = None) -> int:
    """Run the lesson; 1 when the feature-loss U-Net misses a floor."""
    return lesson_main(
        __doc__, argv, run, shortfalls, out="lesson7_out",
        options=[
            PER_CLASS_OPTION,
            ("--losses", {"nargs": "+", "choices": LOSSES, "default": list(LOSSES),
                          "help": "the U-Nets to train"}),
        ],
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
