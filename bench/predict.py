"""Inference: `Predictor.predict` latency against a hand-written PyTorch path (issue 7).

Three exported models, each loaded with `Predictor.load` from its `.mentor` file:

- vision: `vision_learner(dls, 'resnet18', pretrained=False)` on `mnist_sample` (grey 28x28
  PNGs, normalized with MNIST statistics, not trained); the item is a PNG path;
- tabular: `tabular_learner(dls, layers=[200, 100])` on `adult_sample` after one epoch; the
  item is one row as a dict;
- text: `text_classifier_learner(dls, size='tiny')` on `imdb_sample` (not trained); the item
  is one review.

The hand-written side uses the same model object (eval mode, `torch.inference_mode()`) and
does the same preprocessing directly: PIL + numpy + torch for the image, dict lookups and
the fitted statistics for the row, the same tokenizer function + a dict for the text. Both
sides are checked to give the same probabilities (1e-5) before timing. Latency: median of
200 single-item calls per side after a warm-up, in alternating rounds; the ratio is
mentor / hand-written (target <= 1.5). Also printed: `predict_batch(items, bs=64)` items
per second. One intra-op thread (`torch.set_num_threads(1)`).

Run: `python -m bench.predict` (about a minute), or `--quick` for a smoke run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from bench.common import machine, median_time
from mentor.core.paths import data_path
from mentor.data.external import untar_data
from mentor.inference.predictor import Predictor

TARGET = 1.5
MNIST_STATS = ([0.1307], [0.3081])


@dataclass
class Case:
    """One model: the predictor, the hand-written function, one item and a batch of items."""

    name: str
    predictor: Predictor
    by_hand: Callable[[Any], torch.Tensor]
    item: Any
    items: Sequence[Any]
    mentor_s: list[float] = field(default_factory=list)
    hand_s: list[float] = field(default_factory=list)
    batch_items_per_s: float = 0.0

    @property
    def ratio(self) -> float:
        """median(mentor) / median(hand-written) of single-item latency."""
        return statistics.median(self.mentor_s) / statistics.median(self.hand_s)

    def line(self) -> str:
        """The printed summary."""
        verdict = "PASS" if self.ratio <= TARGET else "MISS"
        return (
            f"{self.name}: predict {statistics.median(self.mentor_s) * 1e3:.3f} ms, "
            f"hand-written {statistics.median(self.hand_s) * 1e3:.3f} ms, ratio "
            f"{self.ratio:.3f} (target <= {TARGET}) {verdict}; predict_batch(bs=64) "
            f"{self.batch_items_per_s:,.0f} items/s"
        )


def vision_case(folder: Path) -> Case:
    """resnet18 (untrained, 1 channel) on mnist_sample, exported and loaded."""
    from mentor.data.transforms import Normalize
    from mentor.vision import ImageDataLoaders, vision_learner

    root = untar_data("mnist_sample")
    dls = ImageDataLoaders.from_folder(
        root, img_mode="L", batch_tfms=[Normalize.from_stats(*MNIST_STATS)], bs=64,
        num_workers=0, device="cpu",
    )  # fmt: skip
    learn = vision_learner(dls, "resnet18", pretrained=False)
    predictor = Predictor.load(learn.export(folder / "mnist"))
    model = predictor.model
    mean = torch.tensor(MNIST_STATS[0]).view(-1, 1, 1)
    std = torch.tensor(MNIST_STATS[1]).view(-1, 1, 1)

    def by_hand(path: Any) -> torch.Tensor:
        pixels = np.array(Image.open(path).convert("L"))  # 28x28 already: no resize
        x = (torch.from_numpy(pixels)[None].float() / 255 - mean) / std
        with torch.inference_mode():
            return model(x[None]).softmax(-1)[0]

    paths = sorted((root / "valid" / "3").glob("*.png"))[:256]
    return Case("vision (mnist_sample, resnet18)", predictor, by_hand, paths[0], paths)


def tabular_case(folder: Path, quick: bool) -> Case:
    """tabular_learner on adult_sample after one epoch, exported and loaded."""
    from examples.adult import adult_dls
    from mentor.tabular import tabular_learner

    df = pd.read_csv(data_path("adult_sample") / "adult.csv")
    dls = adult_dls(df.iloc[:2000] if quick else df, bs=64, device="cpu")
    learn = tabular_learner(dls, layers=[200, 100])
    learn.progress.show = False
    learn.fit(1, 1e-2)
    predictor = Predictor.load(learn.export(folder / "adult"))
    by_hand = hand_tabular(dls.preprocessor, predictor.model)
    rows = df.drop(columns="salary").iloc[:1024].to_dict("records")
    return Case("tabular (adult_sample)", predictor, by_hand, rows[0], rows)


def hand_tabular(pre: Any, model: torch.nn.Module) -> Callable[[Any], torch.Tensor]:
    """One row through the fitted FillMissing, Categorify and Normalize, by hand."""
    procs = {type(proc).__name__: proc for proc in pre.procs}
    fill, cat, norm = procs["FillMissing"], procs["Categorify"], procs["Normalize"]
    codes = {name: {v: i + 1 for i, v in enumerate(vocab)} for name, vocab in cat.vocabs.items()}
    cat_names, cont_names = list(pre.out_cat_names), list(pre.cont_names)

    def by_hand(row: dict[str, Any]) -> torch.Tensor:
        values = {}
        for name in cont_names:
            value = row[name]
            missing = value is None or value != value
            values[f"{name}_na"] = missing
            values[name] = fill.fill_values[name] if missing else float(value)
        cats = [codes[n].get(row[n] if n in row else values[n], 0) for n in cat_names]
        conts = [(values[n] - norm.means[n]) / norm.stds[n] for n in cont_names]
        x_cat = torch.tensor([cats], dtype=torch.int64)
        x_cont = torch.tensor([conts], dtype=torch.float64).float()
        with torch.inference_mode():
            return model(x_cat, x_cont).softmax(-1)[0]

    return by_hand


def text_case(folder: Path) -> Case:
    """text_classifier_learner (tiny, untrained) on imdb_sample, exported and loaded."""
    from mentor.text import TextDataLoaders, text_classifier_learner

    df = pd.read_csv(data_path("imdb_sample") / "texts.csv")
    dls = TextDataLoaders.from_df(
        df, text_col="text", label_col="label", valid_col="is_valid", device="cpu"
    )
    learn = text_classifier_learner(dls, size="tiny")
    predictor = Predictor.load(learn.export(folder / "imdb"))
    model, tokenizer = predictor.model, dls.tokenizer
    stoi = dict(dls.text_vocab.stoi)

    def by_hand(text: str) -> torch.Tensor:
        ids = torch.tensor([[stoi.get(token, 0) for token in tokenizer(text)]])
        with torch.inference_mode():
            return model(ids).softmax(-1)[0]

    texts = df["text"].tolist()[:256]
    return Case("text (imdb_sample, AWD-LSTM tiny)", predictor, by_hand, texts[0], texts)


def measure(case: Case, calls: int, warmup: int, rounds: int = 5) -> None:
    """Check equal outputs, then time single calls of both sides in alternating rounds and
    `predict_batch` over the case's items."""
    expected = case.predictor.predict(case.item)[1]
    torch.testing.assert_close(case.by_hand(case.item), expected, rtol=0, atol=1e-5)
    sides = [(case.mentor_s, lambda: case.predictor.predict(case.item)),
             (case.hand_s, lambda: case.by_hand(case.item))]  # fmt: skip
    for _, fn in sides:
        for _ in range(warmup):
            fn()
    per_round = max(1, calls // rounds)
    for index in range(rounds):
        for times, fn in sides if index % 2 == 0 else sides[::-1]:
            for _ in range(per_round):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
    batch_s = median_time(lambda: case.predictor.predict_batch(case.items, bs=64), repeats=3)
    case.batch_items_per_s = len(case.items) / batch_s


def main(argv: Sequence[str] | None = None) -> list[Case]:
    """Build, export and load the three models; measure and print every figure."""
    parser = argparse.ArgumentParser(description="Predictor.predict against hand-written.")
    parser.add_argument("--quick", action="store_true", help="20 calls per side, small data")
    parser.add_argument("--calls", type=int, default=None, help="timed calls per side (200)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    calls = args.calls or (20 if args.quick else 200)
    warmup = 5 if args.quick else 20
    print(f"machine: {machine()} (torch.set_num_threads(1) for single-item latency)")
    print(f"latency: median of {calls} calls per side after {warmup} warm-up calls, "
          "alternating rounds", flush=True)  # fmt: skip
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        for build in (vision_case, lambda d: tabular_case(d, args.quick), text_case):
            case = build(Path(tmp))
            if args.quick:
                case.items = case.items[:64]
            measure(case, calls, warmup)
            print(case.line(), flush=True)
            cases.append(case)
    return cases


if __name__ == "__main__":
    main()
