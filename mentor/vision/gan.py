"""GANs: `GANModule` (a generator and a critic), `GANLoss` and the usual loss pairs.

A GAN trains its two models in turns (`mentor.vision.gan_learner.GANTrainer` switches):
in generator mode the batch runs through the generator and the loss asks the critic how
real its output looks; in critic mode the real images run through the critic and the loss
compares its scores on them with those on the generator's output.

Loss pairs, each a generator loss `(fake_pred, output, target)` and a critic loss
`(real_pred, fake_pred)`, on critics that return one logit per image (real > fake):
Wasserstein (`wgan_gen_loss`, `wgan_crit_loss`), the non-saturating loss of DCGAN
(`bce_gen_loss`, `bce_crit_loss`), and for image-to-image GANs `gan_loss_from_func`
(content loss + weighted adversarial loss, as `GANLearner.from_learners` builds).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mentor.train.losses import CrossEntropyLossFlat

GenLossFunc = Callable[[Tensor, Tensor, Tensor], Tensor]
"""`(fake_pred, output, target) -> loss`: the critic's scores on the generator's output,
that output and the target images (for content losses)."""
CritLossFunc = Callable[[Tensor, Tensor], Tensor]
"""`(real_pred, fake_pred) -> loss`: the critic's scores on real and generated images."""


class GANModule(nn.Module):
    """A generator and a critic; `forward` runs the one `gen_mode` selects.

    Args:
        generator: any module (a DCGAN generator, a U-Net from `unet_learner(...).model`).
        critic: any module returning scores for images (one logit per image, or per patch).
        gen_mode: start in generator mode (True).

    Example:
        >>> gan = GANModule(basic_generator(32, 1), basic_critic(32, 1))
        >>> fake = gan(generate_noise(4))  # generator mode
        >>> gan.switch(gen_mode=False); scores = gan(fake)
    """

    def __init__(self, generator: nn.Module, critic: nn.Module, gen_mode: bool = True) -> None:
        super().__init__()
        self.generator = generator
        self.critic = critic
        self.gen_mode = gen_mode

    def forward(self, *args: Any) -> Any:
        """The generator's output in generator mode, the critic's scores in critic mode."""
        return self.generator(*args) if self.gen_mode else self.critic(*args)

    def switch(self, gen_mode: bool | None = None) -> None:
        """Set the mode (None: the other one)."""
        self.gen_mode = not self.gen_mode if gen_mode is None else gen_mode

    def extra_repr(self) -> str:
        return f"gen_mode={self.gen_mode}"


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP's penalty: the mean of `(|grad critic(x)| - 1) ** 2` over points `x` drawn
    uniformly between each real image and a generated one (keeps the critic 1-Lipschitz
    without clipping its weights; Gulrajani et al., 2017)."""
    if real.shape != fake.shape:
        raise ValueError(f"the gradient penalty pairs real {list(real.shape)} with generated "
                         f"{list(fake.shape)} images: give batches of the same shape")  # fmt: skip
    share = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), device=real.device)
    mixed = (share * real.detach() + (1 - share) * fake.detach()).requires_grad_(True)
    scores = critic(mixed)
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


class GANLoss:
    """The loss of a GAN in either mode, as the learner calls it: `loss(pred, *yb)`.

    Generator mode: `pred` is the generator's output, `yb` the target images;
    the loss is `gen_loss_func(critic(output), output, target)`. Critic mode (the
    `GANTrainer` makes the batch so): `pred` is the critic's scores on the real images,
    `yb` the generator's inputs then the real images; the loss is
    `crit_loss_func(real_pred, critic(generator(inputs)))`, plus `gp_weight` times the
    gradient penalty while training.

    Args:
        gen_loss_func: `(fake_pred, output, target) -> loss`. crit_loss_func:
            `(real_pred, fake_pred) -> loss`. gan_model: the `GANModule`.
        gp_weight: weight of WGAN-GP's gradient penalty in the critic loss (None: none).
    """

    def __init__(
        self,
        gen_loss_func: GenLossFunc,
        crit_loss_func: CritLossFunc,
        gan_model: GANModule,
        gp_weight: float | None = None,
    ) -> None:
        if gp_weight is not None and gp_weight <= 0:
            raise ValueError(f"gp_weight={gp_weight} must be positive (or None: no penalty)")
        self.gen_loss_func, self.crit_loss_func = gen_loss_func, crit_loss_func
        self.gan_model, self.gp_weight = gan_model, gp_weight

    def __call__(self, pred: Tensor, *yb: Tensor) -> Tensor:
        """The generator's or the critic's loss, by the model's mode."""
        if self.gan_model.gen_mode:
            if len(yb) != 1:
                raise ValueError(f"a GAN's generator loss takes one target (the real images), "
                                 f"got {len(yb)}; batches are (inputs, real images)")  # fmt: skip
            return self.generator_loss(pred, yb[0])
        return self.critic_loss(pred, *yb)

    def generator_loss(self, output: Tensor, target: Tensor) -> Tensor:
        """How far from real the critic finds the generator's `output` (and, for content
        losses, how far from `target` it is)."""
        return self.gen_loss_func(self.gan_model.critic(output), output, target)

    def critic_loss(self, real_pred: Tensor, *inputs_and_real: Tensor) -> Tensor:
        """The critic's loss on real scores and on the scores of images generated, without
        gradients, from the inputs (all of `inputs_and_real` but the last, the real ones)."""
        if len(inputs_and_real) < 2:
            raise ValueError("a GAN's critic loss takes the generator's inputs and the real "
                             f"images, got {len(inputs_and_real)} tensor(s)")  # fmt: skip
        *inputs, real = inputs_and_real
        gan = self.gan_model
        with torch.no_grad():
            fake = gan.generator(*inputs)
        loss = self.crit_loss_func(real_pred, gan.critic(fake))
        if self.gp_weight is not None and torch.is_grad_enabled():
            loss = loss + self.gp_weight * gradient_penalty(gan.critic, real, fake)
        return loss

    def __repr__(self) -> str:
        names = [getattr(f, "__name__", type(f).__name__)
                 for f in (self.gen_loss_func, self.crit_loss_func)]  # fmt: skip
        return f"GANLoss({names[0]}, {names[1]}, gp_weight={self.gp_weight})"


