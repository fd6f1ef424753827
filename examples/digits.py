"""The demo: an MLP on scikit-learn's handwritten digits (1,797 real 8x8 images, 10 classes).

Finds a learning rate, trains with one-cycle, prints the epoch table, and writes the loss and
learning-rate plots. Run with `make demo` or `python -m examples.digits --out demo_out`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from torch import nn

from mentor import CrossEntropyLossFlat, DataLoaders, Learner, accuracy, set_seed


def digits_dls(valid_pct: float = 0.2, bs: int = 64, seed: int = 42) -> DataLoaders:
    """The digits as in-memory loaders: pixels scaled to [0, 1], a random validation split."""
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_valid = int(valid_pct * len(x))
    valid, train = order[:n_valid], order[n_valid:]
    return DataLoaders.from_tensors((x[train], y[train]), (x[valid], y[valid]), bs=bs)


def mlp(n_in: int = 64, hidden: int = 128, n_out: int = 10) -> nn.Module:
    """A two-layer perceptron with batch norm and dropout."""
    return nn.Sequential(
        nn.Linear(n_in, hidden), nn.ReLU(), nn.BatchNorm1d(hidden), nn.Dropout(0.2),
        nn.Linear(hidden, n_out),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return 0 when validation accuracy reaches the 95% target."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="demo_out", help="folder for the plots")
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    set_seed(42)
    learn = Learner(digits_dls(), mlp(), loss_func=CrossEntropyLossFlat(), metrics=[accuracy])
    suggested = learn.lr_find(show_plot=False)
    print(f"lr_find suggests: {', '.join(f'{k} {v:.2e}' for k, v in suggested.as_dict().items())}")
    learn.recorder.plot_lr_find(suggested.as_dict()).savefig(out / "lr.png")

    lr = suggested.valley if suggested.valley is not None else 1e-3
    print(f"training {args.epochs} epochs with fit_one_cycle, lr_max={lr:.2e}")
    learn.fit_one_cycle(args.epochs, lr)
    learn.recorder.plot_loss().savefig(out / "loss.png")

    acc = learn.recorder.values[-1]["accuracy"]
    print(f"validation accuracy: {acc:.4f} (target >= 0.95); plots in {out}/loss.png, lr.png")
    return 0 if acc >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
