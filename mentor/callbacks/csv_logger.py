"""`CSVLogger`: the epoch table, one row per epoch, in a CSV file."""

from __future__ import annotations

import csv
from pathlib import Path

from mentor.core.device import is_main_process
from mentor.train.callback import Callback


class CSVLogger(Callback):
    """Appends each epoch's row (epoch, losses, metrics, time) to `path/fname`.

    Args:
        fname: the file name, relative to `learn.path` ('history.csv').
        append: keep the rows of earlier fits (default False: start the file anew).
    """

    order = 65

    def __init__(self, fname: str = "history.csv", append: bool = False) -> None:
        super().__init__()
        self.fname, self.append = fname, append
        self.file = Path(fname)

    def before_fit(self) -> None:
        """Open the file (and write the header unless appending to an existing one)."""
        self.file = self.learn.path / self.fname
        if not is_main_process():  # rank 0 writes the log of a distributed run
            return
        self.file.parent.mkdir(parents=True, exist_ok=True)
        if not self.append or not self.file.exists():
            with self.file.open("w", newline="") as out:
                csv.writer(out).writerow(self.learn.recorder.metric_names)

    def after_epoch(self) -> None:
        """Write this epoch's row."""
        row = self.learn.recorder.values[-1]
        if not is_main_process():
            return
        with self.file.open("a", newline="") as out:
            csv.writer(out).writerow(
                [row.get(name, "") for name in self.learn.recorder.metric_names]
            )

    def read_log(self) -> list[dict[str, str]]:
        """The rows written so far."""
        with self.file.open(newline="") as src:
            return list(csv.DictReader(src))
