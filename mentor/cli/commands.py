"""`mentor predict`, `info` and `demo`: commands on an exported `.mentor` file.

`predict` goes through every INPUT: one that can't be read or predicted (a missing or corrupt
image, a bad row of a CSV) is reported on stderr, `mentor: error: INPUT: why`, and the others
are still predicted; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from mentor.cli.checks import check_device
from mentor.cli.errors import ITEM_ERRORS, CLIError, report_item
from mentor.cli.train import _existing, _read_csv
from mentor.data.blocks import TransformBlock
from mentor.data.transforms import IMAGE
from mentor.inference import Predictor
from mentor.inference.masks import class_shares, mask_png


def load_predictor(args: argparse.Namespace) -> Predictor:
    """The model file as a Predictor, with a clear error when it is missing or not a model."""
    _existing(args.model, "model file")
    device = check_device(args.device) or ("cuda" if torch.cuda.is_available() else "cpu")
    return Predictor.load(args.model, device=device)  # a damaged file: one ValueError


def _collab_pair(predictor: Predictor, raw: str) -> tuple[Any, Any]:
    """A USER,ITEM input as the ids the model knows."""
    parts = raw.split(",")
    if len(parts) != 2:
        raise CLIError(f"a collab input must be USER,ITEM such as 196,242, got {raw!r}")
    inputs = predictor.inputs
    user, item = parts[0].strip(), parts[1].strip()
    return inputs.known(user, "user"), inputs.known(item, "item")  # type: ignore[attr-defined]


def _items(predictor: Predictor, raw: str) -> Iterable[tuple[str, Any]]:
    """`(name, item)` pairs for one command-line INPUT, by the model's application (a CSV's
    rows for a tabular model). Raises at once for an INPUT that can't be read at all."""
    app = predictor.application
    if app == "vision":
        _existing(raw, "image")
    elif app == "tabular":
        df = _read_csv(raw)
        return ((f"{raw}:{i}", row) for i, (_, row) in enumerate(df.iterrows()))
    elif app == "collab":
        return [(raw, _collab_pair(predictor, raw))]
    return [(raw, raw)]


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


def _predicted_line(predictor: Predictor, name: str, item: Any, args: argparse.Namespace) -> str:
    """The output line of one item: `name<TAB>label<TAB>probability<TAB>top: ...`, or with
    --json a JSON object."""
    decoded, probs = predictor.predict(item)
    if _outputs_images(predictor):  # restoration: the image itself
        return _image_line(name, decoded, args)
    if isinstance(decoded, np.ndarray) and decoded.ndim == 2:  # a segmentation mask
        return _mask_line(predictor, name, decoded, args)
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
        return json.dumps(record)
    shown = f"{prob:.4f}" if prob is not None else "-"
    others = "  ".join(f"{c}:{p:.4f}" for c, p in top)
    return f"{name}\t{label}\t{shown}" + (f"\ttop: {others}" if top else "")


def _outputs_images(predictor: Predictor) -> bool:
    """Whether the model's target is an image (image to image)."""
    target = predictor.target
    return isinstance(target, TransformBlock) and target.kind == IMAGE


def _image_line(name: str, image: np.ndarray, args: argparse.Namespace) -> str:
    """Write a predicted image as `<out-dir>/<input's stem>.png` and name the file."""
    folder = Path(args.out_dir or "images")
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / f"{Path(name).stem}.png"
    Image.fromarray(image).save(file, format="PNG")
    height, width = image.shape[:2]
    if args.json:
        return json.dumps({"input": name, "image": str(file), "width": width, "height": height})
    return f"{name}\timage: {file}\t{width}x{height}"


def _mask_line(predictor: Predictor, name: str, mask: np.ndarray, args: argparse.Namespace) -> str:
    """Write a predicted mask as `<out-dir>/<input's stem>.png` (pixel value = class index)
    and describe it: the file and the `--top-k` classes with the largest shares of pixels."""
    folder = Path(args.out_dir or "masks")
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / f"{Path(name).stem}.png"
    file.write_bytes(mask_png(mask))
    present = class_shares(mask, predictor.vocab or [])
    largest = sorted(present, key=lambda entry: -entry[1])[: args.top_k]  # stable: ties by index
    shares = [(label, share) for label, _, share in largest]
    if args.json:
        classes = [{"label": label, "share": float(share)} for label, share in shares]
        return json.dumps({"input": name, "mask": str(file), "classes": classes})
    described = "  ".join(f"{label}:{share:.1%}" for label, share in shares)
    return f"{name}\tmask: {file}\tclasses: {described}"


def predict_command(args: argparse.Namespace) -> int:
    """Print one line (or JSON object) per input; a bad input is reported on stderr and
    skipped (exit status 1), the others are still predicted."""
    predictor = load_predictor(args)
    if args.n_words:
        return _generate(predictor, args)
    failed = 0
    for raw in args.inputs:
        try:
            items = _items(predictor, raw)
        except ITEM_ERRORS as err:
            failed += report_item(raw, err, args.debug)
            continue
        for name, item in items:
            try:
                line = _predicted_line(predictor, name, item, args)
            except ITEM_ERRORS as err:
                failed += report_item(name, err, args.debug)
                continue
            print(line)  # outside the try: a closed stdout is not a bad item
    return 1 if failed else 0


def _generate(predictor: Predictor, args: argparse.Namespace) -> int:
    """--n-words with a language model: each prompt followed by generated text."""
    failed = 0
    for prompt in args.inputs:
        try:
            text = predictor.generate(prompt, args.n_words, args.temperature, seed=args.seed)
        except ITEM_ERRORS as err:
            failed += report_item(prompt, err, args.debug)
            continue
        print(json.dumps({"input": prompt, "text": text}) if args.json else text)
    return 1 if failed else 0


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
