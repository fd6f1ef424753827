"""xresnet18 from scratch on 10,000 mnist_sample digits for 10 epochs: plain, with MixUp, with
CutMix and with an EMA of the weights; prints the validation accuracy and time of each.

The recipe is `examples/mnist_xresnet.py`'s (one-cycle at 1e-2, bs 128, the full 2,038-image
validation set) with the regulariser added as a callback: regularisers pay on long runs and
hard data, and mnist_sample is neither, so read the table as "each trains as well as the
plain run", not as a ranking. The README's table comes from the full run.

Run: `python -m examples.regularisers` (about 30 minutes on 2 cores), or e.g.
`--epochs 1 --n-train 2000 --configs mixup+ema` for a short one.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

from examples.mnist_xresnet import mnist_dls
from mentor.callbacks.averaging import EMA
from mentor.callbacks.mixup import CutMix, MixUp
from mentor.core.seed import set_seed
from mentor.train import Callback, Learner, accuracy
from mentor.vision.learner import vision_learner

CONFIGS: dict[str, Callable[[], list[Callback]]] = {
    "plain": lambda: [],
    "mixup": lambda: [MixUp(0.4)],
    "cutmix": lambda: [CutMix(1.0)],
    "ema": lambda: [EMA(0.999)],
    "mixup+ema": lambda: [MixUp(0.4), EMA(0.999)],
}


def train(
    config: str, epochs: int = 10, n_train: int = 10_000, lr: float = 1e-2, seed: int = 0
) -> Learner:
    """Train xresnet18 with the callbacks of `config` (a key of CONFIGS); return it."""
    if config not in CONFIGS:
        raise ValueError(f"unknown config {config!r}; pick from {sorted(CONFIGS)}")
    set_seed(seed)
    dls = mnist_dls(128, n_train, seed)
    learn = vision_learner(dls, "xresnet18", pretrained=False, metrics=[accuracy])
    learn.progress.show = False
    learn.fit_one_cycle(epochs, lr, cbs=CONFIGS[config]())
    return learn


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Train every config asked for; print and return their validation accuracies."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--configs", default="plain,mixup,cutmix,ema", help="comma-separated")
    args = parser.parse_args(argv)
    results = {}
    print(f"xresnet18, {args.n_train} mnist_sample digits, {args.epochs} epochs of one-cycle")
    print(f"{'config':<10} {'accuracy':>9} {'seconds':>8}")
    for config in args.configs.split(","):
        start = time.perf_counter()
        learn = train(config, args.epochs, args.n_train)
        results[config] = learn.recorder.values[-1]["accuracy"]
        print(f"{config:<10} {results[config]:>9.4f} {time.perf_counter() - start:>8.0f}")
    return results


if __name__ == "__main__":
    main()
