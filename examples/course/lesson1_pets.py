"""Lesson 1: classify images whose labels are in their file names, as the course does with pets.

The lesson's steps, with mentor's names: labels from a regular expression on the file name
(`ImageDataLoaders.from_name_re`; the pets names are `great_pyrenees_173.jpg`, imagenette's are
`n03445777_13748.JPEG`), a pretrained `vision_learner`, `fit_one_cycle` with the body frozen,
`ClassificationInterpretation` (confusion matrix, most confused, top losses), then `unfreeze`,
`lr_find` and discriminative learning rates (`slice(lo, hi)`: small for the early layers). Data:
`imagenette_small` from `$MENTOR_DATA` (the pets set is not in the shared folder).

Floors: 90% validation accuracy after the frozen epochs and after the unfrozen ones (chance:
10%). Measured: 92.8% frozen, 94.0% unfrozen (lr_find valley 1e-4) on the 10 classes at
128 px in 278 s on 2 cores; the quick version (3 classes, 36 images each, 96 px) 95.5% /
95.5% in 10 s. Run with `python -m examples.course.lesson1_pets`.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from examples.course import lesson_main
from mentor.core.seed import set_seed
from mentor.data.external import untar_data
from mentor.data.items import get_image_files
from mentor.data.transforms import Normalize, imagenet_stats
from mentor.train import accuracy
from mentor.train.interpret import ClassificationInterpretation
from mentor.vision import ImageDataLoaders, Resize, aug_transforms, vision_learner

PAT = r"^(n\d+)_\d+\.JPEG$"  # the class (a WordNet id) is the name up to the last "_"
FLOOR = 0.9


def file_names(path: Path, n_classes: int | None, per_class: int | None) -> list[Path]:
    """The images whose names carry their label, `per_class` of the first `n_classes`."""
    named = sorted(f for f in get_image_files(path) if re.match(PAT, f.name))
    by_class: dict[str, list[Path]] = {}
    for file in named:
        by_class.setdefault(file.name.split("_")[0], []).append(file)
    kept = sorted(by_class)[:n_classes]
    return [f for label in kept for f in by_class[label][:per_class]]


def run(quick: bool = False, out: Path | None = None) -> dict[str, float]:
    """The lesson; returns the accuracy after each stage, the suggested rate and seconds."""
    start = time.perf_counter()
    set_seed(42)
    path = untar_data("imagenette_small")
    fnames = file_names(path, 3 if quick else None, 36 if quick else None)
    size = 96 if quick else 128
    dls = ImageDataLoaders.from_name_re(
        path, fnames, PAT, valid_pct=0.2, seed=42, item_tfms=Resize(size),
        batch_tfms=[*aug_transforms(), Normalize.from_stats(*imagenet_stats)],
        bs=16 if quick else 64, num_workers=0 if quick else None,
    )  # fmt: skip
    learn = vision_learner(dls, "efficientnet_lite0", metrics=accuracy)  # body frozen
    learn.progress.show = not quick
    learn.fit_one_cycle(2 if quick else 3, 3e-3)
    frozen = float(learn.validate()["accuracy"])

    interp = ClassificationInterpretation.from_learner(learn)
    confused = interp.most_confused(min_val=1)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        interp.plot_confusion_matrix(fname=out / "confusion_matrix.png")
        interp.plot_top_losses(6, fname=out / "top_losses.png")

    learn.unfreeze()
    found = learn.lr_find(num_it=40 if quick else 100, show_plot=False)
    # discriminative rates: the head at ten times the valley (the loss still falls there on
    # the plot), the first layers a hundred times slower
    top = min(10 * found.valley, 1e-3)
    learn.fit_one_cycle(1 if quick else 2, slice(top / 100, top))
    unfrozen = float(learn.validate()["accuracy"])
    print("most confused (actual, predicted, count):", confused[:5])
    return {
        "frozen_accuracy": frozen,
        "unfrozen_accuracy": unfrozen,
        "valley": float(found.valley),
        "n_classes": float(len(dls.vocab)),
        "seconds": time.perf_counter() - start,
    }


def shortfalls(found: dict[str, float], quick: bool) -> list[str]:
    """The accuracies below the floor (empty when both pass)."""
    return [
        f"{stage} {found[stage]:.1%} below {FLOOR:.0%}"
        for stage in ("frozen_accuracy", "unfrozen_accuracy")
        if found[stage] < FLOOR
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the lesson; 1 when an accuracy falls below its floor."""
    return lesson_main(__doc__, argv, run, shortfalls, out="lesson1_out")


if __name__ == "__main__":
    sys.exit(main())
