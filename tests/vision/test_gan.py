"""GANs: the models, the losses, the switchers, what trains in each mode, save / load and
`from_learners`, on tiny generated images (fractions of a second each)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from mentor.core.seed import set_seed
from mentor.data.loaders import DataLoaders
from mentor.train import Callback, Learner
from mentor.vision.gan import (
    ContentGANGenLoss,
    GANModule,
    RealFakeCritLoss,
    bce_crit_loss,
    bce_gen_loss,
    gradient_penalty,
    wgan_crit_loss,
    wgan_gen_loss,
)
from mentor.vision.gan_data import GANDataLoaders
from mentor.vision.gan_learner import GANLearner
from mentor.vision.gan_trainer import AdaptiveGANSwitcher, FixedGANSwitcher, GANTrainer
from mentor.vision.models.critic import basic_critic, gan_critic
from mentor.vision.models.generator import basic_generator, generate_noise


def tiny_dls(n: int = 64, bs: int = 16, valid_pct: float = 0.25) -> GANDataLoaders:
    images = torch.randint(0, 256, (n, 1, 16, 16), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))  # fmt: skip
    return GANDataLoaders.from_images(images, in_sz=8, bs=bs, valid_pct=valid_pct, seed=0,
                                      device="cpu")  # fmt: skip


def tiny_wgan(seed: int = 0, path: Path = Path("."), **kw: Any) -> GANLearner:
    set_seed(seed)
    generator = basic_generator(16, 1, in_sz=8, n_features=8)
    learn = GANLearner.wgan(tiny_dls(), generator, basic_critic(16, 1, n_features=8), path=path,
                            **kw)  # fmt: skip
    learn.progress.show = False
    return learn


def params(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


# ----- models -----
def test_gan_critic_scores_each_image_through_spectral_norm_convolutions() -> None:
    critic = gan_critic(n_channels=3, nf=8, n_blocks=2)
    assert critic(torch.randn(5, 3, 32, 32)).shape == (5,)
    convs = [m for m in critic.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 2 + 2 * 2 and all(parametrize.is_parametrized(c, "weight") for c in convs)
    critic.train()
    critic(torch.randn(2, 3, 32, 32))  # a training pass normalizes by the largest singular value
    weight = convs[1].weight.detach().flatten(1)
    assert torch.linalg.matrix_norm(weight, ord=2) == pytest.approx(1.0, abs=0.1)
    assert any(isinstance(m, nn.Dropout2d) for m in critic) and any(
        isinstance(m, nn.LeakyReLU) for m in critic
    )


def test_basic_generator_and_critic_shapes_and_size_errors() -> None:
    generator = basic_generator(32, 3, in_sz=10, n_features=8, n_extra_layers=1)
    fake = generator(generate_noise(4, 10))
    assert fake.shape == (4, 3, 32, 32) and fake.abs().max() <= 1
    assert generator(torch.randn(4, 10)).shape == (4, 3, 32, 32)  # [B, in_sz] works too
    critic = basic_critic(32, 3, n_features=8, n_extra_layers=1, norm_type=None)
    assert critic(fake).shape == (4,)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in critic)
    with pytest.raises(ValueError, match="out_size=28.*power of two.*28 px digits to 32"):
        basic_generator(28, 1)
    with pytest.raises(ValueError, match="norm_type='layer'"):
        basic_critic(32, 1, norm_type="layer")
    with pytest.raises(ValueError, match=r"noise \[B, 10, 1, 1\], got \[4, 7, 1, 1\]"):
        generator(torch.randn(4, 7, 1, 1))


# ----- losses -----
def test_wgan_and_bce_losses_point_the_right_way() -> None:
    high, low = torch.full((4,), 3.0), torch.full((4,), -3.0)
    assert wgan_crit_loss(high, low) == -6.0  # critic: real high, fake low is good
    assert wgan_crit_loss(low, high) == 6.0
    out = torch.zeros(4, 1, 8, 8)
    assert wgan_gen_loss(high, out, out) == -3.0 < wgan_gen_loss(low, out, out)
    assert bce_crit_loss(high, low) < 0.1 < bce_crit_loss(low, high)
    assert bce_gen_loss(high, out, out) < 0.1 < bce_gen_loss(low, out, out)


def test_generator_loss_is_weighted_content_plus_adversarial() -> None:
    output, target = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    fake_pred = torch.randn(4)
    loss = ContentGANGenLoss(nn.L1Loss(), nn.BCEWithLogitsLoss(), weights=(2.0, 3.0))
    content = (output - target).abs().mean()
    adversarial = nn.functional.binary_cross_entropy_with_logits(fake_pred, torch.ones(4))
    assert torch.allclose(loss(fake_pred, output, target), 2 * content + 3 * adversarial)
    # a critic over two classes (generated first): the adversarial target is class 1
    scores = torch.randn(4, 2)
    by_class = ContentGANGenLoss(nn.L1Loss(), nn.CrossEntropyLoss(), weights=(1.0, 50.0))
    expected = content + 50 * nn.functional.cross_entropy(scores, torch.ones(4, dtype=torch.long))
    assert torch.allclose(by_class(scores, output, target), expected)
    crit = RealFakeCritLoss(nn.BCEWithLogitsLoss())
    real, fake = torch.randn(4), torch.randn(4)
    bce = nn.functional.binary_cross_entropy_with_logits
    assert torch.allclose(
        crit(real, fake), (bce(real, torch.ones(4)) + bce(fake, torch.zeros(4))) / 2
    )
    with pytest.raises(ValueError, match="weights_gen=.*two weights"):
        ContentGANGenLoss(nn.L1Loss(), nn.BCEWithLogitsLoss(), weights=(1.0,))


def test_gradient_penalty_of_a_linear_critic() -> None:
    # the gradient of x -> w . x is w everywhere: the penalty is (|w| - 1) ** 2
    critic = nn.Sequential(nn.Flatten(), nn.Linear(12, 1, bias=False), nn.Flatten(0))
    with torch.no_grad():
        critic[1].weight.fill_(0.5)  # |w| = 0.5 * sqrt(12)
    penalty = gradient_penalty(critic, torch.randn(3, 3, 2, 2), torch.randn(3, 3, 2, 2))
    assert penalty.item() == pytest.approx((0.5 * 12**0.5 - 1) ** 2, rel=1e-5)
    assert penalty.requires_grad  # it trains the critic


# ----- switchers -----
def test_fixed_switcher_gives_the_exact_schedule() -> None:
    switcher, gen_mode, modes = FixedGANSwitcher(n_crit=3, n_gen=2), False, []
    for _ in range(10):
        modes.append("G" if gen_mode else "C")
        gen_mode = switcher.next_mode(gen_mode, torch.tensor(0.0))
    assert "".join(modes) == "CCCGGCCCGG"
    with pytest.raises(ValueError, match="n_crit=0"):
        FixedGANSwitcher(n_crit=0)


def test_adaptive_switcher_switches_on_the_thresholds() -> None:
    switcher = AdaptiveGANSwitcher(gen_thresh=1.0, critic_thresh=0.5)
    assert switcher.next_mode(False, torch.tensor(0.7)) is False  # critic above 0.5: again
    assert switcher.next_mode(False, torch.tensor(0.4)) is True
    assert switcher.next_mode(True, torch.tensor(1.5)) is True
    assert switcher.next_mode(True, torch.tensor(0.9)) is False
    always = AdaptiveGANSwitcher()
    assert always.next_mode(True, torch.tensor(9.0)) is False
    assert always.next_mode(False, torch.tensor(9.0)) is True


# ----- training -----
class WatchSteps(Callback):
    """Per training step: the mode, which model's parameters changed, the batch it saw."""

    order = 69  # after the GANTrainer (68) swapped the batch and clipped the critic

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[dict[str, Any]] = []
        self.valid_modes: list[bool] = []
        self.before: tuple[list[torch.Tensor], list[torch.Tensor]] = ([], [])

    def before_batch(self) -> None:
        learn = self.learn
        assert isinstance(learn, GANLearner)
        if not learn.training:
            self.valid_modes.append(learn.gan.gen_mode)
            return
        self.before = (params(learn.generator), params(learn.critic))
        self.shapes = ([tuple(x.shape) for x in learn.xb], [tuple(y.shape) for y in learn.yb])

    def after_step(self) -> None:
        learn = self.learn
        assert isinstance(learn, GANLearner)
        trainer = learn.gan_trainer
        gen_mode = learn.gan.gen_mode
        self.steps.append({
            "gen_mode": gen_mode,
            "gen_changed": not same(self.before[0], params(learn.generator)),
            "crit_changed": not same(self.before[1], params(learn.critic)),
            "opt_is_own": learn.opt is trainer.optimizer(gen_mode),
            "frozen_other": not any(p.requires_grad for p in
                                    (learn.critic if gen_mode else learn.generator).parameters()),
            "crit_max": max(p.abs().max().item() for p in learn.critic.parameters()),
            "shapes": self.shapes,
        })  # fmt: skip


