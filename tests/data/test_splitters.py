"""Splitters: exact and reproducible splits, validation of results, real data."""

from __future__ import annotations

import warnings
from collections import Counter, namedtuple
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mentor.core.seed import set_seed
from mentor.data.items import get_image_files
from mentor.data.labels import parent_label
from mentor.data.splitters import (
    ColSplitter,
    EndSplitter,
    FileSplitter,
    FuncSplitter,
    GrandparentSplitter,
    IndexSplitter,
    RandomSplitter,
    TrainTestSplitter,
    check_split,
)


def assert_partition(train: list[int], valid: list[int], n_items: int) -> None:
    """Disjoint, sorted, and together every index exactly once."""
    assert not set(train) & set(valid)
    assert sorted(train + valid) == list(range(n_items))
    assert train == sorted(train) and valid == sorted(valid)


def test_random_splitter_seeded_is_reproducible_and_leaves_global_rng() -> None:
    items = list(range(100))
    state = torch.get_rng_state()
    train, valid = RandomSplitter(valid_pct=0.25, seed=42)(items)
    assert torch.equal(torch.get_rng_state(), state)  # a private generator was used
    assert len(valid) == 25 and len(train) == 75
    assert_partition(train, valid, 100)
    assert RandomSplitter(valid_pct=0.25, seed=42)(items) == (train, valid)
    assert RandomSplitter(valid_pct=0.25, seed=43)(items)[1] != valid
    assert valid != list(range(25)) and valid != list(range(75, 100))  # actually shuffled


def test_random_splitter_unseeded_follows_set_seed() -> None:
    splitter = RandomSplitter()
    set_seed(7)
    first = splitter(list(range(50)))
    set_seed(7)
    assert splitter(list(range(50))) == first
    assert len(first[1]) == 10


def test_random_splitter_rounds_and_accepts_dataframes() -> None:
    df = pd.DataFrame({"x": range(7)})
    train, valid = RandomSplitter(valid_pct=0.5, seed=0)(df)  # 3.5 rounds half up to 4
    assert len(valid) == 4
    assert_partition(train, valid, 7)


def test_random_splitter_bad_fraction_and_whole_valid() -> None:
    with pytest.raises(ValueError, match=r"valid_pct=1\.0"):
        RandomSplitter(valid_pct=1.0)
    with pytest.raises(ValueError, match=r"valid_pct=-0\.1"):
        RandomSplitter(valid_pct=-0.1)
    with pytest.raises(ValueError, match="all 1 items"):
        RandomSplitter(valid_pct=0.5, seed=0)(["only"])
    with pytest.raises(ValueError, match="no items"):
        RandomSplitter(seed=0)([])
    with pytest.warns(UserWarning, match="valid set is empty"):
        train, valid = RandomSplitter(valid_pct=0.0, seed=0)(list(range(5)))
    assert (train, valid) == ([0, 1, 2, 3, 4], [])


def test_grandparent_splitter_on_mnist_tiny(mnist_tiny: Path) -> None:
    files = get_image_files(mnist_tiny)
    train, valid = GrandparentSplitter()(files)
    assert (len(train), len(valid)) == (709, 699)
    assert {files[i].parent.parent.name for i in train} == {"train"}
    assert {files[i].parent.parent.name for i in valid} == {"valid"}
    left_out = set(range(len(files))) - set(train) - set(valid)
    assert len(left_out) == 20 and {files[i].parent.name for i in left_out} == {"test"}
    assert {parent_label(files[i]) for i in train + valid} == {"3", "7"}


def test_grandparent_splitter_custom_names() -> None:
    items = ["d/training/a/1.png", "d/val/a/2.png", "d/dev/b/3.png", "d/training/b/4.png"]
    assert GrandparentSplitter("training", ["val", "dev"])(items) == ([0, 3], [1, 2])
    with pytest.raises(ValueError, match=r"train set is empty.*\['dev', 'training', 'val'\]"):
        GrandparentSplitter()(items)
    with pytest.warns(UserWarning, match="valid set is empty"):
        GrandparentSplitter("training", "valid")(items)
    with pytest.raises(ValueError, match="share"):
        GrandparentSplitter("train", ["valid", "train"])


