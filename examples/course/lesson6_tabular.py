"""Lesson 6: Rossmann-style tabular regression, data augmentation, and a heat map from hooks.

Tabular, as the course did Rossmann, on `bike_sharing/hour.csv` (hourly rentals): the date
`dateday` (dd-mm-yyyy) becomes its parts with `add_datepart` (Year, Month, Week, Dayofweek,
Is_month_end, ... Elapsed), `casual` and `registered` (which sum to the target) are dropped,
`cont_cat_split` sorts the columns into categorical and continuous (see
`examples/bike_sharing.py`, whose loaders this reuses), and `count` is predicted as its log
(`log_y=True`) inside a `y_range` a little above the largest log count, by a
`tabular_learner` with dropout (`ps=[0.001, 0.01]`, `embed_p=0.04`, the Rossmann values)
and the `exp_rmspe` metric (the competition's), checked against numpy on the whole
validation set (the last 20% of days).

Vision: `aug_transforms` on `mnist_tiny` digits (no flips: a mirrored 3 is not a 3) and
`show_batch(unique=True)`, which draws several augmented versions of one image; then an
`xresnet18` trained from scratch on them and the lesson's heat map built from hooks: with
`hook_output(layer)` and `hook_output(layer, grad=True)` on a convolutional block, one
forward and one backward pass of the predicted class give the activations and their
gradients; the mean gradient of each channel weights its activation map (Grad-CAM), and the
map must agree with mentor's `learn.grad_cam` to 1e-4. With `out`, the figures
(`augmentations.png`, `heatmap.png`) are written there.

Floors: exp_rmspe at most 0.7 (a model that always predicts one rental gets 0.97; measured
0.59 with Rossmann's 1000-500 layers and `wd=0.2`), digit accuracy 95% (measured 99.9% after
3 epochs), Grad-CAM within 1e-4 of `learn.grad_cam`. Measured in 18 s on 2 cores (one
thread); quick (a 200-100 model for 3 epochs, one epoch of digits): exp_rmspe 0.62 (floor
0.8; 0.58-0.69 over seeds), 97% of digits (floor 75%; 0.83-0.97 over seeds), in about 7 s.
Run with `python -m examples.course.lesson6_tabular`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch.nn.functional as F
from torch import Tensor, nn

from examples.bike_sharing import load_dls
from examples.course import lesson_main
from mentor.callbacks.hooks import hook_output
from mentor.core.seed import set_seed
from mentor.data.external import untar_data
from mentor.tabular import tabular_learner
from mentor.train import Learner, accuracy, exp_rmspe
from mentor.vision import ImageDataLoaders, aug_transforms, show_heatmap, vision_learner

RMSPE_CEILING = 0.7
QUICK_RMSPE_CEILING = 0.8
ACCURACY_FLOOR = 0.95
QUICK_ACCURACY_FLOOR = 0.75
CAM_TOLERANCE = 1e-4


def tabular(quick: bool) -> dict[str, float]:
    """Bike rentals with date parts, a log target in `y_range`, dropout and `exp_rmspe`."""
    set_seed(42)
    dls = load_dls(bs=128, device="cpu")
    print("date parts:", [name for name in dls.cat_names if name.startswith("dateday")])
    print("continuous:", dls.cont_names)
    max_log = float(dls.train_data.y.max())  # the largest log count of the training rows
    learn = tabular_learner(
        dls, layers=[200, 100] if quick else [1000, 500], ps=[0.001, 0.01], embed_p=0.04,
        y_range=(0.0, max_log * 1.2), metrics=exp_rmspe,
    )  # fmt: skip
    learn.progress.show = not quick
    if quick:
        learn.fit_one_cycle(3, 1e-2)
    else:  # Rossmann's recipe: a lower rate and strong weight decay for the wider layers
        learn.fit_one_cycle(5, 3e-3, wd=0.2)
    preds, targets = learn.get_preds()  # log counts
    truth, predicted = np.exp(targets.numpy().ravel()), np.exp(preds.numpy().ravel())
    return {
        "exp_rmspe": float(learn.validate()["exp_rmspe"]),
        "rmspe_numpy": float(np.sqrt(np.mean(((truth - predicted) / truth) ** 2))),
    }


def hooked_backward(model: nn.Module, x: Tensor, layer: nn.Module) -> tuple[Tensor, Tensor]:
    """The activations of `layer` for image batch `x` of one, and their gradients with
    respect to the predicted class's score (each `[channels, h, w]`)."""
    model.eval()
    with hook_output(layer) as acts, hook_output(layer, grad=True) as grads:
        preds = model(x)
        preds[0, int(preds[0].argmax())].backward()
    model.zero_grad()  # the backward pass was for the hooks, not for training
    return acts.stored[0], grads.stored[0]


