"""The argument parser of the `mentor` command: subcommands, options and man-page help."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NoReturn

DESCRIPTION = """\
Train, inspect and use deep-learning models from the shell, with the fast.ai workflow
built in: the learning-rate finder, one-cycle training, transfer learning, and a safe
exported `.mentor` file that `predict`, `evaluate` and `info` read back."""

EPILOG = """\
examples:
  mentor train image pets/ --valid-pct 0.2 --arch efficientnet_lite0 --epochs 4
  mentor train tabular adult.csv --target salary --epochs 3 --out adult.mentor
  mentor train collab u.data --sep '\\t' --names user,item,rating,timestamp --no-header
  mentor train text texts.csv --text-col text --label-col label
  mentor lr-find image pets/ --plot lr_find.png
  mentor predict model.mentor cat.jpg dog.jpg --top-k 3
  mentor evaluate model.mentor pets_valid/
  mentor info model.mentor
  mentor serve model.mentor --port 8000
  mentor clean pets/ --model model.mentor
  mentor crappify imagenette/val crappy/val --size 128

exit status:
  0 on success; 1 on bad input (one line on stderr, `mentor: error: ...`);
  2 on a usage error; 141 when the reader of the output goes away (`| head`).
  predict and evaluate skip a bad item (an unreadable image, a bad row) with one
  line each, `mentor: error: ITEM: why`, go on with the others, and exit 1.
  Add --debug to see the full traceback."""

TRAIN_EPILOG = """\
examples:
  mentor train image imagenette/ --valid val --arch efficientnet_lite0 --size 160
  mentor train image digits/ --no-pretrained --arch resnet18 --size 28 --lr 1e-3
  mentor train segment camvid/images --labels camvid/labels --codes camvid/codes.txt
  mentor train tabular adult.csv --target salary --cat workclass education --cont age
  mentor train collab ratings.csv --user-col user --item-col movie --rating-col rating
  mentor train text imdb/texts.csv --text-col text --label-col label --epochs 2

Given only the data, the recipe comes from it: a table's batch size from its number
of rows (64 to 1024); for images, the size is their own shorter side (at most 224),
and images under 64 px get small_cnn from scratch without augmentation, larger ones
efficientnet_lite0 from its ImageNet weights with aug_transforms. With --lr auto
(the default) a pretrained image model takes fine_tune's rate (2e-3) and everything
else runs the learning-rate finder first: its `slide` for a model from scratch, its
`valley` otherwise. Pretrained image models are trained with fine_tune (the frozen
epoch on precomputed features), everything else with fit_one_cycle. The trained model
is exported to --out, and report.html (data, lr_find plot, loss and metric curves,
schedules, epoch table, confusion matrix and top losses) is written beside it, or to
--report. Every epoch is checkpointed: after an interruption, the same command with
--resume continues where it stopped."""

MAN = argparse.RawDescriptionHelpFormatter


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr, naming the help to read."""

    def error(self, message: str) -> NoReturn:
        """Print `mentor: error: ...` (one line) and exit with status 2."""
        self.exit(2, f"mentor: error: {message} (see '{self.prog} --help')\n")


