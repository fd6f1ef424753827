"""`DatasetCleaner`: the images a model finds most confusing first, and what to do with each.

As fastai's `ImageClassifierCleaner` (lesson 2 of the course), from Python or behind the page
of `mentor clean`: the images are ordered by the model's loss, each can be kept, deleted or
moved to another class, and the decisions are data (`decisions`, `deleted()`, `changed()`,
`to_frame()`). With a log file every decision is on disk as soon as it is made, and
reopening the cleaner with the same log restores them. Files move only when the log is
applied (`apply_log`, which `undo_log` reverses). This module never imports FastAPI.

Example:
    >>> cleaner = DatasetCleaner(learn, log="clean_log.jsonl")
    >>> worst = cleaner.filter(split="valid")[0]
    >>> cleaner.relabel(worst.path, "7")
    >>> cleaner.delete(cleaner.filter(label="3")[1].path)
    >>> apply_log(cleaner.folder, "clean_log.jsonl")
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from mentor.inference.predictor import Predictor
from mentor.serve.clean_apply import Move, apply_log, undo_log
from mentor.serve.clean_log import ACTIONS, Decision, DecisionLog, latest, now
from mentor.serve.clean_scores import Entry, ScoredImages, score_folder, score_learner

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mentor.train.learner import Learner


class DatasetCleaner:
    """The images of a labelled image folder ordered by the model's loss, with decisions.

    Args:
        source: a trained `Learner` on image files labelled by their parent folder (its
            training and validation images are scored with `get_preds(with_loss=True)`), or
            the `ScoredImages` of `score_folder` (see `from_folder`).
        log: a JSON-lines file that receives each decision as it is made; an existing log is
            read back (the last decision for a file wins). None keeps them in memory only.

    Attributes:
        folder: the data folder. classes: the model's classes (the targets of a relabel).
        entries: every image, most confusing first (`Entry.id` is its place).
    """

    def __init__(self, source: Learner | ScoredImages, log: str | Path | None = None) -> None:
        scored = source if isinstance(source, ScoredImages) else score_learner(source)
        self.folder: Path = scored.folder
        self.classes: list[str] = list(scored.classes)
        ordered = sorted(scored.entries, key=lambda e: (-e.loss, e.split, e.label, e.path))
        self.entries: list[Entry] = [replace(e, id=i) for i, e in enumerate(ordered)]
        self._by_path = {entry.path: entry for entry in self.entries}
        self._lock = threading.Lock()  # the web app records decisions from several threads
        self.log: DecisionLog | None = None if log is None else DecisionLog(log, self.folder)
        self._decisions: dict[str, Decision] = {} if self.log is None else latest(self.log.read())

    @classmethod
    def from_folder(
        cls,
        folder: str | Path,
        predictor: Predictor,
        log: str | Path | None = None,
        splits: Sequence[str] | None = None,
        bs: int = 64,
    ) -> DatasetCleaner:
        """A cleaner over a folder of SPLIT/CLASS/image (or CLASS/image) files, scored by an
        exported model: loss = -log(probability of the image's folder's class).

        Args:
            folder: the data folder. predictor: `Predictor.load("model.mentor")`.
            log: the decision log (see the class). splits: only these splits (default: all).
            bs: batch size for prediction (64).

        Example:
            >>> cleaner = DatasetCleaner.from_folder("digits", Predictor.load("digits.mentor"))
        """
        return cls(score_folder(folder, predictor, splits, bs), log=log)

    # ----- the images -----
    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return (f"DatasetCleaner({len(self.entries)} images in {str(self.folder)!r}, "
                f"{len(self._decisions)} decided)")  # fmt: skip

    @property
    def splits(self) -> list[str]:
        """The splits present, sorted ('' when the folder has no split level)."""
        return sorted({entry.split for entry in self.entries})

    @property
    def labels(self) -> list[str]:
        """The classes present in the folders, sorted (may include ones the model lacks)."""
        return sorted({entry.label for entry in self.entries})

    def filter(
        self, split: str | None = None, label: str | None = None, undecided: bool = False
    ) -> list[Entry]:
        """The entries of one split and/or one class, most confusing first.

        Args:
            split: 'train', 'valid', ... (None: all). label: the current class (None: all).
            undecided: only the images without a decision.
        """
        return [
            entry
            for entry in self.entries
            if (split is None or entry.split == split)
            and (label is None or entry.label == label)
            and not (undecided and entry.path in self._decisions)
        ]

    def entry(self, key: int | str) -> Entry:
        """The entry with this id or relative path; KeyError names it."""
        if isinstance(key, int) and not isinstance(key, bool):
            if 0 <= key < len(self.entries):
                return self.entries[key]
            raise KeyError(f"no image with id {key}; ids go from 0 to {len(self.entries) - 1}")
        found = self._by_path.get(str(key).replace("\\", "/"))
        if found is None:
            raise KeyError(f"{key!r} is not an image the cleaner lists (paths are relative to "
                           f"{str(self.folder)!r}, such as {self.entries[0].path!r})")  # fmt: skip
        return found

    # ----- decisions -----
    def decide(self, key: int | str, action: str, to: str | None = None) -> Decision:
        """Record a decision for one image (appended to the log and synced before returning).

        Args:
            key: the image's id or relative path. action: 'keep', 'delete' or 'relabel'.
            to: the new class for 'relabel' (one of `classes`, not the current one).
        """
        entry = self.entry(key)
        if action not in ACTIONS:
            raise ValueError(f"action {action!r} is not one of {ACTIONS}")
        if action == "relabel":
            if to not in self.classes:
                raise ValueError(f"relabel {entry.path!r} to {to!r}: not a class of the model; "
                                 f"use one of {self.classes}")  # fmt: skip
            if to == entry.label:
                raise ValueError(f"{entry.path!r} is already in class {to!r}; use keep")
        decision = Decision(entry.path, action, to if action == "relabel" else None,
                            entry.label, now())  # fmt: skip
        with self._lock:
            if self.log is not None:
                self.log.append(decision)
            self._decisions.pop(entry.path, None)
            self._decisions[entry.path] = decision
        return decision

    def keep(self, key: int | str) -> Decision:
        """Keep the image as it is (a decision too: it marks the image as looked at)."""
        return self.decide(key, "keep")

    def delete(self, key: int | str) -> Decision:
        """Delete the image: applying the log moves it to `FOLDER/_removed/`."""
        return self.decide(key, "delete")

    def relabel(self, key: int | str, to: str) -> Decision:
        """Move the image to class `to`: applying the log moves it to that class's folder."""
        return self.decide(key, "relabel", to)

    def decision(self, key: int | str) -> Decision | None:
        """The last decision for this image, or None."""
        return self._decisions.get(self.entry(key).path)

    @property
    def decisions(self) -> list[Decision]:
        """The last decision for each image, in the order they were made (those in the log
        for images this cleaner does not list, another split's say, included)."""
        return list(self._decisions.values())

    def deleted(self) -> list[str]:
        """The paths decided for deletion (fastai's `cleaner.delete()`)."""
        return [d.path for d in self._decisions.values() if d.action == "delete"]

    def changed(self) -> list[tuple[str, str]]:
        """`(path, new class)` of the images decided for a relabel (fastai's `change()`)."""
        return [(d.path, str(d.to)) for d in self._decisions.values() if d.action == "relabel"]

    def to_frame(self) -> pd.DataFrame:
        """Every entry with its decision: columns id, path, split, label, predicted,
        probability, loss, problem, decision and to (None where undecided)."""
        rows = []
        for entry in self.entries:
            decision = self._decisions.get(entry.path)
            rows.append({**entry.to_json(), "loss": entry.loss,
                         "decision": None if decision is None else decision.action,
                         "to": None if decision is None else decision.to})  # fmt: skip
        return pd.DataFrame(rows)


__all__ = ["DatasetCleaner", "Decision", "Entry", "Move", "apply_log", "undo_log"]
