"""ONNX export: the graph run by onnxruntime matches PyTorch, at another batch size too."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from mentor.core.seed import set_seed
from mentor.inference.onnx_export import OnnxExport, export_onnx, onnx_feeds
from mentor.train import Learner
from tests.helpers import tabular_frame, tiny_classifier, tiny_folder

pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

TOL = 1e-4


def _session(file: Path):
    return onnxruntime.InferenceSession(str(file), providers=["CPUExecutionProvider"])


def _vision_learner(mnist_tiny: Path, tmp_path: Path, model: nn.Module | None = None) -> Learner:
    from mentor.vision import ImageDataLoaders, Resize, vision_learner

    set_seed(0)
    folder = tiny_folder(mnist_tiny, tmp_path / "data", 4, 3)
    dls = ImageDataLoaders.from_folder(
        folder, item_tfms=Resize(20, method="squish"), bs=4, num_workers=0, device="cpu"
    )
    if model is not None:
        return Learner(dls, model)
    learn = vision_learner(dls, "resnet18", pretrained=False, lin_ftrs=(8,))
    learn.progress.show = False
    learn.fit(1, 1e-3)  # batch-norm statistics that are not the initial zeros and ones
    return learn


def test_vision_export_matches_pytorch_at_another_batch_size(
    mnist_tiny: Path, tmp_path: Path
) -> None:
    learn = _vision_learner(mnist_tiny, tmp_path)
    learn.model.train()
    result = learn.export_onnx(tmp_path / "digits")
    assert isinstance(result, OnnxExport) and result.path == tmp_path / "digits.onnx"
    assert result.max_abs_diff is not None and result.max_abs_diff <= TOL
    assert learn.model.training  # the learner's model is left in its mode
    export_bs = learn.dls.one_batch("valid")[0].shape[0]
    x = torch.cat([learn.dls.one_batch("train")[0], learn.dls.one_batch("valid")[0]])
    assert x.shape[0] != export_bs
    session = _session(result.path)
    assert [i.name for i in session.get_inputs()] == ["image"]
    got = session.run(["output"], {"image": x.numpy()})[0]
    learn.model.eval()
    with torch.no_grad():
        expected = learn.model(x)
    assert got.shape == tuple(expected.shape)
    assert float(np.abs(got - expected.numpy()).max()) <= TOL


def _tabular_learner(cat_names: list[str], cont_names: list[str]) -> tuple[Learner, pd.DataFrame]:
    from mentor.tabular import Categorify, FillMissing, TabularDataLoaders, tabular_learner
    from mentor.tabular.preprocess import Normalize

    set_seed(0)
    df = tabular_frame()
    dls = TabularDataLoaders.from_df(
        df, procs=[Categorify, FillMissing, Normalize], cat_names=cat_names,
        cont_names=cont_names, y_names="label", valid_idx=list(range(60, 80)), bs=8,
        device="cpu",
    )  # fmt: skip
    learn = tabular_learner(dls, layers=[8, 4])
    learn.progress.show = False
    learn.fit(1, 1e-2)
    return learn, df


def test_tabular_export_matches_the_learner_on_preprocessed_rows(tmp_path: Path) -> None:
    learn, df = _tabular_learner(["color", "size"], ["x", "z"])
    result = export_onnx(learn, tmp_path / "table.onnx")
    assert result.max_abs_diff is not None and result.max_abs_diff <= TOL
    session = _session(result.path)
    assert [i.name for i in session.get_inputs()] == ["cat", "cont"]
    assert session.get_inputs()[0].type == "tensor(int64)"
    # the module docstring's recipe: the preprocessor's cats and conts, 20 rows (export: 16)
    frame = learn.dls.preprocessor.transform(df.iloc[60:80])
    assert learn.dls.one_batch("valid")[0].shape[0] != len(frame.cats) == 20
    got = session.run(["output"], {"cat": frame.cats.numpy(), "cont": frame.conts.numpy()})[0]
    probs = torch.softmax(torch.from_numpy(got), dim=1)
    expected = learn.get_preds()[0]
    assert float((probs - expected).abs().max()) <= TOL


def test_tabular_without_categorical_columns_leaves_cat_out(tmp_path: Path) -> None:
    learn, df = _tabular_learner([], ["z"])  # no NaN in z: no `z_na` column either
    result = export_onnx(learn, tmp_path / "conts")
    assert result.max_abs_diff is not None and result.max_abs_diff <= TOL
    session = _session(result.path)
    frame = learn.dls.preprocessor.transform(df.iloc[:5])
    inputs = (frame.cats, frame.conts)
    feeds = onnx_feeds(session, inputs, ("cat", "cont"))
    assert frame.cats.shape == (5, 0) and list(feeds) == ["cont"]
    got = session.run(["output"], feeds)[0]
    learn.model.eval()
    with torch.no_grad():
        expected = learn.model(*inputs)
    assert float(np.abs(got - expected.numpy()).max()) <= TOL


def test_collab_and_plain_learners_are_refused(tmp_path: Path) -> None:
    from mentor.collab import CollabDataLoaders, collab_learner

    ratings = pd.DataFrame({"u": list("abcdab") * 5, "i": list("xyzzyx") * 5,
                            "r": [1.0, 2.0, 3.0, 4.0, 5.0, 3.0] * 5})  # fmt: skip
    dls = CollabDataLoaders.from_df(ratings, valid_pct=0.2, seed=0, bs=8, device="cpu")
    with pytest.raises(ValueError, match=r"covers vision and tabular.*collab.*learn\.export"):
        collab_learner(dls, n_factors=4).export_onnx(tmp_path / "recs")
    with pytest.raises(ValueError, match=r"data of type DataLoaders"):
        tiny_classifier(tmp_path).export_onnx(tmp_path / "mlp")
    assert not list(tmp_path.glob("*.onnx"))


class _Noisy(nn.Module):
    """Adds fresh noise each call: onnxruntime's outputs can't match PyTorch's."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Sequential(nn.Flatten(), nn.LazyLinear(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(x)
        return out + torch.rand_like(out)


def test_a_failed_check_raises_and_removes_the_file(mnist_tiny: Path, tmp_path: Path) -> None:
    model = _Noisy()
    learn = _vision_learner(mnist_tiny, tmp_path, model)
    model(learn.dls.one_batch("valid")[0])  # materialize the lazy layer
    with pytest.raises(ValueError, match=r"differ from PyTorch's by up to .*atol=0\.0001"):
        learn.export_onnx(tmp_path / "noisy.onnx")
    assert not (tmp_path / "noisy.onnx").exists()
    unchecked = learn.export_onnx(tmp_path / "noisy.onnx", check=False)
    assert unchecked.max_abs_diff is None and unchecked.path.exists()


def test_missing_onnx_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'mentor\[onnx\]'"):
        export_onnx(tiny_classifier(tmp_path), tmp_path / "x.onnx")


def test_a_float64_model_is_exported_from_a_float32_copy(tmp_path: Path) -> None:
    learn, _ = _tabular_learner(["color"], ["z"])
    learn.model.double()
    result = export_onnx(learn, tmp_path / "double")
    assert result.max_abs_diff is not None and result.max_abs_diff <= TOL
    session = _session(result.path)
    assert session.get_inputs()[1].type == "tensor(float)"
    assert next(learn.model.parameters()).dtype == torch.float64  # the learner's is untouched
