"""The data cleaner's decision log: one JSON object per line, appended and synced to disk as
each decision is made, so that a page reload or a crash loses nothing.

The first line names the format; each later line is one decision, and the last decision for
a file wins:

    {"format": "mentor-clean-log", "version": 1, "folder": "/data/digits", "created": "..."}
    {"path": "train/3/7012.png", "action": "relabel", "to": "7", "label": "3", "time": "..."}
    {"path": "valid/7/9811.png", "action": "delete", "to": null, "label": "7", "time": "..."}

Paths are relative to the data folder, with '/' separators. This module is pure Python.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOG_FORMAT = "mentor-clean-log"
LOG_VERSION = 1
ACTIONS = ("keep", "delete", "relabel")
MAX_LINE = 64 * 1024  # bytes: a decision is about 150; a longer line is not a decision
REMOVED = "_removed"  # the folder deleted files go to, inside the data folder


def now() -> str:
    """The current UTC time in ISO 8601, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_class_name(name: Any, what: str) -> str:
    """`name` when it can be a class folder's name: a non-empty string that is one path
    component (no '/', '\\', '.', '..') and not the cleaner's own `_removed` folder."""
    if not isinstance(name, str) or not name or name in (".", "..", REMOVED):
        raise ValueError(f"{what}: {name!r} cannot be a class folder's name; use a class name")
    if "/" in name or "\\" in name or "\x00" in name or len(name) > 255:
        raise ValueError(f"{what}: {name!r} is not one folder name; use a class name")
    return name


@dataclass(frozen=True)
class Decision:
    """What to do with one image: keep it, delete it (move it to `_removed/`), or relabel it
    (move it to the class folder `to`, in the same split).

    Args:
        path: the image, relative to the data folder ('train/3/7012.png').
        action: 'keep', 'delete' or 'relabel'. to: the new class (relabel only).
        label: the image's class when the decision was made. time: when (ISO 8601, UTC).
    """

    path: str
    action: str
    to: str | None = None
    label: str | None = None
    time: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path or len(self.path) > 4096:
            raise ValueError(f"a decision's path must be a file's relative path, got {self.path!r}")
        if self.action not in ACTIONS:
            raise ValueError(f"action {self.action!r} for {self.path!r} is not one of {ACTIONS}")
        if self.action == "relabel":
            check_class_name(self.to, f"relabel {self.path!r}")
        elif self.to is not None:
            raise ValueError(f"{self.action} {self.path!r} takes no class, got to={self.to!r}")

    def to_json(self) -> dict[str, Any]:
        """The decision as a JSON object (a line of the log)."""
        return {"path": self.path, "action": self.action, "to": self.to, "label": self.label,
                "time": self.time}  # fmt: skip

    @classmethod
    def from_json(cls, record: Any) -> Decision:
        """A decision from a log line's object; ValueError names what is missing or wrong."""
        if not isinstance(record, dict) or "path" not in record or "action" not in record:
            raise ValueError(f"{str(record)[:80]!r} is not a decision (needs path and action)")
        label, time = record.get("label"), record.get("time", "")
        return cls(
            path=record["path"],
            action=record["action"],
            to=record.get("to"),
            label=label if isinstance(label, str) else None,
            time=time if isinstance(time, str) else "",
        )


def latest(decisions: list[Decision]) -> dict[str, Decision]:
    """The last decision for each path, ordered by when that last decision was made."""
    last: dict[str, Decision] = {}
    for decision in decisions:
        last.pop(decision.path, None)
        last[decision.path] = decision
    return last


def _header(line: bytes, path: Path) -> dict[str, Any]:
    """The log's first line, checked: it names the format and a version this code reads."""
    try:
        header = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        header = None
    if not isinstance(header, dict) or header.get("format") != LOG_FORMAT:
        raise ValueError(f"{str(path)!r} is not a cleaner's log (its first line is not "
                         f"{{\"format\": \"{LOG_FORMAT}\", ...}}); give the log that "
                         "`mentor clean` wrote")  # fmt: skip
    if header.get("version") != LOG_VERSION:
        raise ValueError(f"{str(path)!r} is a cleaner's log of version {header.get('version')!r}; "
                         f"this mentor reads version {LOG_VERSION}: upgrade mentor")  # fmt: skip
    return header


