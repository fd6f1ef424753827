"""`load_learner`: a light `Learner` around an exported model, for `predict` and `get_preds`.

The learner has no training or validation data: its `dls` is an `InferenceDataLoaders`
whose `test_dl(items)` runs the exported preprocessing, so `learn.predict(item)`,
`learn.get_preds(dl=learn.dls.test_dl(items))` and `learn.dls.vocab` work as on the
original learner. Training it needs real data: build a new learner for that.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from mentor.data.loaders import DataLoaders
from mentor.inference.predictor import Predictor

if TYPE_CHECKING:
    from mentor.train.learner import Learner


class InferenceLoader:
    """Batches of model inputs for new items, through a predictor's preprocessing.

    `item_order` lists the item positions in batch order (texts are grouped by length), so
    `get_preds` puts predictions back in the items' order.
    """

    def __init__(self, predictor: Predictor, items: Sequence[Any], bs: int) -> None:
        self.batches = list(predictor.inputs.batches(items, bs, predictor.device))
        self.item_order = [i for _, positions in self.batches for i in positions]

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        for xb, _ in self.batches:
            yield xb


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
        self, items: Sequence[Any], with_labels: bool = False, bs: int | None = None
    ) -> InferenceLoader:
        """A loader of model inputs for raw `items` (images, rows, texts, (user, item) pairs)."""
        if with_labels:
            raise ValueError(
                "a loaded learner encodes raw items only (with_labels=False); to score labelled "
                "data, build its DataLoaders and a learner with the exported weights"
            )
        return InferenceLoader(self.predictor, items, bs or self.bs)


def load_learner(
    path: str | Path, cpu: bool = True, trusted_modules: Sequence[str] = ()
) -> Learner:
    """A `Learner` for prediction from a `.mentor` file (nothing is unpickled).

    `predict(item)` returns fastai's `(decoded, decoded_tensor, probs)`; `get_preds` needs
    `dl=learn.dls.test_dl(items)`. The loss is rebuilt from the exported activation
    (cross-entropy, binary cross-entropy or MSE), so predictions match the original
    learner's; `learn.model_spec` is the exported `model.json`.

    Args:
        path: the file `learn.export` wrote. cpu: load on the CPU (True), else on the
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
