"""Apply the data cleaner's decisions to the folder, and undo them: files are moved, never
deleted and never overwritten.

`apply_log(folder, log)` moves each image decided for deletion to `FOLDER/_removed/` (keeping
its relative path) and each relabelled one to its new class folder in the same split. A name
already taken gets a new one (`7012_1.png`), said in the move's note. Every move is written
to a journal beside the log (`LOG.journal`, JSON lines, synced) before it is made, so that
`undo_log(folder, log)` moves exactly those files back, and a second `apply_log` skips what
was applied. Paths that leave the folder (absolute, '..', a symbolic link out) are refused
before anything moves.

Journal lines (after a header `{"format": "mentor-clean-journal", "version": 1, ...}`):

    {"event": "move", "action": "delete", "src": "train/3/a.png",
     "dst": "_removed/train/3/a.png", "made": ["_removed", "_removed/train", ...], "time": "..."}
    {"event": "restore", "src": "train/3/a.png", "dst": "_removed/train/3/a.png", "time": "..."}
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from mentor.serve.clean_log import (
    MAX_LINE,
    REMOVED,
    Decision,
    append_synced,
    check_class_name,
    latest,
    now,
    read_log,
    sync_folder,
)

JOURNAL_FORMAT = "mentor-clean-journal"
JOURNAL_VERSION = 1
_MAX_REFUSALS_SHOWN = 5


@dataclass(frozen=True)
class Move:
    """One step of `apply_log` or `undo_log`.

    Args:
        action: 'delete' or 'relabel' (applied), 'restore' (undone), or 'skip' (nothing
            moved; `note` says why). src: the file's path before, relative to the folder.
        dst: where it went (None for a skip). note: a renamed target, or why it was skipped.
    """

    action: str
    src: str
    dst: str | None
    note: str = ""

    def __str__(self) -> str:
        if self.dst is None:
            return f"{self.action:<8} {self.src}: {self.note}"
        line = f"{self.action:<8} {self.src} -> {self.dst}"
        return f"{line} ({self.note})" if self.note else line


def journal_path(log: str | Path) -> Path:
    """The journal of a log: `LOG.journal` beside it."""
    log = Path(log)
    return log.with_name(log.name + ".journal")


def _relative(text: Any, what: str) -> PurePosixPath:
    """A path from a log or journal, refused when it is not relative to the folder."""
    if not isinstance(text, str) or not text or "\\" in text or "\x00" in text:
        raise ValueError(f"{what} {text!r} is not a relative path such as 'train/3/a.png'")
    path = PurePosixPath(text)
    if path.is_absolute() or ".." in path.parts:
        raise ValueError(
            f"{what} {text!r} leaves the data folder (an absolute path or '..'); "
            "a log's paths are relative to the folder, as the cleaner writes them"
        )
    return path


def _inside(root: Path, rel: PurePosixPath, what: str) -> Path:
    """`root / rel`, refused when it resolves outside `root` (a symbolic link out)."""
    full = root / rel
    real = Path(os.path.realpath(full))
    if real != root and root not in real.parents:
        raise ValueError(
            f"{what} {rel.as_posix()!r} leads out of the data folder {str(root)!r} "
            f"(through a symbolic link, to {str(real)!r}); refusing to move it"
        )
    return full


def _free_name(root: Path, rel: PurePosixPath, taken: set[str]) -> tuple[PurePosixPath, str]:
    """`rel`, or `stem_N.suffix` when that name is taken on disk or by an earlier move."""
    candidate, n = rel, 0
    while os.path.lexists(root / candidate) or candidate.as_posix() in taken:
        n += 1
        candidate = rel.with_name(f"{rel.stem}_{n}{rel.suffix}")
    note = "" if n == 0 else f"renamed: {rel.as_posix()} exists"
    return candidate, note


def _target(decision: Decision, src: PurePosixPath) -> PurePosixPath:
    """Where a decision sends a file: `_removed/<path>`, or `<split>/<to>/<name>`."""
    if decision.action == "delete":
        return PurePosixPath(REMOVED) / src
    if len(src.parts) < 2:
        raise ValueError(f"relabel {src.as_posix()!r}: the file is not in a class folder")
    to = check_class_name(decision.to, f"relabel {src.as_posix()!r}")
    return src.parent.parent / to / src.name


def _checked(root: Path, decision: Decision) -> tuple[PurePosixPath, PurePosixPath]:
    """The file a decision moves and where to, both checked to stay in the folder."""
    src = _relative(decision.path, "the path")
    if src.parts[0] == REMOVED:
        raise ValueError(f"the path {decision.path!r} is in {REMOVED}/ already")
    _inside(root, src, "the path")
    dst = _target(decision, src)
    _inside(root, dst, "the target")
    return src, dst


def _plan(
    root: Path, decisions: list[Decision], applied: dict[str, dict[str, Any]]
) -> tuple[list[Move], list[Move]]:
    """The moves to make and the skips; ValueError listing every refused path."""
    moves: list[Move] = []
    skips: list[Move] = []
    refused: list[str] = []
    taken: set[str] = set()
    for decision in decisions:
        if decision.action == "keep":
            continue
        try:
            src, dst = _checked(root, decision)
        except ValueError as err:
            refused.append(str(err))
            continue
        done = applied.get(decision.path)
        if dst == src:
            skips.append(Move("skip", decision.path, None, f"already in class {decision.to}"))
        elif not os.path.lexists(root / src):
            why = "missing" if done is None else f"already applied (moved to {done['dst']})"
            skips.append(Move("skip", decision.path, None, why))
        else:
            dst, note = _free_name(root, dst, taken)
            taken.add(dst.as_posix())
            moves.append(Move(decision.action, src.as_posix(), dst.as_posix(), note))
    if refused:
        shown = "; ".join(refused[:_MAX_REFUSALS_SHOWN])
        more = (
            f" (and {len(refused) - _MAX_REFUSALS_SHOWN} more)"
            if len(refused) > _MAX_REFUSALS_SHOWN
            else ""
        )
        raise ValueError(f"nothing was moved: {shown}{more}")
    return moves, skips


def _make_parents(root: Path, folder: PurePosixPath) -> list[str]:
    """Create `root / folder` and the folders above it that are missing; the ones created."""
    made = []
    for depth in range(1, len(folder.parts) + 1):
        part = PurePosixPath(*folder.parts[:depth])
        if not (root / part).is_dir():
            (root / part).mkdir()
            made.append(part.as_posix())
    return made


def _move(src: Path, dst: Path) -> None:
    """Move a file without ever replacing one: a hard link (which fails when `dst` exists),
    then unlinking `src`; a rename where hard links are not supported."""
    try:
        os.link(src, dst, follow_symlinks=False)
    except FileExistsError:
        raise FileExistsError(f"{str(dst)!r} appeared while moving {str(src)!r}; nothing was "
                              "replaced: apply the log again") from None  # fmt: skip
    except (OSError, NotImplementedError):  # a file system without hard links
        if os.path.lexists(dst):
            raise FileExistsError(f"{str(dst)!r} exists; nothing was replaced") from None
        os.rename(src, dst)
        return
    os.unlink(src)
    sync_folder(dst.parent)


def _read_journal(file: Path) -> list[dict[str, Any]]:
    """The records of a journal (none when it does not exist yet)."""
    if not file.exists():
        return []
    records = []
    with open(file, "rb") as stream:
        header = stream.readline(MAX_LINE)
        try:
            first = json.loads(header)
        except ValueError:
            first = None
        if not isinstance(first, dict) or first.get("format") != JOURNAL_FORMAT:
            raise ValueError(f"{str(file)!r} is not a cleaner's journal; move it away and retry")
        for number, line in enumerate(iter(lambda: stream.readline(MAX_LINE), b""), start=2):
            try:
                record = json.loads(line)
            except ValueError:
                if line.endswith(b"\n"):
                    raise ValueError(f"line {number} of the journal {str(file)!r} is not "
                                     "JSON") from None  # fmt: skip
                break  # cut short by a crash: its move did not start
            if isinstance(record, dict) and record.get("event") in ("move", "restore"):
                records.append(record)
    return records


def _applied(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The moves still in effect: moved, not restored since, keyed by their source."""
    applied: dict[str, dict[str, Any]] = {}
    for record in records:
        applied.pop(str(record.get("src")), None)
        if record["event"] == "move":
            applied[str(record.get("src"))] = record
    return applied