# ----- loss pairs -----
def wgan_gen_loss(fake_pred: Tensor, output: Tensor, target: Tensor) -> Tensor:
    """Wasserstein generator loss: minus the critic's mean score on generated images."""
    return -fake_pred.mean()


def wgan_crit_loss(real_pred: Tensor, fake_pred: Tensor) -> Tensor:
    """Wasserstein critic loss: mean score on generated minus mean score on real images
    (its negative estimates the Wasserstein distance when the critic is 1-Lipschitz)."""
    return fake_pred.mean() - real_pred.mean()


def bce_gen_loss(fake_pred: Tensor, output: Tensor, target: Tensor) -> Tensor:
    """The non-saturating generator loss of DCGAN: cross-entropy of the critic's logits on
    generated images against the label 'real'."""
    return F.binary_cross_entropy_with_logits(fake_pred, torch.ones_like(fake_pred))


def bce_crit_loss(real_pred: Tensor, fake_pred: Tensor) -> Tensor:
    """The DCGAN critic loss: cross-entropy of its logits, real images labelled 1,
    generated ones 0 (the mean of the two)."""
    real = F.binary_cross_entropy_with_logits(real_pred, torch.ones_like(real_pred))
    fake = F.binary_cross_entropy_with_logits(fake_pred, torch.zeros_like(fake_pred))
    return (real + fake) / 2


