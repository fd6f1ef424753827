"""Export, load in a fresh process, predict: the same probabilities as the trained learner."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mentor.core.seed import set_seed
from mentor.inference.predictor import Predictor
from tests.helpers import tabular_frame, tiny_folder
from tests.inference.roundtrip import fresh_process_predictions, max_diff

# train, export, then predict in a fresh process: end to end (make test-fast skips them)
pytestmark = pytest.mark.slow

TOL = 1e-6


def _quiet_fit(learn, n_epoch: int = 1) -> None:
    learn.progress.show = False
    learn.fit(n_epoch, 1e-3)


def test_vision_roundtrip(mnist_tiny: Path, tmp_path: Path) -> None:
    from mentor.vision import ImageDataLoaders, Resize, vision_learner

    set_seed(0)
    folder = tiny_folder(mnist_tiny, tmp_path / "data", 4, 3)
    dls = ImageDataLoaders.from_folder(
        folder, item_tfms=Resize(20, method="squish"), bs=4, num_workers=0, device="cpu"
    )
    learn = vision_learner(dls, "resnet18", pretrained=False, lin_ftrs=(8,))
    _quiet_fit(learn)
    expected = learn.get_preds()[0]
    file = learn.export(tmp_path / "digits")
    assert file.name == "digits.mentor"
    with zipfile.ZipFile(file) as archive:
        assert sorted(archive.namelist()) == sorted(
            ["weights.safetensors", "model.json", "pipeline.json", "meta.json"]
        )
    paths = [str(item) for item in dls.valid_ds.items]
    result = fresh_process_predictions(file, paths, tmp_path, bs=3)
    assert max_diff(expected, result["probs"]) <= TOL
    assert max_diff(expected, result["learner_probs"]) <= TOL
    assert max_diff(expected[:3], result["single"]) <= TOL
    assert result["labels"] == [dls.vocab[i] for i in expected.argmax(1).tolist()]
    predictor = Predictor.load(file)
    image_bytes = Path(paths[0]).read_bytes()
    assert max_diff(expected[0], predictor.predict(image_bytes)[1].tolist()) <= TOL


def test_tabular_roundtrip(tmp_path: Path) -> None:
    from mentor.tabular import Categorify, FillMissing, TabularDataLoaders, tabular_learner
    from mentor.tabular.preprocess import Normalize

    set_seed(0)
    df = tabular_frame()
    df.loc[70, "color"] = "purple"  # unseen in training: coded 0
    with pytest.warns(UserWarning, match=r"'color': \['purple'\]"):
        dls = TabularDataLoaders.from_df(
            df, procs=[Categorify, FillMissing, Normalize], cat_names=["color", "size"],
            cont_names=["x", "z"], y_names="label", valid_idx=list(range(60, 80)), bs=16,
            device="cpu",
        )  # fmt: skip
    learn = tabular_learner(dls, layers=[8, 4])
    _quiet_fit(learn)
    expected = learn.get_preds()[0]
    file = learn.export(tmp_path / "table.mentor")
    rows = df.iloc[60:80].drop(columns="label").to_dict("records")
    result = fresh_process_predictions(file, rows, tmp_path, bs=40)
    assert max_diff(expected, result["probs"]) <= TOL
    assert max_diff(expected, result["learner_probs"]) <= TOL
    assert max_diff(expected[:3], result["single"]) <= TOL
    predictor = Predictor.load(file)
    singles = torch.stack([predictor.predict(row)[1] for row in rows])
    assert max_diff(expected, singles.tolist()) <= TOL


def test_collab_roundtrip(tmp_path: Path) -> None:
    from mentor.collab import CollabDataLoaders, collab_learner

    set_seed(0)
    rng = np.random.default_rng(0)
    ratings = pd.DataFrame({
        "user": rng.integers(0, 12, size=200), "movie": rng.integers(100, 115, size=200),
        "rating": rng.integers(1, 6, size=200).astype(float),
    })  # fmt: skip
    dls = CollabDataLoaders.from_df(ratings, valid_pct=0.2, seed=3, bs=16, device="cpu")
    learn = collab_learner(dls, n_factors=4, y_range=(0, 5.5))
    _quiet_fit(learn)
    expected = learn.get_preds()[0]
    file = learn.export(tmp_path / "recs")
    order = np.random.RandomState(3).permutation(len(ratings))[:40]
    pairs = [[int(u), int(m)] for u, m in ratings.iloc[order][["user", "movie"]].to_numpy()]
    result = fresh_process_predictions(file, pairs, tmp_path, bs=32, how="pairs")
    assert max_diff(expected, result["probs"]) <= TOL
    assert max_diff(expected, result["learner_probs"]) <= TOL
    predictor = Predictor.load(file)
    rating, value = predictor.predict({"user": pairs[0][0], "movie": pairs[0][1]})
    assert abs(rating - float(expected[0])) <= TOL and value.ndim == 0
    assert isinstance(predictor.predict((999, 5))[0], float)  # unknown user and item


def test_collab_nn_roundtrip_in_process(tmp_path: Path) -> None:
    from mentor.collab import CollabDataLoaders, collab_learner

    set_seed(0)
    ratings = pd.DataFrame({"u": list("abcdab") * 10, "i": list("xyzzyx") * 10,
                            "r": [1.0, 2.0, 3.0, 4.0, 5.0, 3.0] * 10})  # fmt: skip
    dls = CollabDataLoaders.from_df(ratings, valid_pct=0.2, seed=0, bs=8, device="cpu")
    learn = collab_learner(dls, use_nn=True, layers=[6], y_range=(0, 5.5))
    learn.model.eval()
    expected = learn.get_preds()[0]
    predictor = Predictor.load(learn.export(tmp_path / "nn"))
    order = np.random.RandomState(0).permutation(len(ratings))[:12]
    _, probs = predictor.predict_batch(ratings.iloc[order])
    assert max_diff(expected, probs.tolist()) <= TOL


@pytest.mark.parametrize("backwards", [False, True])
def test_text_roundtrip(backwards: bool, tmp_path: Path) -> None:
    from mentor.text import TextDataLoaders, text_classifier_learner

    set_seed(0)
    rng = np.random.default_rng(0)
    good, bad = ["good", "great", "fine", "nice"], ["bad", "awful", "poor", "dull"]
    texts, labels = [], []
    for i in range(48):
        positive = bool(i % 2)
        words = rng.choice(good if positive else bad, size=int(rng.integers(2, 12)))
        texts.append(("This Movie was " + " ".join(words) + "!").strip())
        labels.append("pos" if positive else "neg")
    df = pd.DataFrame({"text": texts, "label": labels, "is_valid": [i >= 36 for i in range(48)]})
    dls = TextDataLoaders.from_df(
        df, valid_col="is_valid", min_freq=1, bs=8, device="cpu", backwards=backwards
    )
    learn = text_classifier_learner(dls, size="tiny", seq_len=4)
    _quiet_fit(learn)
    expected = learn.get_preds()[0]
    file = learn.export(tmp_path / "reviews")
    valid_texts = df[df.is_valid].text.tolist()
    result = fresh_process_predictions(file, valid_texts, tmp_path, bs=8)
    assert max_diff(expected, result["probs"]) <= TOL
    assert max_diff(expected, result["learner_probs"]) <= TOL
    assert max_diff(expected[:3], result["single"]) <= TOL
    assert result["predict"] in ("neg", "pos")


_LM_SCRIPT = """
import json, sys
import torch
torch.set_num_threads(1)
from mentor.inference.predictor import Predictor
model, prompts, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
predictor = Predictor.load(model)
tokens, dists = predictor.predict_batch(prompts)
json.dump({"tokens": tokens, "probs": dists.double().tolist(),
           "text": predictor.generate(prompts[0], n_words=12, temperature=0),
           "single": predictor.predict(prompts[1])[1].double().tolist()}, open(out, "w"))