def _journal(file: Path, record: dict[str, Any]) -> None:
    """Append a record to the journal (creating it with its header), synced."""
    if not file.exists():
        header = {"format": JOURNAL_FORMAT, "version": JOURNAL_VERSION, "created": now()}
        append_synced(file, json.dumps(header) + "\n")
        sync_folder(file.parent)
    append_synced(file, json.dumps({**record, "time": now()}) + "\n")


def _root(folder: str | Path) -> Path:
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"the data folder {str(folder)!r} does not exist; give the "
                                "folder the log's decisions were made on")  # fmt: skip
    return Path(os.path.realpath(root))


def apply_log(folder: str | Path, log: str | Path, verbose: bool = True) -> list[Move]:
    """Apply the last decision for each file in `log` to `folder`.

    Args:
        folder: the data folder. log: the cleaner's decision log.
        verbose: print one line per move or skip.

    Returns the moves made and the skips (a file already moved, or missing), in order.
    Raises ValueError, before moving anything, for paths that leave the folder.

    Example:
        >>> apply_log("digits", "clean_log.jsonl")
        delete   train/3/a.png -> _removed/train/3/a.png
        relabel  valid/7/b.png -> valid/3/b.png
    """
    root = _root(folder)
    decisions = list(latest(read_log(log)).values())
    journal = journal_path(log)
    moves, skips = _plan(root, decisions, _applied(_read_journal(journal)))
    for move in moves:
        dst = PurePosixPath(str(move.dst))
        made = _make_parents(root, dst.parent)
        _journal(journal, {"event": "move", "action": move.action, "src": move.src,
                           "dst": move.dst, "made": made})  # fmt: skip
        _move(root / move.src, root / dst)
        if verbose:
            print(move)
    if verbose:
        for skip in skips:
            print(skip)
    return moves + skips


