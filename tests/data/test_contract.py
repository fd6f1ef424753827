"""The DataLoaders contract: every loader class answers the same attributes and methods with
the same signatures (mypy checks the overrides; this checks them at run time), and
`Learner.show_results` works for each kind of data."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from mentor.core.seed import set_seed
from mentor.data.loaders import DataLoaders
from mentor.train import Learner
from tests.helpers import tabular_frame, tiny_folder


def _images(tmp_path: Path, mnist_tiny: Path) -> Any:
    from mentor.vision import ImageDataLoaders, Resize

    folder = tiny_folder(mnist_tiny, tmp_path / "digits", 4, 3)
    return ImageDataLoaders.from_folder(
        folder, item_tfms=Resize(16), bs=4, num_workers=0, device="cpu"
    )


def _table(tmp_path: Path, mnist_tiny: Path) -> Any:
    from mentor.tabular import Categorify, FillMissing, Normalize, TabularDataLoaders

    return TabularDataLoaders.from_df(
        tabular_frame(), procs=[Categorify, FillMissing, Normalize], cat_names=["color", "size"],
        cont_names=["x", "z"], y_names="label", valid_idx=list(range(60, 80)), bs=16,
        device="cpu",
    )  # fmt: skip


def _ratings(tmp_path: Path, mnist_tiny: Path) -> Any:
    from mentor.collab import CollabDataLoaders

    rng = np.random.default_rng(0)
    ratings = pd.DataFrame({"user": rng.integers(0, 12, 120), "movie": rng.integers(0, 9, 120),
                            "rating": rng.integers(1, 6, 120).astype(float)})  # fmt: skip
    return CollabDataLoaders.from_df(ratings, valid_pct=0.2, seed=0, bs=16, device="cpu")


def _texts(tmp_path: Path, mnist_tiny: Path, is_lm: bool = False) -> Any:
    from mentor.text import TextDataLoaders

    words = ["good", "bad", "fine", "dull", "film", "plot"]
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, size=8)) for _ in range(40)]
    labels = ["pos" if "good" in t else "neg" for t in texts]
    if is_lm:
        return TextDataLoaders.from_texts(texts[:32], texts[32:], is_lm=True, min_freq=1, bs=4,
                                          seq_len=8, device="cpu")  # fmt: skip
    return TextDataLoaders.from_texts(texts[:32], texts[32:], labels[:32], labels[32:],
                                      min_freq=1, bs=8, device="cpu")  # fmt: skip


def _lm(tmp_path: Path, mnist_tiny: Path) -> Any:
    return _texts(tmp_path, mnist_tiny, is_lm=True)


def _plain(tmp_path: Path, mnist_tiny: Path) -> Any:
    x = torch.randn(40, 3)
    y = (x[:, 0] > 0).long()
    return DataLoaders.from_tensors((x[:32], y[:32]), (x[32:], y[32:]), bs=8, device="cpu")


BUILDERS = [_images, _table, _ratings, _texts, _lm, _plain]


@pytest.mark.parametrize("build", BUILDERS, ids=lambda b: b.__name__.strip("_"))
def test_every_loader_class_answers_the_contract(build, tmp_path: Path, mnist_tiny: Path) -> None:
    dls = build(tmp_path, mnist_tiny)
    assert dls.n_inp is None if build is _plain else dls.n_inp >= 1
    assert isinstance(dls.vocab, list) and isinstance(dls.application, str)
    assert dls.c is None or dls.c >= 1
    target = dls.target_block
    if target is not None:
        assert dls.vocab == list(target.vocab) or dls.application == "text_lm"
        assert isinstance(target.needs_geometry, bool)
    params = list(inspect.signature(dls.test_dl).parameters)
    assert params[:4] == ["items", "with_labels", "bs", "skip_bad"], params
    assert "max_n" in inspect.signature(dls.show_batch).parameters
    assert list(inspect.signature(dls.show_results).parameters)[:3] == ["batch", "preds", "max_n"]
    batch = dls.one_batch("valid")
    decoded = dls.decode_batch(batch)
    assert len(decoded) == len(batch[0]) and len(decoded[0]) == len(batch)


def test_the_base_class_names_what_plain_loaders_cannot_do(tmp_path: Path) -> None:
    dls = _plain(tmp_path, tmp_path)
    with pytest.raises(ValueError, match="DataLoaders.test_dl cannot build a loader from raw"):
        dls.test_dl([1, 2])
    assert dls.decode_rows([0]) is None and dls.target_block is None
    table = dls.show_batch(max_n=3)
    assert list(table.columns) == ["x0", "y0"] and len(table) == 3


@pytest.mark.parametrize("build", [_table, _ratings, _texts, _plain], ids=lambda b: b.__name__)
def test_show_results_tables_put_predictions_beside_targets(
    build, tmp_path: Path, mnist_tiny: Path
) -> None:
    from mentor.collab import collab_learner
    from mentor.tabular import tabular_learner
    from mentor.text import text_classifier_learner

    set_seed(0)
    dls = build(tmp_path, mnist_tiny)
    makers = {"_table": lambda: tabular_learner(dls, layers=[4]),
              "_ratings": lambda: collab_learner(dls, n_factors=2, y_range=(0, 5.5)),
              "_texts": lambda: text_classifier_learner(dls, size="tiny", seq_len=4),
              "_plain": lambda: Learner(dls, torch.nn.Linear(3, 2))}  # fmt: skip
    learn = makers[build.__name__]()
    table = learn.show_results(max_n=3)
    assert isinstance(table, pd.DataFrame) and len(table) == 3
    predictions = table["prediction"].tolist()
    if build is _ratings:
        assert all(isinstance(p, float) and 0 <= p <= 5.5 for p in predictions)
    elif build is _plain:
        assert all(p in (0, 1) for p in (int(p) for p in predictions))
    else:  # labels from the target's vocabulary, next to the decoded target column
        assert set(predictions) <= set(dls.vocab)
        assert {"label"} & set(table.columns)


def test_show_results_draws_images_with_target_and_prediction(
    tmp_path: Path, mnist_tiny: Path
) -> None:
    from mentor.vision import vision_learner

    set_seed(0)
    dls = _images(tmp_path, mnist_tiny)
    learn = vision_learner(dls, "resnet18", pretrained=False, lin_ftrs=(4,))
    fig = learn.show_results(max_n=4)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 4
    assert all(len(t.split(" / ")) == 2 and set(t.split(" / ")) <= {"3", "7"} for t in titles)
