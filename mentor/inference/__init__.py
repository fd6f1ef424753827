"""Layer 7: export and load without pickle, and fast prediction.

`learn.export(path)` writes one `.mentor` file (see `mentor.inference.export` for its
layout); `Predictor.load(path)` reads it for fast `predict` / `predict_batch` without the
training loop; `load_learner(path)` gives a light `Learner` for `predict` and `get_preds`.

Public names load lazily (see `mentor.core.lazy`).
"""

from typing import TYPE_CHECKING

from mentor.core.lazy import attach

if TYPE_CHECKING:
    from mentor.inference.export import export_learner
    from mentor.inference.learner import InferenceDataLoaders, load_learner
    from mentor.inference.load import FORMAT_VERSION, read_exported
    from mentor.inference.predictor import Predictor
else:  # a type checker reads the imports above; Python loads each name on first use
    __getattr__, __dir__, __all__ = attach(
        __name__,
        {
            "mentor.inference.export": ("export_learner",),
            "mentor.inference.learner": (
                "InferenceDataLoaders",
                "load_learner",
            ),
            "mentor.inference.load": (
                "FORMAT_VERSION",
                "read_exported",
            ),
            "mentor.inference.predictor": ("Predictor",),
        },
        submodules=(
            "export",
            "learner",
            "load",
            "masks",
            "migrate",
            "onnx_export",
            "predictor",
        ),
    )
