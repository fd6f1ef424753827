"""`RunningBatchNorm`: the course's batch norm that also works with tiny batches.

Batch norm normalises each channel with the mean and variance of the current batch; with two
items per batch those statistics are mostly noise (and one item has no variance at all).
Running batch norm normalises with running averages of the channel sums, sums of squares
and counts instead, both in training and at inference: the running averages change only in
training, where the current batch still carries gradients through its share of them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

# items seen before the variance is trusted: until then it is at least `_MIN_VAR`, so the
# first tiny batches cannot blow activations up (the course's `if self.batch < 20`)
_WARMUP_ITEMS = 20
_MIN_VAR = 0.01


class RunningBatchNorm(nn.Module):
    """Normalises each channel (dim 1) with running averages of its sums, squared sums and
    counts: the same statistics in training and evaluation, updated in training only.

    The averages weigh the current batch by `1 - (1 - mom) / sqrt(bs - 1)`: mostly the batch
    when it is large (like `nn.BatchNorm`), mostly the history when it is small. The count is
    averaged like the sums, so the zero start divides out (the course's debiasing): the very
    first batch is normalised with its own statistics, exactly as batch norm does.

    Args:
        num_features: the number of channels. mom: the weight of a new batch of two (0.1).
        eps: added to the variance (1e-5).

    Example:
        >>> norm = RunningBatchNorm(16)
        >>> norm(torch.randn(2, 16, 8, 8)).shape  # fine with batches of two
        torch.Size([2, 16, 8, 8])
    """

    sums: Tensor
    sqrs: Tensor
    count: Tensor
    seen: Tensor

    def __init__(self, num_features: int, mom: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        if num_features < 1:
            raise ValueError(f"RunningBatchNorm(num_features={num_features}): need at least 1")
        if not 0 < mom < 1:
            raise ValueError(f"RunningBatchNorm(mom={mom}): the momentum must be in (0, 1)")
        if not eps > 0:
            raise ValueError(f"RunningBatchNorm(eps={eps}): eps must be > 0, e.g. 1e-5")
        self.num_features, self.mom, self.eps = num_features, float(mom), float(eps)
        self.weight = nn.Parameter(torch.ones(num_features))  # the course's `mults`
        self.bias = nn.Parameter(torch.zeros(num_features))  # the course's `adds`
        self.register_buffer("sums", torch.zeros(num_features))
        self.register_buffer("sqrs", torch.zeros(num_features))
        self.register_buffer("count", torch.zeros(()))  # items per channel, averaged
        self.register_buffer("seen", torch.zeros((), dtype=torch.long))  # items, not averaged

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 2 or x.shape[1] != self.num_features:
            raise ValueError(
                f"RunningBatchNorm({self.num_features}) got input of shape {tuple(x.shape)}; "
                f"it needs [batch, {self.num_features}, ...]: give num_features=x.shape[1]"
            )
        if self.training:
            sums, sqrs, count, seen = self._updated(x)
        else:
            sums, sqrs, count, seen = self.sums, self.sqrs, self.count, self.seen
        trained = count > 0  # never trained, at inference: mean 0 and variance 1, as batch norm
        count = count.clamp_min(1e-12)
        means = sums / count
        variances = (sqrs / count - means * means).clamp_min(0)
        variances = torch.where(seen < _WARMUP_ITEMS, variances.clamp_min(_MIN_VAR), variances)
        variances = torch.where(trained, variances, torch.ones_like(variances))
        shape = (1, -1) + (1,) * (x.dim() - 2)
        scale = (self.weight / (variances + self.eps).sqrt()).view(shape)
        return (x - means.view(shape)) * scale + self.bias.view(shape)

    def _updated(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The running averages with this batch in (it keeps its gradient); stored detached."""
        dims = [0, *range(2, x.dim())]
        values = x.to(self.sums.dtype)  # float32 sums under autocast
        batch_sums, batch_sqrs = values.sum(dims), (values * values).sum(dims)
        batch_count = x.numel() / self.num_features
        weight = 1 - (1 - self.mom) / math.sqrt(max(x.shape[0] - 1, 1))
        sums = torch.lerp(self.sums, batch_sums, weight)
        sqrs = torch.lerp(self.sqrs, batch_sqrs, weight)
        count = torch.lerp(self.count, self.count.new_tensor(batch_count), weight)
        seen = self.seen + x.shape[0]
        with torch.no_grad():
            self.sums.copy_(sums)
            self.sqrs.copy_(sqrs)
            self.count.copy_(count)
            self.seen.copy_(seen)
        return sums, sqrs, count, seen

    def extra_repr(self) -> str:
        return f"{self.num_features}, mom={self.mom}, eps={self.eps}"


__all__ = ["RunningBatchNorm"]
