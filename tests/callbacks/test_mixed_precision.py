"""Mixed precision: bfloat16 autocast on the CPU, float16 with a gradient scaler on CUDA."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mentor.callbacks.mixed_precision import MixedPrecision
from mentor.core.seed import set_seed
from mentor.data.loaders import DataLoaders
from mentor.train import Callback, Learner, accuracy


class Probe(Callback):
    """Records the prediction dtype of every batch and whether loss scaling is on."""

    order = 90

    def __init__(self) -> None:
        super().__init__()
        self.dtypes: list[tuple[bool, torch.dtype]] = []
        self.scaler_enabled: list[bool] = []

    def after_pred(self) -> None:
        self.dtypes.append((self.learn.training, self.learn.pred.dtype))

    def before_step(self) -> None:
        self.scaler_enabled.append(self.learn.scaler.is_enabled())


def make_learner(device: str = "cpu", n: int = 256) -> Learner:
    set_seed(0)
    x = torch.randn(n + 64, 10)
    y = (x[:, :5].sum(1) > 0).long()
    dls = DataLoaders.from_tensors((x[:n], y[:n]), (x[n:], y[n:]), bs=32, device=device)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 2))
    learn = Learner(dls, model, metrics=[accuracy])
    learn.progress.show = False
    return learn


def test_to_bf16_runs_the_forward_in_bfloat16() -> None:
    learn, probe = make_learner(), Probe()
    assert learn.to_bf16() is learn
    learn.fit(1, 1e-2, cbs=[probe])
    assert {training for training, _ in probe.dtypes} == {True, False}
    assert all(dtype == torch.bfloat16 for _, dtype in probe.dtypes)
    assert all(p.dtype == torch.float32 for p in learn.model.parameters())  # master weights
    assert probe.scaler_enabled and not any(probe.scaler_enabled)  # bf16 needs no scaling
    assert sum(isinstance(cb, MixedPrecision) for cb in learn.cbs) == 1
    learn.to_bf16()  # switching again replaces the callback, never stacks it
    assert sum(isinstance(cb, MixedPrecision) for cb in learn.cbs) == 1


def test_to_fp32_turns_mixed_precision_off() -> None:
    learn, probe = make_learner(), Probe()
    learn.to_bf16().to_fp32()
    assert not any(isinstance(cb, MixedPrecision) for cb in learn.cbs)
    learn.fit(1, 1e-2, cbs=[probe])
    assert probe.dtypes and all(dtype == torch.float32 for _, dtype in probe.dtypes)


def test_autocast_is_off_outside_of_fits() -> None:
    learn = make_learner().to_bf16()
    learn.fit(1, 1e-2)
    with learn.autocast:
        out = learn.model(torch.randn(2, 10))
    assert out.dtype == torch.float32


def test_fp16_on_cpu_says_to_use_bf16() -> None:
    learn = make_learner()
    with pytest.raises(ValueError, match=r"CUDA.*'cpu'.*to_bf16"):
        learn.to_fp16()
        learn.fit(1)


def test_mixed_precision_rejects_other_dtypes() -> None:
    with pytest.raises(ValueError, match="torch.float32"):
        MixedPrecision(torch.float32)


@pytest.mark.slow
def test_bf16_accuracy_on_mnist_matches_fp32(mnist_sample: tuple[torch.Tensor, ...]) -> None:
    from bench.common import small_cnn

    x_train, y_train, x_valid, y_valid = mnist_sample
    results = {}
    for precision in ("fp32", "bf16"):
        set_seed(0)
        dls = DataLoaders.from_tensors((x_train, y_train), (x_valid, y_valid), bs=128, device="cpu")
        learn = Learner(dls, small_cnn(), metrics=[accuracy])
        learn.progress.show = False
        if precision == "bf16":
            learn.to_bf16()
        learn.fit_one_cycle(1, 1e-2)
        results[precision] = learn.recorder.values[-1]["accuracy"]
    print(f"mnist 1 epoch accuracy: {results}")
    assert results["fp32"] > 0.95  # the comparison means something: both actually learned
    assert abs(results["bf16"] - results["fp32"]) <= 0.01


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fp16_with_gradient_scaler_on_cuda() -> None:
    learn, probe = make_learner(device="cuda", n=1024), Probe()
    learn.to_fp16()
    learn.fit_one_cycle(4, 1e-2, cbs=[probe])
    assert probe.dtypes and all(dtype == torch.float16 for _, dtype in probe.dtypes)
    assert probe.scaler_enabled and all(probe.scaler_enabled)
    mixed = next(cb for cb in learn.cbs if isinstance(cb, MixedPrecision))
    assert mixed.scaler is not None and mixed.scaler.get_scale() > 0
    losses = [row["train_loss"] for row in learn.recorder.values]
    assert losses[-1] < 0.7 * losses[0]
    assert learn.recorder.values[-1]["accuracy"] > 0.8


def test_precisions_a_device_cannot_train_in_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from mentor.callbacks.mixed_precision import check_precision

    with pytest.raises(ValueError, match=r"needs a CUDA device.*'mps'.*to_bf16"):
        check_precision(torch.device("mps"), torch.float16)
    check_precision(torch.device("cpu"), torch.bfloat16)  # bfloat16 autocast works on CPUs
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: "Tesla T4")
    with pytest.raises(ValueError, match=r"'Tesla T4' does not: use learn.to_fp16"):
        check_precision(torch.device("cuda"), torch.bfloat16)
