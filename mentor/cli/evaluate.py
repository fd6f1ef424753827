"""`mentor evaluate`: score an exported model on labelled images or a labelled CSV.

Items are predicted in chunks; a chunk with a bad item (an unreadable image, a bad row) is
predicted again one item at a time, so that only the bad items are skipped, each named on
stderr. The rest are scored, the count skipped is printed, and the exit status is then 1.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from mentor.cli.commands import load_predictor
from mentor.cli.errors import ITEM_ERRORS, CLIError, report_item
from mentor.cli.train import _column, _existing, _read_csv
from mentor.data.items import get_image_files
from mentor.inference import Predictor

CHUNK = 256  # items per predict_batch call: a bad item costs at most this many retries


@dataclass
class Scored:
    """The items that could be predicted: their positions in the input, labels and
    probabilities (`[n, ...]`)."""

    positions: list[int]
    labels: list[Any]
    probs: Tensor


def _take(items: Any, positions: list[int]) -> Any:
    """The items at `positions` of a list or the rows of a frame (renumbered from 0)."""
    if isinstance(items, pd.DataFrame):
        return items.iloc[positions].reset_index(drop=True)
    return [items[i] for i in positions]


def _predict_chunk(
    predictor: Predictor, items: Any, positions: list[int], names: list[str], debug: bool
) -> list[tuple[int, Any, Tensor]]:
    """`(position, label, probs)` of the items at `positions`; when the chunk fails, each
    item is predicted alone and the bad ones are reported on stderr and left out."""
    try:
        labels, probs = predictor.predict_batch(_take(items, positions))
        return list(zip(positions, labels, probs, strict=True))
    except ITEM_ERRORS as err:
        if len(positions) == 1:
            report_item(names[positions[0]], err, debug)
            return []
    results = []
    for i in positions:
        results += _predict_chunk(predictor, items, [i], names, debug)
    return results


def predict_all(predictor: Predictor, items: Any, names: list[str], debug: bool) -> Scored:
    """Predict every item (a list, or a frame's rows) that can be; `names[i]` names item `i`
    in the error line of a bad one. Raises CLIError when none could be predicted."""
    results: list[tuple[int, Any, Tensor]] = []
    for start in range(0, len(names), CHUNK):
        positions = list(range(start, min(start + CHUNK, len(names))))
        results += _predict_chunk(predictor, items, positions, names, debug)
    if not results:
        raise CLIError(f"none of the {len(names)} items could be predicted (each is named above)")
    return Scored([r[0] for r in results], [r[1] for r in results],
                  torch.stack([r[2] for r in results]))  # fmt: skip


def _labelled_images(folder: Path) -> tuple[list[Path], list[str]]:
    """Every image under `folder` with its parent folder's name as the label."""
    files = get_image_files(folder)
    if not files:
        raise CLIError(f"no images found under {str(folder)!r}; expected <label>/ subfolders")
    return files, [p.parent.name for p in files]


def _confusion(actual: list[str], predicted: list[str], vocab: list[Any]) -> str:
    """The confusion matrix as text (rows actual, columns predicted)."""
    names = [str(v) for v in vocab]
    counts = pd.crosstab(
        pd.Categorical(actual, names),
        pd.Categorical(predicted, names),
        rownames=["actual"],
        colnames=["predicted"],
        dropna=False,
    )
    return counts.to_string()


def _skipped_line(skipped: int, total: int, what: str) -> None:
    """Say how many items were left out of the scores (each was named on stderr)."""
    if skipped:
        print(f"skipped:  {skipped} of {total} {what} (each named on stderr)")


def _evaluate_images(predictor: Predictor, folder: Path, n_top: int, debug: bool) -> int:
    """Accuracy, confusion matrix and top losses on a folder of <label>/ images; returns the
    count of images skipped."""
    all_files, all_actual = _labelled_images(folder)
    unknown = sorted(set(all_actual) - {str(v) for v in predictor.vocab})
    if unknown:
        raise CLIError(f"folder labels {unknown} are not classes of the model "
                       f"({predictor.vocab}); check DATA")  # fmt: skip
    names = [str(f) for f in all_files]
    scored = predict_all(predictor, names, names, debug)
    files = [all_files[i] for i in scored.positions]
    actual = [all_actual[i] for i in scored.positions]
    probs, predicted = scored.probs, [str(d) for d in scored.labels]
    index = {str(v): i for i, v in enumerate(predictor.vocab)}
    target = torch.tensor([index[a] for a in actual])
    losses = -probs[torch.arange(len(files)), target].clamp_min(1e-12).log()
    acc = sum(a == p for a, p in zip(actual, predicted)) / len(files)
    print(f"images:   {len(files)}")
    _skipped_line(len(all_files) - len(files), len(all_files), "images")
    print(f"accuracy: {acc:.4f}")
    print("confusion matrix:")
    print(_confusion(actual, predicted, predictor.vocab))
    print(f"top {min(n_top, len(files))} losses (file, actual, predicted, loss, probability):")
    for i in losses.argsort(descending=True)[:n_top].tolist():
        print(f"  {files[i]}\t{actual[i]}\t{predicted[i]}\t{float(losses[i]):.4f}\t"
              f"{float(probs[i].max()):.4f}")  # fmt: skip
    return len(all_files) - len(files)


def _evaluate_table(predictor: Predictor, csv: str, target: str | None, debug: bool) -> int:
    """Accuracy (classification) or MSE (regression) on a CSV holding the target column;
    returns the count of rows skipped."""
    if target is None:
        raise CLIError("evaluate on a tabular model needs --target COL, the column to score")
    df = _read_csv(csv)
    _column(df, target, "--target")
    scored = predict_all(predictor, df, [f"{csv}:{i}" for i in range(len(df))], debug)
    truth = df[target].iloc[scored.positions]
    n = len(scored.positions)
    print(f"rows:     {n}")
    _skipped_line(len(df) - n, len(df), "rows")
    if predictor.vocab:
        acc = sum(str(d) == str(t) for d, t in zip(scored.labels, truth)) / n
        print(f"accuracy: {acc:.4f}")
    else:
        pred = torch.tensor([float(d) for d in scored.labels])
        mse = float(((pred - torch.tensor(truth.astype(float).values)) ** 2).mean())
        print(f"mse:      {mse:.4f}")
    return len(df) - n


def evaluate_command(args: argparse.Namespace) -> int:
    """Score the model on labelled data: images in a folder, or a tabular CSV. Exit status 1
    when items were skipped (they are named on stderr; the rest are scored)."""
    predictor = load_predictor(args)
    data = _existing(args.data, "data")
    if predictor.application == "vision" and data.is_dir():
        skipped = _evaluate_images(predictor, data, args.top_losses, args.debug)
    elif predictor.application == "tabular":
        skipped = _evaluate_table(predictor, args.data, args.target, args.debug)
    else:
        raise CLIError(f"evaluate handles image models with a folder and tabular models with a "
                       f"CSV; got a {predictor.application} model and {args.data!r}")  # fmt: skip
    return 1 if skipped else 0
