"""ULMFiT from scratch on a CPU: a language model fine-tuned on all the texts, its encoder
saved, then a classifier trained on top with gradual unfreezing (lessons 4 and 8).

`python -m examples.ulmfit --data review_polarity` (2,000 reviews in folders, 20% validation;
about 6 minutes on 2 cores) or `--data imdb` (imdb_sample's texts.csv, 800 / 200 reviews).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from mentor import set_seed
from mentor.data.external import untar_data
from mentor.text import (
    AWD_LSTM,
    TextDataLoaders,
    TextLearner,
    Vocab,
    language_model_learner,
    text_classifier_learner,
)
from mentor.train import Callback, CancelValidate

MAX_VOCAB = 8000  # the softmax over the vocabulary is most of a CPU language model's time


@dataclass
class Recipe:
    """The knobs of a run: epochs of each stage, their learning rates and dropouts.

    On review_polarity, two language-model epochs (perplexity 136 -> 107) measured the best
    mean accuracy of one, two and three, but the language model's random draw moves the
    classifier's mean by as much as the epochs do; see the README's results.
    """

    lm_epochs: int = 2
    lm_lr: float = 2e-2
    lm_drop_mult: float = 0.3
    unfrozen_epochs: int = 3
    unfrozen_lr: float = 2e-3
    clas_drop_mult: float = 0.5
    bs: int = 32
    clas_bs: int = 32
    moms: tuple[float, float, float] = (0.95, 0.85, 0.95)
    # validate after every epoch (False: only after the very last; validation changes no
    # weight and draws no random number, so the final accuracy is the same, sooner)
    validate_stages: bool = True


class SkipValidation(Callback):
    """Skips validation: in every epoch of a fit (`final=False`), or in all but its last."""

    def __init__(self, final: bool) -> None:
        super().__init__()
        self.final = final

    def before_validate(self) -> None:
        """Skip, unless this is the last epoch of the final fit."""
        if not (self.final and self.learn.epoch == self.learn.n_epoch - 1):
            raise CancelValidate()


@dataclass
class Result:
    """What a ULMFiT run measured."""

    lm_seconds: float
    lm_perplexity: float
    classifier_seconds: float
    accuracy: float
    vocab_size: int


def language_model(dls_lm: TextDataLoaders, path: Path, recipe: Recipe) -> float:
    """Train the language model, save its encoder as 'encoder'; returns its perplexity."""
    learn = language_model_learner(dls_lm, AWD_LSTM, drop_mult=recipe.lm_drop_mult, path=path)
    learn.fit_one_cycle(recipe.lm_epochs, recipe.lm_lr, moms=recipe.moms)
    learn.save_encoder("encoder")
    print(learn.predict("This movie is", n_words=20, temperature=0.75))
    return float(learn.recorder.values[-1]["perplexity"])


def classifier(dls: TextDataLoaders, path: Path, recipe: Recipe) -> TextLearner:
    """The classifier on the saved encoder, with gradual unfreezing: the head, then the last
    LSTM layer too, then the next, then everything."""
    learn = text_classifier_learner(dls, AWD_LSTM, drop_mult=recipe.clas_drop_mult, path=path)
    learn.load_encoder("encoder")
    moms = recipe.moms
    cbs = [] if recipe.validate_stages else [SkipValidation(final=False)]
    learn.fit_one_cycle(1, 2e-2, moms=moms, cbs=cbs)
    learn.freeze_to(-2)
    learn.fit_one_cycle(1, slice(1e-2 / 2.6**4, 1e-2), moms=moms, cbs=cbs)
    learn.freeze_to(-3)
    learn.fit_one_cycle(1, slice(5e-3 / 2.6**4, 5e-3), moms=moms, cbs=cbs)
    learn.unfreeze()
    lr = recipe.unfrozen_lr
    last = [] if recipe.validate_stages else [SkipValidation(final=True)]
    learn.fit_one_cycle(recipe.unfrozen_epochs, slice(lr / 2.6**4, lr), moms=moms, cbs=last)
    return learn


def _pipeline(
    path: Path,
    recipe: Recipe,
    lm_data: Callable[[int], TextDataLoaders],
    clas_data: Callable[[Vocab, int], TextDataLoaders],
) -> Result:
    """The language model on `lm_data(bs)`, then the classifier on `clas_data(vocab, bs)`
    with the language model's vocabulary; each stage's time includes building its data."""
    start = time.perf_counter()
    dls_lm = lm_data(recipe.bs)
    perplexity = language_model(dls_lm, path, recipe)
    lm_seconds = time.perf_counter() - start
    start = time.perf_counter()
    learn = classifier(clas_data(dls_lm.text_vocab, recipe.clas_bs), path, recipe)
    seconds = time.perf_counter() - start
    accuracy = float(learn.recorder.values[-1]["accuracy"])
    return Result(lm_seconds, perplexity, seconds, accuracy, len(dls_lm.text_vocab))


def review_polarity(path: Path, recipe: Recipe | None = None) -> Result:
    """The pipeline on review_polarity's folders (pos / neg), 20% validation."""
    root = untar_data("review_polarity") / "txt_sentoken"
    return _pipeline(
        path,
        recipe or Recipe(),
        lambda bs: TextDataLoaders.from_folder(root, valid_pct=0.1, seed=42, is_lm=True, bs=bs,
                                               max_vocab=MAX_VOCAB),
        lambda vocab, bs: TextDataLoaders.from_folder(root, valid_pct=0.2, seed=42,
                                                      text_vocab=vocab, bs=bs),
    )  # fmt: skip


def imdb(path: Path, recipe: Recipe | None = None) -> Result:
    """The pipeline on imdb_sample: the language model on all 1,000 texts (10% to validate
    it), the classifier on the csv's own split."""
    df = pd.read_csv(untar_data("imdb_sample") / "texts.csv")
    return _pipeline(
        path,
        recipe or Recipe(),
        lambda bs: TextDataLoaders.from_df(df, text_col="text", is_lm=True, valid_pct=0.1,
                                           seed=42, bs=bs, max_vocab=MAX_VOCAB),
        lambda vocab, bs: TextDataLoaders.from_df(df, text_col="text", label_col="label",
                                                  valid_col="is_valid", text_vocab=vocab, bs=bs),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run the chosen data set(s) and print what was measured."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", choices=["review_polarity", "imdb", "both"], default="both")
    parser.add_argument("--out", default="ulmfit_out", help="folder for the saved encoder")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default all)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = ["review_polarity", "imdb"] if args.data == "both" else [args.data]
    for name in names:
        set_seed(42)
        result = (review_polarity if name == "review_polarity" else imdb)(Path(args.out) / name)
        print(
            f"{name}: language model {result.lm_seconds:.0f} s (perplexity "
            f"{result.lm_perplexity:.1f}, vocabulary {result.vocab_size}), classifier "
            f"{result.classifier_seconds:.0f} s, validation accuracy {result.accuracy:.4f}, "
            f"total {result.lm_seconds + result.classifier_seconds:.0f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
