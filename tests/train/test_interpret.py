"""ClassificationInterpretation: confusion matrix, most confused, top losses, report, plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mentor.train.interpret import ClassificationInterpretation
from tests.helpers import tiny_classifier

TARGETS = [0, 0, 0, 1, 1, 2, 2, 2]
PREDICTED = [0, 1, 0, 1, 2, 2, 0, 0]
# rows actual, columns predicted, counted by hand from the two lists above
EXPECTED_MATRIX = np.array([[2, 1, 0], [0, 1, 1], [2, 0, 1]])


def scripted(vocab: list[str] | None = None) -> ClassificationInterpretation:
    """Eight items of three classes whose predictions are PREDICTED."""
    torch.manual_seed(0)
    logits = torch.randn(8, 3) + 5 * F.one_hot(torch.tensor(PREDICTED), 3)
    targets = torch.tensor(TARGETS)
    losses = F.cross_entropy(logits, targets, reduction="none")
    inputs = torch.randn(8, 1, 6, 6)
    return ClassificationInterpretation(
        None, inputs, logits.softmax(1), targets, losses, vocab=vocab
    )


def test_confusion_matrix_matches_a_hand_count() -> None:
    interp = scripted(["a", "b", "c"])
    matrix = interp.confusion_matrix()
    np.testing.assert_array_equal(matrix, EXPECTED_MATRIX)
    assert matrix.sum() == 8
    assert interp.decoded.tolist() == PREDICTED


def test_most_confused_lists_off_diagonal_cells_by_count() -> None:
    interp = scripted(["a", "b", "c"])
    assert interp.most_confused() == [("c", "a", 2), ("a", "b", 1), ("b", "c", 1)]
    assert interp.most_confused(min_val=2) == [("c", "a", 2)]
    assert scripted().most_confused(min_val=2) == [(2, 0, 2)]  # no vocab: class indices


def test_top_losses_are_sorted_per_item_cross_entropies() -> None:
    interp = scripted()
    logits_log_probs = interp.probs.log()
    expected = -logits_log_probs[torch.arange(8), torch.tensor(TARGETS)]
    losses, indices = interp.top_losses()
    assert len(losses) == 8
    assert (losses[:-1] >= losses[1:]).all()
    torch.testing.assert_close(losses, expected[indices], atol=1e-5, rtol=1e-5)
    low, low_indices = interp.top_losses(3, largest=False)
    assert (low[:-1] <= low[1:]).all() and len(low_indices) == 3
    assert set(low_indices.tolist()) <= {i for i in range(8) if TARGETS[i] == PREDICTED[i]}


def test_classification_report_matches_hand_computations() -> None:
    interp = scripted(["a", "b", "c"])
    report = interp.classification_report()
    # precision: tp / column sum = 2/4, 1/2, 1/2; recall: tp / row sum = 2/3, 1/2, 1/3
    assert report["a"]["precision"] == pytest.approx(0.5)
    assert report["a"]["recall"] == pytest.approx(2 / 3)
    assert report["a"]["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert report["c"]["recall"] == pytest.approx(1 / 3)
    assert report["c"]["f1"] == pytest.approx(0.4)
    assert [report[name]["support"] for name in "abc"] == [3, 2, 3]
    assert report["accuracy"]["value"] == pytest.approx(0.5)
    macro_f1 = (2 * 0.5 * (2 / 3) / (0.5 + 2 / 3) + 0.5 + 0.4) / 3
    assert report["macro avg"]["f1"] == pytest.approx(macro_f1)
    assert report["macro avg"]["recall"] == pytest.approx(0.5)
    weighted_recall = (3 * (2 / 3) + 2 * 0.5 + 3 * (1 / 3)) / 8
    assert report["weighted avg"]["recall"] == pytest.approx(weighted_recall)


def test_print_classification_report_prints_and_returns_the_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = scripted(["cat", "dog", "bird"]).print_classification_report()
    assert capsys.readouterr().out.strip() == text.strip()
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.strip()}
    assert rows["cat"] == ["0.50", "0.67", "0.57", "3"]
    assert rows["accuracy"] == ["0.50", "8"]
    assert rows["macro"][1:] == ["0.50", "0.50", "0.49", "8"]


def test_class_with_no_items_reports_zero_not_nan() -> None:
    interp = scripted(["a", "b", "c", "d"])  # 'd' never appears nor is predicted
    assert interp.confusion_matrix().shape == (4, 4)
    report = interp.classification_report()
    assert report["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0.0}


def test_from_learner_on_a_trained_classifier(tmp_path: Path) -> None:
    learn = tiny_classifier(tmp_path)
    learn.fit(2, 1e-2)
    interp = ClassificationInterpretation.from_learner(learn)
    assert interp.confusion_matrix().sum() == 32
    assert interp.vocab == [0, 1]  # tensors carry no vocabulary
    raw, targets = learn.get_preds(act=False)
    expected = F.cross_entropy(raw, targets, reduction="none")
    torch.testing.assert_close(interp.losses, expected)
    torch.testing.assert_close(interp.decoded, raw.argmax(1))
    accuracy = (interp.decoded == interp.targets).float().mean().item()
    report = interp.classification_report()
    assert report["accuracy"]["value"] == pytest.approx(accuracy)
    assert interp.inputs is not None and interp.inputs.shape == (32, 5)
    fname = tmp_path / "top.png"
    interp.plot_top_losses(4, fname=fname)  # inputs without a block: their values as text
    assert fname.stat().st_size > 0
    with pytest.raises(ValueError, match="vision learner"):
        interp.plot_top_losses(4, heatmap=True)


def test_multi_label_targets_are_refused() -> None:
    probs = torch.rand(4, 3)
    with pytest.raises(ValueError, match="single-label"):
        ClassificationInterpretation(None, None, probs, (probs > 0.5).float(), torch.rand(4))
    with pytest.raises(ValueError, match=r"\[N, C\]"):
        ClassificationInterpretation(
            None, None, torch.rand(4), torch.zeros(4).long(), torch.rand(4)
        )


def test_plots_write_png_files(tmp_path: Path) -> None:
    interp = scripted(["a", "b", "c"])
    for normalize in (False, True):
        fname = tmp_path / f"cm_{normalize}.png"
        fig = interp.plot_confusion_matrix(normalize=normalize, fname=fname)
        assert fname.stat().st_size > 0
        cell_texts = [text.get_text() for text in fig.axes[0].texts]
        assert cell_texts[:3] == (["2", "1", "0"] if not normalize else ["0.67", "0.33", "0.00"])
    fname = tmp_path / "top_losses.png"
    fig = interp.plot_top_losses(k=5, fname=fname)  # image-shaped inputs, drawn rescaled
    assert fname.stat().st_size > 0
    losses, indices = interp.top_losses(5)
    first = int(indices[0])
    title = fig.axes[0].get_title()
    assert title.startswith(f"{'abc'[PREDICTED[first]]}/{'abc'[TARGETS[first]]} / ")
    assert f"{losses[0].item():.2f}" in title
