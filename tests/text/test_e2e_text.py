"""End to end on real text: a word language model on wikitext-2-partial, a character LSTM on
Nietzsche, and ULMFiT from scratch on review_polarity (slow; CI runs them)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from examples import nietzsche, wikitext_lm
from mentor.text import generate

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _quiet_threads() -> None:
    torch.set_num_threads(2)


def test_awd_lstm_on_wikitext_reaches_a_sane_perplexity_and_generates() -> None:
    learn, seconds, tokens_per_s = wikitext_lm.train()
    perplexity = learn.recorder.values[-1]["perplexity"]
    print(f"wikitext-2-partial: perplexity {perplexity:.1f}, {tokens_per_s:,.0f} tokens/s")
    assert perplexity < 400  # measured 163 (the bar is 1,000)
    prompt = learn.dls.numericalize(["The history of the"])[0].tolist()
    assert len(generate(learn.model, prompt, 25, temperature=0.75)) == 25
    text = learn.predict("The history of the", n_words=25, temperature=0.75)
    assert text.startswith("The history of the") and len(text.split()) > 10


def test_char_lstm_on_nietzsche_learns_english_looking_text() -> None:
    learn = nietzsche.train(epochs=5)  # one fewer than the example, for CI time
    loss = learn.recorder.values[-1]["valid_loss"]
    assert loss < 1.6  # nats per character; measured 1.550 (6 epochs: 1.498)
    sample = learn.predict("The ", n_words=300, temperature=0.5)
    words = re.findall(r"[A-Za-z]+", sample)
    common = {"the", "of", "and", "to", "in", "is", "that", "a", "it", "as", "which"}
    assert sum(w.lower() in common for w in words) >= 5, sample


_ULMFIT_SCRIPT = """
import dataclasses, json, sys
from pathlib import Path
import torch
torch.set_num_threads(2)
from examples import ulmfit
from mentor import set_seed
set_seed(42)  # as `python -m examples.ulmfit`
result = ulmfit.review_polarity(Path(sys.argv[1]), ulmfit.Recipe(validate_stages=False))
print(json.dumps(dataclasses.asdict(result)))
"""


def test_ulmfit_from_scratch_on_review_polarity(tmp_path: Path) -> None:
    # The example's recipe (forward and backward models, probabilities averaged); only the
    # intermediate stages' validation is skipped (CI time). It runs in a process of its
    # own, so the memory of its four learners goes back to the system when it ends.
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _ULMFIT_SCRIPT, str(tmp_path)],
        capture_output=True, text=True, timeout=900, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"review_polarity: {result}, {seconds:.0f} s")
    # the issue asks 0.70 in 10 minutes: measured 0.715 (forward 0.695, backward 0.6975) in
    # about 505 s with this seed; a single direction averages 0.69-0.70 over seeds, the pair
    # 0.71 (see the README)
    assert len(result["direction_accuracy"]) == 2
    assert result["accuracy"] >= 0.70
    assert seconds < 600
