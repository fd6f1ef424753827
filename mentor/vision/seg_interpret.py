"""`SegmentationInterpretation`: where a segmentation model goes wrong, image by image and
class by class.

Predictions are gathered batch by batch: the pixel confusion matrix is summed as the batches
come, and only the predicted masks, the targets, the images (as people see them) and one loss
per image are kept, never the per-pixel probabilities of the whole set.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from mentor.core.device import split_batch, to_device
from mentor.data.block_loaders import BlockDataLoaders
from mentor.train.inference import _item_losses
from mentor.train.interpret import _safe_div, _saved, _show_raw
from mentor.train.seg_metrics import per_class_iou, pixel_confusion
from mentor.vision.blocks import mask_legend

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from mentor.train.learner import Learner

__all__ = ["SegmentationAccumulator", "SegmentationInterpretation"]


def _compact(mask: Tensor) -> Tensor:
    """A mask on the CPU as uint8 when its codes fit (camvid's 32 classes and a 255 void)."""
    mask = mask.detach().cpu()
    fits = mask.numel() == 0 or (int(mask.min()) >= 0 and int(mask.max()) <= 255)
    return mask.to(torch.uint8) if fits else mask.long()


class SegmentationAccumulator:
    """Sums the pixel confusion matrix and keeps masks and per-image losses, batch by batch.

    Args:
        n_classes: the model's output channels C.
        ignore_index: the target code left out of the confusion matrix (void); default None.

    Example:
        >>> acc = SegmentationAccumulator(32, ignore_index=255)
        >>> acc.add(scores, targets, losses)  # scores [B, C, H, W], targets [B, H, W]
        >>> acc.confusion, acc.losses
    """

    def __init__(self, n_classes: int, ignore_index: int | None = None) -> None:
        self.n_classes, self.ignore_index = n_classes, ignore_index
        self.confusion = torch.zeros(n_classes, n_classes, dtype=torch.int64)
        self._preds: list[Tensor] = []
        self._targets: list[Tensor] = []
        self._losses: list[Tensor] = []

    def add(self, scores: Tensor, targets: Tensor, losses: Tensor) -> None:
        """One batch: class scores `[B, C, H, W]`, target masks `[B, H, W]` (or
        `[B, 1, H, W]`) and the loss of each image `[B]`."""
        if targets.ndim == scores.ndim:
            targets = targets.squeeze(1)
        confusion = pixel_confusion(scores, targets, self.n_classes, self.ignore_index)
        self.confusion += confusion.cpu()
        self._preds.append(_compact(scores.argmax(dim=1)))
        self._targets.append(_compact(targets))
        self._losses.append(losses.detach().float().cpu())

    @property
    def preds(self) -> Tensor:
        """The predicted masks `[N, H, W]` (the argmax class of each pixel)."""
        return torch.cat(self._preds)

    @property
    def targets(self) -> Tensor:
        """The target masks `[N, H, W]`."""
        return torch.cat(self._targets)

    @property
    def losses(self) -> Tensor:
        """The loss of each image `[N]`."""
        return torch.cat(self._losses)


class SegmentationInterpretation:
    """Per-image losses, masks and the whole set's pixel confusion matrix of a segmentation
    learner, to inspect.

    Build it with `from_learner`; `__init__` takes what it gathered (on the CPU).

    Args:
        learn: the learner (None is fine for the tables).
        images: the inputs as people see them `[N, ...]` (decoded by the image block), or
            the raw inputs for plain loaders; None when not kept (no `plot_top_losses`).
        preds, targets: predicted and target masks `[N, H, W]`. losses: per image `[N]`.
        confusion: pixel counts `[C, C]`, rows the target class, columns the predicted one.
        codes: the class names (default: `learn.dls.vocab`, else the class indices).
        ignore_index: the target code left out (void); default None.

    Example:
        >>> interp = SegmentationInterpretation.from_learner(learn, ignore_index=31)
        >>> interp.per_class_iou().head()
        >>> interp.plot_top_losses(3, fname="top_losses.png")
    """

    def __init__(
        self,
        learn: Learner | None,
        images: Tensor | None,
        preds: Tensor,
        targets: Tensor,
        losses: Tensor,
        confusion: Tensor,
        codes: Sequence[Any] | None = None,
        ignore_index: int | None = None,
    ) -> None:
        self.learn, self.images = learn, images
        self.preds, self.targets, self.losses = preds, targets, losses
        self.confusion = confusion
        self.n_classes = confusion.shape[0]
        vocab = list(codes) if codes else ([] if learn is None else list(learn.dls.vocab))
        vocab += list(range(len(vocab), self.n_classes))
        self.codes = vocab
        self.ignore_index = ignore_index

    @classmethod
    def from_learner(
        cls, learn: Learner, dl: Iterable[Any] | None = None, ignore_index: int | None = None
    ) -> SegmentationInterpretation:
        """Predict on `dl` (default: the validation set), one batch at a time.

        The loss of an image is the mean of its pixel losses (the learner's loss with
        `reduction='none'`, as `get_preds(with_loss=True)` gives).

        Args:
            learn: a segmentation learner (outputs `[B, C, H, W]`, masks `[B, H, W]`).
            dl: the batches to look at. ignore_index: the target code (void) left out of the
                confusion matrix and the IoU; default None.
        """
        loader = learn.dls.valid if dl is None else dl
        if loader is None:
            raise ValueError("there is no validation set; pass dl= to interpret other data")
        dls = learn.dls
        accumulator: SegmentationAccumulator | None = None
        images: list[Tensor] = []
        learn.model.eval()
        with torch.inference_mode(), learn.autocast:
            for batch in loader:
                xb, yb = split_batch(to_device(batch, dls.device), dls.n_inp)
                if not yb:
                    raise ValueError("SegmentationInterpretation needs targets; batches have none")
                scores = learn.model(*xb).float()
                _check_scores(scores)
                if accumulator is None:
                    accumulator = SegmentationAccumulator(scores.shape[1], ignore_index)
                accumulator.add(scores, yb[0], _item_losses(learn.loss_func, scores, yb[0]))
                images.append(_shown_images(dls, xb[0]))
        if accumulator is None:
            raise ValueError("the loader gave no batches; there is nothing to interpret")
        return cls(
            learn, torch.cat(images), accumulator.preds, accumulator.targets,
            accumulator.losses, accumulator.confusion, ignore_index=ignore_index,
        )  # fmt: skip

    # ----- tables -----
    def top_losses(self, k: int | None = None, largest: bool = True) -> tuple[Tensor, Tensor]:
        """The `k` highest image losses (all when None; the lowest with largest=False) and the
        indices of their images."""
        k = len(self.losses) if k is None else min(k, len(self.losses))
        values, indices = self.losses.topk(k, largest=largest)
        return values, indices

    def per_class_iou(self, ascending: bool = False) -> pd.DataFrame:
        """One row per class: `code`, `iou`, `target_pixels`, `predicted_pixels`.

        Sorted by IoU (highest first; lowest with ascending=True); classes absent from both
        targets and predictions, and `ignore_index`, have a NaN IoU and come last.
        """
        matrix = self.confusion
        frame = pd.DataFrame(
            {
                "code": [str(code) for code in self.codes],
                "iou": per_class_iou(matrix, self.ignore_index).numpy(),
                "target_pixels": matrix.sum(1).numpy(),
                "predicted_pixels": matrix.sum(0).numpy(),
            }
        )
        frame = frame.sort_values("iou", ascending=ascending, na_position="last", kind="stable")
        return frame.reset_index(drop=True)

    @property
    def mean_iou(self) -> float:
        """The mean IoU over the classes present in targets or predictions (NaN if none)."""
        scores = per_class_iou(self.confusion, self.ignore_index)
        present = ~scores.isnan()
        return float(scores[present].mean()) if bool(present.any()) else math.nan

    # ----- plots -----
    def plot_confusion_matrix(
        self,
        normalize: bool = True,
        fname: str | Path | None = None,
        min_pixels: int = 0,
        cmap: str = "Blues",
        figsize: tuple[float, float] | None = None,
    ) -> Figure:
        """Draw the pixel confusion matrix, code names on the axes (rows: the target class).

        Args:
            normalize: show each row as shares of the target class (False: pixel counts).
            fname: also save the figure there (a PNG).
            min_pixels: hide the classes with fewer target plus predicted pixels than this
                (1 hides the classes that never occur); default 0 shows all.
            cmap: of the plot. figsize: default grows with the number of classes shown.
        """
        from mentor.core.figures import subplots

        counts = self.confusion.numpy()
        sizes = counts.sum(0) + counts.sum(1)
        shown = np.flatnonzero(sizes >= max(min_pixels, 0))
        counts = counts[np.ix_(shown, shown)]
        matrix = _safe_div(counts, counts.sum(axis=1, keepdims=True)) if normalize else counts
        side = max(4.0, 0.35 * len(shown) + 2)
        fig, ax = subplots(figsize=figsize or (side, side))
        ax.imshow(matrix, interpolation="nearest", cmap=cmap)
        names = [str(self.codes[i]) for i in shown]
        ax.set_xticks(np.arange(len(shown)), names, rotation=90, fontsize=8)
        ax.set_yticks(np.arange(len(shown)), names, fontsize=8)
        if len(shown) <= 12:  # numbers in the cells stay readable only for a few classes
            threshold = matrix.max() / 2 if matrix.size else 0
            for i in range(len(shown)):
                for j in range(len(shown)):
                    text = f"{matrix[i, j]:.2f}" if normalize else f"{matrix[i, j]}"
                    color = "white" if matrix[i, j] > threshold else "black"
                    ax.text(j, i, text, ha="center", va="center", color=color, fontsize=7)
        title = "Pixel confusion matrix" + (" (share of each target class)" if normalize else "")
        ax.set(title=title, xlabel="Predicted", ylabel="Target")
        fig.tight_layout()
        return _saved(fig, fname)

    def plot_top_losses(
        self,
        k: int = 4,
        fname: str | Path | None = None,
        figsize: tuple[float, float] | None = None,
        largest: bool = True,
    ) -> Figure:
        """One row per image with the highest loss: the image, the target and the predicted
        mask over it, with a legend of the codes present.

        Args:
            k: how many images (4). fname: also save the figure there (a PNG).
            figsize: default 3 inches per panel plus room for the legend.
            largest: False shows the lowest losses instead.
        """
        from mentor.core.figures import subplots

        if self.images is None:
            raise ValueError("plot_top_losses needs the images; build it with from_learner")
        losses, indices = self.top_losses(k, largest=largest)
        nrows = max(len(indices), 1)
        fig, axes = subplots(nrows, 3, figsize=figsize or (10.5, 2.6 * nrows), squeeze=False)
        for row, loss, index in zip(axes, losses.tolist(), indices.tolist()):
            self._plot_row(row, index, loss)
        for ax in axes.flat:
            ax.axis("off")
        fig.suptitle("image / target / prediction, highest loss first", fontsize=10)
        fig.tight_layout()
        return _saved(fig, fname)

    def _plot_row(self, row: Sequence[Axes], index: int, loss: float) -> None:
        target, pred = self.targets[index].long(), self.preds[index].long()
        for ax in row:
            self._show_image(index, ax)
        self._draw_mask(row[1], target)
        self._draw_mask(row[2], pred)
        kept = target != self.ignore_index if self.ignore_index is not None else None
        right = (pred == target) if kept is None else (pred == target)[kept]
        accuracy = float(right.float().mean()) if right.numel() else math.nan
        row[0].set_title(f"image {index}: loss {loss:.3f}", fontsize=9)
        row[1].set_title("target", fontsize=9)
        row[2].set_title(f"prediction: {accuracy:.0%} of pixels right", fontsize=9)
        self._legend(row[2], torch.cat([target.flatten(), pred.flatten()]))

    def _draw_mask(self, ax: Axes, mask: Tensor) -> None:
        values = np.ma.masked_equal(
            mask.numpy(), -1 if self.ignore_index is None else self.ignore_index
        )
        ax.imshow(values, cmap="tab20", alpha=0.5, vmin=0, vmax=max(self.n_classes - 1, 1),
                  interpolation="nearest")  # fmt: skip

    def _legend(self, ax: Axes, codes: Tensor) -> None:
        present = [int(c) for c in codes.unique().tolist() if 0 <= c < self.n_classes]
        present = [c for c in present if c != self.ignore_index]
        mask_legend(ax, present, self.codes, self.n_classes)

    def _show_image(self, index: int, ax: Axes) -> None:
        assert self.images is not None
        dls = self.learn.dls if self.learn is not None else None
        if isinstance(dls, BlockDataLoaders):
            dls.block.blocks[0].show(self.images[index], ax)
            return
        _show_raw(self.images[index], ax)


def _shown_images(dls: Any, inputs: Tensor) -> Tensor:
    """The images of a batch as people see them (batch transforms undone, e.g. uint8)."""
    if isinstance(dls, BlockDataLoaders):
        items = dls.decode_batch([inputs], train=False)
        return torch.stack([torch.as_tensor(item[0]) for item in items])
    return inputs.detach().cpu()


def _check_scores(scores: Tensor) -> None:
    if scores.ndim != 4:
        raise ValueError(
            f"SegmentationInterpretation needs class scores [B, C, H, W] from the model, got "
            f"shape {list(scores.shape)}; use ClassificationInterpretation for classifiers"
        )
