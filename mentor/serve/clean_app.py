"""The web page and JSON API of the data cleaner (`mentor clean`), around a `DatasetCleaner`.

- `GET /`: the page (`static/clean.html`, `clean.js`, `clean.css`, served by the app: no
  CDN, it works offline): a split and class selector and a grid of image cards, most
  confusing first, each with keep / delete / move-to buttons.
- `GET /api/summary`: the folder, the model's classes, the splits and classes present with
  their counts, the log.
- `GET /api/entries?split=&label=&undecided=&offset=&limit=`: one page of entries (most
  confusing first), each with its decision. Leave `split` or `label` out for all.
- `POST /api/decisions` with `{"id": 3, "action": "relabel", "to": "7"}` (or `"path"` for
  `"id"`): records a decision (in the log before the answer); `GET /api/decisions` lists them.
- `GET /images/{id}`: the image of an entry (only the files the cleaner lists).

A bad request gets a 4xx with a JSON `{"error": ...}` that names the problem. FastAPI is
imported only here.

Example:
    >>> cleaner = DatasetCleaner.from_folder("digits", Predictor.load("digits.mentor"),
    ...                                      log="clean_log.jsonl")
    >>> uvicorn.run(create_clean_app(cleaner), host="127.0.0.1", port=8001)
"""

from __future__ import annotations

import json
import os
from collections import Counter
from importlib import resources
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from mentor.serve.clean import DatasetCleaner
from mentor.serve.clean_scores import Entry

MAX_BODY = 4096  # bytes: a decision is under 200
STATIC = {"clean.js": "text/javascript", "clean.css": "text/css"}


class Refused(Exception):
    """A request the app answers with a 4xx and `{"error": message}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _static(name: str) -> str:
    """The text of a file of the package's `static/` folder."""
    return resources.files("mentor.serve").joinpath("static", name).read_text("utf-8")


async def _json_body(request: Request) -> Any:
    """The request's JSON, read up to `MAX_BODY` bytes (413 beyond, 400 when not JSON)."""
    declared = request.headers.get("content-length", "")
    if declared and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise Refused(413, f"the body is {declared} bytes; a decision is at most {MAX_BODY}")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise Refused(413, f"the body is over {MAX_BODY} bytes; a decision is smaller")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, 'the body is not JSON; send {"id": 3, "action": "delete"}') from None


def _entry_json(cleaner: DatasetCleaner, entry: Entry) -> dict[str, Any]:
    """An entry with its decision (null when undecided)."""
    decision = cleaner.decision(entry.id)
    return {**entry.to_json(), "decision": None if decision is None else decision.to_json()}


def _summary(cleaner: DatasetCleaner, title: str) -> dict[str, Any]:
    """What the page's header and selectors show."""
    counts = Counter((entry.split, entry.label) for entry in cleaner.entries)
    return {
        "title": title,
        "folder": str(cleaner.folder),
        "classes": cleaner.classes,
        "splits": cleaner.splits,
        "labels": cleaner.labels,
        "counts": [
            {"split": s, "label": label, "n": n} for (s, label), n in sorted(counts.items())
        ],
        "total": len(cleaner),
        "decided": sum(cleaner.decision(e.id) is not None for e in cleaner.entries),
        "log": None if cleaner.log is None else str(cleaner.log.path),
    }


def _decide(cleaner: DatasetCleaner, body: Any) -> dict[str, Any]:
    """Record the decision a request's JSON describes; Refused names what is wrong."""
    if not isinstance(body, dict) or "action" not in body or ("id" in body) == ("path" in body):
        raise Refused(
            400,
            'send {"id": ID, "action": "keep" | "delete" | "relabel", '
            '"to": CLASS (relabel only)}, with "path" in place of "id" if you like',
        )
    key, to = body.get("id", body.get("path")), body.get("to")
    if not isinstance(key, (int, str)) or isinstance(key, bool):
        raise Refused(400, f"the image's id must be a number, got {key!r}")
    if not isinstance(body["action"], str) or not (to is None or isinstance(to, str)):
        raise Refused(400, "action and to must be strings")
    try:
        entry = cleaner.entry(key)
    except KeyError as err:
        raise Refused(404, str(err.args[0])) from None
    try:
        decision = cleaner.decide(entry.id, body["action"], to)
    except ValueError as err:
        raise Refused(400, str(err)) from None
    return {"decision": decision.to_json(), "entry": _entry_json(cleaner, entry)}


