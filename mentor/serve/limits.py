"""What a request may hold, and turning its body into the items a model predicts.

Everything a client sends is bounded before it is allocated and checked before it reaches
the model; a bad request raises `RequestError` with the HTTP status and a message that names
the problem (the server answers it as JSON).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image

MB = 2**20


@dataclass
class Limits:
    """The bounds on one request.

    Args:
        max_upload_mb: a request body (16). max_json_mb: a JSON body (4; base64 images count).
        max_json_depth: nesting of a JSON body (8). max_items: items in one request (64).
        max_pixels: pixels of one image (25 million). max_text_chars: one text (100,000).
        max_queue: items waiting for the model (256; then 503). timeout_s: the model's
            answer to one request (30; then 504).
    """

    max_upload_mb: float = 16.0
    max_json_mb: float = 4.0
    max_json_depth: int = 8
    max_items: int = 64
    max_pixels: int = 25_000_000
    max_text_chars: int = 100_000
    max_queue: int = 256
    timeout_s: float = 30.0

    @property
    def max_upload_bytes(self) -> int:
        """The body limit in bytes."""
        return int(self.max_upload_mb * MB)


class RequestError(Exception):
    """A request the server refuses: its HTTP status and what was wrong."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


def parse_json(body: bytes, limits: Limits) -> Any:
    """A JSON body, refused when too large (413), not JSON (400) or nested too deep (400)."""
    if len(body) > limits.max_json_mb * MB:
        raise RequestError(413, f"the JSON body is {len(body):,} bytes; the limit is "
                                f"{limits.max_json_mb:g} MB (--max-upload-mb sets it)")  # fmt: skip
    try:
        data = json.loads(body)
    except RecursionError:
        raise RequestError(400, f"the JSON body nests deeper than {limits.max_json_depth} "
                                "levels") from None  # fmt: skip
    except (UnicodeDecodeError, ValueError) as err:
        raise RequestError(400, f"the body is not valid JSON: {err}") from None
    if _depth(data, limits.max_json_depth) > limits.max_json_depth:
        raise RequestError(400, f"the JSON body nests deeper than {limits.max_json_depth} levels")
    return data


def _depth(data: Any, limit: int) -> int:
    """How deep `data` nests (lists and objects), counted no further than `limit` + 1."""
    level, current = 0, [data]
    while current and level <= limit:
        nested = [c for c in current if isinstance(c, list | dict)]
        if not nested:
            break
        level += 1
        current = [v for c in nested for v in (c.values() if isinstance(c, dict) else c)]
    return level


def items_of(data: Any, limits: Limits) -> tuple[list[Any], bool]:
    """The raw items of a JSON body `{"input": item}` or `{"inputs": [items]}`, and whether
    it was a list."""
    if not isinstance(data, dict) or ("input" in data) == ("inputs" in data):
        raise RequestError(422, 'the JSON body must be an object with "input" (one item) or '
                                '"inputs" (a list of items)')  # fmt: skip
    if "input" in data:
        return [data["input"]], False
    items = data["inputs"]
    if not isinstance(items, list) or not items:
        raise RequestError(422, f'"inputs" must be a non-empty list, got {_kind(items)}')
    check_count(len(items), limits)
    return items, True


def check_count(n: int, limits: Limits) -> None:
    """Refuse a request of more than `max_items` items (413)."""
    if n > limits.max_items:
        raise RequestError(413, f"the request holds {n} items; the limit is {limits.max_items} "
                                "per request (send several requests)")  # fmt: skip


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def decode_image(data: bytes, limits: Limits, name: str = "the image") -> Image.Image:
    """A fully decoded RGB-able PIL image from uploaded bytes; its size is read from the
    header and checked before the pixels are decoded."""
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > limits.max_pixels:
            raise RequestError(413, f"{name} is {width} x {height} pixels; the limit is "
                                    f"{limits.max_pixels:,} pixels")  # fmt: skip
        image.load()
    except RequestError:
        raise
    except Image.DecompressionBombError as err:
        raise RequestError(413, f"{name} is too large to decode: {err}") from None
    except (OSError, ValueError, SyntaxError) as err:  # PIL's errors for bad or cut files
        raise RequestError(422, f"{name} can't be read as an image: {err}") from None
    return image


def image_from_json(value: Any, limits: Limits, name: str) -> Image.Image:
    """An image sent in JSON: a base64 string, optionally a `data:` URL."""
    if not isinstance(value, str):
        raise RequestError(422, f"{name} must be a base64 string, got {_kind(value)}")
    text = value.split(",", 1)[1] if value.startswith("data:") else value
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(422, f"{name} is not valid base64") from None
    return decode_image(raw, limits, name)


def text_item(value: Any, limits: Limits, name: str) -> str:
    """A text to classify or continue."""
    if not isinstance(value, str):
        raise RequestError(422, f"{name} must be a string, got {_kind(value)}")
    if len(value) > limits.max_text_chars:
        raise RequestError(413, f"{name} has {len(value):,} characters; the limit is "
                                f"{limits.max_text_chars:,}")  # fmt: skip
    return value


def row_item(value: Any, columns: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """A tabular row: an object with every column; values are numbers for continuous
    columns (missing: null) and scalars for categorical ones."""
    if not isinstance(value, Mapping):
        raise RequestError(422, f"{name} must be an object of column -> value, got {_kind(value)}")
    missing = [c["name"] for c in columns if c["name"] not in value]
    if missing:
        raise RequestError(422, f"{name} has no value for the column(s) {missing}")
    row: dict[str, Any] = {}
    for column in columns:
        key, item = column["name"], value[column["name"]]
        if column["kind"] == "continuous":
            row[key] = _number(item, f"{name}: column {key!r}")
        elif item is not None and not isinstance(item, str | int | float | bool):
            raise RequestError(422, f"{name}: column {key!r} must be a scalar, got {_kind(item)}")
        else:
            row[key] = item
    return row


def _number(value: Any, name: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RequestError(422, f"{name} must be a number, got {_kind(value)}")
    try:
        return float(value)
    except ValueError:
        raise RequestError(422, f"{name} must be a number, got {value!r}") from None


def pair_item(value: Any, user: str, item: str, name: str) -> tuple[Any, Any]:
    """A collab pair: `[user, item]` or an object with the user and item columns."""
    if isinstance(value, Mapping):
        if user not in value or item not in value:
            raise RequestError(422, f"{name} needs the fields {user!r} and {item!r}")
        value = [value[user], value[item]]
    if not isinstance(value, list) or len(value) != 2:
        raise RequestError(422, f"{name} must be [user, item] or an object with {user!r} and "
                                f"{item!r}, got {_kind(value)}")  # fmt: skip
    for part in value:
        if not isinstance(part, str | int | float) or isinstance(part, bool):
            raise RequestError(422, f"{name}: a user or item must be a string or number, "
                                    f"got {_kind(part)}")  # fmt: skip
    return value[0], value[1]


__all__ = [
    "Limits",
    "RequestError",
    "check_count",
    "decode_image",
    "image_from_json",
    "items_of",
    "pair_item",
    "parse_json",
    "row_item",
    "text_item",
]
