"""The speedrun's tasks and their recipes (see `bench.speedrun`)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from torch import nn

from bench.speedrun_clock import Recipe, StopAtTarget, Target, Task
from mentor.core.paths import data_path
from mentor.core.seed import set_seed
from mentor.data.splitters import RandomSplitter
from mentor.train import Learner, accuracy

Stopper = Callable[[Learner], StopAtTarget]


def suggested(learn: Learner) -> float:
    """The rate a user who trusts the defaults takes: `lr_find`'s valley."""
    valley = learn.lr_find(show_plot=False).valley
    if valley is None:
        raise RuntimeError("lr_find suggested no valley; the sweep stopped too early")
    return float(valley)


ADULT_CATS = ["workclass", "education", "marital-status", "occupation", "relationship", "race"]
ADULT_CONTS = ["age", "fnlwgt", "education-num"]


def adult(bs: int, epochs: int, lr: float | None) -> Recipe:
    """adult_sample, the course's columns and procs, 20% random validation (seed 42):
    `tabular_learner` trained with one-cycle at `lr` (None: lr_find's valley)."""
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
        rate = suggested(learn) if lr is None else lr
        learn.fit_one_cycle(epochs, rate, cbs=[stopper(learn)])
        return learn

    return recipe


def ml100k(bs: int, epochs: int, lr: float | None, wd: float = 0.1) -> Recipe:
    """ml-100k `u.data`, 20% random validation (seed 42): `collab_learner` with 40 factors
    and y_range (0, 5.5), one-cycle at `lr` (None: lr_find's valley)."""
    from mentor.collab import CollabDataLoaders, collab_learner

    def recipe(seed: int, stopper: Stopper) -> Learner:
        set_seed(seed)
        ratings = pd.read_csv(
            data_path("ml-100k") / "u.data", sep="\t", header=None,
            names=["user", "item", "rating", "timestamp"],
        )  # fmt: skip
        dls = CollabDataLoaders.from_df(ratings, valid_pct=0.2, seed=42, bs=bs, device="cpu")
        learn = collab_learner(dls, n_factors=40, y_range=(0, 5.5))
        rate = suggested(learn) if lr is None else lr
        learn.fit_one_cycle(epochs, rate, wd=wd, cbs=[stopper(learn)])
        return learn

    return recipe


def mnist_cnn() -> nn.Sequential:
    """A four-convolution CNN for 28 px digits: 16 channels at stride 2, 32 at stride 1 (14
    px), 64 and 128 at stride 2, average pooling, a linear head."""
    from mentor.vision.models.layers import ConvLayer

    spec, layers, c_in = ((16, 2), (32, 1), (64, 2), (128, 2)), [], 1
    for c_out, stride in spec:
        layers.append(ConvLayer(c_in, c_out, stride=stride))
        c_in = c_out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 2))


def mnist(arch: str | None, bs: int, epochs: int, lr: float | None) -> Recipe:
    """mnist_sample's PNG files through `ImageDataLoaders.from_folder` (greyscale, 28 px):
    `vision_learner(dls, arch)` with `fine_tune` (arch given), or `mnist_cnn` from scratch
    with one-cycle (arch None); `lr` None: lr_find's valley."""
    from mentor.data.external import untar_data
    from mentor.vision.data import ImageDataLoaders
    from mentor.vision.learner import vision_learner

    def recipe(seed: int, stopper: Stopper) -> Learner:
        set_seed(seed)
        dls = ImageDataLoaders.from_folder(untar_data("mnist_sample"), img_mode="L", bs=bs)
        if arch is None:
            learn = Learner(dls, mnist_cnn(), metrics=accuracy)
        else:
            learn = vision_learner(dls, arch, metrics=accuracy)
        rate = suggested(learn) if lr is None else lr
        if arch is None:
            learn.fit_one_cycle(epochs, rate, cbs=[stopper(learn)])
        else:
            learn.fine_tune(epochs, rate, cbs=[stopper(learn)])
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
        {"default": adult(64, 3, None), "best": adult(512, 5, 3e-2)},
    ),
    "ml100k": Task(
        "ml-100k", Target("valid_loss", 0.839, higher_is_better=False), "27.1 s",
        {"default": ml100k(64, 5, None), "best": ml100k(1024, 5, 1e-2)},
    ),
    "mnist": Task(
        "mnist_sample", Target("accuracy", 0.995), "41-55 s",
        {"default": mnist("efficientnet_lite0", 64, 1, None), "best": mnist(None, 128, 3, 1e-2)},
    ),
    "imagenette": Task(
        "imagenette_small", Target("accuracy", 0.97), "mentor today 102 s",
        {"lesson1": imagenette(160, False), "best": imagenette(160, True)},
    ),
    "text": Task(
        "review_polarity", Target("accuracy", 1.0, budget_s=120.0), "AWD-LSTM on imdb_sample: "
        "chance after 298 s",
        # the "small" AWD-LSTM on whole reviews (4 epochs at 1e-2) was still at chance (0.51)
        # when 120 s ran out: two epochs fit
        {"best": review_polarity("tiny", 12, 2e-2, 8000, 32, last_words=300)},
    ),
}  # fmt: skip
