import math

import numpy as np
import pytest
import torch
from torch import nn

from mentor.optim import (
    SGD,
    Adam,
    AdamW,
    RMSProp,
    get_hyper,
    n_layer_groups,
    param_groups,
    set_hyper,
)


def two_layer_groups() -> tuple[nn.Sequential, list[dict]]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    groups = param_groups(
        model, splitter=lambda m: [list(m[0].parameters()), list(m[1].parameters())], wd=0.1
    )
    return model, groups


def test_factories_return_torch_optimizers():
    params = [nn.Parameter(torch.ones(2))]
    assert type(SGD(params, lr=0.1)) is torch.optim.SGD
    assert type(Adam(params, lr=0.1)) is torch.optim.AdamW
    assert type(Adam(params, lr=0.1, decouple_wd=False)) is torch.optim.Adam
    assert type(AdamW(params, lr=0.1)) is torch.optim.AdamW
    rms = RMSProp(params, lr=0.1, sqr_mom=0.9, mom=0.5)
    assert type(rms) is torch.optim.RMSprop
    assert rms.param_groups[0]["alpha"] == 0.9 and rms.param_groups[0]["momentum"] == 0.5


def test_adamw_one_step_matches_closed_form():
    lr, beta1, beta2, eps, wd = 1e-2, 0.9, 0.99, 1e-5, 0.1
    p0 = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    grad = torch.tensor([0.3, -0.2, 0.05], dtype=torch.float64)
    param = nn.Parameter(p0.clone())
    opt = AdamW([param], lr=lr, mom=beta1, sqr_mom=beta2, eps=eps, wd=wd)
    param.grad = grad.clone()
    opt.step()
    expected = []
    for p, g in zip(p0.tolist(), grad.tolist()):
        m = (1 - beta1) * g
        v = (1 - beta2) * g * g
        m_hat, v_hat = m / (1 - beta1), v / (1 - beta2)
        p = p * (1 - lr * wd)  # decoupled decay
        expected.append(p - lr * m_hat / (math.sqrt(v_hat) + eps))
    np.testing.assert_allclose(param.detach().numpy(), expected, atol=1e-6, rtol=0)


def test_adam_l2_differs_from_decoupled():
    grad = torch.tensor([0.3, -0.2])
    results = []
    for decouple in (True, False):
        param = nn.Parameter(torch.tensor([1.0, 2.0]))
        opt = Adam([param], lr=0.1, wd=0.5, decouple_wd=decouple)
        param.grad = grad.clone()
        opt.step()
        results.append(param.detach().clone())
    assert not torch.allclose(results[0], results[1])


def test_sgd_step_with_l2_and_momentum():
    param = nn.Parameter(torch.tensor([1.0]))
    opt = SGD([param], lr=0.1, mom=0.9, wd=0.5)
    for _ in range(2):
        param.grad = torch.tensor([1.0])
        opt.step()
    # step 1: buf = 1 + 0.5*1 = 1.5 -> p = 0.85; step 2: buf = 0.9*1.5 + 1 + 0.425 -> p
    buf2 = 0.9 * 1.5 + 1.0 + 0.5 * 0.85
    assert param.item() == pytest.approx(0.85 - 0.1 * buf2)


def test_get_set_mom_on_sgd_and_adam():
    _, groups = two_layer_groups()
    sgd = SGD(groups, lr=0.1, mom=0.9)
    assert n_layer_groups(sgd) == 2
    assert get_hyper(sgd, "mom") == [0.9, 0.9]
    set_hyper(sgd, "mom", [0.8, 0.85])
    assert get_hyper(sgd, "mom") == [0.8, 0.85]
    assert [g["momentum"] for g in sgd.param_groups] == [0.8, 0.8, 0.85, 0.85]

    _, groups = two_layer_groups()
    adam = Adam(groups, lr=1e-3, mom=0.9, sqr_mom=0.99)
    set_hyper(adam, "mom", 0.95)
    assert get_hyper(adam, "mom") == [0.95, 0.95]
    assert all(g["betas"] == (0.95, 0.99) for g in adam.param_groups)
    set_hyper(adam, "sqr_mom", np.array([0.9, 0.999]))
    assert [g["betas"] for g in adam.param_groups] == [(0.95, 0.9)] * 2 + [(0.95, 0.999)] * 2


def test_set_lr_per_layer_group_and_wd_respects_no_wd():
    _, groups = two_layer_groups()
    opt = AdamW(groups, lr=1e-3)
    set_hyper(opt, "lr", np.array([1e-4, 1e-3]))
    assert get_hyper(opt, "lr") == pytest.approx([1e-4, 1e-3])
    assert get_hyper(opt, "wd") == [0.1, 0.1]
    set_hyper(opt, "wd", 0.3)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.3, 0.0, 0.3, 0.0]
    assert get_hyper(opt, "wd") == [0.3, 0.3]


def test_groups_without_layer_group_key_count_by_index():
    a, b = nn.Parameter(torch.ones(1)), nn.Parameter(torch.ones(1))
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, wd=0.2)
    assert n_layer_groups(opt) == 2
    assert get_hyper(opt, "lr") == [0.1, 0.5]
    assert get_hyper(opt, "wd") == [0.2, 0.2]


def test_hyper_errors():
    _, groups = two_layer_groups()
    opt = SGD(groups, lr=0.1)
    with pytest.raises(ValueError, match="got 3 learning rates for 2 parameter groups"):
        set_hyper(opt, "lr", [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="unknown hyper-parameter 'momentum'"):
        set_hyper(opt, "momentum", 0.9)
    with pytest.raises(ValueError, match="SGD has no hyper-parameter 'sqr_mom'"):
        get_hyper(opt, "sqr_mom")
    with pytest.raises(ValueError, match="nesterov=True needs momentum"):
        SGD([nn.Parameter(torch.ones(1))], mom=0.0, nesterov=True)
    with pytest.raises(ValueError, match="no parameters"):
        Adam([])


def test_caller_groups_not_mutated_and_mixing_rejected():
    a, b = nn.Parameter(torch.ones(1)), nn.Parameter(torch.ones(1))
    groups = [{"params": [a]}]
    opt = SGD(groups, lr=0.1, wd=0.2)
    assert groups == [{"params": [a]}]
    assert opt.param_groups[0]["weight_decay"] == 0.2
    with pytest.raises(TypeError, match="mixes 1 group dicts with 1 tensors"):
        SGD([{"params": [a]}, b])
