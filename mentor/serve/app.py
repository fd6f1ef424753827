"""The web app of `mentor serve`: the model's page, its HTTP API, health and metrics.

`create_app(path)` builds a FastAPI app around one exported model:

- `GET /`: a page made for the model's task (the files in `mentor/serve/static`, served by
  the app itself: it works offline). `GET /info`: task, classes, input schema, training
  metrics, date and version. `GET /health`. `GET /metrics` (Prometheus). `GET /docs`.
- `POST /predict`: JSON `{"input": item}` or `{"inputs": [items]}` (images as base64), a
  multipart form of image files (field `file`), or an image as the body; the answer holds the
  prediction(s) and the model's version. `POST /generate` for language models, `GET
  /recommend?user=...&n=...` for collab models.

Requests are gathered into batches (`mentor.serve.batcher`) on one inference thread; every
bound in `Limits` is checked before anything is allocated, and a bad request gets a 4xx with
a JSON `{"error": ...}` naming the problem.

Example:
    >>> app = create_app("pets.mentor", max_batch=32, max_wait_ms=5)
    >>> # uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from mentor.serve.batcher import DynamicBatcher, QueueFull
from mentor.serve.limits import Limits, RequestError, check_count, items_of, parse_json
from mentor.serve.metrics import ServerMetrics
from mentor.serve.model import MAX_GENERATED_WORDS, ServedModel

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                   Awaitable[None]]  # fmt: skip
ENDPOINTS = ("/", "/info", "/health", "/metrics", "/predict", "/generate", "/recommend",
             "/docs", "/openapi.json", "/static")  # fmt: skip
PUBLIC = ("/", "/health", "/static")  # the page asks for the key itself; probes need none
STATIC = {"style.css": "text/css", "predict.js": "text/javascript"}


def create_app(
    path: str | Path,
    limits: Limits | None = None,
    max_batch: int = 32,
    max_wait_ms: float = 5.0,
    api_key: str | None = None,
    device: str = "cpu",
) -> FastAPI:
    """The app serving the model in `path` (see the module docstring).

    Args:
        path: the `.mentor` file. limits: request bounds (`Limits()`). max_batch: items per
            model call (32). max_wait_ms: how long a request waits for others (5).
        api_key: when set, every endpoint but the page and /health needs it (header
            `X-API-Key` or `Authorization: Bearer ...`). device: where the model runs.
    """
    limits = limits or Limits()
    model = ServedModel(path, limits, device)
    metrics = ServerMetrics()
    batcher = DynamicBatcher(model.predict_items, max_batch, max_wait_ms, limits.max_queue, metrics)
    app = FastAPI(title=f"mentor: {model.path.name}", version=model.version,
                  description=f"A {model.task} model served by mentor.")  # fmt: skip
    app.state.model, app.state.batcher, app.state.metrics = model, batcher, metrics
    app.add_exception_handler(RequestError, _request_error)  # type: ignore[arg-type]
    app.add_middleware(Guard, limits=limits, metrics=metrics, api_key=api_key)
    app.router.add_event_handler("shutdown", batcher.close)
    _add_routes(app, model, batcher, metrics)
    return app


def _add_routes(
    app: FastAPI, model: ServedModel, batcher: DynamicBatcher, metrics: ServerMetrics
) -> None:
    page = _static("predict.html")
    limits = model.limits

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in STATIC:
            raise RequestError(404, f"no static file {name!r}")
        return Response(_static(name), media_type=STATIC[name])

    @app.get("/info")
    async def info() -> dict[str, Any]:
        """What the model is: task, classes, input schema, metrics, date, version."""
        return {**model.info, "limits": vars(limits), "max_batch": batcher.max_batch,
                "threads": torch.get_num_threads(), "pid": os.getpid()}  # fmt: skip

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """`{"status": "ok"}` while the inference thread runs."""
        alive = batcher.thread.is_alive()
        if not alive:
            raise RequestError(503, "the inference thread has stopped")
        return {"status": "ok", "version": model.version, "queued": batcher.waiting}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus() -> PlainTextResponse:
        """Requests, errors, latency and batch sizes in Prometheus' text format."""
        return PlainTextResponse(metrics.text(), media_type="text/plain; version=0.0.4")

    @app.post("/predict")
    async def predict(request: Request) -> dict[str, Any]:
        """Predict one item or a list (see the module docstring for the formats)."""
        with batcher.handling():
            items, many = await _request_items(request, model)
            results = await _answer(batcher.submit(items), limits)
        if many:
            return {"predictions": results, "version": model.version}
        return {"prediction": results[0], "version": model.version}

    @app.post("/generate")
    async def generate(request: Request) -> dict[str, Any]:
        """A language model's continuation: `{"prompt", "n_words" (20), "temperature" (1)}`."""
        if model.task != "language_model":
            raise RequestError(
                404, f"/generate needs a language model; this is a {model.task} model"
            )
        prompt, n_words, temperature = _generate_args(await _json(request, limits), limits)

        def run(_: list[Any]) -> list[Any]:
            return [model.generate(prompt, n_words, temperature)]

        result = (await _answer(batcher.submit([prompt], run=run), limits))[0]
        return {**result, "version": model.version}

    @app.get("/recommend")
    async def recommend(user: str, n: int = 10) -> dict[str, Any]:
        """The `n` items with the highest predicted rating for `user` (collab models)."""
        if model.task != "collab":
            raise RequestError(
                404, f"/recommend needs a collab model; this is a {model.task} model"
            )
        if not 1 <= n <= limits.max_items * 16:
            raise RequestError(422, f"n must be between 1 and {limits.max_items * 16}, got {n}")

        def run(_: list[Any]) -> list[Any]:
            return [model.recommend(user, n)]

        result = (await _answer(batcher.submit([user], run=run), limits))[0]
        return {**result, "version": model.version}