def at_least(low: int) -> Callable[[str], int]:
    """An argparse `type`: an integer of at least `low` (argparse names the option)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    return parse


def non_negative_float(text: str) -> float:
    """An argparse `type`: a finite number of at least 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def fraction(text: str) -> float:
    """An argparse `type`: a number strictly between 0 and 1 (a share of the data)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (such as 0.2), got {text!r}")
    return value


def _common(p: argparse.ArgumentParser) -> None:
    """Options every subcommand takes."""
    g = p.add_argument_group("common options")
    g.add_argument("--seed", type=at_least(0), default=42, help="random seed (default: 42)")
    g.add_argument(
        "--device",
        default="auto",
        help="where to train: auto (CUDA when available), cpu, cuda, cuda:N or mps (default: auto)",
    )
    g.add_argument("--bf16", action="store_true", help="train in bfloat16 mixed precision")
    g.add_argument(
        "--workers", type=at_least(0), default=None,
        help="data-loading processes (default: one per core, none on a single core)",
    )  # fmt: skip
    g.add_argument("--quiet", action="store_true", help="no progress table")
    g.add_argument("--debug", action="store_true", help="show full tracebacks on errors")


def _image_options(p: argparse.ArgumentParser) -> None:
    """Options of `image`: the folder, split, architecture and size."""
    p.add_argument("data", metavar="FOLDER", help="images in <label>/ subfolders")
    p.add_argument("--valid", default="valid", help="validation folder name (valid)")
    p.add_argument("--train-folder", default="train", help="training folder name (train)")
    p.add_argument(
        "--arch", default="auto",
        help="model (default auto: small_cnn from scratch for images under 64 px, else "
        "efficientnet_lite0 with its ImageNet weights)",
    )  # fmt: skip
    p.add_argument(
        "--pretrained",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="start from ImageNet weights (default: when the model has them)",
    )
    p.add_argument(
        "--size", type=at_least(1), default=None,
        help="image size (default: the images' own shorter side, at most 224)",
    )  # fmt: skip
    p.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="channels-last memory format: faster convolutions, except on tiny images "
        "(default: for sizes of 64 px and more)",
    )


def _segment_options(p: argparse.ArgumentParser) -> None:
    """Options of `segment`: the images, their masks, the codes, architecture and size."""
    p.add_argument("data", metavar="IMAGES", help="a folder of images")
    p.add_argument("--labels", required=True, help="the folder of masks (one PNG per image)")
    p.add_argument("--codes", required=True, help="a text file of class names (index = line)")
    p.add_argument(
        "--mask-suffix",
        default="_P",
        help="a mask's name is the image's stem, this, and the image's extension "
        "(default: _P, as CamVid's labels/<name>_P.png)",
    )
    p.add_argument(
        "--void",
        default="Void",
        help="the code left out of the accuracy (default: Void, when the codes have it)",
    )
    p.add_argument("--arch", default="efficientnet_lite0", help="encoder (efficientnet_lite0)")
    p.add_argument(
        "--pretrained",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="start the encoder from ImageNet weights (default: yes)",
    )
    p.add_argument(
        "--size", type=at_least(8), default=128, help="the images' longer side (default: 128)"
    )
    p.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="channels-last memory format (default: for sizes of 64 px and more)",
    )


def _tabular_options(p: argparse.ArgumentParser) -> None:
    """Options of `tabular`: the CSV, target and column kinds."""
    p.add_argument("data", metavar="CSV", help="a CSV file with a header row")
    p.add_argument("--target", required=True, help="the column to predict")
    p.add_argument("--cat", nargs="*", default=None, help="categorical columns")
    p.add_argument("--cont", nargs="*", default=None, help="continuous columns")
    p.add_argument("--regression", action="store_true", help="predict a number")


def _collab_options(p: argparse.ArgumentParser) -> None:
    """Options of `collab`: the ratings file, its layout and the model."""
    p.add_argument("data", metavar="CSV", help="a ratings file (user, item, rating)")
    p.add_argument("--user-col", default=None, help="user column (default: first)")
    p.add_argument("--item-col", default=None, help="item column (default: second)")
    p.add_argument("--rating-col", default=None, help="rating column (default: third)")
    p.add_argument("--sep", default=",", help="field separator; '\\t' for tabs (',')")
    p.add_argument("--names", default=None, help="column names, comma-separated")
    p.add_argument(
        "--header",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the file's first line names the columns (default: yes)",
    )
    p.add_argument("--factors", type=at_least(1), default=40, help="latent factors (40)")
    p.add_argument("--y-range", default="0,5.5", help="rating range LOW,HIGH (0,5.5)")


def _text_options(p: argparse.ArgumentParser) -> None:
    """Options of `text`: the CSV or folder and its columns."""
    p.add_argument(
        "data",
        metavar="CSV|FOLDER",
        help="a CSV of texts and labels, or a folder of <label>/*.txt files",
    )
    p.add_argument("--text-col", default="text", help="text column (text)")
    p.add_argument("--label-col", default="label", help="label column (label)")


APP_OPTIONS = {
    "image": _image_options,
    "segment": _segment_options,
    "tabular": _tabular_options,
    "collab": _collab_options,
    "text": _text_options,
}


def _data_options(p: argparse.ArgumentParser, app: str) -> None:
    """The data and learner options of one application (shared by train and lr-find)."""
    p.add_argument(
        "--valid-pct",
        type=fraction,
        default=None,
        help="fraction held out for validation at random (default: 0.2, or for "
        "images the --valid folder when it exists)",
    )
    p.add_argument(
        "--bs", type=at_least(1), default=None,
        help="batch size (default: 64; for a table, from its number of rows, 64 to 1024)",
    )  # fmt: skip
    APP_OPTIONS[app](p)
    _common(p)


def _train_options(p: argparse.ArgumentParser) -> None:
    """The options of `mentor train APP` beyond the data and learner options."""
    p.add_argument("--epochs", type=at_least(1), default=4, help="epochs (default: 4)")
    p.add_argument(
        "--time-budget",
        metavar="SECONDS",
        type=non_negative_float,
        default=None,
        help="train for at most this wall time, with as many epochs as fit (instead of "
        "--epochs); the data, lr_find and training all count",
    )
    p.add_argument(
        "--lr", default="auto",
        help="learning rate, or auto (fine_tune's for a pretrained image model, else lr_find's)",
    )  # fmt: skip
    p.add_argument("--out", default="model.mentor", help="exported file (model.mentor)")
    p.add_argument(
        "--report",
        metavar="FOLDER",
        default=None,
        help="where report.html goes (default: the folder of --out)",
    )
    p.add_argument(
        "--nproc",
        type=at_least(1),
        default=1,
        help="train data-parallel in N processes on this machine (through torchrun; default 1)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run of the same command from its last epoch "
        "(checkpoints are kept in <out>.checkpoints/ while training)",
    )


APP_HELP = {
    "image": "image classification from labelled folders",
    "segment": "segmentation (a U-Net) from images and their label masks",
    "tabular": "classification or regression on a CSV table",
    "collab": "collaborative filtering on a ratings table",
    "text": "text classification (AWD-LSTM from scratch)",
}


def _app_parsers(sub: argparse._SubParsersAction, verb: str, train: bool) -> None:
    """One parser per application under `verb` (train or lr-find)."""
    for app, text in APP_HELP.items():
        if not train and app == "text":
            continue
        p = sub.add_parser(
            app,
            help=text,
            description=f"{verb} {app}: {text}.",
            epilog=TRAIN_EPILOG,
            formatter_class=MAN,
        )
        _data_options(p, app)
        if train:
            _train_options(p)
        else:
            p.add_argument("--plot", default="lr_find.png", help="plot file (lr_find.png)")
        p.set_defaults(command=verb, app=app)


# the options of `mentor train APP` that change neither the model nor the data: a resumed run
# may change them (--lr is kept in the run's record on its own, its value once lr_find ran)
NOT_SHAPING = frozenset(
    {"help", "lr", "out", "report", "resume", "quiet", "debug", "workers", "device", "command"}
)


def shaping_options(app: str) -> tuple[str, ...]:
    """The options (`argparse` dests) of `mentor train APP` that shape the model or the data:
    every option but `NOT_SHAPING`, so that a new option is recorded by default."""
    p = Parser(prog=f"mentor train {app}")
    _data_options(p, app)
    _train_options(p)
    return ("app", *(a.dest for a in p._actions if a.dest not in NOT_SHAPING))


def option_name(dest: str) -> str:
    """How the user spells the option stored as `dest`: `valid_pct` -> `--valid-pct`; the
    positional ones (app, data) in capitals."""
    return dest.upper() if dest in ("app", "data") else "--" + dest.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    """The `mentor` parser with all its subcommands."""
    parser = Parser(prog="mentor", description=DESCRIPTION, epilog=EPILOG, formatter_class=MAN)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for verb, text in (
        ("train", "train a model and export it"),
        ("lr-find", "run the learning-rate finder and plot it"),
    ):
        p = sub.add_parser(
            verb, help=text, description=f"{text}.", epilog=TRAIN_EPILOG, formatter_class=MAN
        )
        apps = p.add_subparsers(title="applications", metavar="APP", required=True)
        _app_parsers(apps, verb, train=verb == "train")
    _model_commands(sub)
    from mentor.cli.serve import add_serve_parser  # it reads this module's helpers

    add_serve_parser(sub)
    from mentor.cli.clean import add_clean_parser

    add_clean_parser(sub)
    from mentor.cli.crappify import add_crappify_parser

    add_crappify_parser(sub)
    return parser


def _model_commands(sub: argparse._SubParsersAction) -> None:
    """predict, evaluate, info and demo: the commands on an exported file."""
    p = sub.add_parser(
        "predict",
        help="predict with an exported model",
        formatter_class=MAN,
        description="Predict each INPUT: an image path, a text string, a CSV "
        "of rows (tabular) or USER,ITEM (collab). Prints INPUT<TAB>label<TAB>"
        "probability and the top-k classes. For a language model the label is the "
        "next token; with --n-words N it prints each prompt continued by N tokens. A "
        "segmentation model writes each mask to --out-dir and prints the classes' shares.",
    )
    p.add_argument("model", metavar="MODEL", help="a .mentor file")
    p.add_argument("inputs", metavar="INPUT", nargs="+", help="items to predict")
    p.add_argument("--top-k", type=at_least(1), default=3, help="classes to show (default: 3)")
    p.add_argument("--json", action="store_true", help="one JSON object per input")
    p.add_argument(
        "--n-words",
        type=at_least(0),
        default=0,
        help="language models: generate this many tokens after each INPUT prompt",
    )
    p.add_argument("--temperature", type=non_negative_float, default=0.75, help="sampling (0.75)")
    p.add_argument("--seed", type=at_least(0), default=None, help="seed for sampling (none)")
    p.add_argument(
        "--out-dir",
        default=None,
        help="segmentation and image-to-image models: where each INPUT's mask (a PNG of "
        "class indices) or restored image is written, named after it (default: masks, "
        "or images)",
    )
    p.set_defaults(command="predict")

    p = sub.add_parser(
        "evaluate",
        help="score an exported model on labelled data",
        formatter_class=MAN,
        description="Image model + folder of <label>/ images: accuracy, "
        "confusion matrix, top losses. Tabular model + CSV with the target "
        "column: accuracy (classification) or MSE (regression).",
    )
    p.add_argument("model", metavar="MODEL", help="a .mentor file")
    p.add_argument("data", metavar="DATA", help="a folder of labelled images, or a CSV")
    p.add_argument("--target", default=None, help="tabular: the column to score against")
    p.add_argument("--top-losses", type=at_least(0), default=5, help="worst items to show (5)")
    p.set_defaults(command="evaluate")

    p = sub.add_parser(
        "info",
        help="show what a .mentor file holds",
        formatter_class=MAN,
        description="Application, classes, model factory and meta data.",
    )
    p.add_argument("model", metavar="MODEL", help="a .mentor file")
    p.set_defaults(command="info")

    p = sub.add_parser("demo", help="run the digits tour (examples.digits)")
    p.set_defaults(command="demo")
    for p in sub.choices.values():
        if p.get_default("command") in ("predict", "evaluate", "info", "demo"):
            p.add_argument("--debug", action="store_true", help="show full tracebacks")
            p.add_argument(
                "--device", default="cpu", help="where the model runs: cpu, cuda, cuda:N, mps (cpu)"
            )
