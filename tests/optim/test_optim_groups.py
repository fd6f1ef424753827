import numpy as np
import pytest
import torch
from torch import nn

from mentor.optim import (
    AdamW,
    freeze_to,
    frozen_bn_modules,
    lr_per_group,
    param_groups,
)


def make_model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(3, 4),
        nn.BatchNorm1d(4),
        nn.Linear(4, 4, bias=False),
        nn.LayerNorm(4),
        nn.Linear(4, 2),
    )


def split_three(model: nn.Sequential) -> list[list[nn.Parameter]]:
    return [
        list(model[0].parameters()) + list(model[1].parameters()),
        list(model[2].parameters()) + list(model[3].parameters()),
        list(model[4].parameters()),
    ]


def ids(params) -> set[int]:
    return {id(p) for p in params}


def test_default_no_wd_on_bias_and_norm():
    model = make_model()
    groups = param_groups(model, wd=0.1)
    assert len(groups) == 2
    decay, no_decay = groups
    assert decay["weight_decay"] == 0.1 and "no_wd" not in decay
    assert ids(decay["params"]) == ids([model[0].weight, model[2].weight, model[4].weight])
    assert no_decay["weight_decay"] == 0.0 and no_decay["no_wd"] is True
    expected = [
        model[0].bias,
        model[1].weight,
        model[1].bias,
        model[3].weight,
        model[3].bias,
        model[4].bias,
    ]
    assert ids(no_decay["params"]) == ids(expected)
    assert {g["layer_group"] for g in groups} == {0}


def test_wd_bn_bias_true_decays_everything():
    model = make_model()
    groups = param_groups(model, wd=0.1, wd_bn_bias=True)
    assert len(groups) == 1
    assert groups[0]["weight_decay"] == 0.1
    assert ids(groups[0]["params"]) == ids(model.parameters())


def test_groups_per_layer_group_and_empty_dicts_omitted():
    model = make_model()
    groups = param_groups(model, splitter=split_three, wd=0.01)
    layout = [(g["layer_group"], g.get("no_wd", False)) for g in groups]
    assert layout == [(0, False), (0, True), (1, False), (1, True), (2, False), (2, True)]
    no_bias_model = nn.Sequential(nn.Linear(2, 2, bias=False))
    assert len(param_groups(no_bias_model)) == 1


def test_optimizer_keeps_group_weight_decay():
    model = make_model()
    opt = AdamW(param_groups(model, wd=0.1), lr=1e-3, wd=0.5)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    decay_before = model[0].weight.detach().clone()
    bias_before = model[0].bias.detach().clone()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    # zero gradient: only decoupled weight decay moves the params
    torch.testing.assert_close(model[0].weight.detach(), decay_before * (1 - 1e-3 * 0.1))
    torch.testing.assert_close(model[0].bias.detach(), bias_before)


def test_duplicate_parameter_is_named():
    model = make_model()

    def bad_splitter(m):
        return [list(m[0].parameters()), [m[0].weight] + list(m[4].parameters())]

    with pytest.raises(ValueError, match=r"'0\.weight' is in layer group 0 and again"):
        param_groups(model, splitter=bad_splitter)


def test_splitter_leaving_params_out_warns():
    model = make_model()
    with pytest.warns(UserWarning, match="left out 7 trainable parameters"):
        groups = param_groups(model, splitter=lambda m: [list(m[0].parameters())])
    assert sum(len(g["params"]) for g in groups) == 2


def test_lr_per_group_slices_and_lists():
    assert lr_per_group(1e-3, 3) == [1e-3] * 3
    assert lr_per_group(slice(1e-3), 3) == pytest.approx([1e-4, 1e-4, 1e-3])
    assert lr_per_group(slice(1e-5, 1e-3), 3) == pytest.approx([1e-5, 1e-4, 1e-3])
    assert lr_per_group(slice(1e-5, 1e-3), 1) == [1e-3]
    assert lr_per_group(np.array([1e-3, 2e-3]), 2) == pytest.approx([1e-3, 2e-3])
    assert lr_per_group((0.1, 0.2), 2) == [0.1, 0.2]


@pytest.mark.parametrize(
    "lr, n_groups, match",
    [
        ([1e-3, 1e-3, 1e-3], 2, "got 3 learning rates for 2 parameter groups"),
        (-1e-3, 2, r"positive and finite, got \[-0.001\]"),
        (slice(0.0, 1e-3), 3, "positive"),
        (slice(1e-5, 1e-3, 2), 3, "slice"),
        ([1e-3, float("nan")], 2, "positive and finite"),
        (1e-3, 0, "n_groups"),
    ],
)
def test_lr_per_group_errors(lr, n_groups, match):
    with pytest.raises(ValueError, match=match):
        lr_per_group(lr, n_groups)


def test_freeze_to_keeps_bn_trainable():
    model = make_model()
    layer_groups = split_three(model)
    freeze_to(model, layer_groups, -1, train_bn=True)
    assert not model[0].weight.requires_grad and not model[0].bias.requires_grad
    assert not model[2].weight.requires_grad
    assert model[1].weight.requires_grad and model[3].weight.requires_grad
    assert all(p.requires_grad for p in model[4].parameters())
    freeze_to(model, layer_groups, -1, train_bn=False)
    assert not model[1].weight.requires_grad and not model[3].bias.requires_grad
    freeze_to(model, layer_groups, 0)
    assert all(p.requires_grad for p in model.parameters())
    freeze_to(model, layer_groups, 2)  # same as -1 for three groups
    assert not model[2].weight.requires_grad and model[4].weight.requires_grad


def test_freeze_to_out_of_range():
    model = make_model()
    with pytest.raises(ValueError, match="n=4 is out of range for 3 layer groups"):
        freeze_to(model, split_three(model), 4)


def test_frozen_bn_modules():
    model = make_model()
    layer_groups = split_three(model)
    assert frozen_bn_modules(model, layer_groups, -1) == [model[1]]
    assert frozen_bn_modules(model, layer_groups, 0) == []