def test_index_splitter() -> None:
    assert IndexSplitter([3, 1, 3])(list("abcde")) == ([0, 2, 4], [1, 3])
    assert IndexSplitter(np.array([0, 4]))(list("abcde")) == ([1, 2, 3], [0, 4])
    assert IndexSplitter(torch.tensor([2]))(list("abc")) == ([0, 1], [2])
    with pytest.raises(ValueError, match="index 5 is out of range for 5 items"):
        IndexSplitter([1, 5])(list("abcde"))
    with pytest.raises(ValueError, match="index -1 is out of range"):
        IndexSplitter([-1])(list("abcde"))
    with pytest.raises(ValueError, match="all 3 items"):
        IndexSplitter([0, 1, 2])(list("abc"))
    with pytest.warns(UserWarning, match="IndexSplitter: the valid set is empty"):
        IndexSplitter([])(list("abc"))


@pytest.mark.parametrize(
    "flags",
    [
        [False, True, False, True],
        [0, 1, 0, 1],
        ["False", "True", "false", "TRUE"],
        np.array([False, True, False, True]),
    ],
)
def test_col_splitter_flag_kinds(flags: list) -> None:
    df = pd.DataFrame({"x": list("abcd"), "is_valid": list(flags)})
    assert ColSplitter()(df) == ([0, 2], [1, 3])
    rows = df.to_dict("records")
    assert ColSplitter()(rows) == ([0, 2], [1, 3])  # a list of dicts


def test_col_splitter_rows_and_errors() -> None:
    row = namedtuple("row", ["x", "valid"])
    assert ColSplitter("valid")([row(1, False), row(2, True)]) == ([0], [1])
    df = pd.DataFrame({"x": [1, 2, 3], "is_valid": [True, "maybe", False]})
    with pytest.raises(ValueError, match=r"'maybe' in row 1"):
        ColSplitter()(df)
    with pytest.raises(KeyError, match=r"'valid'.*\['x', 'is_valid'\]"):
        ColSplitter("valid")(df)
    with pytest.raises(KeyError, match=r"'valid'.*\['x', 'is_valid'\]"):
        ColSplitter("valid")(df.to_dict("records"))


def test_col_splitter_on_mnist_tiny_labels(mnist_tiny: Path) -> None:
    df = pd.read_csv(mnist_tiny / "labels.csv")
    df["is_valid"] = df["name"].str.startswith("valid/")
    train, valid = ColSplitter()(df)
    assert (len(train), len(valid)) == (709, 699)
    assert_partition(train, valid, 1408)
    assert df.iloc[valid]["name"].str.startswith("valid/").all()


def test_file_splitter(tmp_path: Path) -> None:
    items = [Path("imgs/a.png"), Path("imgs/b.png"), Path("other/c.png"), Path("imgs/d.png")]
    listing = tmp_path / "valid.txt"
    listing.write_text("b.png\n\n  d.png  \nsome/folder/c.png\nmissing.png\n")
    assert FileSplitter(listing)(items) == ([0], [1, 2, 3])
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        FileSplitter(tmp_path / "nope.txt")(items)


def test_file_splitter_on_mnist_tiny(mnist_tiny: Path, tmp_path: Path) -> None:
    files = get_image_files(mnist_tiny, folders=["train", "valid"])
    valid_names = sorted({f.name for f in files if f.parent.parent.name == "valid"})
    listing = tmp_path / "valid.txt"
    listing.write_text("\n".join(valid_names))
    train, valid = FileSplitter(str(listing))(files)
    assert_partition(train, valid, len(files))
    # names, not paths: every valid file, plus train files that happen to share a name
    assert {f for f in files if f.parent.parent.name == "valid"} <= {files[i] for i in valid}
    assert {files[i].name for i in valid} == set(valid_names)
    assert not {files[i].name for i in train} & set(valid_names)


def test_func_splitter() -> None:
    assert FuncSplitter(lambda s: s.startswith("v"))(["t1", "v1", "t2", "v2"]) == ([0, 2], [1, 3])
    df = pd.DataFrame({"year": [2019, 2020, 2021, 2022]})
    assert FuncSplitter(lambda row: row["year"] >= 2021)(df) == ([0, 1], [2, 3])
    with pytest.raises(ValueError, match="FuncSplitter: the valid set would hold all 2"):
        FuncSplitter(lambda s: True)(["a", "b"])


