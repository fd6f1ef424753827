"""`ClassificationInterpretation`: where a single-label classifier goes wrong.

Works for any learner whose predictions are class probabilities `[N, C]` (vision, text,
tabular): the confusion matrix, the most confused pairs, the items with the highest loss, a
per-class report. Plots use matplotlib and work without a display (save with `fname=`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import Tensor

from mentor.core.device import is_main_process
from mentor.data.block_loaders import BlockDataLoaders
from mentor.train.losses import loss_decodes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from mentor.train.learner import Learner


class ClassificationInterpretation:
    """Predictions, targets and per-item losses of a single-label classifier, to inspect.

    Build it with `from_learner`; `__init__` takes the tensors directly (on the CPU).
    Multi-label targets are not supported.

    Args:
        learn: the learner (None is fine for the tables; plots of inputs need it).
        inputs: the inputs as the model saw them `[N, ...]` (None when not kept).
        probs: class probabilities `[N, C]`. targets: class indices `[N]`.
        losses: the loss of each item `[N]`. decoded: predicted classes `[N]` (default:
            the argmax of `probs`). vocab: class names (default: `learn.dls.vocab`, else the
            class indices).

    Example:
        >>> interp = ClassificationInterpretation.from_learner(learn)
        >>> interp.most_confused(min_val=2)
        >>> interp.plot_top_losses(9, fname="top_losses.png")
    """

    def __init__(
        self,
        learn: Learner | None,
        inputs: Tensor | None,
        probs: Tensor,
        targets: Tensor,
        losses: Tensor,
        decoded: Tensor | None = None,
        vocab: Sequence[Any] | None = None,
    ) -> None:
        _check_single_label(probs, targets)
        self.learn, self.inputs = learn, inputs
        self.probs, self.targets = probs, targets.long()
        self.losses = losses
        self.decoded = (probs.argmax(dim=1) if decoded is None else decoded).long()
        self.vocab = list(vocab) if vocab else _learner_vocab(learn)
        self.n_classes = max(probs.shape[1], len(self.vocab))
        if not self.vocab:
            self.vocab = list(range(self.n_classes))

    @classmethod
    def from_learner(
        cls, learn: Learner, dl: Iterable[Any] | None = None
    ) -> ClassificationInterpretation:
        """Predict on `dl` (default: the validation set) and keep what interpretation needs.

        Args:
            learn: a trained single-label classifier. dl: the batches to look at.
        """
        inputs, probs, targets, losses = learn.get_preds(dl, with_input=True, with_loss=True)
        _check_single_label(probs, targets)
        decoded = loss_decodes(learn.loss_func, probs)
        return cls(learn, inputs, probs, targets, losses, decoded)

    # ----- tables -----
    def confusion_matrix(self) -> np.ndarray:
        """Counts `[C, C]`: rows are the actual classes, columns the predicted ones."""
        n = self.n_classes
        pairs = (self.targets * n + self.decoded).numpy()
        return np.bincount(pairs, minlength=n * n).reshape(n, n)

    def most_confused(self, min_val: int = 1) -> list[tuple[Any, Any, int]]:
        """The off-diagonal cells with at least `min_val` items, most frequent first.

        Returns:
            `(actual, predicted, count)` with class names.
        """
        matrix = self.confusion_matrix()
        cells = [
            (self.vocab[i], self.vocab[j], int(matrix[i, j]))
            for i in range(self.n_classes)
            for j in range(self.n_classes)
            if i != j and matrix[i, j] >= min_val
        ]
        return sorted(cells, key=lambda cell: -cell[2])

    def top_losses(self, k: int | None = None, largest: bool = True) -> tuple[Tensor, Tensor]:
        """The `k` highest losses (all when None; the lowest with largest=False) and the
        indices of their items."""
        k = len(self.losses) if k is None else min(k, len(self.losses))
        values, indices = self.losses.topk(k, largest=largest)
        return values, indices

    def classification_report(self) -> dict[str, dict[str, float]]:
        """Precision, recall, f1 and support per class, with 'macro avg' and 'weighted avg'
        rows, and 'accuracy' (`{'accuracy': {'value': ..., 'support': N}}`)."""
        matrix = self.confusion_matrix().astype(np.float64)
        true_pos = np.diag(matrix)
        support = matrix.sum(axis=1)
        precision = _safe_div(true_pos, matrix.sum(axis=0))
        recall = _safe_div(true_pos, support)
        f1 = _safe_div(2 * precision * recall, precision + recall)
        report: dict[str, dict[str, float]] = {}
        for i, name in enumerate(self.vocab):
            report[str(name)] = {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": float(support[i]),
            }
        total = float(support.sum())
        weights = support / total if total else np.zeros_like(support)
        for row, w in (("macro avg", None), ("weighted avg", weights)):
            report[row] = {
                "precision": float(np.average(precision, weights=w)),
                "recall": float(np.average(recall, weights=w)),
                "f1": float(np.average(f1, weights=w)),
                "support": total,
            }
        report["accuracy"] = {"value": float(true_pos.sum() / total) if total else 0.0}
        report["accuracy"]["support"] = total
        return report

    def print_classification_report(self) -> str:
        """Print (on the main process) and return the per-class report as a table."""
        report = self.classification_report()
        width = max(12, *(len(str(name)) for name in self.vocab))
        lines = [f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>9}", ""]
        for name in [*map(str, self.vocab), None, "macro avg", "weighted avg"]:
            if name is None:
                accuracy = report["accuracy"]
                row = f"{'accuracy':>{width}} {'':>9} {'':>9} {accuracy['value']:>9.2f}"
                lines += ["", f"{row} {int(accuracy['support']):>9}"]
                continue
            r = report[name]
            lines.append(
                f"{name:>{width}} {r['precision']:>9.2f} {r['recall']:>9.2f} "
                f"{r['f1']:>9.2f} {int(r['support']):>9}"
            )
        text = "\n".join(lines)
        if is_main_process():
            print(text)
        return text

    # ----- plots -----
    def plot_confusion_matrix(
        self,
        normalize: bool = False,
        title: str = "Confusion matrix",
        cmap: str = "Blues",
        figsize: tuple[float, float] | None = None,
        fname: str | Path | None = None,
    ) -> Figure:
        """Draw the confusion matrix with the count (or share of the row) in each cell.

        Args:
            normalize: show each row as shares of the actual class (False: counts).
            title, cmap: of the plot. figsize: default grows with the number of classes.
            fname: also save the figure there (a PNG).
        """
        from mentor.core.figures import subplots

        counts = self.confusion_matrix()
        matrix = _safe_div(counts, counts.sum(axis=1, keepdims=True)) if normalize else counts
        side = max(4.0, 0.6 * self.n_classes + 2)
        fig, ax = subplots(figsize=figsize or (side, side))
        ax.imshow(matrix, interpolation="nearest", cmap=cmap)
        names = [str(name) for name in self.vocab]
        ticks = np.arange(self.n_classes)
        ax.set_xticks(ticks, names, rotation=90)
        ax.set_yticks(ticks, names)
        threshold = matrix.max() / 2
        for i in range(self.n_classes):
            for j in range(self.n_classes):
                text = f"{matrix[i, j]:.2f}" if normalize else f"{matrix[i, j]}"
                color = "white" if matrix[i, j] > threshold else "black"
                ax.text(j, i, text, ha="center", va="center", color=color)
        ax.set(title=title, xlabel="Predicted", ylabel="Actual")
        fig.tight_layout()
        return _saved(fig, fname)

    def plot_top_losses(
        self,
        k: int = 9,
        heatmap: bool = False,
        fname: str | Path | None = None,
        figsize: tuple[float, float] | None = None,
        largest: bool = True,
    ) -> Figure:
        """Show the `k` items with the highest loss, titled predicted / actual / loss /
        probability of the actual class.

        Args:
            k: how many items (9). heatmap: overlay a Grad-CAM map of the predicted class
                (needs a vision learner, which has `grad_cam`). fname: also save the figure
                there (a PNG). figsize: default 3 inches per item. largest: False shows the
                lowest losses instead.
        """
        from mentor.core.figures import subplots

        if self.inputs is None:
            raise ValueError("plot_top_losses needs the inputs; build it with from_learner")
        grad_cam = self._grad_cam() if heatmap else None
        losses, indices = self.top_losses(k, largest=largest)
        ncols = math.ceil(math.sqrt(len(indices)))
        nrows = math.ceil(len(indices) / ncols)
        fig, axes = subplots(nrows, ncols, figsize=figsize or (3 * ncols, 3 * nrows))
        axes_list = list(getattr(axes, "flat", [axes]))
        for ax, loss, index in zip(axes_list, losses.tolist(), indices.tolist()):
            predicted, actual = int(self.decoded[index]), int(self.targets[index])
            self._show_input(index, ax)
            if grad_cam is not None:
                draw_heatmap(ax, grad_cam(self.inputs[index], target=predicted))
            prob = float(self.probs[index, actual])
            title = f"{self.vocab[predicted]}/{self.vocab[actual]} / {loss:.2f} / {prob:.2f}"
            ax.set_title(title, fontsize=9)
        for ax in axes_list:
            ax.axis("off")
        fig.suptitle("predicted / actual / loss / probability of the actual class", fontsize=10)
        fig.tight_layout()
        return _saved(fig, fname)

    def _grad_cam(self) -> Any:
        grad_cam = getattr(self.learn, "grad_cam", None)
        if not callable(grad_cam):
            raise ValueError(
                f"heatmap=True needs a vision learner (one with a grad_cam method, as "
                f"vision_learner builds), got {type(self.learn).__name__}; use heatmap=False"
            )
        return grad_cam

    def _show_input(self, index: int, ax: Axes) -> None:
        """Draw one input with its block's `show`, after undoing the batch transforms."""
        assert self.inputs is not None
        dls = self.learn.dls if self.learn is not None else None
        if isinstance(dls, BlockDataLoaders):
            item = self.inputs[index : index + 1].to(dls.device)
            decoded = dls.decode_batch([item], train=False)[0][0]
            dls.block.blocks[0].show(decoded, ax)
            return
        _show_raw(self.inputs[index], ax)


