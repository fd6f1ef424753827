"""Text: mentor's `Tokenizer` against spaCy's tokenizer with the same rules around it.

On the `imdb_sample` reviews repeated to about 5 MB of text, both sides run the same default
string rules (`fix_html`, `replace_rep`, `replace_wrep`, `spec_add_spaces`,
`rm_useless_spaces`) before splitting and the same token rules (`replace_all_caps`,
`replace_maj`, `lowercase`, `xxbos`) after; only the word splitter differs: mentor's compiled
regular expression or `spacy.blank("en").tokenizer`. Both run in one process; mentor is also
timed with parallel workers (`tokenize_texts`, all CPUs), reported separately.

Throughput is tokens (mentor's count) per second, median of several runs; the ratio is
mentor / spaCy, single process (target >= 3).

Run: `PYTHONPATH=. python -m bench.tokenize` (about a minute); spaCy is needed
(`pip install spacy`), `--quick` for a smoke run on 1 MB.
"""

from __future__ import annotations

import argparse
import os
import sys

import pandas as pd

from bench.common import machine, median_time
from mentor.core.paths import data_path
from mentor.text.backends import SpacyTokenizer
from mentor.text.tokenize import Tokenizer

TARGET = 3.0


def imdb_texts(n_chars: int) -> list[str]:
    """The `imdb_sample` reviews, repeated until they hold at least `n_chars` characters."""
    texts = list(pd.read_csv(data_path("imdb_sample") / "texts.csv")["text"])
    size = sum(len(t) for t in texts)
    return texts * -(-n_chars // size)


def main() -> None:
    """Time both tokenizers and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 MB of text, 2 runs")
    args = parser.parse_args()
    try:
        import spacy  # noqa: F401
    except ImportError:
        print("this benchmark compares with spaCy, which is not installed: pip install spacy")
        sys.exit(1)
    texts = imdb_texts(1_000_000 if args.quick else 5_000_000)
    repeats = 2 if args.quick else 5
    n_mb = sum(len(t) for t in texts) / 1e6
    ours, spacy_tok = Tokenizer(n_workers=1), SpacyTokenizer("en", n_workers=1)
    parallel = Tokenizer(n_workers=os.cpu_count() or 1)
    n_tokens = sum(len(t) for t in ours.tokenize_texts(texts))
    n_spacy = sum(len(t) for t in spacy_tok.tokenize_texts(texts[:200]))
    assert parallel.tokenize_texts(texts) == ours.tokenize_texts(texts)

    ours_s = median_time(lambda: ours.tokenize_texts(texts), repeats)
    parallel_s = median_time(lambda: parallel.tokenize_texts(texts), repeats)
    spacy_s = median_time(lambda: spacy_tok.tokenize_texts(texts), max(2, repeats // 2))
    ratio = spacy_s / ours_s
    verdict = "PASS" if ratio >= TARGET else "MISS"
    print(f"machine: {machine()}, {os.cpu_count()} CPUs")
    print(f"text: imdb_sample x{len(texts) // 1000}k reviews, {n_mb:.1f} MB, {n_tokens:,} tokens")
    print(
        f"tokenize: mentor {n_tokens / ours_s / 1e6:.2f} M tokens/s ({ours_s:.2f} s), "
        f"spaCy + same rules {n_tokens / spacy_s / 1e6:.2f} M tokens/s ({spacy_s:.2f} s), "
        f"ratio {ratio:.2f} (target >= {TARGET}) {verdict}"
    )
    print(
        f"      mentor with {parallel.n_workers} workers: "
        f"{n_tokens / parallel_s / 1e6:.2f} M tokens/s ({parallel_s:.2f} s); "
        f"spaCy gives {n_spacy / max(1, sum(len(t) for t in ours.tokenize_texts(texts[:200]))):.3f}"
        " x mentor's token count on the first 200 reviews"
    )


if __name__ == "__main__":
    main()
