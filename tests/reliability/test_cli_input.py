"""The `mentor` command fails loudly and loses nothing (issue 20): a bad item of `predict` or
`evaluate` is named on stderr and the others still run; `--resume` refuses any changed option
that shapes the run; bad options, devices and model files are one line, never a traceback;
lr-find checks its plot file before the sweep; a closed stdout pipe ends the command quietly.

The models are the small format fixtures of tests/inference/format1 (no training here)."""

from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from mentor.cli import commands, main
from mentor.cli import train as cli_train
from mentor.cli.parser import build_parser
from mentor.cli.resume import TrainingRun
from mentor.inference import Predictor
from mentor.train import Callback, Learner
from tests.helpers import tabular_frame, tiny_folder

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "inference" / "format1"
VISION = FIXTURES / "vision_category.mentor"  # TinyCNN on 24 px digits, classes 3 and 7
TABLE = FIXTURES / "tabular_category.mentor"  # color, size, x, z -> label (no / yes)
COLLAB = FIXTURES / "collab.mentor"  # users 0-11, movies 100-114


class _TrustingTests(Predictor):
    """Loads the fixtures' own model class (tests.inference.fixture_models:TinyCNN)."""

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu",
             trusted_modules: Sequence[str] = ()) -> Predictor:  # fmt: skip
        return Predictor.load(path, device, trusted_modules=["tests"])


@pytest.fixture(autouse=True)
def _trust_the_fixture_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commands, "Predictor", _TrustingTests)


def _errors(capsys: pytest.CaptureFixture[str]) -> tuple[list[str], list[str]]:
    """stdout and stderr lines; every stderr line is a `mentor: error:` line."""
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert all(line.startswith("mentor: error: ") for line in err), err
    return captured.out.strip().splitlines(), err


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    _, err = _errors(capsys)
    assert len(err) == 1, err
    return err[0]