async def _request_items(request: Request, model: ServedModel) -> tuple[list[Any], bool]:
    """The checked items of a /predict request, and whether it held a list."""
    limits = model.limits
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        raw, many = items_of(await _json(request, limits), limits)
        items = await run_in_threadpool(
            lambda: [model.item_from_json(v, i if many else None) for i, v in enumerate(raw)]
        )
        return items, many
    if kind == "multipart/form-data":
        form = await request.form(max_files=limits.max_items, max_fields=limits.max_items)
        files = [f for f in form.getlist("file") if not isinstance(f, str)]
        if not files:
            raise RequestError(422, "the form has no file in the field 'file'")
        check_count(len(files), limits)
        uploads = [(await f.read(), f.filename or f"file {i}") for i, f in enumerate(files)]
        items = await run_in_threadpool(
            lambda: [model.item_from_upload(data, name) for data, name in uploads]
        )
        return items, len(files) > 1
    if kind.startswith("image/") or kind == "application/octet-stream":
        body = await request.body()
        return [await run_in_threadpool(model.item_from_upload, body, "the body")], False
    raise RequestError(415, f"content type {kind or 'none'!r} is not accepted; send "
                            "application/json, multipart/form-data or an image")  # fmt: skip


async def _json(request: Request, limits: Limits) -> Any:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise RequestError(415, f"content type {kind or 'none'!r}: send application/json")
    return parse_json(await request.body(), limits)


def _generate_args(data: Any, limits: Limits) -> tuple[str, int, float]:
    """The prompt, length and temperature of a /generate request, checked."""
    if not isinstance(data, dict) or not isinstance(data.get("prompt"), str):
        raise RequestError(
            422, 'the body must be {"prompt": "...", "n_words": 20, "temperature": 1.0}'
        )
    prompt, n_words, temperature = (
        data["prompt"],
        data.get("n_words", 20),
        data.get("temperature", 1.0),
    )
    if len(prompt) > limits.max_text_chars:
        raise RequestError(413, f"the prompt has {len(prompt):,} characters; the limit is "
                                f"{limits.max_text_chars:,}")  # fmt: skip
    if (
        isinstance(n_words, bool)
        or not isinstance(n_words, int)
        or not 1 <= n_words <= MAX_GENERATED_WORDS
    ):
        raise RequestError(422, f"n_words must be an integer from 1 to {MAX_GENERATED_WORDS}, "
                                f"got {n_words!r}")  # fmt: skip
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not 0 <= temperature <= 10
    ):
        raise RequestError(422, f"temperature must be a number from 0 to 10, got {temperature!r}")
    return prompt, n_words, float(temperature)