def draw_heatmap(ax: Axes, cam: Tensor | np.ndarray, alpha: float = 0.6) -> None:
    """Overlay a heat map (values in [0, 1], `[H, W]`) on the image already drawn on `ax`.

    Args:
        ax: a matplotlib axis showing an image. cam: the map, stretched over the image.
        alpha: its opacity (0.6).
    """
    values = cam.detach().cpu().numpy() if isinstance(cam, Tensor) else np.asarray(cam)
    images = ax.get_images()
    extent = images[0].get_extent() if images else None
    ax.imshow(values, alpha=alpha, cmap="magma", extent=extent, vmin=0.0, vmax=1.0,
              interpolation="bilinear")  # fmt: skip


def _show_raw(value: Tensor, ax: Axes) -> None:
    """An input without a block: images (`[C, H, W]` or `[H, W]`) rescaled, else its values."""
    if value.ndim == 3 and value.shape[0] in (1, 3):
        value = value.permute(1, 2, 0).squeeze(2)
    if value.ndim == 2 or (value.ndim == 3 and value.shape[2] == 3):
        value = value.float()
        scaled = (value - value.min()) / (value.max() - value.min()).clamp_min(1e-8)
        ax.imshow(scaled.numpy(), cmap="gray" if scaled.ndim == 2 else None)
        return
    ax.text(0.5, 0.5, _short_values(value), ha="center", va="center", fontsize=8, wrap=True)


