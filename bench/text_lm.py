"""AWD-LSTM language-model training: `language_model_learner(...).fit` against a hand-written
PyTorch loop, each side in a fresh process.

Both sides train the same model (`get_language_model` with the 'small' sizes, the same
initial weights) for one epoch on wikitext-2-partial (`valid.txt`, bs 32, seq_len 72, the
same batches from mentor's loader), at a constant learning rate, with what
`language_model_learner` does by default written out by hand: AdamW (betas 0.9 / 0.99, eps
1e-5, weight decay 0.01 except on biases), AR (alpha 2) and TAR (beta 1) added to the loss,
gradient-norm clipping at 0.25, the hidden state reset before training and before the
validation pass on `test.txt`.

Each run is its own process because what this measures is partly process-wide: `Learner`
asks glibc to keep freed batch-sized memory (`mentor.core.device.keep_batch_memory`), and the
logits of one batch alone (32 x 72 tokens x the vocabulary) are tens of megabytes that a
plain process maps afresh and faults in page by page at every batch. A third side,
'baseline+kept', is the hand-written loop after the same call: it separates that effect from
the loop's own overhead. Sides alternate after one warm-up run each; ratios are medians of
the timed runs against the plain baseline.

Run: `python -m bench.text_lm` (about 4 minutes on 2 CPU cores); `--runs N` per side,
`--quick` for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.common import machine
from examples.wikitext_lm import wikitext_dls
from mentor import set_seed
from mentor.core.device import keep_batch_memory
from mentor.optim import param_groups
from mentor.text import AWD_LSTM, TextDataLoaders, language_model_learner
from mentor.text.models import AWD_LSTM_SIZES, get_language_model

SIDES = ("baseline", "mentor", "baseline+kept")
LR, WD, BETAS, EPS = 2e-3, 0.01, (0.9, 0.99), 1e-5
ALPHA, BETA, CLIP = 2.0, 1.0, 0.25
QUICK_LINES = 300  # texts per file of a --quick run
REPO = Path(__file__).resolve().parents[1]  # where `-m bench.text_lm` is found


@dataclass
class SideRun:
    """One run of one side: its training-and-validation seconds and final validation loss."""

    side: str
    seconds: float
    valid_loss: float


def baseline_fit(dls: TextDataLoaders) -> float:
    """The loop a person writes by hand; returns the validation loss after one epoch."""
    model = get_language_model(len(dls.text_vocab), AWD_LSTM_SIZES["small"])
    opt = torch.optim.AdamW(param_groups(model, wd=WD), lr=LR, betas=BETAS, eps=EPS)
    encoder, decoder = model[0], model[1]
    caught: dict[str, Tensor] = {}
    encoder.register_forward_hook(lambda m, i, out: caught.update(raw=out))
    decoder.output_dp.register_forward_hook(lambda m, i, out: caught.update(dropped=out))
    model.train()
    model.reset()
    for x, y in dls.train:
        logits = model(x)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        raw = caught["raw"]
        loss = loss + ALPHA * caught["dropped"].pow(2).mean()
        loss = loss + BETA * (raw[:, 1:] - raw[:, :-1]).pow(2).mean()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP, foreach=True)
        opt.step()
        opt.zero_grad(set_to_none=True)
    model.eval()
    model.reset()
    total, count = torch.zeros(()), 0
    with torch.no_grad():
        for x, y in dls.valid:
            total += F.cross_entropy(model(x).flatten(0, 1), y.flatten()) * y.numel()
            count += y.numel()
    return float(total / count)


def mentor_fit(dls: TextDataLoaders) -> float:
    """The same epoch through `language_model_learner`; returns its validation loss."""
    learn = language_model_learner(dls, AWD_LSTM, lr=LR, wd=WD, clip=CLIP, alpha=ALPHA,
                                   beta=BETA, metrics=[])  # fmt: skip
    learn.progress.show = False
    learn.fit(1, LR)
    return float(learn.recorder.values[-1]["valid_loss"])


def run_side(side: str, n_lines: int | None = None) -> SideRun:
    """One timed run of `side` in this process (data built first, untimed), on the first
    `n_lines` texts of each file when given."""
    set_seed(0)
    dls = wikitext_dls(n_lines=n_lines)
    if side == "baseline+kept":
        keep_batch_memory()
    start = time.perf_counter()
    valid_loss = mentor_fit(dls) if side == "mentor" else baseline_fit(dls)
    return SideRun(side, time.perf_counter() - start, valid_loss)


def spawn(side: str, n_lines: int | None) -> SideRun:
    """Run `side` in a fresh Python process and read back what it measured."""
    command = [sys.executable, "-m", "bench.text_lm", "--side", side]
    command += [] if n_lines is None else ["--lines", str(n_lines)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return SideRun(**json.loads(done.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> dict[str, list[SideRun]]:
    """Alternate the sides in fresh processes, print medians and ratios; returns the runs."""
    parser = argparse.ArgumentParser(description="AWD-LSTM LM: Learner vs a hand-written loop.")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per side (3)")
    parser.add_argument("--quick", action="store_true", help="1 run per side, 300 texts")
    parser.add_argument("--lines", type=int, default=None, help="texts per file (all)")
    parser.add_argument("--side", choices=SIDES, help="run one side here (internal)")
    args = parser.parse_args(argv)
    if args.side:
        print(json.dumps(run_side(args.side, args.lines).__dict__))
        return {}
    n_lines, n_runs, warmup = (QUICK_LINES, 1, 0) if args.quick else (args.lines, args.runs, 1)
    print(f"machine: {machine()}")
    runs: dict[str, list[SideRun]] = {side: [] for side in SIDES}
    for index in range(warmup + n_runs):
        order = SIDES if index % 2 == 0 else SIDES[::-1]
        for side in order:
            run = spawn(side, n_lines)
            if index >= warmup:  # the warm-up round fills the disk cache
                runs[side].append(run)
    medians = {side: statistics.median(r.seconds for r in runs[side]) for side in SIDES}
    for side in SIDES:
        seconds = [r.seconds for r in runs[side]]
        print(f"{side:<14} median {medians[side]:.1f} s (runs {min(seconds):.1f}-"
              f"{max(seconds):.1f} s), valid loss {runs[side][-1].valid_loss:.4f}")  # fmt: skip
    base = medians["baseline"]
    print(f"mentor / baseline: {medians['mentor'] / base:.3f} "
          f"({base / medians['mentor']:.2f}x the hand-written loop's speed)")  # fmt: skip
    print(f"mentor / baseline+kept: {medians['mentor'] / medians['baseline+kept']:.3f} "
          "(the loop's own overhead, same memory setting)")  # fmt: skip
    return runs


if __name__ == "__main__":
    main()
