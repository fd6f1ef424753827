"""Write the format-1 `.mentor` fixtures and the outputs they must keep giving.

Run once, on commit 950ca7f's code (the last main that wrote format 1), from the repository
root: `MENTOR_DATA=../shared/data python -m tests.inference.format1.make`. The files it wrote
are committed beside it; `tests/inference/test_format1.py` loads them with today's mentor and
checks the predictions against `expected.json`. Image items are paths under MENTOR_DATA.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mentor.core.seed import set_seed
from mentor.inference.predictor import Predictor

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("MENTOR_DATA", HERE.parents[3] / "shared" / "data"))
MODEL = {"factory": "tests.inference.fixture_models:TinyCNN"}


def _fit(learn: Any) -> None:
    learn.progress.show = False
    learn.fit(1, 1e-2)


def _images() -> list[str]:
    return [
        f"mnist_tiny/{split}/{label}/{file.name}"
        for split in ("train", "valid") for label in ("3", "7")
        for file in sorted((DATA / "mnist_tiny" / split / label).glob("*.png"))[:6]
    ]  # fmt: skip


def vision_category() -> tuple[Any, list[Any]]:
    from mentor.data.transforms import Normalize
    from mentor.train import Learner
    from mentor.vision import ImageDataLoaders, Resize, aug_transforms
    from tests.inference.fixture_models import TinyCNN

    items = _images()
    df = pd.DataFrame({"name": items, "label": [p.split("/")[2] for p in items],
                       "is_valid": ["/valid/" in p for p in items]})  # fmt: skip
    dls = ImageDataLoaders.from_df(
        df, DATA, valid_col="is_valid", item_tfms=Resize(24, method="squish"), bs=4,
        batch_tfms=[*aug_transforms(), Normalize([0.5] * 3, [0.25] * 3)], num_workers=0,
        device="cpu",
    )  # fmt: skip
    learn = Learner(dls, TinyCNN(2))
    learn.model_spec = {**MODEL, "kwargs": {"n_out": 2}}
    return learn, items[12::2]


def vision_multi() -> tuple[Any, list[Any]]:
    from mentor.train import Learner
    from mentor.vision import ImageDataLoaders, RandomResizedCrop
    from tests.inference.fixture_models import TinyCNN

    items = _images()
    tags = {"3": "three curved", "7": "seven straight"}
    df = pd.DataFrame({"name": items, "tags": [tags[p.split("/")[2]] for p in items],
                       "is_valid": ["/valid/" in p for p in items]})  # fmt: skip
    dls = ImageDataLoaders.from_df(
        df, DATA, label_col="tags", label_delim=" ", valid_col="is_valid", bs=4,
        item_tfms=RandomResizedCrop(20, min_scale=0.5), num_workers=0, device="cpu",
    )  # fmt: skip
    learn = Learner(dls, TinyCNN(4))
    learn.model_spec = {**MODEL, "kwargs": {"n_out": 4}}
    return learn, items[12::2]


def _table(regression: bool) -> tuple[Any, list[Any]]:
    from mentor.tabular import (
        Categorify,
        FillMissing,
        Normalize,
        TabularDataLoaders,
        tabular_learner,
    )
    from tests.helpers import tabular_frame

    df = tabular_frame()
    df["price"] = np.exp(df["z"] / 4)
    y = {"y_names": "price", "log_y": True} if regression else {"y_names": "label"}
    dls = TabularDataLoaders.from_df(
        df.drop(columns="label" if regression else "price"),
        procs=[Categorify, FillMissing, Normalize], cat_names=["color", "size"],
        cont_names=["x"] if regression else ["x", "z"], valid_idx=list(range(60, 80)), bs=16,
        device="cpu", **y,
    )  # fmt: skip
    rows = df.iloc[60:66].drop(columns=["label", "price"])
    rows.loc[61, "color"] = "purple"  # unseen: coded 0
    rows.loc[62, "x"] = None
    return tabular_learner(dls, layers=[8, 4]), json.loads(rows.to_json(orient="records"))


def tabular_category() -> tuple[Any, list[Any]]:
    return _table(regression=False)


def tabular_regression() -> tuple[Any, list[Any]]:
    return _table(regression=True)


def collab() -> tuple[Any, list[Any]]:
    from mentor.collab import CollabDataLoaders, collab_learner

    rng = np.random.default_rng(0)
    ratings = pd.DataFrame({
        "user": rng.integers(0, 12, size=200), "movie": rng.integers(100, 115, size=200),
        "rating": rng.integers(1, 6, size=200).astype(float),
    })  # fmt: skip
    dls = CollabDataLoaders.from_df(ratings, valid_pct=0.2, seed=3, bs=16, device="cpu")
    pairs = [[3, 101], [5, 110], [999, 104], [0, 7]]  # an unknown user, an unknown item
    return collab_learner(dls, n_factors=4, y_range=(0, 5.5)), pairs


def _texts(n: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(0)
    good, bad = ["good", "great", "fine", "nice"], ["bad", "awful", "poor", "dull"]
    texts, labels = [], []
    for i in range(n):
        words = rng.choice(good if i % 2 else bad, size=int(rng.integers(2, 12)))
        texts.append("This Movie was " + " ".join(words) + "!")
        labels.append("pos" if i % 2 else "neg")
    return texts, labels


TINY_AWD = {"emb_sz": 8, "n_hid": 12, "n_layers": 2}


def text_classifier() -> tuple[Any, list[Any]]:
    from mentor.text import TextDataLoaders, text_classifier_learner

    texts, labels = _texts(48)
    df = pd.DataFrame({"text": texts, "label": labels, "is_valid": [i >= 36 for i in range(48)]})
    dls = TextDataLoaders.from_df(df, valid_col="is_valid", min_freq=1, bs=8, device="cpu")
    items = [*texts[36:40], "an unseen WORD here", "good"]
    learn = text_classifier_learner(dls, size="tiny", config=TINY_AWD, seq_len=4)
    return learn, items


def char_lm() -> tuple[Any, list[Any]]:
    from mentor.text import TextDataLoaders, language_model_learner
    from mentor.text.tokenize import CharTokenizer

    texts, _ = _texts(40)
    dls = TextDataLoaders.from_texts(texts[:32], texts[32:], is_lm=True, tok=CharTokenizer(),
                                     min_freq=1, bs=4, seq_len=16, device="cpu")  # fmt: skip
    learn = language_model_learner(dls, size="tiny", config=TINY_AWD)
    return learn, ["This Movie", "was go", "nice"]


BUILDERS = (vision_category, vision_multi, tabular_category, tabular_regression, collab,
            text_classifier, char_lm)  # fmt: skip


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    return value


def main() -> None:
    expected: dict[str, Any] = {}
    for build in BUILDERS:
        set_seed(0)
        learn, items = build()
        _fit(learn)
        file = learn.export(HERE / f"{build.__name__}.mentor")
        predictor = Predictor.load(file, trusted_modules=["tests"])
        inputs = [str(DATA / i) for i in items] if build.__name__.startswith("vision") else items
        if build.__name__ == "collab":
            inputs = [tuple(p) for p in items]
        labels, probs = predictor.predict_batch(inputs, bs=4)
        expected[build.__name__] = {
            "items": items, "labels": [_jsonable(v) for v in labels], "probs": probs.tolist(),
            "single": [_jsonable(v) for v in predictor.predict(inputs[0])],
        }  # fmt: skip
        if build.__name__ == "char_lm":
            expected[build.__name__]["generate"] = predictor.generate(items[0], 12, 0.0)
        print(f"{file.name}: {file.stat().st_size} bytes")
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main()
