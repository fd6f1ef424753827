"""The HTTP API of `mentor serve` for every application, and every request limit."""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from mentor.inference import Predictor
from mentor.serve.app import create_app
from mentor.serve.limits import Limits
from tests.serve import models
from tests.serve.live import live_server

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, mnist_tiny: Path) -> dict[str, Path]:
    """One exported model per application (about 15 s in all)."""
    folder = tmp_path_factory.mktemp("served")
    return {
        "digits": models.digits_model(mnist_tiny, folder),
        "multi": models.multi_label_model(mnist_tiny, folder),
        "regress": models.regression_model(mnist_tiny, folder),
        "table": models.tabular_model(folder),
        "recs": models.collab_model(folder),
        "reviews": models.text_model(folder),
        "lm": models.language_model(folder),
    }


def client(file: Path, **kw: Any) -> TestClient:
    return TestClient(create_app(file, **kw))


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def valid_digits(mnist_tiny: Path) -> list[tuple[Path, str]]:
    return [(p, label) for label in ("3", "7")
            for p in sorted((mnist_tiny / "valid" / label).glob("*.png"))[:12]]  # fmt: skip


# ----- one test per application -----
def test_image_classifier_answers_files_base64_and_lists(built, mnist_tiny: Path) -> None:
    digits = valid_digits(mnist_tiny)
    predictor = Predictor.load(built["digits"])
    with client(built["digits"]) as api:
        info = api.get("/info").json()
        assert info["task"] == "classification" and info["classes"] == ["3", "7"]
        assert info["input"] == "image" and "valid_loss" in info["metrics"]
        files = [("file", (p.name, p.read_bytes(), "image/png")) for p, _ in digits]
        many = api.post("/predict", files=files).json()
        labels = [r["label"] for r in many["predictions"]]
        assert sum(a == b for a, (_, b) in zip(labels, digits)) >= 20  # of 24
        single = api.post("/predict", json={"input": b64(digits[0][0])}).json()
        expected_label, expected = predictor.predict(digits[0][0])
        assert single["prediction"]["label"] == expected_label
        assert abs(single["prediction"]["probabilities"]["3"] - float(expected[0])) < 1e-5
        assert single["version"] == info["version"] == many["version"]
        raw = api.post("/predict", content=digits[1][0].read_bytes(),
                       headers={"content-type": "image/png"}).json()  # fmt: skip
        assert raw["prediction"]["label"] == labels[1]
        listed = api.post("/predict", json={"inputs": [b64(p) for p, _ in digits[:4]]}).json()
        assert [r["label"] for r in listed["predictions"]] == labels[:4]


def test_multi_label_and_regression_models(built, mnist_tiny: Path) -> None:
    image = b64(valid_digits(mnist_tiny)[0][0])
    with client(built["multi"]) as api:
        assert api.get("/info").json()["task"] == "multi_label"
        result = api.post("/predict", json={"input": image}).json()["prediction"]
        assert set(result["probabilities"]) == {"3", "7", "odd"}
        assert set(result["labels"]) <= {"3", "7", "odd"}
    with client(built["regress"]) as api:
        assert api.get("/info").json()["task"] == "regression"
        result = api.post("/predict", json={"input": image}).json()["prediction"]
        expected = float(
            Predictor.load(built["regress"]).predict(valid_digits(mnist_tiny)[0][0])[1]
        )
        assert abs(result["value"] - expected) < 1e-5


def test_tabular_model_schema_defaults_and_rows(built) -> None:
    with client(built["table"]) as api:
        info = api.get("/info").json()
        columns = {c["name"]: c for c in info["schema"]["columns"]}
        assert columns["color"]["kind"] == "categorical"
        assert set(columns["color"]["choices"]) == {"red", "green", "blue"}
        assert columns["color"]["default"] in {"red", "green", "blue"}
        assert columns["x"]["kind"] == "continuous" and isinstance(columns["x"]["default"], float)
        row = {"color": "red", "size": 2, "x": None, "z": 3.5}
        result = api.post("/predict", json={"input": row}).json()["prediction"]
        assert (
            result["label"] in ("yes", "no")
            and abs(sum(result["probabilities"].values()) - 1) < 1e-5
        )
        missing = api.post("/predict", json={"input": {"color": "red"}})
        assert missing.status_code == 422 and "['size', 'x', 'z']" in missing.json()["error"]
        word = api.post("/predict", json={"input": {**row, "z": "forty"}})
        assert word.status_code == 422 and "'z'" in word.json()["error"]


