"""`learn.report(folder)`: one self-contained page with every section that applies."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mentor.core.seed import set_seed
from mentor.train import Learner
from tests.helpers import tiny_classifier, tiny_folder


def _sections(page: str) -> list[str]:
    return re.findall(r"<section id=\"s\d+\"><h2>([^<]+)</h2>", page)


def _images(page: str) -> list[str]:
    """The alt texts of the inline PNG images (the page links to no other file)."""
    assert 'src="http' not in page and "<link" not in page
    return re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,[A-Za-z0-9+/=]+">', page)


def _table_rows(page: str, section: str) -> int:
    match = re.search(rf"<h2>{re.escape(section)}</h2>(.*?)</section>", page, re.S)
    assert match is not None, f"no section {section!r}"
    return len(re.findall(r"<tr[ >]", match.group(1))) - 1  # minus the header row


def _trained(learn: Learner, fine_tune: bool = False) -> Learner:
    learn.progress.show = False
    learn.lr_find(num_it=12, show_plot=False)
    if fine_tune:
        learn.fine_tune(1, base_lr=1e-3)
    else:
        learn.fit_one_cycle(2, 1e-2)
    return learn


def test_vision_report_has_every_section_and_counts_both_fits(
    mnist_tiny: Path, tmp_path: Path
) -> None:
    from mentor.train import accuracy
    from mentor.vision import ImageDataLoaders, Resize, vision_learner

    set_seed(0)
    folder = tiny_folder(mnist_tiny, tmp_path / "data", 6, 4)
    dls = ImageDataLoaders.from_folder(
        folder, item_tfms=Resize(24, method="squish"), bs=4, num_workers=0, device="cpu"
    )
    learn = vision_learner(dls, "resnet18", pretrained=False, lin_ftrs=(8,), metrics=accuracy)
    learn.from_scratch = False  # fine_tune's two fits (frozen, then not), without the weights
    learn = _trained(learn, True)
    model = learn.export(tmp_path / "digits")
    page = learn.report(tmp_path / "run", export_path=model).read_text()
    assert (tmp_path / "run" / "report.html").exists()
    assert not list(tmp_path.glob("*.png")) and not Path("show_batch.png").exists()
    assert _sections(page) == [
        "Data", "Examples (training data)", "Learning-rate finder", "Loss and metrics",
        "Schedules", "Epochs", "Confusion", "Top losses (validation)", "Export",
    ]  # fmt: skip
    alts = _images(page)
    expected = {
        "a batch of training data", "lr", "losses", "metrics per epoch",
        "learning rate and momentum", "confusion matrix", "items with the highest loss",
    }  # fmt: skip
    assert expected <= set(alts)
    assert _table_rows(page, "Epochs") == 2  # the frozen epoch and the unfrozen one
    assert len(learn.recorder.fits) == 2
    assert "Training items</th><td>12" in page and "Validation items</th><td>8" in page
    assert str(model) in page and "Predictor.load" in page
    assert "valley" in page


def test_tabular_report_lists_top_losses_as_decoded_rows(tmp_path: Path) -> None:
    from mentor.tabular import TabularDataLoaders, tabular_learner
    from mentor.train import accuracy

    set_seed(0)
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {"color": rng.choice(["red", "green", "blue"], 120), "x": rng.normal(size=120)}
    )
    df["label"] = np.where(df["x"] + (df["color"] == "red") > 0.3, "yes", "no")
    dls = TabularDataLoaders.from_df(
        df, cat_names=["color"], cont_names=["x"], y_names="label",
        valid_idx=list(range(90, 120)), bs=16, device="cpu",
    )  # fmt: skip
    learn = _trained(tabular_learner(dls, layers=[8], metrics=accuracy))
    page = learn.report(tmp_path, top_k=5).read_text()
    assert "Top losses (validation)" in _sections(page) and "Export" not in _sections(page)
    assert _table_rows(page, "Top losses (validation)") == 5
    assert _table_rows(page, "Epochs") == 2
    top = re.search(r"<h2>Top losses \(validation\)</h2>(.*?)</section>", page, re.S)
    assert top is not None and "<th>color</th>" in top.group(1)
    assert "probability of actual" in top.group(1)
    assert re.search(r"<td>(red|green|blue)</td>", top.group(1))


def test_collab_report_shows_regression_results(tmp_path: Path) -> None:
    from mentor.collab import CollabDataLoaders, collab_learner

    set_seed(0)
    rng = np.random.default_rng(0)
    ratings = pd.DataFrame({
        "user": rng.integers(0, 20, 400), "movie": rng.integers(0, 15, 400),
        "rating": rng.integers(1, 6, 400).astype(float),
    })  # fmt: skip
    dls = CollabDataLoaders.from_df(ratings, valid_pct=0.2, seed=0, bs=32, device="cpu")
    learn = _trained(collab_learner(dls, n_factors=4, y_range=(0, 5.5)))
    page = learn.report(tmp_path, top_k=4).read_text()
    assert "Predictions (validation)" in _sections(page)
    assert "predicted vs actual" in _images(page)
    assert "Confusion" not in _sections(page)
    assert _table_rows(page, "Top losses") == 4
    assert re.search(r"Validation MSE \d+\.\d{4}", page)
    assert "<th>movie</th>" in page


def test_text_classifier_report_shows_texts(imdb_texts: pd.DataFrame, tmp_path: Path) -> None:
    from mentor.text import TextDataLoaders, text_classifier_learner
    from mentor.train import accuracy

    set_seed(0)
    df = imdb_texts.iloc[:80].copy()
    dls = TextDataLoaders.from_df(
        df, text_col="text", label_col="label", valid_pct=0.25, bs=16, seed=0, device="cpu"
    )
    learn = text_classifier_learner(dls, size="tiny", metrics=accuracy, max_len=72)
    learn.progress.show = False
    learn.fit_one_cycle(1, 1e-3)
    page = learn.report(tmp_path, top_k=3).read_text()
    assert _sections(page)[:2] == ["Data", "Examples (training data)"]
    assert "Learning-rate finder" not in _sections(page)  # no sweep was run
    assert _table_rows(page, "Top losses (validation)") == 3
    top = re.search(r"<h2>Top losses \(validation\)</h2>(.*?)</section>", page, re.S)
    assert top is not None and "<th>text</th>" in top.group(1)
    valid_texts = set(dls.decode_rows(range(20))["text"])
    shown = [html.unescape(t) for t in re.findall(r"<td>([^<]{40,})</td>", top.group(1))]
    assert len(shown) == 3 and set(shown) <= valid_texts


def test_report_of_an_untrained_learner_has_only_what_exists(tmp_path: Path) -> None:
    learn = tiny_classifier(tmp_path)
    page = learn.report(tmp_path).read_text()
    # plain loaders show their first items as a table (inputs and decoded targets)
    sections = ["Data", "Examples (training data)", "Confusion", "Top losses (validation)"]
    assert _sections(page) == sections
    assert "0 fit(s)" in page


def test_report_escapes_text_from_the_data(tmp_path: Path) -> None:
    learn = tiny_classifier(tmp_path)
    page = learn.report(tmp_path, title="<script>alert(1)</script>").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_plot_lr_find_needs_a_sweep() -> None:
    learn = tiny_classifier()
    with pytest.raises(ValueError, match="run learn.lr_find"):
        learn.recorder.plot_lr_find()


def test_a_part_that_fails_is_named_and_the_rest_is_written(tmp_path: Path) -> None:
    learn = tiny_classifier(tmp_path)
    learn.fit(1)

    def broken_show_batch() -> None:
        raise ValueError("this data can't be shown")

    learn.dls.show_batch = broken_show_batch  # type: ignore[attr-defined]
    with pytest.warns(UserWarning, match="'Examples \\(training data\\)' part could not be drawn"):
        page = learn.report(tmp_path).read_text()
    assert "Could not be drawn: this data can&#x27;t be shown" in page
    assert "Epochs" in _sections(page) and "Confusion" in _sections(page)
