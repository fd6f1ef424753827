# make demo / make test / make reproduce / make bench / make lint: each creates .venv and
# installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast reproduce bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: the local CPU build (a bare "torch" pulls gigabytes of CUDA)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,demo,weights,serve]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m examples.digits --out demo_out

# one pytest-xdist worker per core, a file per worker at a time (module fixtures train once)
XDIST := -n auto --dist loadfile

test: $(STAMP)
	$(PY) -m pytest -q $(XDIST)

test-fast: $(STAMP)
	$(PY) -m pytest -q $(XDIST) -m "not slow"

# the README's figures with their full recipes (about 30 minutes; not run by CI)
reproduce: $(STAMP)
	$(PY) -m examples.reproduce --out reproduce_out

bench: $(STAMP)
	$(PY) -m bench.overhead
	$(PY) -m bench.channels_last
	$(PY) -m bench.collab
	$(PY) -m bench.predict
	$(PY) -m bench.text_lm
	# spaCy is the tokenizer benchmark's baseline only, not a dependency of mentor
	$(PY) -m pip install -q 'spacy>=3.7'
	$(PY) -m bench.tokenize

lint: $(STAMP)
	$(PY) -m ruff check mentor tests bench examples
	$(PY) -m mypy mentor
	# the typed contracts: the Learner facade and the core layer, under --strict
	$(PY) -m mypy --strict --follow-imports=silent mentor/train/learner.py mentor/core

clean:
	rm -rf $(VENV) demo_out reproduce_out .pytest_cache
