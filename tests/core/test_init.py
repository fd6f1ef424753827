"""Initialisation (Kaiming, LSUV) and the course's layers: GeneralRelu, RunningBatchNorm."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from mentor.core.init import init_cnn, kaiming_init_, lsuv_init
from mentor.core.layers import GeneralRelu
from mentor.core.norm import RunningBatchNorm
from mentor.core.seed import set_seed


# ----- kaiming_init_ -----
def test_kaiming_init_draws_the_he_std_and_zeroes_biases() -> None:
    set_seed(0)
    model = nn.Sequential(nn.Conv2d(16, 64, 3), nn.ReLU(), nn.Flatten(), nn.Linear(400, 300))
    assert kaiming_init_(model, a=0.1) is model
    for layer, fan_in, fan_out in ((model[0], 16 * 9, 64 * 9), (model[3], 400, 300)):
        expected = math.sqrt(2 / (1 + 0.1**2)) / math.sqrt(fan_in)
        assert layer.weight.std().item() == pytest.approx(expected, rel=0.05)
        assert (layer.bias == 0).all()
        kaiming_init_(layer, mode="fan_out", uniform=True)
        assert layer.weight.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.05)
        bound = math.sqrt(3) * math.sqrt(2 / fan_out)  # a uniform draw stays inside its bound
        assert layer.weight.abs().max().item() <= bound + 1e-6


def test_kaiming_keeps_a_deep_relu_net_alive_where_the_default_init_fades() -> None:
    set_seed(1)
    x = torch.randn(256, 200)

    def deep() -> nn.Sequential:
        return nn.Sequential(*[m for _ in range(20) for m in (nn.Linear(200, 200), nn.ReLU())])

    with torch.no_grad():
        default_out = deep()(x)
        kaiming_out = init_cnn(deep())(x)
    # the second moment is what Kaiming keeps: E[relu(z)^2] = var(z) / 2 = 1 / 2 here
    assert 0.1 < kaiming_out.pow(2).mean().item() < 5
    assert kaiming_out.std(0).mean().item() > 0.1  # the outputs still depend on the inputs
    # PyTorch's a=sqrt(5) draw shrinks the signal at each layer: what is left is the biases
    assert default_out.std(0).mean().item() < 1e-4


def test_kaiming_init_errors_name_the_bad_value() -> None:
    model = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="mode='fan_middle'"):
        kaiming_init_(model, mode="fan_middle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nonlinearity='gelu'"):
        kaiming_init_(model, nonlinearity="gelu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="a=-0.1"):
        kaiming_init_(model, a=-0.1)
    with pytest.raises(ValueError, match="no convolution or linear layer in BatchNorm1d"):
        kaiming_init_(nn.BatchNorm1d(3))


# ----- GeneralRelu -----
@pytest.mark.parametrize(
    ("leak", "sub", "maxv"),
    [(None, None, None), (0.1, 0.4, 6.0), (0.2, None, 1.0), (None, 0.5, None)],
)
def test_general_relu_is_leaky_relu_then_subtract_then_clamp(
    leak: float | None, sub: float | None, maxv: float | None
) -> None:
    x = torch.linspace(-10, 10, 201)
    expected = torch.where(x > 0, x, x * (leak or 0.0)) - (sub or 0.0)
    if maxv is not None:
        expected = expected.clamp(max=maxv)
    torch.testing.assert_close(GeneralRelu(leak, sub, maxv)(x), expected)


def test_general_relu_keeps_sub_with_the_weights_and_refuses_bad_settings() -> None:
    relu = GeneralRelu(leak=0.1, sub=0.4, maxv=6.0)
    assert "sub" in relu.state_dict() and "sub=0.4" in repr(relu)
    other = GeneralRelu(leak=0.1, sub=0.0, maxv=6.0)
    other.load_state_dict({"sub": torch.tensor(0.9)})
    assert other(torch.tensor([0.0])).item() == pytest.approx(-0.9)
    assert "sub" not in GeneralRelu().state_dict()  # no shift: nothing to save
    with pytest.raises(ValueError, match="leak=-0.1"):
        GeneralRelu(leak=-0.1)
    with pytest.raises(ValueError, match="maxv=inf"):
        GeneralRelu(maxv=math.inf)


# ----- RunningBatchNorm -----
def test_running_batch_norm_first_batch_is_batch_norm_values_and_gradients() -> None:
    set_seed(2)
    x = (torch.randn(32, 6, 5, 5) * 3 + 2).requires_grad_()
    running, batch = RunningBatchNorm(6), nn.BatchNorm2d(6)
    out_running, out_batch = running(x), batch(x)
    torch.testing.assert_close(out_running, out_batch, atol=1e-5, rtol=1e-5)
    weights = torch.randn_like(out_batch)
    (grad_running,) = torch.autograd.grad((out_running * weights).sum(), x)
    (grad_batch,) = torch.autograd.grad((out_batch * weights).sum(), x)
    torch.testing.assert_close(grad_running, grad_batch, atol=1e-5, rtol=1e-4)
    assert not running.sums.requires_grad  # the buffers are kept detached


def test_running_batch_norm_matches_batch_norm_with_large_batches() -> None:
    set_seed(3)
    # momentum=None: batch norm's running statistics are plain averages; with a momentum
    # they would start biased towards 0 and 1, which running batch norm's counts divide out
    running, batch = RunningBatchNorm(4), nn.BatchNorm1d(4, momentum=None)
    scale, shift = torch.tensor([1.0, 2.0, 0.5, 3.0]), torch.tensor([0.0, -1.0, 4.0, 2.0])
    for _ in range(5):
        x = torch.randn(4096, 4) * scale + shift
        torch.testing.assert_close(running(x), batch(x), atol=0.03, rtol=0.03)
    running.eval()
    batch.eval()
    x = torch.randn(4096, 4) * scale + shift
    torch.testing.assert_close(running(x), batch(x), atol=0.05, rtol=0.05)


def test_running_batch_norm_works_with_batches_of_two() -> None:
    set_seed(4)
    running = RunningBatchNorm(3)
    scale, shift = torch.tensor([3.0, 0.5, 10.0]), torch.tensor([5.0, -2.0, 100.0])
    for _ in range(300):
        running(torch.randn(2, 3) * scale + shift)
    # a batch of two close values: batch norm spreads them to -1 and +1 whatever they are;
    # running batch norm places them against what it has seen
    pair = torch.stack([shift + 0.1 * scale, shift + 0.2 * scale])
    assert nn.BatchNorm1d(3)(pair).abs().min().item() > 0.99
    torch.testing.assert_close(running(pair), torch.tensor([[0.1], [0.2]]).expand(2, 3),
                               atol=0.25, rtol=0)  # fmt: skip
    running.eval()
    held_out = running(torch.randn(10_000, 3) * scale + shift)
    assert held_out.mean(0).abs().max().item() < 0.2
    assert (held_out.std(0) - 1).abs().max().item() < 0.2
    assert torch.isfinite(RunningBatchNorm(3).train()(torch.randn(1, 3))).all()  # even bs=1


def test_running_batch_norm_is_the_same_in_eval_apart_from_updating() -> None:
    set_seed(5)
    running = RunningBatchNorm(2)
    x = torch.randn(4, 2, 3, 3)
    assert torch.allclose(running.eval()(x), x, atol=1e-4)  # untrained: passes x through
    running.train()
    for _ in range(10):
        running(torch.randn(8, 2, 3, 3) * 2 + 1)
    state = {k: v.clone() for k, v in running.state_dict().items()}
    running.eval()
    out = running(x)
    assert all(torch.equal(state[k], v) for k, v in running.state_dict().items())  # no update
    copy = RunningBatchNorm(2)
    copy.load_state_dict(state)
    torch.testing.assert_close(copy.eval()(x), out)
    assert int(state["seen"]) == 80 and {"sums", "sqrs", "count"} <= set(state)
    with pytest.raises(ValueError, match=r"shape \(4, 3\).*num_features=x.shape\[1\]"):
        running(torch.randn(4, 3))


# ----- lsuv_init -----
def course_cnn(sub: float | None = 0.4) -> nn.Sequential:
    """Conv + GeneralRelu blocks (the course's ConvLayer), pooled into a linear classifier."""

    def block(ni: int, nf: int, stride: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(ni, nf, 3, stride, 1), GeneralRelu(0.1, sub, 6.0))

    return nn.Sequential(
        block(1, 8, 1), block(8, 16, 2), block(16, 32, 2), block(32, 32, 2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 2),
    )  # fmt: skip


def output_stats(model: nn.Module, modules: list[nn.Module], xb: torch.Tensor) -> list[tuple]:
    """(mean, std) of each module's output on xb, measured independently of lsuv_init."""
    found: dict[int, tuple[float, float]] = {}

    def keep(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        found.setdefault(id(module), (out.mean().item(), out.std().item()))

    handles = [m.register_forward_hook(keep) for m in modules]
    with torch.no_grad():
        model(xb)
    for handle in handles:
        handle.remove()
    return [found[id(m)] for m in modules]


def test_lsuv_gives_each_layer_unit_std_on_real_digits(mnist_sample: tuple) -> None:
    x_train = mnist_sample[0]
    xb = (x_train[:64] - x_train.mean()) / x_train.std()
    set_seed(6)
    model = course_cnn()
    before = output_stats(model, [b[1] for b in model[:4]], xb)
    assert before[-1][1] < 0.2  # the default init: the signal fades layer by layer
    output_weight = model[6].weight.clone()
    results = lsuv_init(model, xb)
    assert [r.name for r in results] == ["0.0", "1.0", "2.0", "3.0"]  # not the output layer
    assert [r.measured for r in results] == ["0.1", "1.1", "2.1", "3.1"]  # after GeneralRelu
    for mean, std in output_stats(model, [b[1] for b in model[:4]], xb):
        assert abs(std - 1) <= 0.05 and abs(mean) <= 0.05
    assert all(r.converged and abs(r.std - 1) <= 1e-3 for r in results)
    assert torch.equal(model[6].weight, output_weight)
    assert all(float(b[1].sub) != pytest.approx(0.4) for b in model[:4])  # sub played the bias


def test_lsuv_measures_the_layer_itself_without_a_shiftable_activation() -> None:
    set_seed(7)
    xb = torch.randn(128, 20) * 4 + 3
    shared = GeneralRelu(0.1, 0.4)  # one activation after both layers: not either's own
    model = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 30), nn.Linear(30, 2))
    plain = lsuv_init(model, xb, layers=[model[0], model[2], model[3]])
    assert [r.measured for r in plain] == ["0", "2", "3"]  # named output layer: included
    for mean, std in output_stats(model, [model[0], model[2], model[3]], xb):
        assert abs(std - 1) <= 0.05 and abs(mean) <= 0.05

    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.one, self.two, self.act = nn.Linear(20, 30), nn.Linear(30, 30), shared

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.act(self.two(self.act(self.one(x))))

    shared_model = Shared()
    results = lsuv_init(shared_model, xb, layers=[shared_model.one, shared_model.two])
    assert [r.measured for r in results] == ["one", "two"]
    assert float(shared.sub) == pytest.approx(0.4)  # left alone