async def _answer(submitted: Awaitable[list[Any]], limits: Limits) -> list[Any]:
    """The batcher's results, or the request error that says why there are none."""
    try:
        return await asyncio.wait_for(submitted, limits.timeout_s)
    except QueueFull as err:
        raise RequestError(
            503, f"the server is busy ({err}); retry shortly", retry_after=1
        ) from None
    except TimeoutError:
        raise RequestError(504, f"no answer from the model within {limits.timeout_s:g} s") from None
    except RequestError:
        raise
    except (ValueError, KeyError, TypeError, OSError) as err:  # an item the model refused
        raise RequestError(422, f"the input can't be predicted: {err}") from None


async def _request_error(request: Request, err: RequestError) -> JSONResponse:
    headers = {"Retry-After": str(err.retry_after)} if err.retry_after else None
    return JSONResponse({"error": err.message, "status": err.status}, err.status, headers)


class Guard:
    """ASGI middleware: the API key, the body-size limit (from Content-Length, and counted
    as the body arrives) and the metrics of every request."""

    def __init__(
        self, app: ASGIApp, limits: Limits, metrics: ServerMetrics, api_key: str | None
    ) -> None:
        self.app, self.limits, self.metrics, self.api_key = app, limits, metrics, api_key

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [500]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            refusal = self._refusal(scope)
            if refusal is not None:
                await _send_error(send_status, refusal)
            else:
                await self.app(scope, self._bounded(receive), send_status)
        finally:
            self.metrics.record_request(
                _endpoint(scope["path"]), status[0], time.perf_counter() - start
            )

    def _refusal(self, scope: Scope) -> RequestError | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.api_key and _endpoint(scope["path"]) not in PUBLIC:
            given = headers.get("x-api-key") or headers.get("authorization", "").removeprefix(
                "Bearer "
            )
            if not hmac.compare_digest(given.encode(), self.api_key.encode()):
                return RequestError(401, "this server needs an API key: send it in the header "
                                         "X-API-Key or Authorization: Bearer <key>")  # fmt: skip
        length = headers.get("content-length", "0")
        if not length.isdigit():
            return RequestError(400, f"Content-Length {length!r} is not a number")
        if int(length) > self.limits.max_upload_bytes:
            return _too_large(int(length), self.limits)
        return None

    def _bounded(self, receive: Any) -> Any:
        received = [0]

        async def counted() -> Message:
            message = await receive()
            received[0] += len(message.get("body", b""))
            if received[0] > self.limits.max_upload_bytes:
                raise _too_large(received[0], self.limits)
            return message  # type: ignore[no-any-return]

        return counted


def _too_large(size: int, limits: Limits) -> RequestError:
    return RequestError(413, f"the request body is over {size:,} bytes; the limit is "
                             f"{limits.max_upload_mb:g} MB (--max-upload-mb)")  # fmt: skip


async def _send_error(send: Any, err: RequestError) -> None:
    body = json.dumps({"error": err.message, "status": err.status}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if err.status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _endpoint(path: str) -> str:
    """The metrics label of a path: a known endpoint, or 'other' (bounded label values)."""
    if path.startswith("/static/"):
        return "/static"
    return path if path in ENDPOINTS else "other"


def _static(name: str) -> str:
    return (resources.files("mentor.serve") / "static" / name).read_text(encoding="utf-8")


__all__ = ["Guard", "create_app"]