def test_collab_model_rates_pairs_and_recommends(built) -> None:
    with client(built["recs"]) as api:
        schema = api.get("/info").json()["schema"]
        assert schema["n_users"] == 12 and schema["items"][0] == 100
        rating = api.post("/predict", json={"input": {"user": 3, "movie": 104}}).json()
        assert 0 <= rating["prediction"]["rating"] <= 5.5
        as_text = api.post("/predict", json={"input": ["3", "104"]}).json()  # ids typed as text
        assert as_text["prediction"]["rating"] == rating["prediction"]["rating"]
        top = api.get("/recommend", params={"user": "3", "n": 5}).json()["items"]
        assert len(top) == 5
        assert [t["rating"] for t in top] == sorted((t["rating"] for t in top), reverse=True)
        assert api.get("/recommend", params={"user": "nobody"}).status_code == 404


def test_text_classifier_and_language_model(built) -> None:
    with client(built["reviews"]) as api:
        assert api.get("/info").json()["task"] == "text_classification"
        result = api.post("/predict", json={"inputs": ["great nice fine", "awful dull"]}).json()
        assert all(r["label"] in ("pos", "neg") for r in result["predictions"])
        assert api.post("/predict", json={"input": 42}).status_code == 422
    with client(built["lm"]) as api:
        assert api.get("/info").json()["task"] == "language_model"
        nxt = api.post("/predict", json={"input": "the cat sat on"}).json()["prediction"]
        assert nxt["next_token"] in nxt["top"] and len(nxt["top"]) == 10
        text = api.post("/generate", json={"prompt": "the cat", "n_words": 6, "temperature": 0})
        assert text.status_code == 200 and text.json()["text"].startswith("the cat")
        assert len(text.json()["text"].split()) > 2
        too_long = api.post("/generate", json={"prompt": "the", "n_words": 5000})
        assert too_long.status_code == 422 and "n_words" in too_long.json()["error"]


# ----- limits: every bad request is a 4xx naming the problem -----
PNG, JSON = {"content-type": "image/png"}, {"content-type": "application/json"}


@pytest.fixture(scope="module")
def limited(built) -> Iterator[TestClient]:
    """One server with small limits for all the bad requests: each must leave it serving."""
    limits = Limits(max_upload_mb=2, max_json_mb=1, max_items=8, max_pixels=1_000_000)
    with client(built["digits"], limits=limits) as api:
        yield api


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("send", "status", "words"),
    [
        (lambda a: a.post("/predict", content=b"x" * (2 * 2**20 + 1),
                          headers={"content-type": "image/png"}), 413, "limit is 2 MB"),
        (lambda a: a.post("/predict", json={"input": _png(3000, 3000).hex()[:10]}), 422, "base64"),
        (lambda a: a.post("/predict", content=_png(2000, 1500), headers=PNG), 413,
         "2000 x 1500 pixels"),
        (lambda a: a.post("/predict", content=_png(64, 64)[:40], headers=PNG), 422,
         "can't be read"),
        (lambda a: a.post("/predict", content=json.dumps({"input": "x" * (2**20 + 10)}),
                          headers={"content-type": "application/json"}), 413, "JSON body"),
        (lambda a: a.post("/predict", content="[" * 50 + "]" * 50,
                          headers={"content-type": "application/json"}), 400, "nests deeper"),
        (lambda a: a.post("/predict", content="[" * 100_000 + "]" * 100_000,
                          headers={"content-type": "application/json"}), 400, "nests deeper"),
        (lambda a: a.post("/predict", content="{not json", headers=JSON), 400, "not valid JSON"),
        (lambda a: a.post("/predict", json={"inputs": ["a"] * 9}), 413, "limit is 8"),
        (lambda a: a.post("/predict", json={"image": "..."}), 422, '"input"'),
        (lambda a: a.post("/predict", json={"input": 3}), 422, "base64 string"),
        (lambda a: a.post("/predict", content=b"hello", headers={"content-type": "text/plain"}),
         415, "text/plain"),
        (lambda a: a.post("/predict", files={"other": ("a.txt", b"x")}), 422, "field 'file'"),
        (lambda a: a.post("/generate", json={"prompt": "x"}), 404, "language model"),
        (lambda a: a.get("/static/../../etc/passwd"), 404, ""),
    ],
)  # fmt: skip
def test_a_bad_request_is_a_4xx_naming_the_problem(
    limited: TestClient, send, status: int, words: str
) -> None:
    response = send(limited)
    assert response.status_code == status, response.text
    if words:
        assert words in response.json()["error"]
    assert limited.get("/health").json()["status"] == "ok"  # and the server still serves


