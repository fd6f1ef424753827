"""`mentor predict`, `info`, `evaluate` and `demo`: commands on an exported `.mentor` file."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from mentor.cli.train import CLIError, _column, _existing, _read_csv
from mentor.data.items import get_image_files
from mentor.inference import Predictor


def load_predictor(args: argparse.Namespace) -> Predictor:
    """The model file as a Predictor, with a clear error when it is missing or not a model."""
    _existing(args.model, "model file")
    return Predictor.load(args.model, device=args.device)


def _as_key(text: str, known: dict[Any, int]) -> Any:
    """A user or item id typed on the command line, as the vocabulary spells it."""
    if text in known:
        return text
    for kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            continue
        if value in known:
            return value
    return text


def _items(predictor: Predictor, raw: str) -> Iterator[tuple[str, Any]]:
    """`(name, item)` pairs for one command-line INPUT, by the model's application."""
    app = predictor.application
    if app == "vision":
        _existing(raw, "image")
        yield raw, raw
    elif app == "tabular":
        df = _read_csv(raw)
        for i, (_, row) in enumerate(df.iterrows()):
            yield f"{raw}:{i}", row
    elif app == "collab":
        parts = raw.split(",")
        if len(parts) != 2:
            raise CLIError(f"a collab input must be USER,ITEM such as 196,242, got {raw!r}")
        inputs = predictor.inputs
        users, items = getattr(inputs, "user_index", {}), getattr(inputs, "item_index", {})
        yield raw, (_as_key(parts[0].strip(), users), _as_key(parts[1].strip(), items))
    else:
        yield raw, raw


def _top(predictor: Predictor, probs: torch.Tensor, k: int) -> list[tuple[Any, float]]:
    """The `k` most probable classes with their probabilities (empty for regression)."""
    vocab = predictor.vocab
    if not vocab or probs.dim() != 1 or probs.numel() != len(vocab):
        return []
    values, idx = probs.topk(min(k, len(vocab)))
    return [(vocab[int(i)], float(v)) for v, i in zip(values, idx)]


def _plain(value: Any) -> Any:
    """A label or number as JSON-friendly data."""
    if isinstance(value, torch.Tensor):
        return value.tolist()
    return value.item() if hasattr(value, "item") else value


def predict_command(args: argparse.Namespace) -> int:
    """Print one line (or JSON object) per input."""
    predictor = load_predictor(args)
    if args.n_words:
        return _generate(predictor, args)
    for raw in args.inputs:
        for name, item in _items(predictor, raw):
            decoded, probs = predictor.predict(item)
            top = _top(predictor, probs, args.top_k)
            label = _plain(decoded)
            prob = top[0][1] if top else None
            if args.json:
                record = {
                    "input": name,
                    "label": label,
                    "probability": prob,
                    "top": [{"label": _plain(c), "probability": p} for c, p in top],
                }
                print(json.dumps(record))
                continue
            shown = f"{prob:.4f}" if prob is not None else "-"
            others = "  ".join(f"{c}:{p:.4f}" for c, p in top)
            print(f"{name}\t{label}\t{shown}" + (f"\ttop: {others}" if top else ""))
    return 0


def _generate(predictor: Predictor, args: argparse.Namespace) -> int:
    """--n-words with a language model: each prompt followed by generated text."""
    for prompt in args.inputs:
        text = predictor.generate(prompt, args.n_words, args.temperature, seed=args.seed)
        print(json.dumps({"input": prompt, "text": text}) if args.json else text)
    return 0


