"""The speedrun's tasks and their recipes (see `bench.speedrun`)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable

import pandas as pd

from bench.speedrun_clock import Recipe, StopAtTarget, Target, Task
from mentor.core.paths import data_path
from mentor.core.seed import set_seed
from mentor.data.external import untar_data
from mentor.data.splitters import RandomSplitter
from mentor.train import Learner, accuracy

Stopper = Callable[[Learner], StopAtTarget]


def auto(*argv: str | Callable[[], str]) -> Recipe:
    """`mentor train APP DATA` with nothing but the data: the learner its builders make
    (batch size, model and image size from the data), the rate `--lr auto` takes, and its
    fits (`--epochs` default), without the export and report that follow the training. The
    run's seed is `--seed` (for adult and ml-100k it also draws the 20% validation split).
    An argument may be a function giving it (a data set's path, found when the run starts)."""
    from mentor.cli.parser import build_parser
    from mentor.cli.train import auto_lr, fit_stages, make_learner
    from mentor.train.fits import run_stage

    def recipe(seed: int, stopper: Stopper) -> Learner:
        words = [arg if isinstance(arg, str) else arg() for arg in argv]
        args = build_parser().parse_args(["train", *words, "--seed", str(seed), "--quiet"])
        with contextlib.redirect_stdout(io.StringIO()):  # what it chose, lr_find's suggestions
            learn = make_learner(args)
            lr = auto_lr(args, learn)
        stop = stopper(learn)
        for stage in fit_stages(args, learn, lr, args.epochs):
            run_stage(learn, stage, cbs=[stop])
        return learn

    return recipe


ADULT_CATS = ["workclass", "education", "marital-status", "occupation", "relationship", "race"]
ADULT_CONTS = ["age", "fnlwgt", "education-num"]


def adult(bs: int, epochs: int, lr: float) -> Recipe:
    """adult_sample, the course's columns and procs, 20% random validation (seed 42):
    `tabular_learner` trained with one-cycle at `lr`."""
    from mentor.tabular import (
        Categorify,
        FillMissing,
        Normalize,
        TabularDataLoaders,
        tabular_learner,
    )

    def recipe(seed: int, stopper: Stopper) -> Learner:
        set_seed(seed)
        df = pd.read_csv(data_path("adult_sample") / "adult.csv")
        dls = TabularDataLoaders.from_df(
            df, procs=[Categorify, FillMissing, Normalize], cat_names=ADULT_CATS,
            cont_names=ADULT_CONTS, y_names="salary", splitter=RandomSplitter(0.2, seed=42),
            bs=bs, device="cpu",
        )  # fmt: skip
        learn = tabular_learner(dls, metrics=accuracy)
        learn.fit_one_cycle(epochs, lr, cbs=[stopper(learn)])
        return learn

    return recipe


def ml100k(bs: int, epochs: int, lr: float, wd: float = 0.1) -> Recipe:
    """ml-100k `u.data`, 20% random validation (seed 42): `collab_learner` with 40 factors
    and y_range (0, 5.5), one-cycle at `lr`."""
    from mentor.collab import CollabDataLoaders, collab_learner

    def recipe(seed: int, stopper: Stopper) -> Learner:
        set_seed(seed)
        ratings = pd.read_csv(
            data_path("ml-100k") / "u.data", sep="\t", header=None,
            names=["user", "item", "rating", "timestamp"],
        )  # fmt: skip
        dls = CollabDataLoaders.from_df(ratings, valid_pct=0.2, seed=42, bs=bs, device="cpu")
        learn = collab_learner(dls, n_factors=40, y_range=(0, 5.5))
        learn.fit_one_cycle(epochs, lr, wd=wd, cbs=[stopper(learn)])
        return learn

    return recipe


def mnist(bs: int, epochs: int, lr: float) -> Recipe:
    """mnist_sample's PNG files through `ImageDataLoaders.from_folder` (greyscale, 28 px):
    `small_cnn` in a plain `Learner` (`small_cnn`'s own linear head, no dropout), one-cycle."""
    from mentor.vision.data import ImageDataLoaders
    from mentor.vision.models import small_cnn

    def recipe(seed: int, stopper: Stopper) -> Learner:
        set_seed(seed)
        dls = ImageDataLoaders.from_folder(untar_data("mnist_sample"), img_mode="L", bs=bs)
        learn = Learner(dls, small_cnn(n_out=2, c_in=1), metrics=accuracy)
        learn.fit_one_cycle(epochs, lr, cbs=[stopper(learn)])
        return learn

    return recipe


def imagenette(size: int, precompute: bool) -> Recipe:
    """imagenette_small's JPEGs (train / val folders) at `size` px: `vision_learner` with
    EfficientNet-Lite0's ImageNet weights, the head starting from the ImageNet classifier's
    rows for the ten classes, channels-last, `fine_tune(1)` (a frozen epoch, then one more)."""
    from examples.imagenette import IMAGENET_INDEX, imagenette_dls
    from mentor.vision.learner import vision_learner

    def recipe(seed: int, stopper: Stopper) -> Learner:
        set_seed(seed)
        dls = imagenette_dls(size, bs=32)
        learn = vision_learner(
            dls, "efficientnet_lite0", metrics=accuracy, precompute=precompute,
            known_classes=IMAGENET_INDEX,
        ).to_channelslast()  # fmt: skip
        learn.fine_tune(1, cbs=[stopper(learn)])
        return learn

    return recipe


def review_polarity(
    size: str, epochs: int, lr: float, max_vocab: int, bs: int, last_words: int | None = None
) -> Recipe:
    """review_polarity's text files, a random 80% / 20% split (seed 42): an AWD-LSTM
    classifier of `size` from scratch (no language model), one-cycle at `lr`; each review cut
    to its `last_words` (None: whole)."""
    from mentor.data.external import untar_data
    from mentor.data.items import get_text_files
    from mentor.text import AWD_LSTM, TextDataLoaders, text_classifier_learner
    from mentor.text.data import read_text_files

    def recipe(seed: int, stopper: Stopper) -> Learner:
        set_seed(seed)
        files = get_text_files(untar_data("review_polarity") / "txt_sentoken")
        texts, labels = read_text_files(files), [file.parent.name for file in files]
        if last_words is not None:  # a review's verdict is mostly at its end
            texts = [" ".join(text.split()[-last_words:]) for text in texts]
        train, valid = RandomSplitter(0.2, seed=42)(files)
        dls = TextDataLoaders.from_texts(
            train_texts=[texts[i] for i in train], valid_texts=[texts[i] for i in valid],
            train_labels=[labels[i] for i in train], valid_labels=[labels[i] for i in valid],
            bs=bs, max_vocab=max_vocab,
        )  # fmt: skip
        learn = text_classifier_learner(dls, AWD_LSTM, size=size, metrics=accuracy)
        learn.fit_one_cycle(epochs, lr, cbs=[stopper(learn)])
        return learn

    return recipe


TASKS: dict[str, Task] = {
    "adult": Task(
        "adult_sample", Target("accuracy", 0.84), "11.1 s",
        {
            "auto": auto("tabular", lambda: str(data_path("adult_sample") / "adult.csv"),
                         "--target", "salary"),
            "best": adult(512, 5, 3e-2),
        },
    ),
    "ml100k": Task(
        "ml-100k", Target("valid_loss", 0.839, higher_is_better=False), "27.1 s",
        {
            "auto": auto("collab", lambda: str(data_path("ml-100k") / "u.data"), "--sep",
                         "\\t", "--names", "user,item,rating,timestamp", "--no-header"),
            "best": ml100k(1024, 5, 1e-2),
        },
    ),
    "mnist": Task(
        "mnist_sample", Target("accuracy", 0.995), "41-55 s",
        {
            "auto": auto("image", lambda: str(untar_data("mnist_sample"))),
            "best": mnist(128, 3, 1e-2),
        },
    ),
    "imagenette": Task(
        "imagenette_small", Target("accuracy", 0.97), "mentor today 102 s",
        {
            "auto": auto("image", lambda: str(untar_data("imagenette_small")), "--valid", "val"),
            "lesson1": imagenette(160, False),
            "best": imagenette(160, True),
        },
    ),
    "text": Task(
        "review_polarity", Target("accuracy", 1.0, budget_s=120.0), "AWD-LSTM on imdb_sample: "
        "chance after 298 s",
        # the "small" AWD-LSTM on whole reviews (4 epochs at 1e-2) was still at chance (0.51)
        # when 120 s ran out: two epochs fit
        {
            "auto": auto("text", lambda: str(untar_data("review_polarity") / "txt_sentoken")),
            "best": review_polarity("tiny", 12, 2e-2, 8000, 32, last_words=300),
        },
    ),
}  # fmt: skip
