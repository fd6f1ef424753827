"""Layer 8: put a model to work. `mentor serve` (a web page and an HTTP API with request
batching: `create_app`) and `mentor clean` (the data cleaner: `DatasetCleaner`, its page
`create_clean_app`, and `apply_log` / `undo_log` that move the files).

FastAPI and uvicorn (the `serve` extra) are imported only by the app modules. Public names
load lazily (see `mentor.core.lazy`).
"""

from typing import TYPE_CHECKING

from mentor.core.lazy import attach

if TYPE_CHECKING:
    from mentor.serve.app import create_app
    from mentor.serve.clean import DatasetCleaner
    from mentor.serve.clean_app import create_clean_app
    from mentor.serve.clean_apply import apply_log, undo_log
    from mentor.serve.limits import Limits
    from mentor.serve.server import ServeConfig, serve
else:  # a type checker reads the imports above; Python loads each name on first use
    __getattr__, __dir__, __all__ = attach(
        __name__,
        {
            "mentor.serve.app": ("create_app",),
            "mentor.serve.clean": ("DatasetCleaner",),
            "mentor.serve.clean_app": ("create_clean_app",),
            "mentor.serve.clean_apply": ("apply_log", "undo_log"),
            "mentor.serve.limits": ("Limits",),
            "mentor.serve.server": ("ServeConfig", "serve"),
        },
        submodules=(
            "app",
            "batcher",
            "clean",
            "clean_app",
            "clean_apply",
            "clean_log",
            "clean_scores",
            "describe",
            "limits",
            "metrics",
            "model",
            "server",
        ),
    )
