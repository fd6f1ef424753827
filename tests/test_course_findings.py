"""What broke or surprised when the course was run as a student would (issue 21), one test
per finding: predict on csv/df image data, segmentation data in vision_learner, points,
export without a path, a bad upload, printing data and learners, fastai's spellings."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from mentor.core.seed import set_seed
from mentor.data.datablock import DataBlock
from mentor.data.splitters import RandomSplitter
from mentor.inference import Predictor
from mentor.inference.learner import load_learner
from mentor.tabular import TabularDataLoaders, tabular_learner
from mentor.text.vocab import Vocab
from mentor.train import Learner
from mentor.vision import ImageDataLoaders, Resize, vision_learner
from mentor.vision.blocks import ImageBlock, MaskBlock, PointBlock
from mentor.vision.image import BadImageError
from tests.helpers import tabular_frame, tiny_folder
from tests.inference.fixture_models import TinyCNN


def tiny_cnn(n_out: int) -> nn.Module:
    return TinyCNN(n_out)  # a class in an importable module: it exports


@pytest.fixture(scope="module")
def labels(mnist_tiny: Path) -> pd.DataFrame:
    return pd.read_csv(mnist_tiny / "labels.csv").groupby("label").head(60)


# ----- 1. learn.predict on images from a CSV or a DataFrame -----


@pytest.mark.parametrize("multi", [False, True])
def test_predict_takes_a_path_a_str_and_a_pil_image_for_csv_and_df_data(
    multi: bool, labels: pd.DataFrame, mnist_tiny: Path, tmp_path: Path
) -> None:
    df = labels.assign(label=labels["label"].astype(str) + (" odd" if multi else ""))
    set_seed(0)
    dls = ImageDataLoaders.from_df(df, mnist_tiny, label_delim=" " if multi else None,
                                   item_tfms=Resize(24), bs=16, device="cpu")  # fmt: skip
    learn = Learner(dls, tiny_cnn(dls.c))
    learn.model_spec = {"factory": "tests.inference.fixture_models:TinyCNN",
                        "kwargs": {"n_out": dls.c}}  # fmt: skip
    file = mnist_tiny / df["name"].iloc[0]
    exported = Predictor.load(learn.export(tmp_path / "digits"), trusted_modules=["tests"])
    label, expected = exported.predict(str(file))
    for item in (file, str(file), Image.open(file)):  # TypeError for each before
        decoded, _, probs = learn.predict(item)
        assert torch.allclose(probs, expected, atol=1e-6)
        assert decoded == label
    from_csv = ImageDataLoaders.from_csv(mnist_tiny, item_tfms=Resize(24), bs=16, device="cpu")
    assert Learner(from_csv, tiny_cnn(from_csv.c)).predict(str(file))[0] in (3, 7)


# ----- 3. segmentation data in vision_learner -----


def test_vision_learner_on_mask_data_says_segmentation_needs_a_unet(tmp_path: Path) -> None:
    for i in range(4):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
        Image.fromarray(np.full((16, 16), i % 2, np.uint8)).save(tmp_path / f"{i}_mask.png")
    block = DataBlock(
        blocks=(ImageBlock(), MaskBlock(codes=["background", "thing"])),
        get_items=lambda path: sorted(Path(path).glob("?.png")),
        get_y=lambda f: f.with_name(f"{f.stem}_mask.png"),
        splitter=RandomSplitter(0.5, seed=0),
    )
    dls = block.dataloaders(tmp_path, bs=2, device="cpu")
    with pytest.raises(ValueError, match="segmentation needs a U-Net"):  # a classifier before
        vision_learner(dls, "xresnet18", pretrained=False)


# ----- 4. points: the number of outputs from the data, predictions in pixels -----


def test_points_infer_n_out_and_predict_in_pixels_of_the_input(tmp_path: Path) -> None:
    files = []
    for i in range(6):
        Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(tmp_path / f"{i}.png")
        files.append(tmp_path / f"{i}.png")
    points = {f.name: [[10.0, 20.0], [50.0, 30.0], [30.0, 5.0]] for f in files}
    block = DataBlock(
        blocks=(ImageBlock(), PointBlock()),
        get_items=lambda _: files,
        get_y=lambda f: points[f.name],
        item_tfms=[Resize(32, method="squish")],
        splitter=RandomSplitter(0.5, seed=0),
    )
    dls = block.dataloaders(tmp_path, bs=2, device="cpu")
    assert dls.c == 6  # three points: n_out=2 was needed before
    model = tiny_cnn(6)
    nn.init.zeros_(model[-1].weight)
    with torch.no_grad():
        model[-1].bias.copy_(torch.tensor([0.0, 0.0, 1.0, 1.0, -1.0, -1.0]))
    learn = Learner(dls, model)
    predicted, _, raw = learn.predict(files[0])
    assert torch.allclose(raw, torch.tensor([0.0, 0.0, 1.0, 1.0, -1.0, -1.0]))
    # [-1, 1] before; now pixels of the 60 x 40 input (as the labels give them): the centre,
    # the far corner and the near one
    assert np.allclose(predicted, [[30.0, 20.0], [60.0, 40.0], [0.0, 0.0]], atol=1e-4)


# ----- 5. export and load_learner without a file name -----


def test_export_without_a_path_writes_export_mentor_in_learn_path(tmp_path: Path) -> None:
    set_seed(0)
    df = tabular_frame(80)
    dls = TabularDataLoaders.from_df(df, tmp_path, cat_names=["color"], cont_names=["x", "z"],
                                     y_names="label", valid_idx=list(range(60, 80)), bs=16,
                                     device="cpu")  # fmt: skip
    learn = tabular_learner(dls, layers=[8], path=tmp_path)
    assert learn.export() == tmp_path / "export.mentor"  # TypeError before
    loaded = load_learner(tmp_path)
    row = df.iloc[0]
    assert torch.allclose(loaded.predict(row)[2], learn.predict(row)[2], atol=1e-6)
    assert Predictor.load(tmp_path).predict(dict(row))[0] == learn.predict(row)[0]


# ----- 7. a bad upload -----


def test_bad_uploaded_bytes_are_named_as_such() -> None:
    with pytest.raises(BadImageError, match="the uploaded bytes are not an image") as caught:
        ImageBlock().encode(b"GIF89a not really")
    assert "BytesIO" not in str(caught.value) and "verify_images" not in str(caught.value)
    png = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(png, format="PNG")
    cut = ImageBlock().encode(png.getvalue()[:5000])  # opens lazily; decoding fails later
    with pytest.raises(BadImageError, match="the uploaded bytes are not an image"):
        Resize(4)([cut, 0], ("image", "label"), train=False)


# ----- 8. print(dls) and print(learn) -----


def test_printing_data_and_learners_shows_what_users_look_for(
    labels: pd.DataFrame, mnist_tiny: Path
) -> None:
    dls = ImageDataLoaders.from_df(labels, mnist_tiny, item_tfms=Resize(24), bs=16, device="cpu",
                                   seed=0)  # fmt: skip
    text = repr(dls)
    for part in ("BlockDataLoaders (vision)", "batch size: 16", "[3, 7]", "items: train 96,",
                 "valid 24", "CategoryBlock", "Resize"):  # fmt: skip
        assert part in text, text
    learn = Learner(dls, tiny_cnn(2), metrics=[])
    text = repr(learn)
    for part in ("model: TinyCNN, 426 parameters", "CrossEntropyLossFlat", "Adam", "Recorder"):
        assert part in text, text
    rows = TabularDataLoaders.from_df(tabular_frame(40), cat_names=["color"], cont_names=["x"],
                                      y_names="label", device="cpu")  # fmt: skip
    assert "cat_names: ['color'" in repr(rows) and "procs: [" in repr(rows)


# ----- 9. fastai's spellings -----


def test_fastai_spellings_are_accepted() -> None:
    from mentor.tabular import tabular_config  # new: fastai's name

    vocab = Vocab(["xxunk", "xxpad", "the", "film"])
    assert list(vocab) == ["xxunk", "xxpad", "the", "film"]  # not iterable before
    dls = TabularDataLoaders.from_df(tabular_frame(40), cat_names=["color"], cont_names=["x"],
                                     y_names="label", device="cpu")  # fmt: skip
    direct = tabular_learner(dls, layers=[8, 4], ps=[0.1, 0.2], embed_p=0.05)  # a TypeError before
    dropouts = [m.p for m in direct.model.modules() if isinstance(m, nn.Dropout)]
    assert dropouts == [0.05, 0.1, 0.2]
    config = tabular_config(ps=[0.1, 0.2], embed_p=0.05)
    configured = tabular_learner(dls, layers=[8, 4], config=config)
    assert [m.p for m in configured.model.modules() if isinstance(m, nn.Dropout)] == dropouts
    with pytest.raises(ValueError, match="given both directly and in config"):
        tabular_learner(dls, config={"ps": [0.1]}, ps=[0.2])
    with pytest.raises(KeyError, match="'dropout'"):
        tabular_config(dropout=0.1)


# ----- 6. a bad image while training with loader workers -----


def test_a_bad_image_with_workers_is_one_clear_error_and_the_workers_stop(
    mnist_tiny: Path, tmp_path: Path
) -> None:
    import multiprocessing

    from mentor.cli.errors import message

    root = tiny_folder(mnist_tiny, tmp_path / "digits", 40, 8)
    good = next((root / "train" / "3").glob("*.png")).read_bytes()
    (root / "train" / "3" / "bad.png").write_bytes(good[: len(good) // 2])
    dls = ImageDataLoaders.from_folder(root, valid="valid", bs=8, num_workers=2, device="cpu")
    learn = Learner(dls, tiny_cnn(2))
    learn.progress.show = False
    with pytest.raises(BadImageError) as caught:
        learn.fit(1, 1e-3)
    text = str(caught.value)  # was "Caught BadImageError in DataLoader worker process 0. ..."
    assert text.startswith("cannot decode image file") and "bad.png" in text, text
    assert "Traceback" not in text and message(caught.value) == text
    assert multiprocessing.active_children() == []  # shut down, not left to a collector


# ----- 10. image-to-image data: show_batch and show_results -----


def test_image_to_image_data_shows_input_target_and_prediction_side_by_side(
    mnist_tiny: Path, tmp_path: Path
) -> None:
    from mentor.data.items import get_image_files
    from mentor.data.transforms import Normalize, imagenet_stats
    from mentor.vision.augment import aug_transforms

    folder = tiny_folder(mnist_tiny, tmp_path / "digits", n_train=4, n_valid=4)
    tfms = [*aug_transforms(), Normalize.from_stats(*imagenet_stats)]
    block = DataBlock(blocks=(ImageBlock, ImageBlock), get_items=get_image_files,
                      get_y=lambda p: p, splitter=RandomSplitter(0.5, seed=0),
                      item_tfms=Resize(32), batch_tfms=tfms)  # fmt: skip
    dls = block.dataloaders(folder, bs=4, num_workers=0, device="cpu")
    shown, target = dls.decode_batch(dls.one_batch())[0]
    assert shown.dtype == torch.uint8 and 0 < shown.float().mean() < 255  # all white before
    assert torch.equal(shown, target)  # the augmentation moved both alike
    fig = dls.show_batch(max_n=3, fname=tmp_path / "batch.png")
    assert len(fig.axes) == 6  # each item's input beside its target, not one over the other
    assert [ax.get_title() for ax in fig.axes[:2]] == ["input", "target"]
    learn = Learner(dls, nn.Conv2d(3, 3, 1), loss_func=nn.MSELoss())
    with torch.no_grad():  # the identity: the prediction is the target
        learn.model.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        learn.model.bias.zero_()
    fig = learn.show_results(max_n=2)
    assert [ax.get_title() for ax in fig.axes[:3]] == ["input", "target", "prediction"]
    drawn = [np.asarray(ax.get_images()[0].get_array()) for ax in fig.axes[:3]]
    assert np.abs(drawn[2].astype(int) - drawn[1].astype(int)).max() <= 1  # decoded alike
