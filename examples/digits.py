"""The demo: a small ResNet from scratch on scikit-learn's handwritten digits.

1,797 real 8x8 greyscale images of the digits 0-9, upscaled to 32x32 through the DataBlock
API; an `xresnet18` with one input channel learns them from scratch. The tour: `show_batch`,
`lr_find`, `fit_one_cycle`, the loss curves, the confusion matrix, the top losses and
`predict` on a few images. Every figure goes to one folder. Run with `make demo` or
`python -m examples.digits --out demo_out`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

from mentor import (
    CategoryBlock,
    ClassificationInterpretation,
    DataBlock,
    RandomSplitter,
    accuracy,
    set_seed,
)
from mentor.data.block_loaders import BlockDataLoaders
from mentor.train.learner import Learner
from mentor.vision import ImageBlock, Resize, aug_transforms, vision_learner


class DigitImages:
    """The digits as uint8 images (`[n, 8, 8]`, 0-255) and their labels ('0'-'9').

    `get_x` and `get_y` take an item's index, so the DataBlock's items are just indices.
    """

    def __init__(self) -> None:
        digits = load_digits()
        self.images = (digits.images * (255 / 16)).round().astype(np.uint8)
        self.labels = [str(t) for t in digits.target]

    def get_x(self, index: int) -> np.ndarray:
        """The image of item `index`."""
        return self.images[index]

    def get_y(self, index: int) -> str:
        """The label of item `index`."""
        return self.labels[index]


def digits_dls(
    digits: DigitImages, size: int = 32, bs: int = 64, seed: int = 42
) -> BlockDataLoaders:
    """The digits through a DataBlock: upscaled to `size`, a random 20% validation split,
    augmented with small rotations, zooms and lighting changes (no flips: a mirrored 2 is
    not a 2)."""
    block = DataBlock(
        blocks=(ImageBlock("L"), CategoryBlock),
        get_x=digits.get_x,
        get_y=digits.get_y,
        splitter=RandomSplitter(valid_pct=0.2, seed=seed),
        item_tfms=[Resize(size)],
        batch_tfms=aug_transforms(do_flip=False, max_rotate=10, max_warp=0.1),
    )
    return block.dataloaders(list(range(len(digits.labels))), bs=bs)


def look_at_mistakes(learn: Learner, out: Path) -> list[tuple[str, str, int]]:
    """Write the confusion matrix and the top losses; return the most confused pairs."""
    interp = ClassificationInterpretation.from_learner(learn)
    interp.plot_confusion_matrix(fname=out / "confusion_matrix.png")
    interp.plot_top_losses(9, fname=out / "top_losses.png")
    interp.print_classification_report()
    return interp.most_confused(min_val=2)


def predict_some(learn: Learner, digits: DigitImages, indices: list[int]) -> int:
    """Predict the images at `indices` one by one; print them; count the correct.

    `predict` takes an item as the DataBlock's items are (here an index: `get_x` turns it
    into the image) and sends it through the validation transforms."""
    correct = 0
    for index in indices:
        label, _, probs = learn.predict(index)
        truth = digits.get_y(index)
        correct += label == truth
        print(f"  image {index}: predicted {label} ({float(probs.max()):.1%}), actual {truth}")
    return correct


def main(argv: list[str] | None = None) -> int:
    """Run the tour; return 0 when validation accuracy reaches the 97% target."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="demo_out", help="folder for the figures")
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    set_seed(42)
    digits = DigitImages()
    dls = digits_dls(digits)
    dls.show_batch(max_n=16, fname=out / "batch.png")
    learn = vision_learner(dls, "xresnet18", pretrained=False, metrics=accuracy)
    suggested = learn.lr_find(show_plot=False)
    print(f"lr_find suggests: {', '.join(f'{k} {v:.2e}' for k, v in suggested.as_dict().items())}")
    learn.recorder.plot_lr_find(suggested.as_dict()).savefig(out / "lr_find.png")

    lr = suggested.valley if suggested.valley is not None else 1e-3
    print(f"training {args.epochs} epochs with fit_one_cycle, lr_max={lr:.2e}")
    learn.fit_one_cycle(args.epochs, lr)
    learn.recorder.plot_loss().savefig(out / "loss.png")
    acc = float(learn.recorder.values[-1]["accuracy"])

    confused = look_at_mistakes(learn, out)
    print("most confused (actual, predicted, count):", confused or "no pair twice")
    print("predictions on validation images:")
    predict_some(learn, digits, list(dls.valid_ds.items[:5]))
    report = learn.report(out, title="mentor demo: xresnet18 on sklearn digits")
    seconds = time.perf_counter() - start
    print(
        f"validation accuracy: {acc:.4f} (target >= 0.97) in {seconds:.0f} s; figures in "
        f"{out}/: batch, lr_find, loss, confusion_matrix, top_losses, and all of it in {report}"
    )
    return 0 if acc >= 0.97 else 1


if __name__ == "__main__":
    sys.exit(main())
