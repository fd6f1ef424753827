"""A loss's activation and decoding: raw model outputs -> probabilities -> decoded values.

The losses of `mentor.train.losses` carry one (`loss.decoding`); export writes it and
`Predictor` rebuilds it, so training, `get_preds` and a loaded model decode with the same
code. `decoding_for(loss_func)` also knows PyTorch's own losses.

Example:
    >>> Softmax(axis=-1).decode(Softmax(axis=-1).activate(logits))  # class indices
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn
from torch.nn import functional as F

from mentor.core.spec import register_spec


class Decoding:
    """The identity: outputs are the values (regression). Subclasses override both steps."""

    def activate(self, out: Tensor) -> Tensor:
        """Raw model outputs -> probabilities (or values)."""
        return out

    def decode(self, probs: Tensor) -> Tensor:
        """Activated outputs -> class indices, label flags or the values themselves."""
        return probs

    def to_spec(self) -> dict[str, Any]:
        """No settings."""
        return {}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Decoding:
        """The decoding `to_spec` described."""
        return cls(**spec)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Decoding)
            and type(other) is type(self)
            and (other.to_spec() == self.to_spec())
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.to_spec().items()))))


register_spec(Decoding)


@register_spec
class Softmax(Decoding):
    """Softmax over the class `axis`, then argmax (single-label classification)."""

    def __init__(self, axis: int = -1) -> None:
        self.axis = int(axis)

    def activate(self, out: Tensor) -> Tensor:
        """Class probabilities."""
        return out.softmax(dim=self.axis)

    def decode(self, probs: Tensor) -> Tensor:
        """Class indices."""
        return probs.argmax(dim=self.axis)

    def to_spec(self) -> dict[str, Any]:
        """The class axis."""
        return {"axis": self.axis}


@register_spec
class Sigmoid(Decoding):
    """A sigmoid per output, then `> thresh` (multi-label classification)."""

    def __init__(self, thresh: float = 0.5) -> None:
        self.thresh = float(thresh)

    def activate(self, out: Tensor) -> Tensor:
        """Label probabilities."""
        return out.sigmoid()

    def decode(self, probs: Tensor) -> Tensor:
        """Label flags."""
        return probs > self.thresh

    def to_spec(self) -> dict[str, Any]:
        """The threshold."""
        return {"thresh": self.thresh}


def decoding_for(loss_func: Any) -> Decoding | None:
    """The decoding of `loss_func`: its own `decoding`, or the one PyTorch's classification
    and regression losses imply; None for a loss whose activation is not known as data."""
    own = getattr(loss_func, "decoding", None)  # a loss may carry one (the protocol)
    if isinstance(own, Decoding):
        return own
    if isinstance(loss_func, nn.CrossEntropyLoss) or loss_func is F.cross_entropy:
        return Softmax(axis=1)
    if (
        isinstance(loss_func, nn.BCEWithLogitsLoss)
        or loss_func is F.binary_cross_entropy_with_logits
    ):
        return Sigmoid()
    if isinstance(loss_func, nn.MSELoss | nn.L1Loss | nn.SmoothL1Loss | nn.HuberLoss):
        return Decoding()
    if loss_func in (F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.huber_loss):
        return Decoding()
    return None


__all__ = ["Decoding", "Sigmoid", "Softmax", "decoding_for"]