def info_command(args: argparse.Namespace) -> int:
    """Print what the file holds: application, classes, model factory and meta."""
    predictor = load_predictor(args)
    spec, meta = predictor.model_spec, predictor.meta
    print(f"file:         {args.model}")
    print(f"application:  {predictor.application}")
    vocab = predictor.vocab
    classes = ", ".join(map(str, vocab[:20])) + (" ..." if len(vocab) > 20 else "")
    print(f"classes:      {len(vocab)}" + (f" ({classes})" if vocab else " (regression)"))
    print(f"model:        {spec.get('factory', spec.get('name', '?'))}")
    kwargs = spec.get("kwargs", spec.get("args"))
    if kwargs:
        print(f"arguments:    {json.dumps(kwargs)[:200]}")
    n_params = sum(p.numel() for p in predictor.model.parameters())
    print(f"parameters:   {n_params:,}")
    print(f"mentor:       {meta.get('mentor_version', '?')}")
    print(f"torch:        {meta.get('torch_version', '?')}")
    print(f"created:      {meta.get('created', '?')}")
    metrics = meta.get("metrics") or {}
    for key, value in metrics.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"metric:       {key} = {shown}")
    return 0


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


def _evaluate_images(predictor: Predictor, folder: Path, n_top: int) -> None:
    """Accuracy, confusion matrix and top losses on a folder of <label>/ images."""
    files, actual = _labelled_images(folder)
    unknown = sorted(set(actual) - {str(v) for v in predictor.vocab})
    if unknown:
        raise CLIError(f"folder labels {unknown} are not classes of the model "
                       f"({predictor.vocab}); check DATA")  # fmt: skip
    decoded, probs = predictor.predict_batch([str(f) for f in files])
    predicted = [str(d) for d in decoded]
    index = {str(v): i for i, v in enumerate(predictor.vocab)}
    target = torch.tensor([index[a] for a in actual])
    losses = -probs[torch.arange(len(files)), target].clamp_min(1e-12).log()
    acc = sum(a == p for a, p in zip(actual, predicted)) / len(files)
    print(f"images:   {len(files)}")
    print(f"accuracy: {acc:.4f}")
    print("confusion matrix:")
    print(_confusion(actual, predicted, predictor.vocab))
    print(f"top {min(n_top, len(files))} losses (file, actual, predicted, loss, probability):")
    for i in losses.argsort(descending=True)[:n_top].tolist():
        print(f"  {files[i]}\t{actual[i]}\t{predicted[i]}\t{float(losses[i]):.4f}\t"
              f"{float(probs[i].max()):.4f}")  # fmt: skip


def _evaluate_table(predictor: Predictor, csv: str, target: str | None) -> None:
    """Accuracy (classification) or MSE (regression) on a CSV holding the target column."""
    if target is None:
        raise CLIError("evaluate on a tabular model needs --target COL, the column to score")
    df = _read_csv(csv)
    _column(df, target, "--target")
    decoded, _ = predictor.predict_batch(df)
    if predictor.vocab:
        acc = sum(str(d) == str(t) for d, t in zip(decoded, df[target])) / len(df)
        print(f"rows:     {len(df)}\naccuracy: {acc:.4f}")
    else:
        pred = torch.tensor([float(d) for d in decoded])
        mse = float(((pred - torch.tensor(df[target].astype(float).values)) ** 2).mean())
        print(f"rows:     {len(df)}\nmse:      {mse:.4f}")


def evaluate_command(args: argparse.Namespace) -> int:
    """Score the model on labelled data: images in a folder, or a tabular CSV."""
    predictor = load_predictor(args)
    data = _existing(args.data, "data")
    if predictor.application == "vision" and data.is_dir():
        _evaluate_images(predictor, data, args.top_losses)
    elif predictor.application == "tabular":
        _evaluate_table(predictor, args.data, args.target)
    else:
        raise CLIError(f"evaluate handles image models with a folder and tabular models with a "
                       f"CSV; got a {predictor.application} model and {args.data!r}")  # fmt: skip
    return 0


def demo_command(args: argparse.Namespace) -> int:
    """Run the digits tour from `examples.digits`, when the examples are importable."""
    try:
        from examples.digits import main as digits_main  # type: ignore[import-not-found]
    except ImportError as err:
        raise CLIError(
            f"the demo needs the examples package (run from a mentor checkout, with "
            f"scikit-learn installed: pip install mentor[demo]): {err}"
        ) from err
    return int(digits_main([]))