def test_each_step_trains_one_model_with_its_optimizer_and_clips_the_critic() -> None:
    learn = tiny_wgan(switcher=FixedGANSwitcher(n_crit=2, n_gen=1), clip=0.01)
    watch = WatchSteps()
    learn.fit(2, 1e-3, cbs=[watch])
    steps = watch.steps
    assert len(steps) == 6 and [s["gen_mode"] for s in steps] == [False, False, True] * 2
    for step in steps:
        assert step["opt_is_own"] and step["frozen_other"]
        assert step["gen_changed"] == step["gen_mode"] and step["crit_changed"] != step["gen_mode"]
        if not step["gen_mode"]:
            assert step["crit_max"] <= 0.01  # clipped right after the critic's step
            # the critic's batch: real images in; the noise and real images as targets
            assert step["shapes"] == ([(16, 1, 16, 16)], [(16, 8, 1, 1), (16, 1, 16, 16)])
        else:
            assert step["shapes"] == ([(16, 8, 1, 1)], [(16, 1, 16, 16)])
    history = learn.gan_trainer.history
    assert [(row["gen_batches"], row["crit_batches"]) for row in history] == [(1, 2), (1, 2)]
    assert all(watch.valid_modes)  # validation runs the generator
    # after the fit: generator mode, its optimizer, everything trainable again
    assert learn.gan.gen_mode and learn.opt is learn.gan_trainer.gen_opt
    assert all(p.requires_grad for p in learn.model.parameters())
    assert learn.get_preds()[0].shape == (16, 1, 16, 16)  # generated images