def real_fake_target(pred: Tensor, real: bool, classes: bool = False) -> Tensor:
    """The target that says 'real' (1) or 'generated' (0) for a critic's output `pred`:
    with `classes` (a cross-entropy loss over class scores `[B, 2]`, generated images class
    0 as in the lesson, where their folder sorts first) class indices `[B]`, else a float
    tensor shaped like `pred` (one logit per image or per patch)."""
    label = 1 if real else 0
    if classes:
        return torch.full((pred.shape[0],), label, dtype=torch.long, device=pred.device)
    return torch.full_like(pred, float(label))


def takes_classes(loss: Callable[..., Tensor]) -> bool:
    """Whether `loss` compares class scores with class indices (cross-entropy)."""
    return isinstance(loss, nn.CrossEntropyLoss | CrossEntropyLossFlat) or loss is F.cross_entropy


class ContentGANGenLoss:
    """Generator loss of an image-to-image GAN: `weights[0] * content_loss(output, target)
    + weights[1] * adv_loss(fake_pred, 'real')` (the critic's loss, with the real label).

    Args:
        content_loss: `(output, target) -> loss` (the pretrained generator's loss: pixel
            L1, `FeatureLoss`...). adv_loss: the critic's `(pred, target) -> loss`.
        weights: (content, adversarial), default (1, 50) as in the lesson.
    """

    def __init__(
        self,
        content_loss: Callable[..., Tensor],
        adv_loss: Callable[..., Tensor],
        weights: Sequence[float] = (1.0, 50.0),
    ) -> None:
        if len(weights) != 2:
            raise ValueError(f"weights_gen={tuple(weights)!r}: give two weights, (content, "
                             "adversarial)")  # fmt: skip
        self.content_loss, self.adv_loss = content_loss, adv_loss
        self.classes = takes_classes(adv_loss)
        self.weights = (float(weights[0]), float(weights[1]))

    def __call__(self, fake_pred: Tensor, output: Tensor, target: Tensor) -> Tensor:
        """The weighted sum of the content and adversarial losses."""
        target_real = real_fake_target(fake_pred, real=True, classes=self.classes)
        adversarial = self.adv_loss(fake_pred, target_real)
        return self.weights[0] * self.content_loss(output, target) + self.weights[1] * adversarial


class RealFakeCritLoss:
    """Critic loss from a classification loss: the mean of `loss(real_pred, 'real')` and
    `loss(fake_pred, 'generated')` (labels from `real_fake_target`).

    Args:
        loss: `(pred, target) -> loss`, e.g. the pretrained critic's `BCEWithLogitsLoss`.
    """

    def __init__(self, loss: Callable[..., Tensor]) -> None:
        self.loss, self.classes = loss, takes_classes(loss)

    def __call__(self, real_pred: Tensor, fake_pred: Tensor) -> Tensor:
        """The mean of the losses on real and on generated images."""
        real = self.loss(real_pred, real_fake_target(real_pred, True, self.classes))
        fake = self.loss(fake_pred, real_fake_target(fake_pred, False, self.classes))
        return (real + fake) / 2


def gan_loss_from_func(
    loss_gen: Callable[..., Tensor],
    loss_crit: Callable[..., Tensor],
    weights_gen: Sequence[float] = (1.0, 50.0),
) -> tuple[ContentGANGenLoss, RealFakeCritLoss]:
    """The (generator, critic) losses of an image-to-image GAN from a content loss
    `loss_gen(output, target)` and a real-or-generated classification loss
    `loss_crit(pred, target)`; see `ContentGANGenLoss` and `RealFakeCritLoss`."""
    return ContentGANGenLoss(loss_gen, loss_crit, weights_gen), RealFakeCritLoss(loss_crit)


__all__ = [
    "ContentGANGenLoss",
    "CritLossFunc",
    "GANLoss",
    "GANModule",
    "GenLossFunc",
    "RealFakeCritLoss",
    "bce_crit_loss",
    "bce_gen_loss",
    "gan_loss_from_func",
    "gradient_penalty",
    "real_fake_target",
    "takes_classes",
    "wgan_crit_loss",
    "wgan_gen_loss",
]
