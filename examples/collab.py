"""Collaborative filtering on MovieLens 100k (`ml-100k`), the course's lesson 7 setup.

`collab_learner(dls, n_factors=40, y_range=(0, 5.5))` trained with
`fit_one_cycle(5, 5e-3, wd=0.1)` on a random 20% validation split (seed 42). The target is a
validation MSE of at most 0.83 (fastai 2.8 gets 0.839 with this setup, the course 0.81).
`--use-nn` trains the `EmbeddingNN` model instead. Run with `python -m examples.collab`.
"""

from __future__ import annotations

import argparse
import sys
import time

import pandas as pd
import torch

from mentor.collab import CollabDataLoaders, collab_learner, item_factor_pca
from mentor.core.paths import data_path
from mentor.core.seed import set_seed
from mentor.train import Learner

TARGET = 0.83


def load_ratings() -> pd.DataFrame:
    """`ml-100k/u.data` (tab-separated user, movie, rating, timestamp) as a DataFrame."""
    return pd.read_csv(
        data_path("ml-100k") / "u.data",
        sep="\t",
        header=None,
        names=["user", "movie", "rating", "timestamp"],
    )


def train(
    epochs: int = 5,
    lr: float = 5e-3,
    wd: float = 0.1,
    n_factors: int = 40,
    use_nn: bool = False,
    bs: int = 64,
    seed: int = 42,
    show: bool = True,
) -> Learner:
    """Build the loaders and the learner and train with `fit_one_cycle`; return the learner."""
    set_seed(seed)
    ratings = load_ratings()
    dls = CollabDataLoaders.from_df(ratings, valid_pct=0.2, seed=seed, bs=bs, device="cpu")
    learn = collab_learner(dls, n_factors=n_factors, use_nn=use_nn, y_range=(0, 5.5))
    learn.progress.show = show
    learn.fit_one_cycle(epochs, lr, wd=wd)
    return learn


def top_movies_on_first_component(learn: Learner, n_movies: int = 5) -> tuple[list, list]:
    """Titles at both ends of the first principal component of the 1000 most-rated movies."""
    titles = pd.read_csv(
        data_path("ml-100k") / "u.item",
        sep="|",
        header=None,
        encoding="latin-1",
        usecols=[0, 1],
        names=["movie", "title"],
    ).set_index("movie")["title"]
    counts = load_ratings()["movie"].value_counts()
    pca = item_factor_pca(learn, 3, items=counts.index[:1000].tolist())
    first = pca.ranked[0]
    return [titles[m] for m in first[:n_movies]], [titles[m] for m in first[-n_movies:]]


def main(argv: list[str] | None = None) -> int:
    """Run the example; return 0 when validation MSE reaches the 0.83 target."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=5e-3, help="the one-cycle peak lr")
    parser.add_argument("--wd", type=float, default=0.1, help="weight decay")
    parser.add_argument("--n-factors", type=int, default=40)
    parser.add_argument("--bs", type=int, default=64, help="batch size")
    parser.add_argument("--use-nn", action="store_true", help="train EmbeddingNN instead")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    learn = train(args.epochs, args.lr, args.wd, args.n_factors, args.use_nn, args.bs)
    wall = time.perf_counter() - start
    valid_mse = learn.recorder.values[-1]["valid_loss"]
    if not args.use_nn:
        high, low = top_movies_on_first_component(learn)
        print(f"first principal component, high end: {high}\n  low end: {low}")
    model = "EmbeddingNN" if args.use_nn else "EmbeddingDotBias"
    print(
        f"{model} on ml-100k: validation MSE {valid_mse:.4f} after {args.epochs} epoch(s) "
        f"(target <= {TARGET}); {wall / args.epochs:.1f} s per epoch"
    )
    return 0 if valid_mse <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
