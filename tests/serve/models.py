"""Small exported models of every application, trained for seconds on real or seeded data,
for the serving tests (each builder returns the `.mentor` file it wrote)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mentor.core.seed import set_seed
from tests.helpers import tabular_frame, tiny_folder


def _fit(learn, epochs: int = 1, lr: float = 1e-3) -> None:
    learn.progress.show = False
    learn.fit_one_cycle(epochs, lr)


def digits_model(mnist_tiny: Path, folder: Path, n_train: int = 100, epochs: int = 3) -> Path:
    """A 3-vs-7 classifier (resnet18 from scratch at 28 px) trained on mnist_tiny in about
    3 s; it gets the validation digits right (24 of 24 when measured)."""
    from mentor.vision import ImageDataLoaders, vision_learner

    set_seed(0)
    data = tiny_folder(mnist_tiny, folder / "digits", n_train, 10)
    dls = ImageDataLoaders.from_folder(data, bs=16, num_workers=0, device="cpu")
    learn = vision_learner(dls, "resnet18", pretrained=False, lin_ftrs=(16,))
    _fit(learn, epochs, 1e-2)
    return learn.export(folder / "digits.mentor")


def _image_block_model(mnist_tiny: Path, folder: Path, name: str, y_block, get_y) -> Path:
    from mentor.data import DataBlock, GrandparentSplitter, get_image_files
    from mentor.vision import ImageBlock, vision_learner

    set_seed(0)
    data = tiny_folder(mnist_tiny, folder / name, 6, 3)
    block = DataBlock(blocks=(ImageBlock, y_block), get_items=get_image_files, get_y=get_y,
                      splitter=GrandparentSplitter(valid_name="valid"))  # fmt: skip
    dls = block.dataloaders(data, bs=4, num_workers=0, device="cpu")
    learn = vision_learner(dls, "resnet18", pretrained=False, lin_ftrs=(8,))
    _fit(learn)
    return learn.export(folder / f"{name}.mentor")


def multi_label_model(mnist_tiny: Path, folder: Path) -> Path:
    """Labels: the digit and 'odd' (both 3 and 7 are odd: every image has two labels)."""
    from mentor.data import MultiCategoryBlock

    return _image_block_model(mnist_tiny, folder, "multi", MultiCategoryBlock,
                              lambda path: [path.parent.name, "odd"])  # fmt: skip


def regression_model(mnist_tiny: Path, folder: Path) -> Path:
    """The digit as a number (3.0 or 7.0)."""
    from mentor.data import RegressionBlock

    return _image_block_model(mnist_tiny, folder, "regress", RegressionBlock,
                              lambda path: float(path.parent.name))  # fmt: skip


def tabular_model(folder: Path) -> Path:
    """yes/no from colour, size, x (with gaps) and z."""
    from mentor.tabular import Categorify, FillMissing, TabularDataLoaders, tabular_learner
    from mentor.tabular.preprocess import Normalize

    set_seed(0)
    dls = TabularDataLoaders.from_df(
        tabular_frame(), procs=[Categorify, FillMissing, Normalize], cat_names=["color", "size"],
        cont_names=["x", "z"], y_names="label", valid_idx=list(range(60, 80)), bs=16, device="cpu",
    )  # fmt: skip
    learn = tabular_learner(dls, layers=[8, 4])
    _fit(learn)
    return learn.export(folder / "table.mentor")


def collab_model(folder: Path) -> Path:
    """Ratings of 15 movies (ids 100-114) by 12 users (ids 0-11)."""
    from mentor.collab import CollabDataLoaders, collab_learner

    set_seed(0)
    rng = np.random.default_rng(0)
    ratings = pd.DataFrame({
        "user": rng.integers(0, 12, size=200), "movie": rng.integers(100, 115, size=200),
        "rating": rng.integers(1, 6, size=200).astype(float),
    })  # fmt: skip
    dls = CollabDataLoaders.from_df(ratings, valid_pct=0.2, seed=3, bs=16, device="cpu")
    learn = collab_learner(dls, n_factors=4, y_range=(0, 5.5))
    _fit(learn)
    return learn.export(folder / "recs.mentor")


def text_model(folder: Path) -> Path:
    """pos/neg from a few words."""
    from mentor.text import TextDataLoaders, text_classifier_learner

    set_seed(0)
    rng = np.random.default_rng(0)
    good, bad = ["good", "great", "fine", "nice"], ["bad", "awful", "poor", "dull"]
    texts = [
        "This movie was " + " ".join(rng.choice(good if i % 2 else bad, size=4)) for i in range(48)
    ]
    df = pd.DataFrame({"text": texts, "label": ["pos" if i % 2 else "neg" for i in range(48)],
                       "is_valid": [i >= 36 for i in range(48)]})  # fmt: skip
    dls = TextDataLoaders.from_df(df, valid_col="is_valid", min_freq=1, bs=8, device="cpu")
    learn = text_classifier_learner(dls, size="tiny", seq_len=4)
    _fit(learn)
    return learn.export(folder / "reviews.mentor")


def language_model(folder: Path) -> Path:
    """A tiny AWD-LSTM on sentences of ten words."""
    from mentor.text import TextDataLoaders, language_model_learner

    set_seed(0)
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far"]
    texts = [" ".join(rng.choice(words, size=12)) + "." for _ in range(60)]
    dls = TextDataLoaders.from_texts(texts[:50], texts[50:], is_lm=True, min_freq=1, bs=4,
                                     seq_len=16, device="cpu")  # fmt: skip
    learn = language_model_learner(dls, size="tiny")
    _fit(learn)
    return learn.export(folder / "lm.mentor")
