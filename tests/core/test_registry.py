"""The registries: every registered optimizer and loss builds by name and works."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import mentor.optim.optimizers  # noqa: F401 - importing them fills the registries
import mentor.train.losses  # noqa: F401
from mentor.core.registry import (
    LOSSES,
    MODELS,
    OPTIMIZERS,
    Registry,
    create_model,
    register_model,
)

N, C = 6, 4


def _class_targets() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(N, C), torch.randint(0, C, (N,))


def _multi_hot() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(N, C), (torch.rand(N, C) > 0.5).float()


def _numbers() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(N, 1), torch.randn(N)


LOSS_INPUTS = {
    "CrossEntropyLossFlat": _class_targets,
    "LabelSmoothingCrossEntropy": _class_targets,
    "FocalLoss": _class_targets,
    "BCEWithLogitsLossFlat": _multi_hot,
    "MSELossFlat": _numbers,
    "L1LossFlat": _numbers,
}


def test_every_registered_loss_has_inputs_here() -> None:
    assert sorted(LOSSES.names()) == sorted(LOSS_INPUTS)


@pytest.mark.parametrize("name", LOSSES.names())
def test_registered_loss_builds_by_name_and_gives_a_finite_scalar(name: str) -> None:
    torch.manual_seed(0)
    pred, targ = LOSS_INPUTS[name]()
    pred.requires_grad_()
    loss = LOSSES.create(name)(pred, targ)
    assert loss.shape == () and torch.isfinite(loss)
    loss.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_registered_optimizer_builds_by_name_and_lowers_a_quadratic(name: str) -> None:
    weight = nn.Parameter(torch.tensor([3.0, -2.0]))
    opt = OPTIMIZERS.create(name, params=[weight], lr=0.05)
    start = float((weight.detach() ** 2).sum())
    for _ in range(20):
        opt.zero_grad()
        (weight**2).sum().backward()
        opt.step()
    assert float((weight.detach() ** 2).sum()) < start * 0.9


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(KeyError, match="unknown optimizer 'adamw'.*AdamW"):
        OPTIMIZERS.get("adamw")


def test_registering_a_name_twice_fails() -> None:
    registry: Registry = Registry("thing")
    registry.register(lambda: 1, name="one")
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(lambda: 2, name="one")


def test_register_model_and_create_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    # a copy of the table, so the throwaway model does not leak into other tests
    monkeypatch.setattr(MODELS, "factories", dict(MODELS.factories))

    @register_model
    def tiny_test_linear(n_out: int = 2) -> nn.Module:
        return nn.Linear(3, n_out)

    model = create_model("tiny_test_linear", n_out=5)
    assert isinstance(model, nn.Linear) and model.out_features == 5


def test_importing_mentor_registers_the_vision_architectures() -> None:
    names = set(mentor.list_models())
    assert {"resnet34", "xresnet18", "efficientnet_lite0"} <= names


def test_a_registry_keeps_each_factorys_metadata() -> None:
    models = Registry("model")
    models.register(lambda n_out=2: n_out, name="tiny", meta={"cut": -1})
    models.register(lambda n_out=2: n_out, name="bare")
    assert models.meta == {"tiny": {"cut": -1}} and models.create("tiny", n_out=3) == 3


def test_vision_metadata_is_the_model_registrys_own_table() -> None:
    from mentor.core.registry import MODELS
    from mentor.vision.models import MODEL_META, ModelMeta

    assert MODEL_META is MODELS.meta
    assert MODEL_META["resnet34"] == ModelMeta(cut=-2, n_features=512)
    assert MODEL_META["efficientnet_lite0"].fixed_bn_stats


def test_learner_takes_a_registered_optimizer_by_name() -> None:
    from tests.helpers import tiny_classifier

    learn = tiny_classifier()
    learn2 = type(learn)(learn.dls, learn.model, opt_func="SGD")
    assert learn2.opt_func is OPTIMIZERS.get("SGD")
    with pytest.raises(KeyError, match="unknown optimizer 'adamw'; known optimizers: Adam, AdamW"):
        type(learn)(learn.dls, learn.model, opt_func="adamw")
