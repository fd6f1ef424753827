"""`GANTrainer`: the callback that trains a GAN's generator and critic in turns, and the
switchers that say when to turn (`FixedGANSwitcher`, `AdaptiveGANSwitcher`)."""

from __future__ import annotations

import math
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from mentor.optim import get_hyper, has_hyper, n_layer_groups, set_hyper
from mentor.train.callback import Callback
from mentor.vision.gan import GANModule


class GANSwitcher(Protocol):
    """Decides, after each training batch, which model trains on the next one."""

    def next_mode(self, gen_mode: bool, loss: Tensor) -> bool:
        """The mode of the next batch, given this batch's mode and loss."""
        ...

    def reset(self) -> None:
        """Start of a fit."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict`."""
        ...


class FixedGANSwitcher:
    """`n_crit` batches of critic training, then `n_gen` of generator training, and again.

    Args:
        n_crit: critic batches in a row (1; WGAN's 5). n_gen: generator batches in a row (1).

    Example:
        >>> GANLearner.wgan(dls, generator, critic, switcher=FixedGANSwitcher(n_crit=5))
    """

    def __init__(self, n_crit: int = 1, n_gen: int = 1) -> None:
        for name, value in (("n_crit", n_crit), ("n_gen", n_gen)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}: give a whole number of batches, at least 1")
        self.n_crit, self.n_gen = n_crit, n_gen
        self.n_done = 0  # batches trained in a row in the current mode

    def next_mode(self, gen_mode: bool, loss: Tensor) -> bool:
        """Switch once the current model has had its batches (the loss is not read)."""
        self.n_done += 1
        if self.n_done >= (self.n_gen if gen_mode else self.n_crit):
            self.n_done = 0
            return not gen_mode
        return gen_mode

    def reset(self) -> None:
        """A fit starts a fresh run of batches."""
        self.n_done = 0

    def state_dict(self) -> dict[str, Any]:
        """The batches done in the current run."""
        return {"n_done": self.n_done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the batches done in the current run."""
        self.n_done = int(state["n_done"])

    def __repr__(self) -> str:
        return f"FixedGANSwitcher(n_crit={self.n_crit}, n_gen={self.n_gen})"


class AdaptiveGANSwitcher:
    """Switch when the model in training gets its loss below its threshold: the generator
    trains until its loss is under `gen_thresh`, the critic until its loss is under
    `critic_thresh` (None: switch after every batch). Reads each training loss (a device
    sync per batch).

    Args:
        gen_thresh: generator loss to reach before the critic trains (None).
        critic_thresh: critic loss to reach before the generator trains (None; the lesson
            uses 0.65 with a binary cross-entropy critic).
    """

    def __init__(self, gen_thresh: float | None = None, critic_thresh: float | None = None) -> None:
        self.gen_thresh, self.critic_thresh = gen_thresh, critic_thresh

    def next_mode(self, gen_mode: bool, loss: Tensor) -> bool:
        """The other mode once this batch's loss is under the current model's threshold."""
        thresh = self.gen_thresh if gen_mode else self.critic_thresh
        if thresh is None or float(loss) < thresh:
            return not gen_mode
        return gen_mode

    def reset(self) -> None:
        """Nothing to reset: the decision reads only the last loss."""

    def state_dict(self) -> dict[str, Any]:
        """Nothing: no state between batches."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore."""

    def __repr__(self) -> str:
        thresholds = f"gen_thresh={self.gen_thresh}, critic_thresh={self.critic_thresh}"
        return f"AdaptiveGANSwitcher({thresholds})"


class GANTrainer(Callback):
    """Trains a `GANModule`'s generator and critic in turns (`GANLearner` adds it).

    In each mode, the model that trains has its parameters trainable (as they were before
    the fit) and the other's frozen (`requires_grad` False); `learn.opt` is that model's
    optimizer, so schedules, gradient clipping and mixed precision act on it. The
    generator trains on the batch `(inputs, real)` as it comes; for the critic the batch
    becomes `xb = (real,)`, `yb = (*inputs, real)` (see `GANLoss`). After each training
    batch the `switcher` picks the next mode.

    Validation runs the generator (its loss is the generator loss) unless `switch_eval` is
    False (then the mode in training). After a fit the model is in generator mode, so
    `predict` and `get_preds` give generated images. A checkpoint keeps the mode, the
    switcher's state and both optimizers; `history` has the mean generator and critic
    losses of each epoch of the last fit.

    Args:
        switcher: a `FixedGANSwitcher` (default: one batch each) or `AdaptiveGANSwitcher`.
        gen_first: start the fit with the generator (False: the critic).
        switch_eval: validate the generator (True). clip: after each critic step, clamp
            its weights to [-clip, clip] (WGAN; None: no clipping).
    """

    order = 68  # after the recorder (50) read the batch's loss and optimizer; before checkpoints

    def __init__(
        self,
        switcher: GANSwitcher | None = None,
        gen_first: bool = False,
        switch_eval: bool = True,
        clip: float | None = None,
    ) -> None:
        super().__init__()
        if clip is not None and clip <= 0:
            raise ValueError(f"clip={clip} must be positive (or None: no weight clipping)")
        self.switcher: GANSwitcher = switcher if switcher is not None else FixedGANSwitcher()
        self.gen_first, self.switch_eval, self.clip = gen_first, switch_eval, clip
        self.gen_mode = gen_first  # the mode training is in (validation may differ)
        self.gen_opt: torch.optim.Optimizer | None = None
        self.crit_opt: torch.optim.Optimizer | None = None
        self.fitting = False
        self.trainable: dict[str, list[bool]] = {}  # each model's requires_grad before the fit
        self.loss_sums = torch.zeros(2)  # this epoch's (generator, critic) training losses
        self.counts = [0, 0]  # and their batches
        self.history: list[dict[str, float]] = []

    # ----- the two optimizers and the mode -----
    def set_optimizers(
        self, gen_opt: torch.optim.Optimizer, crit_opt: torch.optim.Optimizer
    ) -> None:
        """The generator's and the critic's optimizers (`GANLearner.create_opt` builds them)."""
        self.gen_opt, self.crit_opt = gen_opt, crit_opt

    def optimizer(self, gen_mode: bool) -> torch.optim.Optimizer:
        """The generator's optimizer (`gen_mode`) or the critic's."""
        opt = self.gen_opt if gen_mode else self.crit_opt
        if opt is None:
            raise RuntimeError("GANTrainer has no optimizers: it works in a GANLearner, which "
                               "builds them (or call set_optimizers)")  # fmt: skip
        return opt

    @property
    def gan(self) -> GANModule:
        """The learner's model, a `GANModule`."""
        model = self.learn.model
        if not isinstance(model, GANModule):
            raise TypeError(f"GANTrainer trains a GANModule, the learner's model is "
                            f"{type(model).__name__}; use GANLearner")  # fmt: skip
        return model

    def set_mode(self, gen_mode: bool) -> None:
        """Run and train the generator (`gen_mode`) or the critic: the model's mode, which
        parameters are trainable (during a fit), and `learn.opt`."""
        gan = self.gan
        gan.switch(gen_mode)
        if self.fitting:
            _set_trainable(gan.generator, self.trainable["generator"], gen_mode)
            _set_trainable(gan.critic, self.trainable["critic"], not gen_mode)
        self.learn.opt = self.optimizer(gen_mode)

    # ----- events -----
    def before_fit(self) -> None:
        """Remember which parameters train, give both optimizers the fit's learning rate and
        weight decay, and start in the first mode."""
        gan = self.gan
        self.trainable = {
            "generator": [p.requires_grad for p in gan.generator.parameters()],
            "critic": [p.requires_grad for p in gan.critic.parameters()],
        }
        self._share_hypers()
        self.fitting, self.gen_mode = True, self.gen_first
        self.switcher.reset()
        self.loss_sums, self.counts, self.history = torch.zeros(2, device=_device(gan)), [0, 0], []
        self.set_mode(self.gen_mode)

    def _share_hypers(self) -> None:
        """`fit(lr=..., wd=...)` set them on `learn.opt`: the other optimizer gets them too."""
        current = self.learn.opt
        for opt in (self.optimizer(True), self.optimizer(False)):
            if opt is current:
                continue
            for name in ("lr", "wd"):
                if has_hyper(current, name) and has_hyper(opt, name):
                    values = get_hyper(current, name)
                    same = n_layer_groups(opt) == len(values)
                    set_hyper(opt, name, values if same else values[-1])

    def before_batch(self) -> None:
        """In critic mode, the critic's batch: the real images in, the inputs and the real
        images as targets."""
        learn = self.learn
        if not self.gan.gen_mode:
            learn.xb, learn.yb = tuple(learn.yb), (*learn.xb, *learn.yb)

    def after_step(self) -> None:
        """WGAN: clamp the critic's weights after its step."""
        if self.clip is not None and not self.gan.gen_mode:
            with torch.no_grad():
                for param in self.gan.critic.parameters():
                    param.clamp_(-self.clip, self.clip)

    def after_batch(self) -> None:
        """Count the batch's loss for its model, then ask the switcher for the next mode."""
        learn = self.learn
        if not learn.training:
            return
        index = 0 if self.gen_mode else 1
        self.loss_sums[index] += learn.loss.detach().float().to(self.loss_sums.device)
        self.counts[index] += 1
        next_mode = self.switcher.next_mode(self.gen_mode, learn.loss)
        if next_mode != self.gen_mode:
            self.gen_mode = next_mode
            self.set_mode(next_mode)

    def after_train(self) -> None:
        """The epoch's mean generator and critic losses (read once), into `history`."""
        sums = self.loss_sums.tolist()
        means = [total / count if count else math.nan for total, count in zip(sums, self.counts)]
        row = {"epoch": self.learn.epoch, "gen_loss": means[0], "crit_loss": means[1]}
        row.update(gen_batches=self.counts[0], crit_batches=self.counts[1])
        self.history.append(row)
        self.loss_sums.zero_()
        self.counts = [0, 0]

    def before_validate(self) -> None:
        """Validate the generator (`switch_eval`)."""
        if self.switch_eval:
            self.set_mode(True)

    def after_validate(self) -> None:
        """Back to the training mode (generator mode outside a fit)."""
        self.set_mode(self.gen_mode if self.fitting else True)

    def after_fit(self) -> None:
        """Both models trainable as before the fit; generator mode, its optimizer."""
        gan = self.gan
        _set_trainable(gan.generator, self.trainable.get("generator", []), True)
        _set_trainable(gan.critic, self.trainable.get("critic", []), True)
        self.fitting, self.trainable = False, {}
        self.set_mode(True)

    # ----- checkpoints -----
    def state_dict(self) -> dict[str, Any]:
        """The mode, the switcher's state, both optimizers and the epoch's loss sums."""
        return {
            "gen_mode": self.gen_mode,
            "switcher": self.switcher.state_dict(),
            "gen_opt": self.optimizer(True).state_dict(),
            "crit_opt": self.optimizer(False).state_dict(),
            "loss_sums": self.loss_sums.cpu(),
            "counts": list(self.counts),
            "history": [dict(row) for row in self.history],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict` (and put the optimizer of the saved mode in `learn.opt`)."""
        self.optimizer(True).load_state_dict(state["gen_opt"])
        self.optimizer(False).load_state_dict(state["crit_opt"])
        self.switcher.load_state_dict(state["switcher"])
        self.gen_mode = bool(state["gen_mode"])
        self.loss_sums = state["loss_sums"].to(_device(self.gan))
        self.counts, self.history = list(state["counts"]), [dict(r) for r in state["history"]]
        self.set_mode(self.gen_mode)

    def __repr__(self) -> str:
        return (f"GANTrainer({self.switcher!r}, gen_first={self.gen_first}, "
                f"switch_eval={self.switch_eval}, clip={self.clip})")  # fmt: skip


def _set_trainable(model: nn.Module, trainable: list[bool], on: bool) -> None:
    """Each parameter trainable as in `trainable` when `on`, else frozen."""
    for param, flag in zip(model.parameters(), trainable):
        param.requires_grad_(flag and on)


def _device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


__all__ = ["AdaptiveGANSwitcher", "FixedGANSwitcher", "GANSwitcher", "GANTrainer"]
