"""Labellers: parent_label, RegexLabeller, ColReader and using_attr, on real and tiny data."""

from __future__ import annotations

import pickle
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mentor.data.items import get_image_files
from mentor.data.labels import ColReader, RegexLabeller, parent_label, using_attr

PET_NAMES = {
    "great_pyrenees_173.jpg": "great_pyrenees",
    "Abyssinian_1.jpg": "Abyssinian",
    "staffordshire_bull_terrier_23.jpg": "staffordshire_bull_terrier",
    "pug_52.jpg": "pug",
}


def test_parent_label_on_str_and_path() -> None:
    assert parent_label("train/3/7463.png") == "3"
    assert parent_label(Path("a/b/cat/x.jpg")) == "cat"


def test_parent_label_on_mnist_tiny(mnist_tiny: Path) -> None:
    files = get_image_files(mnist_tiny, folders=["train", "valid"])
    counts = Counter(parent_label(f) for f in files)
    assert counts == {"3": 692, "7": 716}
    train = get_image_files(mnist_tiny, folders=["train"])
    assert Counter(parent_label(f) for f in train) == {"3": 346, "7": 363}


@pytest.mark.parametrize(("name", "label"), sorted(PET_NAMES.items()))
def test_regex_labeller_on_pet_names(name: str, label: str) -> None:
    labeller = RegexLabeller(r"^(.+)_\d+\.jpg$")
    assert labeller(f"/data/pets/images/{name}") == label
    assert labeller(Path("images") / name) == label


def test_regex_uses_the_file_name_not_the_folders() -> None:
    # '^' would match the folder if the full path were used: the label must come from the name
    labeller = RegexLabeller(r"^([a-z]+)_")
    assert labeller("/data/dogs_2020/pug_52.jpg") == "pug"
    with pytest.raises(ValueError, match=r"'123\.jpg'"):
        labeller("/data/dogs_2020/123.jpg")


def test_regex_match_anchors_and_search_does_not() -> None:
    assert RegexLabeller(r"(\d+)")("cat_12.jpg") == "12"
    assert RegexLabeller(r"(\d+)", match=True)("12_cat.jpg") == "12"
    with pytest.raises(ValueError, match=r"pattern '\(\\\\d\+\)' does not match.*'cat_12\.jpg'"):
        RegexLabeller(r"(\d+)", match=True)("cat_12.jpg")


def test_regex_errors_and_compiled_patterns() -> None:
    with pytest.raises(ValueError, match="has no group"):
        RegexLabeller(r"\d+")
    assert RegexLabeller(re.compile(r"^(.+)_\d+\.jpg$"))("pug_1.jpg") == "pug"
    assert repr(RegexLabeller(r"(a)", match=True)) == "RegexLabeller('(a)', match=True)"


def test_col_reader_on_labels_csv(mnist_tiny: Path) -> None:
    df = pd.read_csv(mnist_tiny / "labels.csv")
    assert len(df) == 1408
    get_path, get_label = ColReader("name", pref=mnist_tiny), ColReader("label")
    first = get_path(df.iloc[0])
    assert first == mnist_tiny / "train" / "3" / "7463.png" and first.exists()
    labels = [get_label(row) for _, row in df.iterrows()]
    assert Counter(labels) == {3: 692, 7: 716}
    assert all(type(label) is int for label in labels)  # numpy scalars come back as Python
    # the csv agrees with the folders: the label is the parent folder of the named file
    paths = [get_path(row) for _, row in df.iterrows()]
    assert all(parent_label(p) == str(label) for p, label in zip(paths, labels))
    assert ColReader(["name", "label"])(df.iloc[3]) == ("train/3/8065.png", 3)
    assert ColReader(1)(df.iloc[3]) == 3  # a position
    rows = list(df.itertuples())
    assert ColReader("name", pref=mnist_tiny)(rows[0]) == first  # a namedtuple


def test_col_reader_pref_and_suff() -> None:
    row = {"id": "pug_52", "n": 4}
    assert ColReader("id", pref="images/", suff=".jpg")(row) == "images/pug_52.jpg"
    assert ColReader("id", pref=Path("/data/pets"), suff=".jpg")(row) == Path(
        "/data/pets/pug_52.jpg"
    )
    assert ColReader("n", pref="x", suff="y")(row) == 4  # only strings are decorated


def test_col_reader_label_delim() -> None:
    df = pd.DataFrame({"tags": ["cat dog", "dog", "", None]})
    read = ColReader("tags", label_delim=" ")
    assert [read(row) for _, row in df.iterrows()] == [["cat", "dog"], ["dog"], [], []]
    assert ColReader("tags", label_delim=",")({"tags": "a, b,c"}) == ["a", "b", "c"]


def test_col_reader_missing_column_lists_available() -> None:
    df = pd.DataFrame({"name": ["a"], "label": [1]})
    with pytest.raises(KeyError, match=r"'lable'.*\['name', 'label'\]"):
        ColReader("lable")(df.iloc[0])
    with pytest.raises(KeyError, match=r"'x'.*\['a'\]"):
        ColReader("x")({"a": 1})
    with pytest.raises(KeyError, match=r"'x'.*\['Index', 'name', 'label'\]"):
        ColReader("x")(next(df.itertuples()))
    with pytest.raises(ValueError, match="at least one column"):
        ColReader([])


def test_col_reader_numpy_values() -> None:
    value = ColReader("v")({"v": np.float32(0.5)})
    assert value == 0.5 and type(value) is float


class Item:
    def __init__(self, fname: Path) -> None:
        self.fname = fname


def test_using_attr_applies_to_the_attribute() -> None:
    label = using_attr(RegexLabeller(r"^(.+)_\d+\.jpg$"), "name")
    assert label(Path("images/great_pyrenees_173.jpg")) == "great_pyrenees"
    assert using_attr(parent_label, "fname")(Item(Path("train/7/1.png"))) == "7"
    restored = pickle.loads(pickle.dumps(label))
    assert restored(Path("pug_1.jpg")) == "pug"


def test_using_attr_missing_attribute() -> None:
    with pytest.raises(AttributeError, match="'fnmae'"):
        using_attr(str, "fnmae")(Item(Path("a.png")))
