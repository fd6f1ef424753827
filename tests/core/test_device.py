"""Device helpers: keeping freed batch-sized memory for reuse (each case in a fresh process,
since the setting is process-wide and cannot be undone)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Allocates, fills and frees a 74 MB tensor (a language model's logits for 32 x 72 tokens x
# 8,000 words) twelve times; prints the fewest minor page faults one of those rounds took.
REALLOCATE = """
import resource, torch
{setup}
def once():
    torch.empty(2304, 8000).fill_(1.0)
def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    once()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
# the fewest, not the last: small allocations in between may split a freed block until
# the heap settles, as they do over a fit's first batches
print(min(faults() for _ in range(12)))
"""
LEARNER = """
from torch import nn
from mentor.train import Learner
Learner(([], None), nn.Linear(2, 2), loss_func=nn.MSELoss())
"""


def page_faults(setup: str, **env: str) -> int:
    """The fewest page faults of a 74 MB allocate-fill-free after `setup`, in a new process."""
    code = REALLOCATE.format(setup=setup)
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    return int(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(sys.platform != "linux", reason="a glibc setting")
def test_a_cpu_learner_keeps_freed_memory_for_the_next_batch() -> None:
    pages = 74_000_000 // 4096  # ~18,000 pages of 4 KiB
    plain = page_faults("")
    kept = page_faults(LEARNER)
    opted_out = page_faults(LEARNER, MENTOR_KEEP_BATCH_MEMORY="0")
    # glibc maps a fresh block for every such tensor, so each one faults in page by page
    assert plain > pages // 2, plain
    assert kept < pages // 20, kept
    assert opted_out > pages // 2, opted_out


def test_default_device_picks_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from mentor.core.device import default_device

    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert default_device() == torch.device("mps")
    assert default_device(use_cuda=False) == torch.device("cpu")
    with pytest.raises(RuntimeError, match="use_cuda=True"):
        default_device(use_cuda=True)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert default_device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_device() == torch.device("cuda")