def test_fit_learning_rate_reaches_both_optimizers_and_frozen_parameters_stay_frozen() -> None:
    learn = tiny_wgan(switch_eval=False)
    first = next(learn.generator.parameters())
    first.requires_grad_(False)  # a part of the generator the user froze
    kept = first.detach().clone()
    watch = WatchSteps()
    learn.fit(1, 3e-3, cbs=[watch])
    trainer = learn.gan_trainer
    assert [g["lr"] for g in trainer.optimizer(True).param_groups] == [3e-3] * 2
    assert [g["lr"] for g in trainer.optimizer(False).param_groups] == [3e-3] * 2
    assert torch.equal(first, kept) and not first.requires_grad
    assert watch.valid_modes and not any(watch.valid_modes)  # switch_eval=False: the critic


def test_gan_trainer_needs_a_gan_module() -> None:
    learn = Learner(DataLoaders.from_tensors((torch.randn(8, 2), torch.randn(8, 1)),
                                             device="cpu"), nn.Linear(2, 1))  # fmt: skip
    learn.progress.show = False
    with pytest.raises(TypeError, match="GANTrainer trains a GANModule.*Linear.*GANLearner"):
        learn.fit(1, cbs=[GANTrainer()])


def test_save_and_load_both_models_and_both_optimizers(tmp_path: Path) -> None:
    learn = tiny_wgan(path=tmp_path, switcher=FixedGANSwitcher())
    learn.fit(1, 1e-3)
    file = learn.save("gan")
    other = tiny_wgan(seed=1, path=tmp_path, switcher=FixedGANSwitcher())
    assert not torch.equal(next(other.critic.parameters()), next(learn.critic.parameters()))
    other.load("gan")
    for name, value in learn.model.state_dict().items():
        assert torch.equal(other.model.state_dict()[name], value), name
    for gen_mode in (True, False):
        want = learn.gan_trainer.optimizer(gen_mode).state_dict()
        got = other.gan_trainer.optimizer(gen_mode).state_dict()
        assert want["state"].keys() == got["state"].keys() and want["state"]
        for index, values in want["state"].items():
            assert all(torch.equal(got["state"][index][k], v) for k, v in values.items())
    saved = torch.load(file, weights_only=True)
    assert {"model", "opt", "crit_opt"} <= saved.keys()


