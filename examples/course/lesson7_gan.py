"""Lesson 7: a GAN sharpens the feature-loss U-Net's restorations.

The lesson's steps, with mentor's names, after `lesson7_superres` (whose crappified images
and feature-loss U-Net it reuses from the same `--out` folder, or makes again):

1. the generator: the feature-loss U-Net, pretrained (`learn.load("feature_unet")`);
2. the critic: `gan_critic()` (spectral-norm convolutions) pretrained to tell the
   generator's restorations of the training images ('generated', 0) from the originals
   ('real', 1) with a binary cross-entropy, as the lesson's `learn_crit`;
3. the GAN: `GANLearner.from_learners(gen_learn, crit_learn, switcher=AdaptiveGANSwitcher(
   critic_thresh=0.65), weights_gen=(1, ADV_WEIGHT))` with Adam without momentum, trained at
   a low constant rate; the generator's loss is the feature loss plus ADV_WEIGHT times the
   adversarial one (the lesson's 50 swamps the feature loss here: see MEASURED).

Measured on imagenette_small's 500 validation images at 128 px, as in `lesson7_superres`:
PSNR, SSIM and EfficientNet-Lite2's accuracy on the ten classes, for the crappified images,
the pretrained U-Net and the U-Net after GAN training, with the time of each step. The GAN
is judged by the classifier (a GAN trades PSNR for sharpness): its output must stay at least
as recognisable as the crappified inputs. The generator is exported (`gan_generator.mentor`:
`mentor predict gan_generator.mentor image.jpg --out-dir restored` writes PNGs).

MEASURED below (the adversarial weight was chosen from three runs). Run with
`python -m examples.course.lesson7_gan` (`--quick`: 20 training and 20 validation images at
96 px, seconds).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from examples.course import lesson_main
from examples.course.lesson7_superres import (
    PER_CLASS_OPTION,
    TenClassClassifier,
    feature_loss,
    fit_unet,
    measure,
    model_restorer,
    restoration_data,
    restoration_unet,
)
from mentor.core.seed import set_seed
from mentor.data.loaders import DataLoaders
from mentor.train import Learner
from mentor.vision.gan_learner import GANLearner
from mentor.vision.gan_trainer import AdaptiveGANSwitcher
from mentor.vision.models.critic import gan_critic

PRETRAINED = "feature_unet"  # lesson7_superres saves the feature-loss U-Net under this name
ADV_WEIGHT = 0.05  # the lesson's 50 over the critic's 32 x 32 summed patch scores (50 / 1024)
MEASURED = """
After lesson7_superres (100 training images a class; the 500 validation images at 128 px;
2 cores): crappified 24.29 dB, SSIM 0.710, EfficientNet-Lite2 77.2% (originals 94.0%);
feature-loss U-Net 25.36 dB, 0.747, 78.2%; critic pretrained 3 epochs (nf 64): 70.0%
validation accuracy, 142 s; GAN 3 epochs at 1e-4: 25.24 dB, 0.744, 78.0% in 372 s
(604 s in all). The adversarial weight decides it: 50 gave 23.03 dB and 68.8%, 2 gave
24.16 dB and 70.0% (both below the crappified images' accuracy), 0.05 the figures above.
Three epochs on CPU sharpen edges a little (gan_results.png); the lesson's many GPU epochs
would go further.
"""


def pretrained_generator(dls: Any, out: Path, quick: bool) -> tuple[Learner, float]:
    """The feature-loss U-Net of `lesson7_superres`: loaded from `out / "models"` when that
    lesson ran with the same `--out`, else trained here; and the seconds it took."""
    began = time.perf_counter()
    learn = restoration_unet(dls, feature_loss(), out, quick)
    if (out / "models" / f"{PRETRAINED}.pth").exists() and not quick:
        learn.load(PRETRAINED, with_opt=False)
    else:
        fit_unet(learn, quick)
    return learn, time.perf_counter() - began


def critic_data(dls: Any, generator: nn.Module, bs: int) -> DataLoaders:
    """The critic's lesson: the generator's restorations of the training images labelled 0
    ('generated') and the originals 1 ('real'), in the data's normalization; the same split
    of the validation images."""

    def split(loader: Any) -> tuple[Tensor, Tensor]:
        restore = model_restorer(generator)
        generated, real = [], []
        for x, y in loader:
            generated.append(restore(x))
            real.append(y.float())
        images = torch.cat([*generated, *real])
        labels = torch.cat([torch.zeros(len(images) // 2), torch.ones(len(images) // 2)])
        return images, labels

    return DataLoaders.from_tensors(split(dls.train), split(dls.valid), bs=bs, device="cpu")


def critic_accuracy(pred: Tensor, target: Tensor) -> Tensor:
    """The share of images the critic puts on the right side of 0 (real > 0)."""
    return ((pred > 0).float() == target).float().mean()


def run(quick: bool = False, out: Path | None = None, per_class: int = 100) -> dict[str, float]:
    """The lesson: the pretrained U-Net, a pretrained critic, then the GAN; PSNR, SSIM and
    classifier accuracy before and after, with the time of each step."""
    out = out or Path("lesson7_out")
    start = time.perf_counter()
    set_seed(42)
    bs = 4 if quick else 8
    dls = restoration_data(out, per_class, bs=bs, quick=quick)
    classifier = TenClassClassifier()
    found: dict[str, float] = {}
    found |= {f"crappified_{k}": v for k, v in measure(dls, None, classifier).items()}
    gen_learn, found["generator_s"] = pretrained_generator(dls, out, quick)
    before = measure(dls, model_restorer(gen_learn.model), classifier)
    found |= {f"unet_{k}": v for k, v in before.items() if k != "original_accuracy"}

    began = time.perf_counter()
    crit_learn = Learner(
        critic_data(dls, gen_learn.model, bs), gan_critic(nf=32 if quick else 64),
        loss_func=nn.BCEWithLogitsLoss(), metrics=critic_accuracy, path=out,
    )  # fmt: skip
    crit_learn.progress.show = not quick
    crit_learn.fit_one_cycle(1 if quick else 3, 1e-3)
    found["critic_accuracy"] = float(crit_learn.validate()["critic_accuracy"])
    found["critic_s"] = time.perf_counter() - began

    began = time.perf_counter()
    learn = GANLearner.from_learners(
        gen_learn, crit_learn, switcher=AdaptiveGANSwitcher(critic_thresh=0.65),
        weights_gen=(1.0, ADV_WEIGHT),
    )  # fmt: skip
    learn.progress.show = not quick
    learn.fit(1 if quick else 3, 1e-4, wd=1e-3)
    found["gan_s"] = time.perf_counter() - began
    after = measure(dls, model_restorer(learn.generator), classifier)
    found |= {f"gan_{k}": v for k, v in after.items() if k != "original_accuracy"}
    found["original_accuracy"] = after["original_accuracy"]
    exported = learn.export(out / "gan_generator.mentor")
    found["exported_bytes"] = exported.stat().st_size
    if not quick:
        learn.show_results(max_n=4).savefig(out / "gan_results.png", dpi=80)
    found["seconds"] = time.perf_counter() - start
    return found


def shortfalls(found: dict[str, float], quick: bool) -> list[str]:
    """The GAN's output must stay at least as recognisable as the crappified images (full
    run) and its generator must have been exported."""
    missed = [] if found["exported_bytes"] > 0 else ["the generator was not exported"]
    if not quick and found["gan_accuracy"] < found["crappified_accuracy"]:
        missed.append(
            f"classifier accuracy {found['gan_accuracy']:.1%} after the GAN is below "
            f"{found['crappified_accuracy']:.1%} on the crappified images"
        )
    return missed


def main(argv: list[str] | None = None) -> int:
    """Run the lesson; 1 when the GAN misses a floor."""
    return lesson_main(
        __doc__, argv, run, shortfalls, out="lesson7_out",
        options=[PER_CLASS_OPTION],
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