def test_train_test_splitter_stratified_on_mnist_tiny(mnist_tiny: Path) -> None:
    files = get_image_files(mnist_tiny, folders=["train", "valid"])  # 692 threes, 716 sevens
    splitter = TrainTestSplitter(test_size=0.25, random_state=0, stratify=parent_label)
    state = torch.get_rng_state()
    train, valid = splitter(files)
    assert torch.equal(torch.get_rng_state(), state)
    assert_partition(train, valid, len(files))
    assert Counter(parent_label(files[i]) for i in valid) == {"3": 173, "7": 179}
    assert splitter(files) == (train, valid)
    labels = [parent_label(f) for f in files]  # labels as a list give the same split
    assert TrainTestSplitter(0.25, random_state=0, stratify=labels)(files) == (train, valid)
    other = TrainTestSplitter(0.25, random_state=1, stratify=labels)(files)
    assert other[1] != valid and len(other[1]) == len(valid)


def test_train_test_splitter_small_classes() -> None:
    labels = ["a"] * 10 + ["b"] * 2 + ["c"] + ["d"] * 3
    train, valid = TrainTestSplitter(0.2, random_state=0, stratify=labels)(labels)
    assert_partition(train, valid, len(labels))
    # a: round(2.0) = 2; b: round(0.4) = 0 -> at least 1; c: alone, stays in train; d: 1
    assert Counter(labels[i] for i in valid) == {"a": 2, "b": 1, "d": 1}
    assert {labels[i] for i in train} == {"a", "b", "c", "d"}  # every class keeps training data
    big = TrainTestSplitter(0.9, random_state=0, stratify=labels)(labels)
    assert Counter(labels[i] for i in big[0]) == {"a": 1, "b": 1, "c": 1, "d": 1}


def test_train_test_splitter_without_stratify_and_without_shuffle() -> None:
    items = list(range(10))
    train, valid = TrainTestSplitter(0.3, random_state=5)(items)
    assert len(valid) == 3
    assert_partition(train, valid, 10)
    assert TrainTestSplitter(0.3, shuffle=False)(items) == ([0, 1, 2, 3, 4, 5, 6], [7, 8, 9])
    labels = ["x", "y"] * 5
    unshuffled = TrainTestSplitter(0.4, shuffle=False, stratify=labels)(items)
    assert unshuffled == ([0, 1, 2, 3, 4, 5], [6, 7, 8, 9])  # the last two of each class


def test_train_test_splitter_errors() -> None:
    with pytest.raises(ValueError, match="stratify has 2 labels for 3 items"):
        TrainTestSplitter(stratify=["a", "b"])(["x", "y", "z"])
    with pytest.raises(ValueError, match="not hashable"):
        TrainTestSplitter(stratify=[["a"], ["b"]])(["x", "y"])
    with pytest.raises(ValueError, match=r"test_size=1\.5"):
        TrainTestSplitter(test_size=1.5)


def test_end_splitter() -> None:
    items = list(range(10))
    assert EndSplitter()(items) == ([0, 1, 2, 3, 4, 5, 6, 7], [8, 9])
    assert EndSplitter(0.3, valid_last=False)(items) == ([3, 4, 5, 6, 7, 8, 9], [0, 1, 2])
    assert EndSplitter(0.25)(pd.DataFrame({"t": range(6)})) == ([0, 1, 2, 3], [4, 5])  # 1.5 -> 2


def test_check_split_rejects_bad_splits() -> None:
    assert check_split([2, 0], [1], 3) == ([2, 0], [1])
    with pytest.raises(ValueError, match=r"indices \[1\] are in both"):
        check_split([0, 1], [1], 3)
    with pytest.raises(ValueError, match="train set is empty"):
        check_split([], [0], 3)
    with pytest.raises(ValueError, match="index 3 is out of range"):
        check_split([3], [0], 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_split([0], [1], 2)  # a normal split warns about nothing
