"""An AWD-LSTM language model from scratch on wikitext-2-partial (lesson 4).

Trains on `valid.txt` (about 214k tokens), validates on `test.txt`, one epoch of
`fit_one_cycle(1, 2e-2)` with bs 32 and seq_len 72, then generates text from a prompt.
`python -m examples.wikitext_lm` (under a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from mentor import set_seed
from mentor.data.external import untar_data
from mentor.text import AWD_LSTM, LMLearner, TextDataLoaders, language_model_learner

TARGET = 200.0  # measured 163 for one epoch of the small model (the first issue's bar: 1,000)


def wikitext_dls(bs: int = 32, seq_len: int = 72, n_lines: int | None = None) -> TextDataLoaders:
    """Language-model data: each non-empty line of the files is a text (the first `n_lines`
    of each file when given, for quick runs)."""
    root = untar_data("wikitext-2-partial")
    train, valid = ([line for line in (root / name).read_text(encoding="utf-8").splitlines()
                     if line.strip()][:n_lines] for name in ("valid.txt", "test.txt"))  # fmt: skip
    return TextDataLoaders.from_texts(train, valid, is_lm=True, bs=bs, seq_len=seq_len)


def train(size: str = "small", epochs: int = 1) -> tuple[LMLearner, float, float]:
    """The trained learner, the seconds it took and the tokens per second it read."""
    set_seed(42)
    dls = wikitext_dls()
    learn = language_model_learner(dls, AWD_LSTM, size=size)
    start = time.perf_counter()
    learn.fit_one_cycle(epochs, 2e-2)
    seconds = time.perf_counter() - start
    return learn, seconds, epochs * dls.train_ds.n_tokens / seconds


def main(argv: list[str] | None = None) -> int:
    """Train, generate from a prompt, report perplexity and speed; return 0 when the
    perplexity is under 200."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="small", help="AWD_LSTM_SIZES preset")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default all)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    learn, seconds, tokens_per_s = train(args.size, args.epochs)
    perplexity = learn.recorder.values[-1]["perplexity"]
    n_params = sum(p.numel() for p in learn.model.parameters())
    print(f"vocabulary {len(learn.dls.vocab)}, {n_params:,} parameters")
    print(learn.predict("The history of the", n_words=30, temperature=0.75))
    print(f"validation perplexity {perplexity:.1f} (target < {TARGET}); {seconds:.0f} s, "
          f"{tokens_per_s:,.0f} tokens/s")  # fmt: skip
    return 0 if perplexity < TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
