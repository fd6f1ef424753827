"""CSVLogger: the epoch table, one row per epoch, in a CSV file."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mentor.callbacks.csv_logger import CSVLogger
from mentor.train import Learner
from tests.helpers import tiny_classifier


def make_learner(path: Path) -> Learner:
    return tiny_classifier(path)


def read_rows(file: Path) -> list[list[str]]:
    with file.open(newline="") as src:
        return list(csv.reader(src))


def test_header_and_one_row_per_epoch_with_the_recorder_values(tmp_path: Path) -> None:
    learn = make_learner(tmp_path)
    logger = CSVLogger()
    learn.fit(3, 1e-2, cbs=[logger])
    rows = read_rows(tmp_path / "history.csv")
    assert rows[0] == ["epoch", "train_loss", "valid_loss", "accuracy", "time"]
    assert len(rows) == 1 + 3
    for written, recorded in zip(rows[1:], learn.recorder.values):
        assert int(written[0]) == recorded["epoch"]
        for column, name in enumerate(rows[0][1:], start=1):
            assert float(written[column]) == pytest.approx(recorded[name], rel=1e-12)
    assert logger.read_log()[2]["epoch"] == "2"


def test_a_new_fit_starts_the_file_anew(tmp_path: Path) -> None:
    learn = make_learner(tmp_path)
    learn.fit(2, 1e-2, cbs=[CSVLogger("logs/run.csv")])
    learn.fit(1, 1e-2, cbs=[CSVLogger("logs/run.csv")])
    rows = read_rows(tmp_path / "logs" / "run.csv")
    assert len(rows) == 1 + 1


def test_append_keeps_earlier_rows(tmp_path: Path) -> None:
    learn = make_learner(tmp_path)
    learn.fit(2, 1e-2, cbs=[CSVLogger(append=True)])
    first = read_rows(tmp_path / "history.csv")
    learn.fit(3, 1e-2, cbs=[CSVLogger(append=True)])
    rows = read_rows(tmp_path / "history.csv")
    assert rows[:3] == first
    assert len(rows) == 1 + 2 + 3  # one header, then both fits' rows
    assert [row[0] for row in rows[1:]] == ["0", "1", "0", "1", "2"]