def _restore(root: Path, journal: Path, record: dict[str, Any]) -> Move:
    """Move one file back where it was, and remove the folders its move created if empty."""
    src = _relative(record.get("src"), "the journal's path")
    dst = _relative(record.get("dst"), "the journal's path")
    _inside(root, src, "the journal's path")
    _inside(root, dst, "the journal's path")
    if os.path.lexists(root / src):
        return Move("skip", src.as_posix(), None, f"it exists again; {dst.as_posix()} stays")
    if not os.path.lexists(root / dst):
        return Move("skip", src.as_posix(), None, f"{dst.as_posix()} is missing")
    (root / src).parent.mkdir(parents=True, exist_ok=True)
    _journal(journal, {"event": "restore", "src": src.as_posix(), "dst": dst.as_posix()})
    _move(root / dst, root / src)
    made = record.get("made")
    for folder in reversed(made if isinstance(made, list) else []):
        with contextlib.suppress(OSError, ValueError):  # not empty (a file moved there), gone
            os.rmdir(_inside(root, _relative(folder, "the journal's folder"), "the folder"))
    return Move("restore", dst.as_posix(), src.as_posix())


def undo_log(folder: str | Path, log: str | Path, verbose: bool = True) -> list[Move]:
    """Reverse every move `apply_log` made with this log, last first: each file goes back to
    its path, and the folders the moves created are removed when they are empty.

    Returns the moves back ('restore') and the files left where they are ('skip'): a file
    whose old path is taken again, or that is no longer where it was moved.
    """
    root = _root(folder)
    read_log(log)  # a file that is not a cleaner's log is refused, as by apply_log
    journal = journal_path(log)
    if not journal.exists():
        raise FileNotFoundError(f"nothing to undo: {str(log)!r} was not applied (there is no "
                                f"journal {str(journal)!r})")  # fmt: skip
    steps = []
    for record in reversed(list(_applied(_read_journal(journal)).values())):
        step = _restore(root, journal, record)
        if verbose:
            print(step)
        steps.append(step)
    return steps


__all__ = ["JOURNAL_FORMAT", "Move", "apply_log", "journal_path", "undo_log"]
