"""TabularModel and the embedding-size rules."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mentor.tabular.model import TabularModel, course_emb_sz_rule, emb_sz_rule, get_emb_sz


@pytest.mark.parametrize(("n_cat", "width"), [(2, 2), (10, 6), (100, 21), (1_000_000, 600)])
def test_emb_sz_rule(n_cat: int, width: int) -> None:
    assert emb_sz_rule(n_cat) == width


@pytest.mark.parametrize(("n_cat", "width"), [(1, 1), (2, 1), (10, 5), (17, 9), (500, 50)])
def test_course_emb_sz_rule(n_cat: int, width: int) -> None:
    assert course_emb_sz_rule(n_cat) == width


def test_get_emb_sz_rule_override_and_unknown_column() -> None:
    sizes = get_emb_sz({"a": 10, "b": 17}, sz_dict={"b": 3}, rule=course_emb_sz_rule)
    assert sizes == [(10, 5), (17, 3)]
    with pytest.raises(KeyError, match="'c'"):
        get_emb_sz({"a": 10}, sz_dict={"c": 3})


def test_shapes_and_layout() -> None:
    model = TabularModel([(10, 6), (5, 3)], n_cont=4, out_sz=2, layers=[20, 10], ps=[0.1, 0.2])
    out = model(torch.randint(0, 5, (8, 2)), torch.randn(8, 4))
    assert out.shape == (8, 2)
    kinds = [type(m) for m in model.layers]
    assert kinds[:4] == [nn.Linear, nn.ReLU, nn.BatchNorm1d, nn.Dropout]
    assert model.layers[0].in_features == 6 + 3 + 4
    assert model.layers[-1].out_features == 2


def test_no_continuous_and_no_categorical() -> None:
    cat_only = TabularModel([(10, 6)], n_cont=0, out_sz=1, layers=[8])
    assert cat_only(torch.randint(0, 10, (4, 1)), torch.zeros(4, 0)).shape == (4, 1)
    cont_only = TabularModel([], n_cont=3, out_sz=3, layers=[8])
    assert cont_only(torch.zeros(4, 0, dtype=torch.long), torch.randn(4, 3)).shape == (4, 3)
    with pytest.raises(ValueError, match="needs inputs"):
        TabularModel([], n_cont=0, out_sz=1, layers=[8])


def test_y_range_bounds_outputs() -> None:
    torch.manual_seed(0)
    model = TabularModel([(10, 6)], n_cont=2, out_sz=1, layers=[8], y_range=(1.0, 2.0))
    with torch.no_grad():
        model.layers[-2].weight.mul_(100)  # huge pre-activations: the bounds must still hold
    out = model.eval()(torch.randint(0, 10, (64, 1)), torch.randn(64, 2) * 10)
    assert out.min() >= 1.0 and out.max() <= 2.0
    assert out.std() > 0


def test_ps_length_mismatch_and_wrong_columns() -> None:
    with pytest.raises(ValueError, match="ps has 1 values"):
        TabularModel([(10, 6)], n_cont=0, out_sz=1, layers=[8, 4], ps=[0.1])
    model = TabularModel([(10, 6), (5, 2)], n_cont=0, out_sz=1, layers=[8])
    with pytest.raises(ValueError, match="x_cat has 1 columns"):
        model(torch.zeros(2, 1, dtype=torch.long), torch.zeros(2, 0))
