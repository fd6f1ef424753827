"""`LSUVCallback`: LSUV initialisation on the first training batch of a fit."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from torch import nn

from mentor.core import dist
from mentor.core.init import LSUVStats, lsuv_init
from mentor.train.callback import Callback


class LSUVCallback(Callback):
    """Runs `lsuv_init` on the learner's model with the first training batch, once.

    Before the first forward pass of the first fit it is attached to, each convolution and
    linear layer but the output layer is shifted and scaled until its output on that batch
    has mean 0 and std 1 (see `mentor.core.init.lsuv_init`); `stats` keeps what each layer
    ended at. It never runs again: not in a later fit, and not when a fit resumes from a
    checkpoint (its state says it is done, and a resumed fit has trained already). With many
    processes, rank 0's initialisation is sent to every rank, so they all start from the
    same weights.

    Args:
        layers: the layers to set up (default: every convolution and linear layer run but
            the output layer).
        after_activation, tol, max_iter: as for `lsuv_init` (True, 1e-3, 10).

    Example:
        >>> learn = Learner(dls, model, cbs=[LSUVCallback()])
        >>> learn.fit_one_cycle(1, 1e-2)
        >>> learn.cbs[-1].stats[0].std
        1.0
    """

    order = -30  # before ActivationStats (-20), which forgets the passes LSUV makes
    run_valid = False

    def __init__(
        self,
        layers: Sequence[nn.Module] | None = None,
        after_activation: bool = True,
        tol: float = 1e-3,
        max_iter: int = 10,
    ) -> None:
        super().__init__()
        if not tol > 0 or max_iter < 1:
            raise ValueError(
                f"LSUVCallback(tol={tol}, max_iter={max_iter}): need tol > 0, max_iter >= 1"
            )
        self.layers = list(layers) if layers is not None else None
        self.after_activation, self.tol, self.max_iter = after_activation, tol, max_iter
        self.done = False
        self.stats: list[LSUVStats] = []

    @property
    def name(self) -> str:
        """'lsuv': the key of this callback's state in a checkpoint."""
        return "lsuv"

    def before_batch(self) -> None:
        """On the first training batch: initialise the model with it (once)."""
        if self.done:
            return
        self.done = True
        learn = self.learn
        if learn.train_iter > 0:  # a resumed fit: the weights are trained ones
            warnings.warn(
                "LSUVCallback: the fit is resuming after training began, so the model is not "
                "initialised again",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        self.stats = lsuv_init(
            learn.model, learn.xb, self.layers, self.after_activation, self.tol, self.max_iter
        )
        if dist.world_size() > 1:  # each rank saw its own batch: keep rank 0's weights
            state = dist.broadcast_object(learn.model.state_dict())
            learn.model.load_state_dict(state)

    def state_dict(self) -> dict[str, Any]:
        """Whether the initialisation has run."""
        return {"done": self.done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore whether it has run (a resumed fit does not initialise again)."""
        self.done = bool(state["done"])


__all__ = ["LSUVCallback"]