"""


@pytest.mark.parametrize("kind", ["awd_lstm", "char_lstm"])
def test_language_model_roundtrip(kind: str, tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    from mentor.text import TextDataLoaders, language_model_learner
    from mentor.text.models.char_rnn import simple_lstm
    from mentor.text.models.lm_tools import next_token_logits
    from mentor.text.tokenize import CharTokenizer

    set_seed(0)
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far"]
    texts = [" ".join(rng.choice(words, size=12)) + "." for _ in range(60)]
    tok = {"tok": CharTokenizer()} if kind == "char_lstm" else {}
    dls = TextDataLoaders.from_texts(
        texts[:50], texts[50:], is_lm=True, min_freq=1, bs=4, seq_len=16, device="cpu", **tok
    )
    arch = {"arch": simple_lstm} if kind == "char_lstm" else {"size": "tiny"}
    learn = language_model_learner(dls, **arch)
    _quiet_fit(learn)
    prompts = ["the cat sat on", "a dog ran", "mat and"]
    ids = [dls.numericalize([p])[0].tolist() for p in prompts]
    ids = [i[:-1] if dls.text_vocab.itos[i[-1]] == "xxeos" else i for i in ids]
    expected = torch.stack([next_token_logits(learn.model, i).softmax(-1) for i in ids])
    greedy = learn.predict(prompts[0], n_words=12, temperature=0)
    file = learn.export(tmp_path / "lm")
    out = tmp_path / "lm.json"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", _LM_SCRIPT, str(file), json.dumps(prompts), str(out)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert max_diff(expected, result["probs"]) <= TOL
    assert max_diff(expected[1], result["single"]) <= TOL
    assert result["tokens"] == [dls.text_vocab.itos[int(p.argmax())] for p in expected]
    assert result["text"] == greedy