def _image(cleaner: DatasetCleaner, entry_id: int) -> FileResponse:
    """The file of a listed entry, checked to be inside the folder (no symbolic link out)."""
    try:
        entry = cleaner.entry(entry_id)
    except KeyError as err:
        raise Refused(404, str(err.args[0])) from None
    root = os.path.realpath(cleaner.folder)
    real = os.path.realpath(cleaner.folder / entry.path)
    if os.path.commonpath([root, real]) != root or not os.path.isfile(real):
        raise Refused(404, f"{entry.path!r} is no longer a file in the data folder")
    return FileResponse(real, headers={"Cache-Control": "no-cache"})


def _error_handlers(app: FastAPI) -> None:
    """Every error as JSON `{"error": ...}`: refusals, unknown routes, invalid parameters."""

    @app.exception_handler(Refused)
    async def refused(request: Request, err: Refused) -> JSONResponse:
        return JSONResponse({"error": err.message}, status_code=err.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(err.detail)}, status_code=err.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}"}, 422)


def _page_routes(app: FastAPI, cleaner: DatasetCleaner) -> None:
    """The page, its script and style, and the images."""

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        return HTMLResponse(_static("clean.html"))

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:
            raise Refused(404, f"no static file {name!r}")
        return Response(_static(name), media_type=STATIC[name])

    @app.get("/images/{entry_id}")
    def image(entry_id: int) -> FileResponse:
        return _image(cleaner, entry_id)


def _api_routes(app: FastAPI, cleaner: DatasetCleaner, title: str) -> None:
    """The JSON API: summary, entries, decisions."""

    @app.get("/api/summary")
    def summary() -> dict[str, Any]:
        return _summary(cleaner, title)

    @app.get("/api/entries")
    def entries(
        split: str | None = Query(None, max_length=200),
        label: str | None = Query(None, max_length=200),
        undecided: bool = False,
        offset: int = Query(0, ge=0),
        limit: int = Query(48, ge=1, le=500),
    ) -> dict[str, Any]:
        found = cleaner.filter(split, label, undecided)
        shown = found[offset : offset + limit]
        return {"total": len(found), "offset": offset, "limit": limit,
                "entries": [_entry_json(cleaner, entry) for entry in shown]}  # fmt: skip

    @app.post("/api/decisions")
    async def decide(request: Request) -> dict[str, Any]:
        body = await _json_body(request)
        return await run_in_threadpool(_decide, cleaner, body)  # the log's fsync blocks

    @app.get("/api/decisions")
    def decisions() -> dict[str, Any]:
        made = cleaner.decisions
        counts = Counter(decision.action for decision in made)
        return {"decisions": [d.to_json() for d in made], "counts": dict(counts)}


def create_clean_app(cleaner: DatasetCleaner, title: str | None = None) -> FastAPI:
    """The cleaner's web app (see the module docstring).

    Args:
        cleaner: the images and their decisions (give it a log so that none is lost).
        title: the page's title (default: 'mentor clean: <folder name>').

    Example:
        >>> app = create_clean_app(DatasetCleaner(learn, log="clean_log.jsonl"))
    """
    page_title = title or f"mentor clean: {cleaner.folder.name}"
    app = FastAPI(title=page_title, docs_url="/docs", redoc_url=None)
    _error_handlers(app)
    _page_routes(app, cleaner)
    _api_routes(app, cleaner, page_title)
    return app


__all__ = ["create_clean_app"]