def _bomb_png(dest: Path, side: int = 20_000) -> Path:
    """A PNG header declaring `side` x `side` pixels (a decompression bomb), with no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    dest.write_bytes(data)
    return dest


@pytest.fixture
def digits(mnist_tiny: Path, tmp_path: Path) -> Path:
    """A labelled folder of 3 + 3 digits (the vision fixture's classes)."""
    return tiny_folder(mnist_tiny, tmp_path / "digits", 0, 3) / "valid"


# ----- 1. every good item is predicted or scored; each bad one is one line -----


def test_predict_goes_on_past_bad_images(
    digits: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = sorted(digits.glob("*/*.png"))[:2]
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    bomb, missing = _bomb_png(tmp_path / "bomb.png"), tmp_path / "missing.png"
    inputs = [good[0], bad, good[1], bomb, missing]
    assert main(["predict", str(VISION), *map(str, inputs)]) == 1
    out, err = _errors(capsys)
    assert [line.split("\t")[0] for line in out] == [str(good[0]), str(good[1])]
    assert [line.split(": ")[2] for line in err] == [str(bad), str(bomb), str(missing)]
    assert "not an image" in err[0] and "not found" in err[2]


def test_predict_goes_on_past_a_bad_row_of_a_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tabular_frame(12).drop(columns="label").astype({"x": object})
    rows.loc[3, "x"] = "abc"
    rows.to_csv(tmp_path / "rows.csv", index=False)
    csv = str(tmp_path / "rows.csv")
    assert main(["predict", str(TABLE), csv, str(tmp_path / "none.csv")]) == 1
    out, err = _errors(capsys)
    assert [line.split("\t")[0] for line in out] == [f"{csv}:{i}" for i in range(12) if i != 3]
    assert len(err) == 2 and err[0].startswith(f"mentor: error: {csv}:3: ") and "'abc'" in err[0]
    assert "none.csv" in err[1] and "not found" in err[1]


def test_evaluate_scores_the_readable_images_and_counts_the_rest(
    digits: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = digits / "7" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    assert main(["evaluate", str(VISION), str(digits)]) == 1
    out, err = _errors(capsys)
    assert len(err) == 1 and err[0].startswith(f"mentor: error: {bad}: ")
    assert "images:   6" in out and "skipped:  1 of 7 images (each named on stderr)" in out
    assert any(line.startswith("accuracy: ") for line in out)


def test_evaluate_scores_the_good_rows_of_a_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tabular_frame(300).astype({"x": object})  # more than one chunk of 256 rows
    rows.loc[[5, 280], "x"] = "n/a?"
    rows.to_csv(tmp_path / "rows.csv", index=False)
    csv = str(tmp_path / "rows.csv")
    assert main(["evaluate", str(TABLE), csv, "--target", "label"]) == 1
    out, err = _errors(capsys)
    assert [line.split(": ")[2] for line in err] == [f"{csv}:5", f"{csv}:280"]
    assert out[:2] == ["rows:     298", "skipped:  2 of 300 rows (each named on stderr)"]
    assert out[2].startswith("accuracy: ")


def test_evaluate_with_no_readable_image_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "data" / "3").mkdir(parents=True)
    (tmp_path / "data" / "3" / "a.png").write_text("no")
    assert main(["evaluate", str(VISION), str(tmp_path / "data")]) == 1
    _, err = _errors(capsys)
    assert len(err) == 2 and "none of the 1 items could be predicted" in err[1]


# ----- 2. --resume refuses every changed option that shapes the model or the data -----

RESUME_CASES = [
    (["tabular", "t.csv", "--target", "label"], ["--target", "color"], "--target is 'color'"),
    (["tabular", "t.csv", "--target", "label"], ["--cont", "x"], "--cont is ['x'] but"),
    (["tabular", "t.csv", "--target", "label"], ["--cat", "color"], "--cat is ['color'] but"),
    (["tabular", "t.csv", "--target", "x"], ["--regression"], "--regression is True but"),
    (["tabular", "t.csv", "--target", "label"], ["--bf16"], "--bf16 is True but"),
    (["image", "pics"], ["--size", "64"], "--size is 64 but the interrupted run used the default"),
    (["image", "pics"], ["--arch", "resnet18"], "--arch is 'resnet18'"),
    (["image", "pics"], ["--valid", "val"], "--valid is 'val'"),
    (["image", "pics"], ["--train-folder", "tr"], "--train-folder is 'tr'"),
    (["image", "pics"], ["--no-channels-last"], "--channels-last is False"),
    (["collab", "u.csv"], ["--user-col", "u"], "--user-col is 'u'"),
    (["collab", "u.csv"], ["--item-col", "i"], "--item-col is 'i'"),
    (["collab", "u.csv"], ["--rating-col", "r"], "--rating-col is 'r'"),
    (["collab", "u.csv"], ["--factors", "8"], "--factors is 8 but"),
    (["collab", "u.csv"], ["--y-range", "1,5"], "--y-range is '1,5'"),
    (["collab", "u.csv"], ["--names", "a,b,c"], "--names is 'a,b,c'"),
    (["collab", "u.csv"], ["--sep", ";"], "--sep is ';'"),
    (["collab", "u.csv"], ["--no-header"], "--header is False"),
    (["text", "t.csv"], ["--text-col", "review"], "--text-col is 'review'"),
    (["text", "t.csv"], ["--label-col", "y"], "--label-col is 'y'"),
    (["text", "t.csv"], ["--valid-pct", "0.3"], "--valid-pct is 0.3 but"),
    (["text", "other.csv"], [], "DATA is 'other.csv' but the interrupted run used 't.csv'"),
]


@pytest.mark.parametrize(("base", "change", "expected"), RESUME_CASES)
def test_resume_refuses_a_changed_option_in_one_line(
    base: list[str],
    change: list[str],
    expected: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = ["--out", str(tmp_path / "m.mentor"), "--device", "cpu", "--quiet"]
    started = base if base[1] != "other.csv" else [base[0], "t.csv", *base[2:]]
    TrainingRun.start(build_parser().parse_args(["train", *started, *out]), lr=0.01)
    assert main(["train", *base, *change, *out, "--resume"]) == 1
    line = _one_line(capsys)
    assert expected in line and "drop --resume to start again" in line, line


def test_resume_may_change_what_does_not_shape_the_run(tmp_path: Path) -> None:
    parse = build_parser().parse_args
    base = ["train", "tabular", "t.csv", "--target", "label", "--out", str(tmp_path / "m")]
    TrainingRun.start(parse([*base, "--device", "cpu"]), lr=0.01)
    later = parse([*base, "--device", "auto", "--workers", "2", "--quiet", "--report", "r"])
    assert TrainingRun.resume(later).lr == 0.01


class _StopAfterFirstEpoch(Callback):
    order = 90  # after the epoch's checkpoint

    def after_epoch(self) -> None:
        if not any(getattr(cb, "sweeps_lr", False) for cb in self.learn.cbs):
            raise KeyboardInterrupt


def test_resume_after_an_interruption_refuses_changed_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tabular_frame(60).to_csv(tmp_path / "t.csv", index=False)
    args = ["train", "tabular", str(tmp_path / "t.csv"), "--target", "label", "--epochs", "2",
            "--lr", "1e-2", "--device", "cpu", "--quiet", "--out", str(tmp_path / "m")]  # fmt: skip
    build = cli_train.make_learner

    def build_and_stop(parsed: argparse.Namespace) -> Learner:
        learn = build(parsed)
        learn.add_cbs([_StopAfterFirstEpoch()])
        return learn

    with monkeypatch.context() as patch:
        patch.setattr(cli_train, "make_learner", build_and_stop)
        assert main(args) == 130
    capsys.readouterr()
    assert main([*args, "--resume", "--cont", "x"]) == 1  # the model would have 1 input, not 2
    assert "--cont is ['x'] but the interrupted run used the default" in _one_line(capsys)
    checkpoint = tmp_path / "m.checkpoints" / "stage1.pt"
    intact = checkpoint.read_bytes()
    damaged = bytearray(intact)
    damaged[len(damaged) // 2] ^= 0x40
    checkpoint.write_bytes(bytes(damaged))  # was "[Errno 22] Invalid argument", or NaN
    assert main([*args, "--resume"]) == 1
    assert "stage1.pt' is corrupt: its checksum does not match" in _one_line(capsys)
    checkpoint.write_bytes(intact)
    assert main([*args, "--resume"]) == 0 and (tmp_path / "m.mentor").is_file()


# ----- 3. bad options, devices and model files: one line, no traceback -----


TRAIN_TABLE = ["train", "tabular", "t.csv", "--target", "y"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["predict", "MODEL", "x.png", "--top-k", "-1"], "argument --top-k: must be >= 1, got -1"),
        (["predict", "MODEL", "x.png", "--top-k", "two"], "must be a whole number, got 'two'"),
        (["evaluate", "MODEL", "data", "--top-losses", "-3"], "--top-losses: must be >= 0"),
        ([*TRAIN_TABLE, "--workers", "-3"], "argument --workers: must be >= 0, got -3"),
        ([*TRAIN_TABLE, "--bs", "0"], "argument --bs: must be >= 1, got 0"),
        ([*TRAIN_TABLE, "--epochs", "0"], "argument --epochs: must be >= 1, got 0"),
        (["train", "image", "pics", "--size", "-5"], "--size: must be >= 1"),
        (["train", "collab", "u.csv", "--factors", "0"], "--factors: must be >= 1"),
        (["train", "text", "t.csv", "--valid-pct", "1.5"], "--valid-pct: must be between 0 and 1"),
        (["predict", "MODEL", "x", "--temperature", "-1"], "--temperature: must be a finite"),
        (["predict", "MODEL", "x", "--n-words", "-2"], "--n-words: must be >= 0"),
    ],
)  # fmt: skip
def test_a_bad_number_is_a_usage_error(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main([str(VISION) if a == "MODEL" else a for a in argv])
    assert info.value.code == 2
    assert expected in _one_line(capsys)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["predict", "MODEL", "x.png", "--device", "bogus"], "--device 'bogus' is not a device"),
        (["info", "MODEL", "--device", "meta"], "--device meta is not available on this machine"),
        (["info", "MODEL", "--device", "cuda:7"], "--device cuda:7 is not available"),
        (["evaluate", "MODEL", "d", "--device", "cuda:x"], "--device 'cuda:x' is not a device"),
        (["train", "tabular", "t.csv", "--target", "y", "--device", "tpu"], "'tpu' is not a"),
        (["lr-find", "collab", "u.csv", "--device", "cuda:9"], "cuda:9 is not available"),
    ],
)
def test_a_bad_device_is_one_line_naming_what_is_available(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(VISION) if a == "MODEL" else a for a in argv]) == 1
    line = _one_line(capsys)
    assert expected in line and "cpu" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("command", [["predict", "MODEL", "x.png"], ["train", "image", "pics"]])
