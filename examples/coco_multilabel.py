"""Multi-label classification on `coco_tiny`: which of 6 objects does each photo show?

200 COCO photos; an image's labels are the categories of its boxes (from `train.json`).
A pretrained EfficientNet-Lite0 is fine-tuned (head first, then everything) with
`accuracy_multi` and F2 (`fbeta(beta=2)`, thresh 0.5, averaged over samples: each image's F2
between its predicted and true label sets, then the mean, like fastai's FBetaMulti with
average='samples'). With 40 validation images the label priors are strong: answering
'chair' for every image scores accuracy_multi 0.796 and F2 0.496, 'book, chair, vase' F2
0.653 (accuracy 0.629). No constant answer reaches accuracy 0.8, so an accuracy above it
with F2 well above 0.5 shows the model looked at the pictures.
Run with `python -m examples.coco_multilabel`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from mentor.core.seed import set_seed
from mentor.data.block_loaders import BlockDataLoaders
from mentor.data.blocks import MultiCategoryBlock
from mentor.data.datablock import DataBlock
from mentor.data.external import untar_data
from mentor.data.items import get_image_files
from mentor.data.splitters import RandomSplitter
from mentor.train import Learner, accuracy_multi, fbeta
from mentor.vision.augment import aug_transforms
from mentor.vision.data import ImageBlock
from mentor.vision.learner import vision_learner
from mentor.vision.resize import Resize

THRESH = 0.5  # the F2 metric's, and BCEWithLogitsLossFlat's default for predict


def coco_labels(path: Path) -> Callable[[Path], list[str]]:
    """A labeller: an image's file -> the sorted names of its boxes' categories."""
    meta = json.loads((path / "train.json").read_text())
    names = {c["id"]: c["name"] for c in meta["categories"]}
    by_id = {img["id"]: img["file_name"] for img in meta["images"]}
    labels: dict[str, set[str]] = {}
    for ann in meta["annotations"]:
        labels.setdefault(by_id[ann["image_id"]], set()).add(names[ann["category_id"]])
    return lambda p: sorted(labels.get(Path(p).name, []))


def coco_dls(
    size: int = 160, bs: int = 8, seed: int = 42, num_workers: int | None = None
) -> BlockDataLoaders:
    """`coco_tiny` as multi-label loaders: 160 training and 40 validation images.

    Images are squished to `size` (no crop, so every labelled object stays in view), then
    training batches get the usual augmentations (flip, rotation, zoom, warp, lighting).
    """
    path = untar_data("coco_tiny")
    block = DataBlock(
        blocks=(ImageBlock(), MultiCategoryBlock),
        get_items=get_image_files,
        get_y=coco_labels(path),
        splitter=RandomSplitter(0.2, seed=seed),
        item_tfms=[Resize(size, method="squish")],
        batch_tfms=aug_transforms(),
    )
    return block.dataloaders(path, bs=bs, num_workers=num_workers, device="cpu")


def train(
    epochs: int = 4,
    lr: float = 1e-2,
    size: int = 160,
    bs: int = 8,
    freeze_epochs: int = 3,
    seed: int = 42,
    show: bool = True,
) -> Learner:
    """Fine-tune a pretrained `efficientnet_lite0`: `freeze_epochs` with the body frozen,
    then `epochs` of everything.

    Small batches and several frozen epochs because 160 images make few steps: the head's
    batch-norm statistics need about 20 steps to settle before the validation loss means much.
    """
    set_seed(seed)
    dls = coco_dls(size, bs, seed)
    metrics = [accuracy_multi, fbeta(beta=2.0, thresh=THRESH, average="samples")]
    learn = vision_learner(dls, "efficientnet_lite0", metrics=metrics)
    learn.progress.show = show
    learn.fine_tune(epochs, lr, freeze_epochs=freeze_epochs)
    return learn


def predicted_sets(learn: Learner, n: int = 3) -> list[tuple[str, list[str], list[str]]]:
    """(file name, predicted labels, true labels) for the first `n` validation images.

    `learn.predict(file)` opens and prepares the file as the validation set does and returns
    `(labels, one-hot, probabilities)`; its labels are those above the loss's thresh (0.5).
    """
    dls = learn.dls
    if not isinstance(dls, BlockDataLoaders):
        raise TypeError(f"predicted_sets needs DataBlock loaders (for the vocab), got {dls}")
    rows = []
    for i, file in enumerate(dls.valid_ds.items[:n]):
        predicted, _, _ = learn.predict(file)
        target = dls.valid_ds[i][1]
        actual = [dls.vocab[j] for j in torch.nonzero(target > 0.5).flatten().tolist()]
        rows.append((Path(file).name, list(predicted), actual))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the example; print the metrics and three predicted label sets."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=4, help="epochs after the frozen one")
    parser.add_argument("--lr", type=float, default=1e-2, help="fine_tune's base_lr")
    parser.add_argument("--freeze-epochs", type=int, default=3, help="epochs with the body frozen")
    parser.add_argument("--size", type=int, default=160, help="image size")
    parser.add_argument("--bs", type=int, default=8, help="batch size")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--out", default=None, help="folder for the loss plot (optional)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    start = time.perf_counter()
    learn = train(args.epochs, args.lr, args.size, args.bs, args.freeze_epochs)
    wall = time.perf_counter() - start
    if args.out is not None:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        learn.recorder.plot_loss().savefig(out / "loss.png")

    for name, predicted, actual in predicted_sets(learn):
        print(f"{name}: predicted {predicted}, actual {actual}")
    last = learn.recorder.values[-1]
    print(
        f"efficientnet_lite0 on coco_tiny: accuracy_multi {last['accuracy_multi']:.4f}, "
        f"F2 (samples) {last['fbeta_score']:.4f}; {wall:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
