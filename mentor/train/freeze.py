"""`BnFreeze`: keep the running statistics of batch-norm layers in frozen groups fixed."""

from __future__ import annotations

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
