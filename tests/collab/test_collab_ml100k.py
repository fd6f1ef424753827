"""ml-100k end to end: the course's dot-product setup reaches the target validation MSE."""

from __future__ import annotations

import pytest
import torch

from examples.collab import train


@pytest.mark.slow
def test_ml100k_dot_bias_validation_mse() -> None:
    # measured 0.809 (seed 42), 0.810 (seed 1), 0.797 (seed 2), ~0.7 s per epoch on one thread;
    # fastai 2.8 gets 0.839 with this setup. 0.83 is issue 5's acceptance target.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        learn = train(epochs=5, lr=5e-3, wd=0.1, n_factors=40, seed=42, show=False)
    finally:
        torch.set_num_threads(threads)
    assert learn.recorder.values[-1]["valid_loss"] <= 0.83


@pytest.mark.slow
def test_ml100k_embedding_nn_trains() -> None:
    # measured 0.8705 (seed 42); fastai's EmbeddingNN lands near 0.87 too
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        learn = train(epochs=5, lr=5e-3, wd=0.1, use_nn=True, seed=42, show=False)
    finally:
        torch.set_num_threads(threads)
    assert learn.recorder.values[-1]["valid_loss"] <= 0.9
