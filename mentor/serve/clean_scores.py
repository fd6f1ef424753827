"""The data cleaner's scores: each labelled image with the model's prediction and its loss.

Two sources: a trained `Learner` (its own training and validation items, through
`learn.get_preds(..., with_loss=True)`), or an exported model (`Predictor`) over a folder laid
out `SPLIT/CLASS/image` or `CLASS/image`, where the loss is -log(probability of the label).
An image that cannot be read, or whose folder is not a class of the model, gets an infinite
loss and a `problem` that says why. This module is pure Python and torch.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from PIL import Image
from torch import Tensor

from mentor.data.blocks import CategoryBlock
from mentor.data.errors import worker_message
from mentor.data.items import get_image_files
from mentor.inference.predictor import Predictor

if TYPE_CHECKING:
    from mentor.train.learner import Learner

CHUNK = 256  # images per predict_batch call; a chunk with a bad image is bisected
# what reading one bad image raises (BadImageError is an OSError)
UNREADABLE = (OSError, ValueError, KeyError, TypeError, Image.DecompressionBombError)


@dataclass(frozen=True)
class Entry:
    """One image as the cleaner shows it.

    Args:
        id: its place in the cleaner's order (0 = most confusing). path: relative to the
            data folder, '/'-separated. split: 'train', 'valid' (or '' when the folder has no
            split level). label: its class (its folder's name). predicted, probability: the
            model's class and its probability (None when unreadable). loss: the model's loss
            on the label (inf when unreadable or the label is not a class of the model).
        problem: why the loss is infinite, or None.
    """

    id: int
    path: str
    split: str
    label: str
    predicted: str | None
    probability: float | None
    loss: float
    problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The entry as JSON data (an infinite loss is null: JSON has no infinity)."""
        return {"id": self.id, "path": self.path, "split": self.split, "label": self.label,
                "predicted": self.predicted, "probability": self.probability,
                "loss": self.loss if math.isfinite(self.loss) else None,
                "problem": self.problem}  # fmt: skip


@dataclass
class ScoredImages:
    """The images of a data folder with their scores (`Entry.id` is not set yet: -1).

    Args:
        folder: the data folder (absolute). classes: the model's classes. entries: the images.
    """

    folder: Path
    classes: list[str]
    entries: list[Entry]


def _one_line(err: BaseException) -> str:
    return " ".join(worker_message(err).split()) or type(err).__name__


def _check_classifier(predictor: Predictor) -> list[str]:
    """The model's classes; ValueError unless it is a single-label image classifier."""
    if predictor.application != "vision" or not isinstance(predictor.target, CategoryBlock):
        target = type(predictor.target).__name__
        raise ValueError(f"the cleaner needs a single-label image classifier; this model is "
                         f"a {predictor.application} model predicting {target}")  # fmt: skip
    return [str(v) for v in predictor.vocab]


def labelled_images(folder: Path, splits: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """`(relative path, split)` of each image in a class folder under `folder`: CLASS/image or
    SPLIT/CLASS/image. Folders whose name starts with '_' (the cleaner's `_removed/`) and
    images directly in `folder` are left out; `splits` keeps only those splits."""
    found = []
    for file in get_image_files(folder):
        rel = PurePosixPath(file.relative_to(folder).as_posix())
        if len(rel.parts) < 2 or any(part.startswith("_") for part in rel.parts[:-1]):
            continue
        split = rel.parent.parent.as_posix()
        split = "" if split == "." else split
        if splits is None or split in splits:
            found.append((rel.as_posix(), split))
    return found


def _predict(predictor: Predictor, files: list[str], bs: int) -> list[Tensor | str]:
    """Each file's class probabilities, or the reason it could not be read. A chunk that
    fails is split in halves until the bad images are alone."""
    try:
        return list(predictor.predict_batch(files, bs=bs)[1])
    except UNREADABLE as err:
        if len(files) == 1:
            return [_one_line(err)]
    half = len(files) // 2
    return _predict(predictor, files[:half], bs) + _predict(predictor, files[half:], bs)


def _entry(path: str, split: str, probs: Tensor | str, classes: list[str]) -> Entry:
    """An entry from the prediction of one image (or the reason it failed)."""
    label = PurePosixPath(path).parent.name
    if isinstance(probs, str):
        return Entry(-1, path, split, label, None, None, math.inf, f"unreadable: {probs}")
    best = int(probs.argmax())
    predicted, probability = classes[best], float(probs[best])
    if label not in classes:
        problem = f"folder {label!r} is not a class of the model ({', '.join(classes)})"
        return Entry(-1, path, split, label, predicted, probability, math.inf, problem)
    loss = -math.log(max(float(probs[classes.index(label)]), 1e-12))
    return Entry(-1, path, split, label, predicted, probability, loss)


def score_folder(
    folder: str | Path,
    predictor: Predictor,
    splits: Sequence[str] | None = None,
    bs: int = 64,
) -> ScoredImages:
    """Predict every labelled image under `folder` with an exported image classifier.

    Args:
        folder: a folder of SPLIT/CLASS/image or CLASS/image files.
        predictor: the model (`Predictor.load("model.mentor")`).
        splits: only these splits (default: all). bs: batch size (64).
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"the data folder {str(folder)!r} does not exist; give a folder "
                                "of CLASS/ or SPLIT/CLASS/ image folders")  # fmt: skip
    classes = _check_classifier(predictor)
    found = labelled_images(root, splits)
    if not found:
        wanted = "" if splits is None else f" in the split(s) {list(splits)}"
        raise ValueError(f"no images in CLASS/ or SPLIT/CLASS/ folders under {str(folder)!r}"
                         f"{wanted}; check the folder and --split")  # fmt: skip
    entries = []
    for start in range(0, len(found), CHUNK):
        chunk = found[start : start + CHUNK]
        results = _predict(predictor, [str(root / path) for path, _ in chunk], bs)
        entries += [_entry(p, s, r, classes) for (p, s), r in zip(chunk, results, strict=True)]
    return ScoredImages(root.resolve(), classes, entries)


def _learner_items(learn: Learner) -> tuple[Any, list[tuple[str, list[Path]]]]:
    """The learner's DataBlock loaders and its items per split, checked to be image files
    labelled by their parent folder."""
    from mentor.data.block_loaders import BlockDataLoaders

    dls = learn.dls
    if not isinstance(dls, BlockDataLoaders) or dls.application != "vision":
        kind = type(dls).__name__
        raise ValueError(f"DatasetCleaner(learn) needs a learner on image files ({kind} has "
                         "none); use DatasetCleaner.from_folder(folder, Predictor.load("
                         "'model.mentor'))")  # fmt: skip
    if not isinstance(dls.target_block, CategoryBlock):
        raise ValueError("the cleaner needs a single-label classifier; this learner predicts "
                         f"{type(dls.target_block).__name__}")  # fmt: skip
    splits = []
    for split, ds in (("train", dls.train_ds), ("valid", dls.valid_ds)):
        items = list(ds.items)
        bad = [item for item in items if not isinstance(item, (str, Path))]
        if bad:
            raise ValueError(f"the cleaner needs image files; the {split} items include "
                             f"{bad[0]!r}; use DatasetCleaner.from_folder")  # fmt: skip
        splits.append((split, [Path(item).absolute() for item in items]))
    return dls, splits


def _check_parent_labels(files: list[Path], labels: list[str]) -> None:
    """ValueError unless each file's label is its parent folder's name (moving the file to
    another class folder then relabels it)."""
    for file, label in zip(files, labels, strict=True):
        if file.parent.name != label:
            raise ValueError(f"the cleaner needs images labelled by their parent folder: "
                             f"{str(file)!r} is labelled {label!r}; use a learner built with "
                             "parent_label (ImageDataLoaders.from_folder)")  # fmt: skip


def _score_split(
    learn: Learner, split: str, files: list[Path], root: Path, classes: list[str]
) -> list[Entry]:
    """The entries of one split's files, from `learn.get_preds(with_loss=True)`; the images
    the loader skipped as unreadable get an infinite loss."""
    dl: Any = learn.dls.test_dl(files, with_labels=True, skip_bad=True)  # a DeviceLoader
    with warnings.catch_warnings():  # the skipped images are listed as unreadable instead
        warnings.simplefilter("ignore")
        probs, targets, losses = learn.get_preds(dl=dl, with_loss=True)
    skipped = set(dl.loader.skipped)
    read = [file for file in files if str(file) not in skipped]
    _check_parent_labels(read, [classes[int(t)] for t in targets])
    entries = []
    for file, p, loss in zip(read, probs, losses.tolist(), strict=True):
        best = int(p.argmax())
        entries.append(Entry(-1, _relative(file, root), split, file.parent.name,
                             classes[best], float(p[best]), float(loss)))  # fmt: skip
    why = "unreadable: the image could not be decoded"
    for file in files:
        if str(file) in skipped:
            rel = _relative(file, root)
            entries.append(Entry(-1, rel, split, file.parent.name, None, None, math.inf, why))
    return entries


def score_learner(learn: Learner, folder: str | Path | None = None) -> ScoredImages:
    """The learner's training and validation images with its predictions and losses
    (`learn.get_preds(dl, with_loss=True)`, the validation transforms, no augmentation).

    Args:
        learn: a trained learner on image files labelled by their parent folder.
        folder: the data folder the paths are relative to (default: the folder above all
            the class folders).
    """
    dls, splits = _learner_items(learn)
    classes = [str(v) for v in dls.vocab]
    all_files = [file for _, files in splits for file in files]
    if not all_files:
        raise ValueError("the learner has no training or validation items to clean")
    root = Path(folder).absolute() if folder is not None else _common_root(all_files)
    entries = []
    for split, files in splits:
        if files:
            entries += _score_split(learn, split, files, root, classes)
    return ScoredImages(root.resolve(), classes, entries)


def _common_root(files: list[Path]) -> Path:
    """The folder above every file's class folder."""
    return Path(os.path.commonpath([str(file.parent.parent) for file in files]))


def _relative(file: Path, root: Path) -> str:
    """`file` relative to `root`, '/'-separated; ValueError when it lies outside."""
    try:
        return file.relative_to(root).as_posix()
    except ValueError:
        raise ValueError(
            f"the image {str(file)!r} is not under the data folder {str(root)!r}; "
            "pass folder= the folder that holds every image"
        ) from None


__all__ = ["Entry", "ScoredImages", "labelled_images", "score_folder", "score_learner"]