def upsampled(heat: Tensor, size: tuple[int, int]) -> Tensor:
    """A `[h, w]` map at the image's `size`, scaled so that its peak is 1."""
    big = F.interpolate(heat[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
    return big / big.max().clamp_min(1e-12)


def heat_maps(learn: Learner, x: Tensor, layer: nn.Module) -> tuple[Tensor, Tensor, Tensor]:
    """The mean activation map, Grad-CAM by hand, and mentor's `grad_cam`, for image `x`."""
    acts, grads = hooked_backward(learn.model, x[None], layer)
    channel_weights = grads.mean(dim=(1, 2))  # how much each channel moves the class score
    cam = F.relu((channel_weights[:, None, None] * acts).sum(dim=0))
    size = (x.shape[-2], x.shape[-1])
    reference = learn.grad_cam(x, layer=layer)  # type: ignore[attr-defined]
    return upsampled(acts.mean(dim=0), size), upsampled(cam, size), reference


def vision(quick: bool, out: Path | None) -> dict[str, float]:
    """Augmented views of one digit, a small model trained on them, its heat map."""
    set_seed(42)
    path = untar_data("mnist_tiny")
    dls = ImageDataLoaders.from_folder(path, img_mode="L", bs=64, num_workers=0, device="cpu",
                                       batch_tfms=aug_transforms(do_flip=False))  # fmt: skip
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        dls.show_batch(max_n=9, unique=True, fname=out / "augmentations.png")
    learn = vision_learner(dls, "xresnet18", pretrained=False, metrics=accuracy)
    learn.progress.show = not quick
    learn.fit_one_cycle(1 if quick else 3, 1e-2)
    # the body's second stage: 4x4 maps for 28-pixel digits (the last two are 2x2 and 1x1,
    # too coarse to show where the model looked)
    layer = learn.model[0][5]
    x = dls.one_batch("valid")[0][0]
    mean_acts, cam, reference = heat_maps(learn, x, layer)
    if out is not None:
        plot_heat_maps(x[0], mean_acts, cam, out / "heatmap.png")
    return {
        "accuracy": float(learn.validate()["accuracy"]),
        "cam_difference": float((cam - reference).abs().max()),
        "cam_spread": float(cam.std()),
    }


def plot_heat_maps(image: Tensor, mean_acts: Tensor, cam: Tensor, fname: Path) -> None:
    """The digit under its mean activation map and under its Grad-CAM map."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(6, 3))
    for ax, heat, title in zip(axes, (mean_acts, cam), ("mean activation", "Grad-CAM")):
        show_heatmap(image, heat, ax)
        ax.set_title(title)
    fig.savefig(fname, dpi=80)
    plt.close(fig)


def run(quick: bool = False, out: Path | None = None) -> dict[str, float]:
    """Both halves of the lesson; their figures and the seconds taken."""
    start = time.perf_counter()
    found = {**tabular(quick), **vision(quick, out)}
    return {**found, "seconds": time.perf_counter() - start}


def shortfalls(found: dict[str, float], quick: bool) -> list[str]:
    """The outcomes that miss their floor (empty when all pass)."""
    ceiling = QUICK_RMSPE_CEILING if quick else RMSPE_CEILING
    floor = QUICK_ACCURACY_FLOOR if quick else ACCURACY_FLOOR
    checks = {
        f"exp_rmspe above {ceiling}": found["exp_rmspe"] > ceiling,
        "exp_rmspe differs from numpy's": abs(found["exp_rmspe"] - found["rmspe_numpy"]) > 1e-4,
        f"digit accuracy below {floor:.0%}": found["accuracy"] < floor,
        "Grad-CAM by hand differs from learn.grad_cam": found["cam_difference"] > CAM_TOLERANCE,
        "the heat map is flat": found["cam_spread"] <= 0.0,
    }
    return [what for what, missed in checks.items() if missed]


def main(argv: list[str] | None = None) -> int:
    """Run the lesson; 1 when an outcome misses its floor."""
    return lesson_main(__doc__, argv, run, shortfalls, out="lesson6_out")


if __name__ == "__main__":
    sys.exit(main())