def test_cuda_without_cuda_is_one_line(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*(str(VISION) if a == "MODEL" else a for a in command), "--device", "cuda"]) == 1
    assert "--device cuda is not available on this machine (available: cpu" in _one_line(capsys)


def _flipped(dest: Path, where: str) -> Path:
    """The collab fixture with one byte flipped: in a member's data, the central directory's
    signature, or its 'version needed' or 'compression method' field."""
    data = bytearray(COLLAB.read_bytes())
    central = bytes(data).find(b"PK\x01\x02")  # the first central directory entry
    at = {"data": len(data) // 3, "signature": central, "version": central + 6,
          "method": central + 10}[where]  # fmt: skip
    data[at] ^= 0xFF
    dest.write_bytes(bytes(data))
    return dest


def _deep_json(dest: Path) -> Path:
    with zipfile.ZipFile(COLLAB) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["pipeline.json"] = b"[" * 100_000 + b"]" * 100_000
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return dest


@pytest.mark.parametrize("where", ["data", "signature", "version", "method"])
def test_a_flipped_byte_in_a_model_file_is_one_line(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _flipped(tmp_path / "flipped.mentor", where)
    for argv in (["info", str(bad)], ["predict", str(bad), "3,101"]):
        assert main(argv) == 1
        assert "flipped.mentor" in _one_line(capsys)


def test_a_deeply_nested_model_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _deep_json(tmp_path / "deep.mentor")
    assert main(["predict", str(bad), "3,101"]) == 1
    assert "nested more than" in _one_line(capsys)


def _mentor(*args: str, stdout: int = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    """`python -m mentor ARGS` with block-buffered stdout, as in a shell pipeline."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "mentor", *args], stdout=stdout,
                          stderr=subprocess.PIPE, text=True, env=env, timeout=120)  # fmt: skip


def test_no_traceback_from_the_real_command(tmp_path: Path) -> None:
    bad = _flipped(tmp_path / "flipped.mentor", "version")
    for args in (["info", str(bad)], ["predict", str(COLLAB), "3,101", "--device", "bogus"]):
        done = _mentor(*args)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("mentor: error: ")


# ----- 4. lr-find refuses a plot file it could not write, before the sweep -----


@pytest.mark.parametrize(
    ("plot", "expected"),
    [
        ("missing/dir/lr.png", "the folder 'PLACE/missing/dir' does not exist"),
        ("a_file.txt/lr.png", "the folder 'PLACE/a_file.txt' does not exist"),
        ("lr.xyz", "matplotlib cannot write .xyz files; use one of"),
        ("a_folder", "is a folder"),
    ],
)
def test_lr_find_checks_the_plot_file_before_the_sweep(
    plot: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tabular_frame(60).to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "a_file.txt").write_text("")
    (tmp_path / "a_folder").mkdir()
    args = ["lr-find", "tabular", str(tmp_path / "t.csv"), "--target", "label", "--quiet"]
    assert main([*args, "--device", "cpu", "--plot", str(tmp_path / plot)]) == 1
    out, err = _errors(capsys)
    assert out == []  # no sweep ran: it prints its suggestions first
    assert len(err) == 1 and expected.replace("PLACE", str(tmp_path)) in err[0]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_lr_find_refuses_a_read_only_plot_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tabular_frame(60).to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "locked").mkdir(mode=0o500)
    args = ["lr-find", "tabular", str(tmp_path / "t.csv"), "--target", "label", "--quiet"]
    assert main([*args, "--device", "cpu", "--plot", str(tmp_path / "locked" / "lr.png")]) == 1
    assert "is not writable; write the plot elsewhere" in _one_line(capsys)


# ----- 5. a closed stdout pipe (`mentor ... | head -1`) ends the command quietly -----


@pytest.mark.parametrize(
    "args", [["--help"], ["predict", str(COLLAB), "3,101", "5,110", "0,104", "3,102"]]
)
def test_a_closed_pipe_ends_the_command_quietly(args: list[str]) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line, as after `head -0`
    try:
        done = _mentor(*args, stdout=write_end)
    finally:
        os.close(write_end)
    assert done.stderr == "" and done.returncode in (0, 141)


def test_predict_into_head_prints_the_first_line_only(tmp_path: Path) -> None:
    pairs = [f"{u},{m}" for u in range(12) for m in range(100, 115)] * 20  # 3,600 lines
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env["PYTHONPATH"] = str(ROOT)
    script = f"{sys.executable} -m mentor predict {COLLAB} {' '.join(pairs)} | head -1"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", script], capture_output=True,
                          text=True, env=env, timeout=120)  # fmt: skip
    assert done.stdout.count("\n") == 1 and done.stdout.startswith("0,100\t")
    assert done.stderr == "" and done.returncode in (0, 141)


def test_the_bad_item_lines_are_separate_from_a_bad_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A bad INPUT is `mentor: error: INPUT: why`; a bad model file is `mentor: error: why`."""
    assert main(["predict", str(COLLAB), "3,101", "1,2,3"]) == 1
    out, err = _errors(capsys)
    assert len(out) == 1 and err == [
        "mentor: error: 1,2,3: a collab input must be USER,ITEM such as 196,242, got '1,2,3'"
    ]


def test_debug_shows_each_bad_item_s_traceback_and_goes_on(
    digits: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, bad = sorted(digits.glob("*/*.png"))[0], tmp_path / "bad.png"
    bad.write_text("not an image")
    assert main(["predict", str(VISION), str(bad), str(good), "--debug"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{good}\t") and "Traceback" in captured.err
    assert captured.err.strip().splitlines()[-1].startswith(f"mentor: error: {bad}: ")


def test_pil_s_own_decompression_bomb_error_is_one_line(
    digits: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """PIL's DecompressionBombError is not an OSError: the CLI catches it as a bad item
    whether or not the image opener turns it into a BadImageError."""
    from PIL import Image

    good = sorted(digits.glob("*/*.png"))[0]

    def bomb(self: Predictor, item: object) -> None:
        raise Image.DecompressionBombError(f"Image size (400000000 pixels) of {item}")

    monkeypatch.setattr(Predictor, "predict", bomb)
    assert main(["predict", str(VISION), str(good)]) == 1
    assert _one_line(capsys).startswith(f"mentor: error: {good}: Image size (400000000")


def test_a_word_in_a_numeric_column_is_one_warning_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    df = tabular_frame(60)
    df["z"] = df["z"].round(2).astype(str)
    df.loc[9, "z"] = "forty"
    df.to_csv(tmp_path / "t.csv", index=False)
    args = ["train", "tabular", str(tmp_path / "t.csv"), "--target", "label", "--epochs", "1",
            "--lr", "1e-2", "--quiet", "--out", str(tmp_path / "m")]  # fmt: skip
    assert main(args) == 0
    err = capsys.readouterr().err.strip().splitlines()
    named = [line for line in err if "'z' holds numbers but for 1 value(s) ['forty']" in line]
    assert len(named) == 1 and named[0].startswith("mentor: warning: "), err
    assert not any("UserWarning" in line for line in err), err  # no source location lines


def test_warnings_per_row_are_shown_ten_at_most(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tabular_frame(15).drop(columns="label")
    rows["color"] = [f"mauve{i}" for i in range(15)]  # unseen in training (one line per value)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    assert main(["predict", str(TABLE), str(tmp_path / "rows.csv")]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.strip().splitlines()) == 15
    err = captured.err.strip().splitlines()
    assert len(err) == 11 and all(line.startswith("mentor: warning: ") for line in err), err
    assert "['mauve0']" in err[0] and err[-1] == "mentor: warning: more warnings are not shown"
