"""`BnFreeze`: keep the running statistics of batch-norm layers in frozen groups fixed;
`FixedBnStats`: keep those of chosen layers fixed, frozen or not."""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

from mentor.optim import frozen_bn_modules
from mentor.train.callback import Callback


class BnFreeze(Callback):
    """Put the batch-norm layers of the frozen layer groups (index < n) in eval mode."""

    order = 1

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def before_train(self) -> None:
        """Switch frozen batch-norm layers to eval mode after the model went to train mode."""
        for module in frozen_bn_modules(self.learn.model, self.learn.layer_groups, self.n):
            module.eval()


class FixedBnStats(Callback):
    """Keep the running statistics of normalization layers fixed while training.

    The layers run in eval mode (normalizing with their running mean and variance, which
    stay as they are); their scale and shift train when their group does. `vision_learner`
    adds it for the bodies of architectures whose pretrained statistics must stay
    (`ModelMeta.fixed_bn_stats`).

    Args:
        modules: the model's modules to search for normalization layers (e.g. the body).
    """

    order = 1

    def __init__(self, modules: Iterable[nn.Module]) -> None:
        super().__init__()
        self.norms = [
            m
            for part in modules
            for m in part.modules()
            if isinstance(m, nn.modules.batchnorm._NormBase)
        ]

    def before_train(self) -> None:
        """Switch the layers to eval mode after the model went to train mode."""
        for module in self.norms:
            module.eval()