def test_a_body_without_length_is_counted_as_it_arrives(built) -> None:
    def chunks():
        for _ in range(40):
            yield b"x" * 65536  # 2.5 MB in all, no Content-Length

    with client(built["digits"], limits=Limits(max_upload_mb=1)) as api:
        response = api.post("/predict", content=chunks(), headers={"content-type": "image/png"})
        assert response.status_code == 413 and "limit is 1 MB" in response.json()["error"]


def _slow(app: Any, seconds: float) -> None:
    model_call = app.state.batcher.run_batch

    def slow(items: list[Any]) -> list[Any]:
        time.sleep(seconds)
        return model_call(items)

    app.state.batcher.run_batch = slow


def test_a_full_queue_is_503_with_retry_after_and_a_slow_model_504(built, mnist_tiny: Path) -> None:
    image = b64(valid_digits(mnist_tiny)[0][0])
    app = create_app(built["digits"], limits=Limits(max_queue=2, timeout_s=0.6), max_batch=1)
    _slow(app, 0.4)
    with live_server(app) as url, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: httpx.post(f"{url}/predict", json={"input": image},
                                                     timeout=10), range(8)))  # fmt: skip
        statuses = sorted(r.status_code for r in answers)
        assert 200 in statuses and 503 in statuses, statuses
        busy = next(r for r in answers if r.status_code == 503)
        assert busy.headers["retry-after"] == "1" and "busy" in busy.json()["error"]
        assert set(statuses) <= {200, 503, 504}
        time.sleep(1.0)  # the queue drains
        _slow(app, 1.0)
        late = httpx.post(f"{url}/predict", json={"input": image}, timeout=10)
        assert late.status_code == 504 and "0.6 s" in late.json()["error"]


def test_the_event_loop_answers_while_the_model_works(built, mnist_tiny: Path) -> None:
    image = b64(valid_digits(mnist_tiny)[0][0])
    app = create_app(built["digits"])
    _slow(app, 1.5)
    with live_server(app) as url, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(httpx.post, f"{url}/predict", json={"input": image}, timeout=10)
        time.sleep(0.2)
        start = time.perf_counter()
        assert httpx.get(f"{url}/health").json()["status"] == "ok"
        assert time.perf_counter() - start < 0.5
        assert pending.result().status_code == 200


def test_concurrent_requests_are_batched_and_counted(built, mnist_tiny: Path) -> None:
    digits = valid_digits(mnist_tiny)
    app = create_app(built["digits"], max_batch=16, max_wait_ms=50)
    with live_server(app) as url, ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda d: httpx.post(f"{url}/predict", json={"input": b64(d[0])},
                                                     timeout=20), digits[:12]))  # fmt: skip
        metrics = httpx.get(f"{url}/metrics").text
    predictor = Predictor.load(built["digits"])
    for (path, _), answer in zip(digits, answers):
        assert answer.json()["prediction"]["label"] == predictor.predict(path)[0]
    sizes = app.state.metrics.batch_size
    assert sizes.n < 12 and sizes.total == 12  # fewer model calls than requests
    assert (
        "mentor_requests_total{pid=" in metrics
        and 'endpoint="/predict",status="200"} 12' in metrics
    )
    assert "mentor_batch_size_bucket{pid=" in metrics and "mentor_request_seconds_count" in metrics


def test_an_api_key_is_required_when_set(built) -> None:
    with client(built["digits"], api_key="s3cret") as api:
        refused = api.get("/info")
        assert refused.status_code == 401 and "X-API-Key" in refused.json()["error"]
        assert api.post("/predict", json={"input": "x"}).status_code == 401
        assert api.get("/info", headers={"X-API-Key": "s3cret"}).status_code == 200
        assert api.get("/info", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert api.get("/info", headers={"X-API-Key": "wrong"}).status_code == 401
        assert api.get("/health").status_code == 200 and api.get("/").status_code == 200


def test_the_page_and_docs_are_served_offline(built) -> None:
    with client(built["digits"]) as api:
        page = api.get("/").text
        assert "/static/predict.js" in page and "http" not in page.replace("http-equiv", "")
        assert "fetch(" in api.get("/static/predict.js").text
        assert api.get("/docs").status_code == 200
        assert "/predict" in api.get("/openapi.json").json()["paths"]
