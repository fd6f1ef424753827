"""`load_learner`: a light `Learner` around an exported model, for `predict` and `get_preds`.

The learner has no training or validation data: its `dls` is an `InferenceDataLoaders`
whose `test_dl(items)` runs the exported preprocessing, so `learn.predict(item)`,
`learn.get_preds(dl=learn.dls.test_dl(items))` and `learn.dls.vocab` work as on the
original learner. Training it needs real data: build a new learner for that.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from mentor.core.warn import warn
from mentor.data.encoders import Batch
from mentor.data.errors import BadItemError
from mentor.data.loaders import DataLoaders
from mentor.inference.predictor import Predictor

if TYPE_CHECKING:
    from mentor.train.learner import Learner

# what reading a bad item raises (a broken image file is a BadItemError, an OSError)
UNREADABLE = (BadItemError, OSError, ValueError, KeyError, TypeError)
_MAX_SHOWN = 5


class InferenceLoader:
    """Batches of model inputs for new items, through a predictor's preprocessing.

    `item_order` lists the item positions in batch order (texts are grouped by length), so
    `get_preds` puts predictions back in the items' order. With `skip_bad`, an item that
    cannot be read (a broken image, a row with a bad value) is left out: `skipped` maps its
    position to the reason, and the predictions are those of the other items, in order.
    """

    def __init__(
        self, predictor: Predictor, items: Sequence[Any], bs: int, skip_bad: bool = False
    ) -> None:
        self.skipped: dict[int, str] = {}
        if skip_bad:
            self.batches = self._readable_batches(predictor, items, bs)
        else:
            self.batches = list(predictor.inputs.batches(items, bs, predictor.device))
        self.item_order = [i for _, positions in self.batches for i in positions]
        if self.skipped:
            shown = dict(list(self.skipped.items())[:_MAX_SHOWN])
            warn(f"left out {len(self.skipped)} item(s) that could not be read (see "
                 f"dl.skipped): {shown}")  # fmt: skip

    def _readable_batches(self, predictor: Predictor, items: Sequence[Any], bs: int) -> list[Batch]:
        """The batches of the items that encode. When some item fails, each is tried alone
        (quietly) and the batches are made of the good ones."""
        encoder, device = predictor.inputs, predictor.device
        try:
            return list(encoder.batches(items, bs, device))
        except UNREADABLE:
            pass
        good = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i in range(len(items)):
                try:
                    encoder.encode_one(_take(items, [i]) if _is_frame(items) else items[i], device)
                    good.append(i)
                except UNREADABLE as err:
                    self.skipped[i] = " ".join(str(err).split())
        if not good:
            return []
        batches = encoder.batches(_take(items, good), bs, device)
        return [(xb, [good[p] for p in positions]) for xb, positions in batches]

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        for xb, _ in self.batches:
            yield xb


def _is_frame(items: Any) -> bool:
    return hasattr(items, "iloc")  # a pandas DataFrame of rows


def _take(items: Any, positions: Sequence[int] | range) -> Any:
    """The items at `positions`: rows of a DataFrame, elements of a list."""
    if _is_frame(items):
        return items.iloc[list(positions)]
    return [items[i] for i in positions]


class InferenceDataLoaders(DataLoaders):
    """Data for a loaded learner: no training items, a `test_dl` for new ones.

    Args:
        predictor: the loaded model and its preprocessing.
    """

    def __init__(self, predictor: Predictor, bs: int = 64) -> None:
        super().__init__([], None, device=predictor.device)
        self.predictor = predictor
        self.bs: int = bs
        self.application = predictor.application

    @property
    def n_inp(self) -> int:
        """The model's inputs per batch, as the exported encoder gives them."""
        return self.predictor.inputs.n_inp

    @property
    def target_block(self) -> Any:
        """The exported target block, which decodes a prediction into its label."""
        return self.predictor.target

    @property
    def vocab(self) -> list[Any]:
        """The class names (empty for regression)."""
        return self.predictor.vocab

    @property
    def c(self) -> int | None:
        """Number of classes (None for regression)."""
        return len(self.vocab) or None

    def test_dl(
        self,
        items: Sequence[Any],
        with_labels: bool = False,
        bs: int | None = None,
        skip_bad: bool = False,
    ) -> InferenceLoader:
        """A loader of model inputs for raw `items` (images, a DataFrame or list of rows,
        texts, (user, item) pairs).

        Args:
            with_labels: must be False (a loaded learner has no target encoder).
            bs: batch size (default 64).
            skip_bad: leave out items that cannot be read, with one warning; `dl.skipped`
                maps their positions to the reason. Otherwise the first one raises.
        """
        if with_labels:
            raise ValueError(
                "a loaded learner encodes raw items only (with_labels=False); to score labelled "
                "data, build its DataLoaders and a learner with the exported weights"
            )
        return InferenceLoader(self.predictor, items, bs or self.bs, skip_bad)


def load_learner(
    path: str | Path, cpu: bool = True, trusted_modules: Sequence[str] = ()
) -> Learner:
    """A `Learner` for prediction from a `.mentor` file (nothing is unpickled).

    `predict(item)` returns fastai's `(decoded, decoded_tensor, probs)`; `get_preds` needs
    `dl=learn.dls.test_dl(items)`. The loss is rebuilt from the exported activation
    (cross-entropy, binary cross-entropy or MSE), so predictions match the original
    learner's; `learn.model_spec` is the exported `model.json`.

    Args:
        path: the file `learn.export` wrote (a folder: its `export.mentor`, where
            `learn.export()` writes by default). cpu: load on the CPU (True), else on the
            default device. trusted_modules: see `Predictor.load`.

    Example:
        >>> learn = load_learner("pets.mentor")
        >>> label, _, probs = learn.predict("cat.jpg")
    """
    from mentor.core.decoding import Sigmoid, Softmax
    from mentor.core.device import default_device
    from mentor.train.learner import Learner
    from mentor.train.losses import BCEWithLogitsLossFlat, CrossEntropyLossFlat, MSELossFlat

    device = torch.device("cpu") if cpu else default_device()
    predictor = Predictor.load(path, device, trusted_modules)
    decoding = predictor.decoding
    loss_func: torch.nn.Module
    if isinstance(decoding, Softmax):
        loss_func = CrossEntropyLossFlat(axis=decoding.axis)
    elif isinstance(decoding, Sigmoid):
        loss_func = BCEWithLogitsLossFlat(thresh=decoding.thresh)
    else:
        loss_func = MSELossFlat()
    learn = Learner(InferenceDataLoaders(predictor), predictor.model, loss_func=loss_func)
    learn.model_spec = dict(predictor.model_spec)
    return learn


__all__ = ["InferenceDataLoaders", "InferenceLoader", "load_learner"]
