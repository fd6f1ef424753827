"""Layer 7: export and load without pickle, and fast prediction.

`learn.export(path)` writes one `.mentor` file (see `mentor.inference.export` for its
layout); `Predictor.load(path)` reads it for fast `predict` / `predict_batch` without the
training loop; `load_learner(path)` gives a light `Learner` for `predict` and `get_preds`.
"""

from mentor.inference.export import export_learner
from mentor.inference.learner import InferenceDataLoaders, load_learner
from mentor.inference.load import FORMAT_VERSION, KNOWN_FACTORIES, read_exported
from mentor.inference.predictor import Predictor

__all__ = [
    "FORMAT_VERSION",
    "KNOWN_FACTORIES",
    "InferenceDataLoaders",
    "Predictor",
    "export_learner",
    "load_learner",
    "read_exported",
]
