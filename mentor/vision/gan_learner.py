"""`GANLearner`: a `Learner` that trains a generator and a critic in turns, with one
optimizer each; `from_learners` (image-to-image GANs on pretrained models) and `wgan`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mentor.data.loaders import DataLoaders
from mentor.optim import Adam, ParamsT, param_groups
from mentor.train.callback import Callback
from mentor.train.checkpoint import atomic_save, load_file, model_file
from mentor.train.learner import Learner, OptFunc
from mentor.vision.gan import (
    CritLossFunc,
    GANLoss,
    GANModule,
    GenLossFunc,
    gan_loss_from_func,
    wgan_crit_loss,
    wgan_gen_loss,
)
from mentor.vision.gan_trainer import FixedGANSwitcher, GANSwitcher, GANTrainer


def adam_no_momentum(params: ParamsT, lr: float = 1e-3, **kw: Any) -> torch.optim.Optimizer:
    """Adam without momentum (beta1 = 0, beta2 = 0.99): the lesson's optimizer for GANs,
    whose two models chase each other too fast for momentum to help. Other keywords as
    for `mentor.optim.Adam` (`mom=` overrides the 0)."""
    return Adam(params, lr=lr, **{"mom": 0.0, "sqr_mom": 0.99, **kw})


class GANLearner(Learner):
    """A `Learner` for GANs: `learn.model` is a `GANModule(generator, critic)`, the loss a
    `GANLoss`, and a `GANTrainer` (`learn.gan_trainer`) trains the two in turns, swapping
    `learn.opt` between the generator's and the critic's optimizer.

    Batches are `(inputs, real_images)`: noise and images for a GAN that generates from
    noise (`GANDataLoaders`), degraded and original images for restoration. Validation
    reports the generator loss. `save` / `load` and checkpoints keep both models and both
    optimizers (a resumed fit also gets the switcher's state and the mode back). Train with
    `fit` at a constant rate, as the lesson does: `fit_one_cycle` also cycles Adam's
    momentum unless given `moms=None`.

    Args:
        dls: the data. generator, critic: any modules (a U-Net from `unet_learner(...).model`
            and a `gan_critic()`; `basic_generator` and `basic_critic`).
        gen_loss_func: `(fake_pred, output, target) -> loss`. crit_loss_func:
            `(real_pred, fake_pred) -> loss` (see `mentor.vision.gan`).
        switcher: when to switch (default `FixedGANSwitcher()`: one batch each).
        gen_first: start with the generator (False). switch_eval: validate the generator
            (True). clip: WGAN's weight clipping after each critic step (None).
        gp_weight: WGAN-GP's gradient penalty weight (None: none).
        opt_func: builds each optimizer (Adam without momentum). learner_kw: as for `Learner`
            (lr, wd, metrics, cbs, path, ...).

    Example:
        >>> learn = GANLearner.wgan(dls, basic_generator(32, 1), basic_critic(32, 1))
        >>> learn.fit(10, 2e-4, wd=0)
    """

    def __init__(
        self,
        dls: DataLoaders | tuple[Iterable[Any], Iterable[Any] | None],
        generator: nn.Module,
        critic: nn.Module,
        gen_loss_func: GenLossFunc,
        crit_loss_func: CritLossFunc,
        switcher: GANSwitcher | None = None,
        gen_first: bool = False,
        switch_eval: bool = True,
        clip: float | None = None,
        gp_weight: float | None = None,
        opt_func: OptFunc | str = adam_no_momentum,
        cbs: Sequence[Callback] | None = None,
        **learner_kw: Any,
    ) -> None:
        if "splitter" in learner_kw:
            raise ValueError("GANLearner trains each model as one parameter group; freeze "
                             "parts of the generator before (e.g. gen_learn.freeze())")  # fmt: skip
        gan = GANModule(generator, critic)
        self.gen_learn: Learner | None = None  # from_learners: the generator's own learner
        self.gan_trainer = GANTrainer(switcher, gen_first, switch_eval, clip)
        loss = GANLoss(gen_loss_func, crit_loss_func, gan, gp_weight)
        super().__init__(dls, gan, loss, opt_func=opt_func, cbs=[self.gan_trainer, *(cbs or ())],
                         **learner_kw)  # fmt: skip

    @property
    def gan(self) -> GANModule:
        """The `GANModule`."""
        return self.gan_trainer.gan

    @property
    def generator(self) -> nn.Module:
        """The generator (what restores or generates images, and what to export)."""
        return self.gan.generator

    @property
    def critic(self) -> nn.Module:
        """The critic."""
        return self.gan.critic

    def _generator_learner(self, what: str) -> Learner:
        """The generator's own learner, which knows its data pipeline; `what` needs it."""
        if self.gen_learn is None:
            raise ValueError(
                f"{what} runs the generator through its own learner's data pipeline, and this "
                "GANLearner has none: build it with GANLearner.from_learners(gen_learn, "
                "crit_learn) (a generator that restores images), or, for a generator of noise, "
                "call learn.generator(noise) and keep its weights with learn.save(name)"
            )
        return self.gen_learn

    def predict(self, item: Any) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """The generator's output for one raw item (e.g. a crappy image's path), as the
        generator's learner returns it: `(image, pixels, output)`; see `Learner.predict`."""
        return self._generator_learner("predict").predict(item)

    def show_results(self, max_n: int = 9, dl: Iterable[Any] | None = None) -> Any:
        """Inputs, targets and the generator's outputs of a validation batch."""
        return self._generator_learner("show_results").show_results(max_n, dl)

    def export(self, path: str | Path | None = None) -> Path:
        """Export the generator with its data pipeline, as `unet_learner(...).export` does
        (default `self.path / "export.mentor"`): `Predictor.load` returns restored images and
        `mentor predict` writes them as PNGs. The critic is not exported."""
        from mentor.inference.load import DEFAULT_NAME

        gen_learn = self._generator_learner("export")
        return gen_learn.export(self.path / DEFAULT_NAME if path is None else path)

    def create_opt(self) -> torch.optim.Optimizer:
        """(Re)build both optimizers (their state is lost); `learn.opt` is the one of the
        current mode."""
        gan = self.model
        if not isinstance(gan, GANModule):
            raise TypeError(f"a GANLearner's model is a GANModule, got {type(gan).__name__}")
        self.layer_groups = [list(gan.generator.parameters())]
        gen_opt = self.opt_func(param_groups(gan.generator, None, self.wd, self.wd_bn_bias),
                                lr=self.lr)  # fmt: skip
        crit_opt = self.opt_func(param_groups(gan.critic, None, self.wd, self.wd_bn_bias),
                                 lr=self.lr)  # fmt: skip
        self.gan_trainer.set_optimizers(gen_opt, crit_opt)
        self.opt = gen_opt if gan.gen_mode else crit_opt
        return self.opt

    def save(self, name: str, with_opt: bool = True) -> Path:
        """Save both models (and both optimizers) to `path/model_dir/name.pth`: `model`
        holds the `GANModule`'s state (`generator.*`, `critic.*`), `opt` the generator's
        optimizer and `crit_opt` the critic's."""
        file = model_file(self, name)
        state: dict[str, Any] = {"model": self.model.state_dict()}
        if with_opt:
            state["opt"] = self.gan_trainer.optimizer(True).state_dict()
            state["crit_opt"] = self.gan_trainer.optimizer(False).state_dict()
        atomic_save(state, file)
        return file

    def load(self, name: str | Path, with_opt: bool = True, strict: bool = True) -> GANLearner:
        """Load what `save` wrote (a name in `path/model_dir` or a file path)."""
        state = load_file(model_file(self, name))
        self.model.load_state_dict(state["model"], strict=strict)
        if with_opt and "opt" in state:
            self.gan_trainer.optimizer(True).load_state_dict(state["opt"])
        if with_opt and "crit_opt" in state:
            self.gan_trainer.optimizer(False).load_state_dict(state["crit_opt"])
        return self

    @classmethod
    def from_learners(
        cls,
        gen_learn: Learner,
        crit_learn: Learner,
        switcher: GANSwitcher | None = None,
        weights_gen: Sequence[float] = (1.0, 0.05),
        **kw: Any,
    ) -> GANLearner:
        """A GAN of a pretrained generator and critic, on the generator's data.

        The generator loss is `weights_gen[0] * gen_learn.loss_func(output, target) +
        weights_gen[1] * crit_learn.loss_func(critic(output), 'real')`; the critic's is the
        mean of `crit_learn.loss_func` on real images ('real') and generated ones
        ('generated'), see `gan_loss_from_func`. Both models are reused as they are (same
        modules, trained weights); `path` and `model_dir` default to the generator's.
        `predict`, `show_results` and `export` go through `gen_learn` (its data pipeline).

        Args:
            gen_learn: the pretrained generator's learner (e.g. `unet_learner` on
                (crappy, original) images). crit_learn: the pretrained critic's (e.g. a
                `gan_critic()` trained to tell generated from real images).
            switcher: default `AdaptiveGANSwitcher(critic_thresh=0.65)` in the lesson; here
                `FixedGANSwitcher()` unless given. weights_gen: (content, adversarial),
                default (1, 0.05): the lesson's 50 over the 1,024 patch scores that a
                `gan_critic` sums on 128 px images (scale it with the image's area). On
                lesson 7's restoration, 50 and 2 cost 8.4 and 7.2 points of a classifier's
                accuracy on the outputs; 0.05 kept it (`examples/course/lesson7_gan.py`).
            kw: as for `GANLearner` (gen_first, switch_eval, clip, opt_func, lr, ...).

        Example:
            >>> learn = GANLearner.from_learners(learn_gen, learn_crit,
            ...     switcher=AdaptiveGANSwitcher(critic_thresh=0.65))
        """
        gen_loss, crit_loss = gan_loss_from_func(gen_learn.loss_func, crit_learn.loss_func,
                                                 weights_gen)  # fmt: skip
        kw.setdefault("path", gen_learn.path)
        kw.setdefault("model_dir", gen_learn.model_dir)
        learn = cls(gen_learn.dls, gen_learn.model, crit_learn.model, gen_loss, crit_loss,
                    switcher=switcher, **kw)  # fmt: skip
        learn.gen_learn = gen_learn
        return learn

    @classmethod
    def wgan(
        cls,
        dls: DataLoaders | tuple[Iterable[Any], Iterable[Any] | None],
        generator: nn.Module,
        critic: nn.Module,
        switcher: GANSwitcher | None = None,
        clip: float | None = 0.01,
        gp_weight: float | None = None,
        **kw: Any,
    ) -> GANLearner:
        """A Wasserstein GAN: `wgan_gen_loss` / `wgan_crit_loss`, five critic batches per
        generator batch (unless `switcher` says otherwise), and either weight clipping
        (`clip`, 0.01) or, with `gp_weight` (e.g. 10) and `clip=None`, WGAN-GP's gradient
        penalty (use a critic without batch norm: `basic_critic(..., norm_type=None)`).

        Example:
            >>> learn = GANLearner.wgan(dls, basic_generator(32, 1), basic_critic(32, 1))
            >>> learn.fit(30, 2e-4, wd=0)
        """
        switcher = switcher if switcher is not None else FixedGANSwitcher(n_crit=5, n_gen=1)
        return cls(dls, generator, critic, wgan_gen_loss, wgan_crit_loss, switcher=switcher,
                   clip=clip, gp_weight=gp_weight, **kw)  # fmt: skip


__all__ = ["GANLearner", "adam_no_momentum"]
