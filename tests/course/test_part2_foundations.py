"""Part 2, foundations, as a student runs it: a plain 10-layer CNN with GeneralRelu on
mnist_sample, from PyTorch's default initialisation, Kaiming and LSUV
(`examples/course/part2_foundations.py`, quick)."""

from __future__ import annotations

from pathlib import Path

import torch

from examples.course import part2_foundations as part2
from mentor.core.init import lsuv_init
from mentor.core.norm import RunningBatchNorm

torch.set_num_threads(1)  # two threads on 2 shared cores contend and run several times slower


def test_lsuv_trains_the_deep_plain_cnn_where_the_default_init_does_not(
    mnist_sample: tuple, tmp_path: Path
) -> None:
    found = part2.run(quick=True, out=tmp_path)
    assert found["lsuv_std_err"] <= part2.LSUV_TOL  # every LSUV'd activation: std 1 +- 0.05
    assert found["lsuv_mean_err"] <= 0.05
    # measured 0.96 (LSUV) and 0.97 (Kaiming) on 1,024 images; the default init stays at
    # chance (0.50): ten layers that each shrink the signal leave nothing to learn from
    assert found["lsuv_mean"] >= part2.QUICK_FLOOR and found["kaiming_mean"] >= part2.QUICK_FLOOR
    assert found["lsuv_mean"] > found["default_mean"] + 0.2
    assert part2.shortfalls(found, quick=True) == []
    for init in part2.INITS:
        assert (tmp_path / f"{init}_color_dim.png").stat().st_size > 0
        assert (tmp_path / f"{init}_layer_stats.png").stat().st_size > 0


def test_plain_cnn_has_ten_convolutions_and_takes_running_batch_norm() -> None:
    model = part2.plain_cnn(norm=True)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 10 and all(conv.bias is None for conv in convs)
    assert sum(isinstance(m, RunningBatchNorm) for m in model.modules()) == 10
    xb = torch.randn(8, 1, 28, 28)
    assert model(xb).shape == (8, 2)
    results = lsuv_init(model, xb)  # before a norm layer, the convolution's output is measured
    assert [r.measured for r in results] == [f"{i}.0" for i in range(10)]
    assert all(abs(r.std - 1) <= 0.05 for r in results)
