"""`MixUp` and `CutMix`: train on blends of two items, with their targets blended alike.

Both draw a partner for each item of a training batch (a shuffle of the batch) and a share
`lam` in [0, 1]; the input becomes `lam * x1 + (1 - lam) * x2` (MixUp) or `x1` with a box of
`x2` pasted in, covering `1 - lam` of the image (CutMix). Class-index targets become one-hot
probabilities blended the same way, multi-label (multi-hot) and other float targets are
blended as they are, so the loss must accept soft targets: `CrossEntropyLossFlat` (the
default for single-label data), `LabelSmoothingCrossEntropy` and `BCEWithLogitsLossFlat` do.
Validation batches are left alone. The draws come from torch's global generator, which
checkpoints save, so a resumed fit mixes the same pairs.

Example:
    >>> learn = vision_learner(dls, "xresnet18", pretrained=False, cbs=[MixUp(0.4)])
    >>> learn.fit_one_cycle(10, 3e-3)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mentor.train.callback import Callback


class MixHandler(Callback):
    """The part MixUp and CutMix share: the partners, and blending the targets.

    Args:
        alpha: `lam` is drawn from Beta(alpha, alpha); small values keep most items close to
            one of the pair, 1 draws `lam` uniformly.
    """

    order = 12  # after the memory format and mixed precision, before the loss
    run_valid = False

    def __init__(self, alpha: float) -> None:
        super().__init__()
        if alpha <= 0:
            raise ValueError(f"alpha={alpha} must be > 0 (the Beta distribution's shape); try 0.4")
        self.alpha = alpha
        self.beta = torch.distributions.Beta(torch.tensor(alpha), torch.tensor(alpha))
        self.lam = torch.ones(0)  # the last batch's shares, per item: [B]
        self.shuffle = torch.zeros(0, dtype=torch.long)  # each item's partner
        self._targets: tuple[Tensor, ...] = ()

    def _images(self) -> Tensor:
        """The batch's single floating-point input (refusing other inputs, with the fix)."""
        xb = self.learn.xb
        if len(xb) != 1 or not isinstance(xb[0], Tensor) or not xb[0].is_floating_point():
            kinds = [getattr(x, "dtype", type(x).__name__) for x in xb]
            raise TypeError(
                f"{type(self).__name__} blends one floating-point input (images, features); this "
                f"batch has inputs {kinds}. Remove it for tabular or text data"
            )
        return xb[0]

    def _draw_partners(self, bs: int, device: torch.device) -> None:
        self.shuffle = torch.randperm(bs).to(device)
        self._targets = tuple(self.learn.yb)

    def after_pred(self) -> None:
        """Blend each target with its partner's: `lam * y1 + (1 - lam) * y2`, as soft targets
        shaped like the prediction."""
        pred = self.learn.pred
        self.learn.yb = tuple(self._soft(y, pred) for y in self._targets)

    def _soft(self, y: Tensor, pred: Tensor) -> Tensor:
        if not y.is_floating_point():
            if y.shape != pred.shape[:-1]:
                raise ValueError(
                    f"{type(self).__name__} turns class indices {tuple(y.shape)} into one-hot "
                    f"targets along the prediction's last axis {tuple(pred.shape)}; they don't "
                    "match. Use float (soft) targets, or CutMix for masks"
                )
            y = F.one_hot(y, pred.shape[-1])
        y = y.to(pred.dtype if pred.is_floating_point() else torch.float32)
        lam = self.lam.to(y.device, y.dtype).view(-1, *[1] * (y.ndim - 1))
        return torch.lerp(y[self.shuffle], y, lam)


class MixUp(MixHandler):
    """Blend each training item with a partner: `lam * x1 + (1 - lam) * x2`, one `lam` per
    item drawn from Beta(alpha, alpha) and folded to `max(lam, 1 - lam)` (so the item keeps
    most of itself); the targets are blended the same way.

    Args:
        alpha: the Beta distribution's shape (default 0.4, fastai's).

    Example:
        >>> learn.fit_one_cycle(10, 3e-3, cbs=[MixUp()])
    """

    def __init__(self, alpha: float = 0.4) -> None:
        super().__init__(alpha)

    def before_batch(self) -> None:
        """Draw the partners and shares, and blend the inputs."""
        x = self._images()
        bs = x.shape[0]
        lam = self.beta.sample((bs,))
        self.lam = torch.maximum(lam, 1 - lam).to(x.device)
        self._draw_partners(bs, x.device)
        lam_x = self.lam.to(x.dtype).view(-1, *[1] * (x.ndim - 1))
        self.learn.xb = (torch.lerp(x[self.shuffle], x, lam_x),)


class CutMix(MixHandler):
    """Paste a box of a partner item into each training image; the box covers `1 - lam` of
    the image, one `lam` per batch drawn from Beta(alpha, alpha) (then set to the share the
    box, clipped at the edges, leaves). Targets are blended with that share; a mask target
    (class indices shaped like the image) gets the partner's box pasted instead.

    Args:
        alpha: the Beta distribution's shape (default 1.0, fastai's: `lam` uniform).

    Example:
        >>> learn.fit_one_cycle(10, 3e-3, cbs=[CutMix()])
    """

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__(alpha)
        self.box = (0, 0, 0, 0)  # the last batch's box: top, bottom, left, right

    def before_batch(self) -> None:
        """Draw the partners and the box, and paste it."""
        x = self._images()
        if x.ndim < 3:
            raise ValueError(f"CutMix pastes boxes into images [B, C, H, W]; got {tuple(x.shape)}")
        bs, height, width = x.shape[0], x.shape[-2], x.shape[-1]
        self._draw_partners(bs, x.device)
        top, bottom, left, right = self.box = self._draw_box(height, width)
        mixed = x.clone()
        mixed[..., top:bottom, left:right] = x[self.shuffle][..., top:bottom, left:right]
        self.learn.xb = (mixed,)
        share = 1 - (bottom - top) * (right - left) / (height * width)
        self.lam = torch.full((bs,), share, device=x.device)

    def _draw_box(self, height: int, width: int) -> tuple[int, int, int, int]:
        lam = float(self.beta.sample())
        side = (1 - lam) ** 0.5
        box_h, box_w = int(height * side), int(width * side)
        centre_y = int(torch.randint(height, ()))
        centre_x = int(torch.randint(width, ()))
        top, bottom = max(centre_y - box_h // 2, 0), min(centre_y + box_h // 2, height)
        left, right = max(centre_x - box_w // 2, 0), min(centre_x + box_w // 2, width)
        return top, bottom, left, right

    def _soft(self, y: Tensor, pred: Tensor) -> Tensor:
        x_shape = self.learn.xb[0].shape
        if not y.is_floating_point() and y.ndim >= 2 and y.shape[-2:] == x_shape[-2:]:
            top, bottom, left, right = self.box
            mixed = y.clone()
            mixed[..., top:bottom, left:right] = y[self.shuffle][..., top:bottom, left:right]
            return mixed
        return super()._soft(y, pred)