def _short_values(value: Tensor) -> str:
    flat = value.flatten().tolist()
    shown = ", ".join(f"{v:.3g}" for v in flat[:8])
    return f"[{shown}{', ...' if len(flat) > 8 else ''}]"


def _check_single_label(probs: Tensor, targets: Tensor | None) -> None:
    if targets is None:
        raise ValueError("ClassificationInterpretation needs targets; the batches have none")
    if targets.ndim > 1 or targets.is_floating_point():
        raise ValueError(
            f"ClassificationInterpretation is for single-label classification (integer class "
            f"targets [N]), got {'float' if targets.is_floating_point() else 'integer'} targets "
            f"of shape {list(targets.shape)}; multi-label and regression targets are not "
            "supported"
        )
    if probs.ndim != 2:
        raise ValueError(
            f"ClassificationInterpretation needs class probabilities [N, C], got shape "
            f"{list(probs.shape)}; the model must output one score per class"
        )


def _learner_vocab(learn: Learner | None) -> list[Any]:
    return [] if learn is None else list(learn.dls.vocab)


def _safe_div(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0."""
    num, den = np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den != 0)


def _saved(fig: Figure, fname: str | Path | None) -> Figure:
    if fname is not None and is_main_process():
        fig.savefig(fname, dpi=80)
    return fig