def test_lsuv_puts_modes_and_running_statistics_back() -> None:
    set_seed(8)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), RunningBatchNorm(8), nn.ReLU(), nn.Conv2d(8, 8, 3),
        nn.BatchNorm2d(8), nn.Dropout(0.5), nn.Flatten(), nn.Linear(8 * 4 * 4, 2),
    )  # fmt: skip
    model.eval()
    buffers = {k: v.clone() for k, v in model.state_dict().items() if "running" in k or "sum" in k}
    results = lsuv_init(model, torch.randn(16, 3, 8, 8))
    assert len(results) == 2 and all(r.converged for r in results)  # with dropout off: exact
    assert not any(m.training for m in model.modules())
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in buffers.items())


def test_lsuv_errors_say_what_to_pass() -> None:
    model = course_cnn()
    with pytest.raises(ValueError, match=r"\(8, 3, 28, 28\).*pass a batch the model takes"):
        lsuv_init(model, torch.randn(8, 3, 28, 28))
    with pytest.raises(ValueError, match=r"at least 2 items, got shape \(1, 1, 28, 28\)"):
        lsuv_init(model, torch.randn(1, 1, 28, 28))
    with pytest.raises(TypeError, match="tensor"):
        lsuv_init(model, [[1.0, 2.0]])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"\['Linear'\] are not among them"):
        lsuv_init(model, torch.randn(4, 1, 28, 28), layers=[nn.Linear(2, 2)])
    with pytest.raises(ValueError, match="no convolution or linear layer before the output"):
        lsuv_init(nn.Linear(3, 2), torch.randn(4, 3))
    with pytest.raises(ValueError, match="std 0"):  # all-equal inputs: nothing to scale
        lsuv_init(nn.Sequential(nn.Linear(3, 4, bias=False), nn.Linear(4, 2)), torch.zeros(4, 3))


def test_lsuv_warns_when_it_runs_out_of_rounds() -> None:
    set_seed(9)
    model = course_cnn()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = lsuv_init(model, torch.randn(8, 1, 12, 12), tol=1e-9, max_iter=1)
    assert not results[0].converged and results[0].iterations == 1
    assert any("raise max_iter or tol" in str(w.message) for w in caught)
