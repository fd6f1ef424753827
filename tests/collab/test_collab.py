"""Collaborative filtering: loaders, models, learner and the item-factor PCA on tiny data."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

from mentor.collab import (
    UNKNOWN,
    CollabDataLoaders,
    EmbeddingDotBias,
    EmbeddingNN,
    collab_learner,
    item_factor_pca,
)
from mentor.train.losses import MSELossFlat


def ratings(n: int = 200) -> pd.DataFrame:
    gen = torch.Generator().manual_seed(0)
    users = torch.randint(0, 20, (n,), generator=gen) * 3
    items = torch.randint(0, 30, (n,), generator=gen)
    return pd.DataFrame(
        {
            "userId": users.numpy(),
            "movie": [f"m{i}" for i in items.tolist()],
            "rating": (torch.randint(1, 6, (n,), generator=gen)).numpy(),
            "ts": range(n),
        }
    )


def test_index_mapping_and_unknowns() -> None:
    df = ratings()
    dls = CollabDataLoaders.from_df(df, valid_pct=0.2, seed=1, bs=16, device="cpu")
    assert dls.user_name == "userId" and dls.item_name == "movie" and dls.rating_name == "rating"
    users = dls.classes["userId"]
    assert users[0] == UNKNOWN and users[1:] == sorted(users[1:])
    assert dls.n_users == len(users)
    x = dls.encode([users[1], users[-1], 12345], ["m_never", dls.classes["movie"][2], "m0"])
    assert x.dtype == torch.int64 and x.shape == (3, 2)
    assert x[:, 0].tolist() == [1, len(users) - 1, 0]
    assert x[:2, 1].tolist() == [0, 2]


def test_batches_shapes_dtypes_and_split() -> None:
    df = ratings()
    dls = CollabDataLoaders.from_df(df, valid_pct=0.25, seed=1, bs=16, device="cpu")
    x, y = dls.one_batch()
    assert x.shape == (16, 2) and x.dtype == torch.int64
    assert y.shape == (16,) and y.dtype == torch.float32
    n_train = sum(len(b[1]) for b in dls.train)
    n_valid = sum(len(b[1]) for b in dls.valid)
    assert (n_train, n_valid) == (150, 50)
    # the same seed gives the same split, and the batches decode back to the table's rows
    again = CollabDataLoaders.from_df(df, valid_pct=0.25, seed=1, bs=16, device="cpu")
    assert torch.equal(next(iter(again.valid))[0], next(iter(dls.valid))[0])
    vx, vy = next(iter(dls.valid))
    user, movie = dls.classes["userId"][int(vx[0, 0])], dls.classes["movie"][int(vx[0, 1])]
    rows = df[(df.userId == user) & (df.movie == movie)]
    assert float(vy[0]) in rows.rating.tolist() or user == UNKNOWN or movie == UNKNOWN


def test_missing_column_names_it_and_lists_the_columns() -> None:
    with pytest.raises(KeyError, match=r"'user'.*\['userId', 'movie', 'rating', 'ts'\]"):
        CollabDataLoaders.from_df(ratings(), user_name="user")


def test_non_numeric_rating_is_named() -> None:
    df = ratings().astype({"rating": object})
    df.loc[5, "rating"] = "five"
    with pytest.raises(ValueError, match="'five'"):
        CollabDataLoaders.from_df(df, seed=0, device="cpu")


def test_from_csv(tmp_path) -> None:
    path = tmp_path / "ratings.csv"
    ratings().to_csv(path, index=False)
    dls = CollabDataLoaders.from_csv(path, seed=0, bs=8, device="cpu")
    assert dls.one_batch()[0].shape == (8, 2)


def test_dot_bias_known_weights() -> None:
    model = EmbeddingDotBias(2, n_users=3, n_items=4)
    with torch.no_grad():
        model.u_weight.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 2.0], [3.0, -1.0]]))
        model.i_weight.weight.copy_(torch.tensor([[0.0, 0.0], [0.5, 1.0], [2.0, 0.0], [1, 1]]))
        model.u_bias.weight.copy_(torch.tensor([[0.0], [0.1], [0.2]]))
        model.i_bias.weight.copy_(torch.tensor([[0.0], [1.0], [-1.0], [0.5]]))
    x = torch.tensor([[1, 1], [2, 2], [2, 3]])
    # 1*.5 + 2*1 + .1 + 1 = 3.6; 3*2 + .2 - 1 = 5.2; 3 - 1 + .2 + .5 = 2.7
    assert torch.allclose(model(x), torch.tensor([3.6, 5.2, 2.7]))
    model.y_range = (0.0, 5.5)
    assert torch.allclose(model(x), torch.sigmoid(torch.tensor([3.6, 5.2, 2.7])) * 5.5)


def test_bias_and_weight_helpers_by_name() -> None:
    classes = (["#na#", "ann", "bob"], ["#na#", "up", "heat", "jaws"])
    model = EmbeddingDotBias(3, n_users=3, n_items=4, classes=classes)
    assert torch.equal(model.bias(["jaws", "up"]), model.i_bias.weight[[3, 1], 0])
    assert torch.equal(model.weight(["heat"]), model.i_weight.weight[[2]])
    assert torch.equal(model.weight(["bob"], is_item=False), model.u_weight.weight[[2]])
    assert torch.equal(model.bias(["nobody"], is_item=False), model.u_bias.weight[[0], 0])
    assert torch.equal(model.bias(torch.tensor([1])), model.i_bias.weight[[1], 0])
    assert 0.005 < model.u_weight.weight.std() < 0.02  # fastai's small normal init


def test_embedding_nn_shapes() -> None:
    model = EmbeddingNN([(5, 3), (7, 4)], layers=[8], y_range=(0, 5.5))
    out = model(torch.tensor([[1, 2], [4, 6], [0, 0]]))
    assert out.shape == (3,) and out.min() >= 0 and out.max() <= 5.5


def test_collab_learner_trains_and_pca() -> None:
    torch.manual_seed(0)
    dls = CollabDataLoaders.from_df(ratings(400), seed=0, bs=32, device="cpu")
    learn = collab_learner(dls, n_factors=4, y_range=(0, 5.5))
    assert isinstance(learn.loss_func, MSELossFlat)
    assert learn.model.bias(["m1"]).shape == (1,)
    learn.progress.show = False
    learn.fit_one_cycle(2, 1e-2)
    assert learn.recorder.values[-1]["valid_loss"] < 3.0
    pca = item_factor_pca(learn, n_components=2)
    assert pca.coords.shape == (dls.n_items - 1, 2) and pca.items == dls.classes["movie"][1:]
    assert len(pca.ranked) == 2 and sorted(pca.ranked[0]) == sorted(pca.items)
    first = pca.coords[:, 0]
    ranked_scores = [float(first[pca.items.index(name)]) for name in pca.ranked[0]]
    assert ranked_scores == sorted(ranked_scores, reverse=True)
    assert pca.explained[0] >= pca.explained[1] and float(pca.explained.sum()) <= 1.0 + 1e-6
    subset = item_factor_pca(learn, 1, items=["m3", "m1", "m2"])
    assert subset.items == ["m3", "m1", "m2"] and subset.coords.shape == (3, 1)


def test_collab_learner_use_nn_and_bad_pca() -> None:
    dls = CollabDataLoaders.from_df(ratings(), seed=0, bs=32, device="cpu")
    learn = collab_learner(dls, use_nn=True, layers=[16], emb_szs={"movie": 5}, y_range=(0, 5.5))
    assert isinstance(learn.model, EmbeddingNN)
    embeds = learn.model.embeds
    assert isinstance(embeds[1], nn.Embedding) and embeds[1].embedding_dim == 5
    x, _ = dls.one_batch()
    assert learn.model(x).shape == (32,)
    with pytest.raises(TypeError, match="EmbeddingDotBias"):
        item_factor_pca(learn)
    with pytest.raises(TypeError, match="CollabDataLoaders"):
        collab_learner(dls.train)  # type: ignore[arg-type]


def trained_learner():
    torch.manual_seed(0)
    dls = CollabDataLoaders.from_df(ratings(400), seed=0, bs=32, device="cpu")
    learn = collab_learner(dls, n_factors=4, y_range=(0, 5.5))
    learn.progress.show = False
    learn.fit(1, 1e-2)
    return learn


def test_predict_known_pair_matches_forward_for_dict_series_and_frame() -> None:
    learn = trained_learner()
    dls = learn.dls
    user, movie = dls.classes["userId"][3], dls.classes["movie"][5]
    learn.model.eval()
    with torch.no_grad():
        expected = float(learn.model(torch.tensor([[3, 5]]))[0])
    row = {"userId": user, "movie": movie}
    for item in (row, pd.Series(row), pd.DataFrame([row])):
        rating, tensor, raw = learn.predict(item)
        assert isinstance(rating, float)
        assert rating == pytest.approx(expected, abs=1e-6)
        assert float(tensor) == pytest.approx(expected, abs=1e-6)
        assert float(raw) == pytest.approx(expected, abs=1e-6)


def test_test_dl_maps_unknowns_to_zero_and_get_preds() -> None:
    learn = trained_learner()
    dls = learn.dls
    users, movies = dls.classes["userId"], dls.classes["movie"]
    new = pd.DataFrame({"userId": [users[1], 99999, users[2]], "movie": [movies[1], "m1", "zz"]})
    (x,) = next(iter(dls.test_dl(new)))
    assert x.tolist() == [[1, 1], [0, movies.index("m1")], [2, 0]]
    preds, targets = learn.get_preds(dl=dls.test_dl(new))
    assert targets is None and preds.shape == (3,)
    with torch.no_grad():
        assert torch.allclose(preds, learn.model(x))
    # with_labels: the batches carry the ratings, and get_preds returns them
    rated = new.assign(rating=[4, 2, 5])
    with pytest.raises(KeyError, match="with_labels=True needs the rating column 'rating'"):
        dls.test_dl(new, with_labels=True)
    preds, targets = learn.get_preds(dl=dls.test_dl(rated, with_labels=True, bs=2))
    assert preds.shape == (3,) and targets.tolist() == [4.0, 2.0, 5.0]


def test_test_dl_missing_column_and_bad_rows_are_named() -> None:
    dls = CollabDataLoaders.from_df(ratings(), seed=0, bs=16, device="cpu")
    with pytest.raises(KeyError, match=r"item column 'movie'.*\['userId'\]"):
        dls.test_dl(pd.DataFrame({"userId": [3]}))
    with pytest.raises(TypeError, match="dict, a Series or a DataFrame"):
        dls.test_dl([(3, "m1")])