def test_from_learners_reuses_the_pretrained_models(tmp_path: Path) -> None:
    set_seed(0)
    crappy, clean = torch.rand(32, 3, 16, 16), torch.rand(32, 3, 16, 16)
    pairs = DataLoaders.from_tensors((crappy[:24], clean[:24]), (crappy[24:], clean[24:]),
                                     bs=8, device="cpu")  # fmt: skip
    gen_learn = Learner(pairs, nn.Conv2d(3, 3, 3, padding=1), loss_func=nn.L1Loss(), path=tmp_path)
    labels = torch.randint(0, 2, (32,)).float()
    crit_data = DataLoaders.from_tensors((clean[:24], labels[:24]), (clean[24:], labels[24:]),
                                         bs=8, device="cpu")  # fmt: skip
    crit_learn = Learner(crit_data, gan_critic(nf=4, n_blocks=1), loss_func=nn.BCEWithLogitsLoss())
    for learner in (gen_learn, crit_learn):
        learner.progress.show = False
        learner.fit(1, 1e-2)
    pretrained = params(gen_learn.model), params(crit_learn.model)
    learn = GANLearner.from_learners(gen_learn, crit_learn, weights_gen=(1.0, 5.0))
    assert learn.generator is gen_learn.model and learn.critic is crit_learn.model
    assert same(params(learn.generator), pretrained[0]) and same(
        params(learn.critic), pretrained[1]
    )
    assert learn.path == tmp_path and learn.dls is gen_learn.dls
    gen_loss = learn.loss_func.gen_loss_func
    assert isinstance(gen_loss, ContentGANGenLoss) and gen_loss.weights == (1.0, 5.0)
    learn.progress.show = False
    learn.fit(1, 1e-3)
    valid = learn.validate()["valid_loss"]  # the generator loss on the validation pairs
    output = learn.generator.eval()(crappy[24:])
    with torch.no_grad():
        learn.critic.eval()
        expected = gen_loss(learn.critic(output), output, clean[24:])
    assert valid == pytest.approx(expected.item(), rel=1e-5)


def test_gan_module_switches_what_runs() -> None:
    gan = GANModule(
        basic_generator(16, 1, in_sz=8, n_features=4), basic_critic(16, 1, n_features=4)
    )
    fake = gan(generate_noise(3, 8))
    assert fake.shape == (3, 1, 16, 16)
    gan.switch()
    assert not gan.gen_mode and gan(fake).shape == (3,)


# ----- data -----
def test_noise_data_batches_and_fixed_validation_noise() -> None:
    dls = tiny_dls(n=64, bs=16, valid_pct=0.25)
    assert len(dls.train) == 3 and dls.valid is not None and len(dls.valid) == 1
    noise, real = dls.one_batch()
    assert noise.shape == (16, 8, 1, 1) and real.shape == (16, 1, 16, 16)
    assert real.min() >= -1 and real.max() <= 1 and real.min() < -0.9 and real.max() > 0.9
    first, again = next(iter(dls.valid)), next(iter(dls.valid))
    assert torch.equal(first[0], again[0])  # validation: the same noise every pass
    assert not torch.equal(next(iter(dls.train))[0], next(iter(dls.train))[0])
    assert "noise [8, 1, 1]" in repr(dls)
    assert dls.show_batch(max_n=4) is not None


def test_noise_data_from_a_folder(tmp_path: Path) -> None:
    from PIL import Image

    for index in range(5):
        Image.new("L", (28, 28), color=index * 50).save(tmp_path / f"{index}.png")
    dls = GANDataLoaders.from_folder(tmp_path, size=32, n_channels=1, in_sz=4, bs=2,
                                     device="cpu")  # fmt: skip
    assert dls.valid is None and len(dls.train) == 2  # the last odd image is dropped
    noise, real = dls.one_batch()
    assert noise.shape == (2, 4, 1, 1) and real.shape == (2, 1, 32, 32)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images under.*empty"):
        GANDataLoaders.from_folder(tmp_path / "empty", size=32)


def test_a_gan_of_noise_refuses_to_export_or_predict_and_says_what_to_do(tmp_path: Path) -> None:
    learn = tiny_wgan(path=tmp_path)
    for call in (learn.export, lambda: learn.predict(torch.zeros(1, 16, 1, 1))):
        with pytest.raises(ValueError, match=r"from_learners.*learn\.generator\(noise\)"):
            call()
    assert not (tmp_path / "export.mentor").exists()


def test_gan_critic_learns_to_tell_noisy_from_clean_images() -> None:
    # spectral norm caps each layer's gain at 1: with its patch scores averaged, not summed,
    # this critic ends at 0.19 here, and at chance (ln 2) on restored-against-real images
    set_seed(0)
    clean = torch.rand(16, 3, 32, 32).cumsum(-1) / 32 - 0.5  # smooth ramps
    images = torch.cat([clean + 0.2 * torch.randn_like(clean), clean])
    labels = torch.cat([torch.zeros(16), torch.ones(16)])  # noisy 0, clean 1
    critic = gan_critic(nf=16)
    opt = torch.optim.Adam(critic.parameters(), 1e-3, betas=(0.5, 0.99))
    for _ in range(60):
        loss = nn.functional.binary_cross_entropy_with_logits(critic(images), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    critic.eval()
    with torch.no_grad():
        scores = critic(images)
    assert nn.functional.binary_cross_entropy_with_logits(scores, labels) < 0.05
    assert ((scores > 0).float() == labels).all()