def read_log(path: str | Path) -> list[Decision]:
    """Every decision in the log at `path`, in the order they were made.

    A last line cut short by a crash (no newline, not JSON) is left out with a warning; any
    other bad line raises ValueError naming the file and the line.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"the log {str(file)!r} does not exist; give the file that "
                                "`mentor clean ... --log LOG` wrote")  # fmt: skip
    decisions: list[Decision] = []
    with open(file, "rb") as stream:
        _header(stream.readline(MAX_LINE), file)
        for number, line in enumerate(iter(lambda: stream.readline(MAX_LINE), b""), start=2):
            if not line.strip():
                continue
            try:
                decisions.append(Decision.from_json(json.loads(line)))
            except (UnicodeDecodeError, ValueError) as err:
                if not line.endswith(b"\n") and not stream.read(1):
                    warnings.warn(f"{file}: left out its last line, cut short ({line[:60]!r}); "
                                  "a crash while writing it", stacklevel=2)  # fmt: skip
                    break
                raise ValueError(f"line {number} of the log {str(file)!r}: {err}") from None
    return decisions


def append_synced(file: Path, text: str) -> None:
    """Append `text` and make it durable before returning (flush, then fsync)."""
    with open(file, "a", encoding="utf-8") as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())


def sync_folder(folder: Path) -> None:
    """fsync a folder, so that a file just created in it survives a crash (POSIX)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a platform whose folders cannot be opened (Windows)
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _drop_cut_tail(file: Path) -> None:
    """Truncate a last line that a crash cut short, so that the next line starts clean
    (only the file's tail is read)."""
    with open(file, "rb+") as stream:
        size = stream.seek(0, os.SEEK_END)
        start = max(0, size - MAX_LINE)
        stream.seek(start)
        tail = stream.read()
        if tail and not tail.endswith(b"\n"):
            keep = start + tail.rfind(b"\n") + 1
            cut = tail[keep - start : keep - start + 60]
            warnings.warn(f"{file}: dropped its last line, cut short by a crash ({cut!r})",
                          stacklevel=3)  # fmt: skip
            stream.truncate(keep)


class DecisionLog:
    """An append-only log of decisions (JSON lines); each `append` is on disk when it returns.

    Opening a log that exists checks that it is one (and reads nothing else); a missing or
    empty file gets the header line.

    Args:
        path: the log file. folder: the data folder, recorded in the header of a new log.

    Example:
        >>> log = DecisionLog("digits_clean.jsonl", folder="digits")
        >>> log.append(Decision("train/3/7012.png", "relabel", to="7", label="3"))
        >>> read_log("digits_clean.jsonl")[-1].to
        '7'
    """

    def __init__(self, path: str | Path, folder: str | Path | None = None) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise IsADirectoryError(f"the log {str(self.path)!r} is a folder; give a file name "
                                    "such as clean_log.jsonl")  # fmt: skip
        if not self.path.parent.is_dir():
            raise FileNotFoundError(f"the folder of the log {str(self.path)!r} does not exist; "
                                    "create it or put the log elsewhere")  # fmt: skip
        if self.path.is_file() and self.path.stat().st_size > 0:
            with open(self.path, "rb") as stream:
                _header(stream.readline(MAX_LINE), self.path)
            _drop_cut_tail(self.path)
        else:
            header = {"format": LOG_FORMAT, "version": LOG_VERSION,
                      "folder": None if folder is None else str(Path(folder).resolve()),
                      "created": now()}  # fmt: skip
            append_synced(self.path, json.dumps(header) + "\n")
            sync_folder(self.path.parent)

    def append(self, decision: Decision) -> None:
        """Write one decision as a line and sync it to disk."""
        append_synced(self.path, json.dumps(decision.to_json()) + "\n")

    def read(self) -> list[Decision]:
        """Every decision in the log, in order (see `read_log`)."""
        return read_log(self.path)


__all__ = [
    "ACTIONS",
    "LOG_FORMAT",
    "REMOVED",
    "Decision",
    "DecisionLog",
    "append_synced",
    "check_class_name",
    "latest",
    "read_log",
    "sync_folder",
]
