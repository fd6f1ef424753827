"""The serving benchmark's baseline: the server a user writes by hand around `Predictor`.

A FastAPI app whose `/predict` takes one uploaded image and calls `Predictor.predict` on it,
in a plain `def` endpoint (FastAPI runs it in its thread pool, as its documentation advises
for blocking code). No batching. PyTorch threads are set as `mentor serve` sets them, so
the comparison is about batching, not about thread settings.

Run: `python -m bench.serve_baseline MODEL PORT [THREADS]` (the benchmark starts it).
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from fastapi import FastAPI, UploadFile

from mentor.inference import Predictor
from mentor.serve.server import threads_per_worker


def create_baseline_app(model: str) -> FastAPI:
    """One `Predictor.predict` per request."""
    predictor = Predictor.load(model)
    app = FastAPI()

    @app.post("/predict")
    def predict(file: UploadFile) -> dict[str, Any]:
        label, probs = predictor.predict(file.file.read())
        classes = predictor.vocab
        return {"label": label, "probabilities": dict(zip(classes, probs.tolist()))}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


if __name__ == "__main__":
    import uvicorn

    torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else threads_per_worker(1))
    uvicorn.run(create_baseline_app(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]),
                log_level="warning")  # fmt: skip
