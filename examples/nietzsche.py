"""A character-level LSTM on Nietzsche (the course's from-scratch RNN lessons).

`simple_lstm` reads the book one character at a time and learns to predict the next; the
validation loss is in nats per character. Then it writes some Nietzsche of its own.
`python -m examples.nietzsche` (about 90 s on 2 cores: 6 epochs, validation loss 1.50).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from mentor import set_seed
from mentor.data.external import untar_data
from mentor.text import CharTokenizer, TextDataLoaders, language_model_learner, simple_lstm
from mentor.text.learner import LMLearner

TARGET = 1.6  # nats per character; measured 1.50 after 6 epochs


def train(
    epochs: int = 6, n_hid: int = 256, bs: int = 64, seq_len: int = 100, lr: float = 1e-2
) -> LMLearner:
    """`simple_lstm` trained with one-cycle on the first 90% of the book."""
    set_seed(42)
    path = untar_data("nietzsche") / "nietzsche.txt"
    dls = TextDataLoaders.from_text_file(path, tok=CharTokenizer(), min_freq=1, bs=bs,
                                         seq_len=seq_len)  # fmt: skip

    def model(vocab_sz: int) -> torch.nn.Module:
        return simple_lstm(vocab_sz, n_hid=n_hid, n_layers=2)

    learn = language_model_learner(dls, model, metrics=[])
    learn.fit_one_cycle(epochs, lr)
    return learn


def main(argv: list[str] | None = None) -> int:
    """Train, sample text, report the validation loss; return 0 when it is under 1.6."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--n-hid", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default all)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    learn = train(args.epochs, args.n_hid)
    loss = learn.recorder.values[-1]["valid_loss"]
    seconds = time.perf_counter() - start
    print(learn.predict("PREFACE\n\n\nSUPPOSING that", n_words=300, temperature=0.5))
    print(f"validation loss {loss:.3f} nats per character (target < {TARGET}); {seconds:.0f} s")
    return 0 if loss < TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
