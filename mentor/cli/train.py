"""`mentor train` and `mentor lr-find`: data and learner from the command line's options."""

from __future__ import annotations

import argparse
import codecs
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from mentor.cli.budget import Budget, TimeLimit, batch_seconds
from mentor.cli.checks import check_device
from mentor.cli.errors import CLIError
from mentor.cli.resume import TrainingRun
from mentor.collab import CollabDataLoaders
from mentor.core.device import is_main_process
from mentor.core.dist import launched_world_size
from mentor.core.seed import set_seed
from mentor.train import Learner
from mentor.train.fits import FINE_TUNE_LR, FitStage, fine_tune_stages


def _device(args: argparse.Namespace) -> str | None:
    """The --device option as a torch device name (None: the default device)."""
    return check_device(args.device)


def _existing(path: str, what: str) -> Path:
    """`path` as a Path, or a CLIError naming it when it is missing."""
    p = Path(path)
    if not p.exists():
        raise CLIError(f"{what} {path!r} not found; check the path")
    return p


def _read_csv(path: str, **kwargs: Any) -> pd.DataFrame:
    """A CSV file as a frame, with clear errors for a missing or unreadable file."""
    file = _existing(path, "CSV file")
    if file.is_dir():
        raise CLIError(f"{path!r} is a folder; pass a CSV file")
    try:
        return pd.read_csv(file, **kwargs)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise CLIError(f"cannot read {path!r} as CSV: {err}") from err


def _column(df: pd.DataFrame, name: str, option: str) -> str:
    """`name` when it is a column of `df`, else a CLIError listing the columns."""
    if name not in df.columns:
        cols = ", ".join(map(str, df.columns))
        raise CLIError(f"{option} {name!r} is not a column of the CSV; columns: {cols}")
    return name


def _valid_pct(args: argparse.Namespace) -> float:
    pct = 0.2 if args.valid_pct is None else float(args.valid_pct)
    if not 0 < pct < 1:
        raise CLIError(f"--valid-pct must be between 0 and 1, got {pct}")
    return pct


def image_learner(args: argparse.Namespace) -> Learner:
    """`vision_learner` on the folder's images (labels from parent folders)."""
    from mentor.train import accuracy
    from mentor.vision import ImageDataLoaders, Resize, aug_transforms, vision_learner
    from mentor.vision.models import SMALL_IMAGE

    folder = _existing(args.data, "image folder")
    if not folder.is_dir():
        raise CLIError(f"{args.data!r} is not a folder; pass a folder of <label>/ subfolders")
    split: dict[str, Any] = {"valid_pct": args.valid_pct, "seed": args.seed}
    if args.valid_pct is None and (folder / args.valid).is_dir():
        split = {"train": args.train_folder, "valid": args.valid}
    elif args.valid_pct is None:
        split["valid_pct"] = 0.2
    sizes = sample_sizes(folder)
    size = args.size or min(MAX_AUTO_SIZE, sorted(min(wh) for wh in sizes)[len(sizes) // 2])
    # images that all share one size already at --size need no crop: squishing them is a
    # no-op, and deterministic, so their decoded pixels can be kept (mentor.data.cache)
    uniform = len(set(sizes)) == 1 and min(sizes[0]) == size
    # photos get aug_transforms; small images (which get a small CNN trained from scratch for
    # a few epochs) none: a rotation or warp at under 64 px resamples away strokes a pixel or
    # two wide, and a short fit spends its epochs on the augmented images
    augment = size >= SMALL_IMAGE
    dls = ImageDataLoaders.from_folder(
        folder,
        **split,
        item_tfms=Resize(size, method="squish" if uniform else "crop"),
        batch_tfms=aug_transforms(size=size) if augment else None,
        bs=args.bs or 64,
        num_workers=args.workers,
        device=_device(args),
    )
    if len(dls.train_ds) == 0:
        raise CLIError(f"no images found under {args.data!r}; expected <label>/ subfolders")
    arch = None if args.arch == "auto" else args.arch
    # a pretrained body's frozen epoch trains the head on its cached features (a no-op for a
    # model trained from scratch, which is never frozen)
    learn = vision_learner(dls, arch, pretrained=args.pretrained, metrics=accuracy, precompute=True)
    name = (learn.model_spec or {}).get("kwargs", {}).get("arch", args.arch)
    start = "from scratch" if learn.from_scratch else "from its ImageNet weights"
    aug = "aug_transforms" if augment else "no augmentation"
    _say(f"images at {size} px: {name} {start}, {aug}, batch size {dls.bs}")
    return _memory_format(args, learn, size)


def _memory_format(args: argparse.Namespace, learn: Learner, size: int) -> Learner:
    """--channels-last, by default for images of 64 px and more (faster convolutions)."""
    if args.channels_last if args.channels_last is not None else size >= 64:
        learn.to_channelslast()
    return learn


MAX_AUTO_SIZE = 224  # ImageNet weights' own resolution: larger costs time for little gain
SIZE_SAMPLE = 20  # images whose sizes decide --size auto


def sample_sizes(folder: Path) -> list[tuple[int, int]]:
    """(width, height) of the first `SIZE_SAMPLE` images (sorted paths) that open: what
    `--size auto` reads (their median shorter side, at most `MAX_AUTO_SIZE`, so small images
    stay small instead of being blown up)."""
    from mentor.data.items import get_image_files

    files = sorted(get_image_files(folder))[:SIZE_SAMPLE]
    if not files:
        raise CLIError(f"no images found under {str(folder)!r}; expected <label>/ subfolders")
    sizes = []
    for file in files:
        with contextlib.suppress(OSError), Image.open(file) as img:
            sizes.append(img.size)
    if not sizes:
        raise CLIError(f"none of the first images under {str(folder)!r} opens; run verify_images")
    return sizes


@dataclass(frozen=True)
class MaskPath:
    """The mask file of an image: `<labels>/<stem><suffix><extension>` (picklable, for
    loader workers)."""

    labels: Path
    suffix: str

    def __call__(self, image: Path) -> Path:
        """The mask's path for `image`."""
        return self.labels / f"{image.stem}{self.suffix}{image.suffix}"


def segment_learner(args: argparse.Namespace) -> Learner:
    """`unet_learner` on a folder of images and a folder of their masks."""
    from mentor.data.items import get_image_files
    from mentor.train.seg_metrics import ForegroundAcc, SegmentationIoU
    from mentor.vision import Resize, SegmentationDataLoaders, aug_transforms, unet_learner

    folder = _existing(args.data, "image folder")
    labels = _existing(args.labels, "mask folder")
    codes = _existing(args.codes, "codes file").read_text().split()
    if not codes:
        raise CLIError(f"{args.codes!r} names no classes; put one class name per line")
    files = get_image_files(folder)
    if not files:
        raise CLIError(f"no images found in {args.data!r}")
    mask_of = MaskPath(labels, args.mask_suffix)
    missing = [f for f in files if not mask_of(f).is_file()]
    if missing:
        raise CLIError(
            f"{len(missing)} image(s) have no mask, e.g. {str(missing[0])!r} has no "
            f"{str(mask_of(missing[0]))!r}; check --labels and --mask-suffix"
        )
    with Image.open(files[0]) as first:  # the images' shape, kept at --size
        width, height = first.size
    scale = args.size / max(height, width)
    size = (max(8, round(height * scale / 8) * 8), max(8, round(width * scale / 8) * 8))
    dls = SegmentationDataLoaders.from_label_func(
        folder, files, mask_of, codes=codes, valid_pct=_valid_pct(args), seed=args.seed,
        item_tfms=Resize(size), batch_tfms=aug_transforms(), bs=args.bs or 64,
        num_workers=args.workers, device=_device(args),
    )  # fmt: skip
    void = codes.index(args.void) if args.void in codes else None
    metrics: list[Any] = [ForegroundAcc(void_code=void)] if void is not None else []
    metrics.append(SegmentationIoU(len(codes), ignore_index=void))
    learn = unet_learner(dls, args.arch, pretrained=args.pretrained, metrics=metrics)
    return _memory_format(args, learn, args.size)


def tabular_learner_from(args: argparse.Namespace) -> Learner:
    """`tabular_learner` on the CSV, with the given or inferred column kinds."""
    from mentor.data.splitters import RandomSplitter
    from mentor.tabular import TabularDataLoaders, cont_cat_split, tabular_learner
    from mentor.train import accuracy

    df = _read_csv(args.data)
    target = _column(df, args.target, "--target")
    cont, cat = cont_cat_split(df, dep_var=target)
    cat = [_column(df, c, "--cat") for c in args.cat] if args.cat is not None else cat
    cont = [_column(df, c, "--cont") for c in args.cont] if args.cont is not None else cont
    regression = args.regression or pd.api.types.is_float_dtype(df[target])
    if regression:
        df[target] = df[target].astype("float32")
    dls = TabularDataLoaders.from_df(
        df,
        cat_names=cat,
        cont_names=cont,
        y_names=target,
        splitter=RandomSplitter(_valid_pct(args), seed=args.seed),
        bs=args.bs,
        device=_device(args),
    )
    _say(f"batch size {dls.bs} ({len(df):,} rows)")
    return tabular_learner(dls, metrics=None if regression else accuracy)


def collab_frame(args: argparse.Namespace) -> pd.DataFrame:
    """The ratings file read with --sep, --names and --header."""
    sep = codecs.decode(args.sep, "unicode_escape")
    names = [n.strip() for n in args.names.split(",")] if args.names else None
    header: int | None = 0 if args.header else None
    return _read_csv(args.data, sep=sep, names=names, header=header)


def collab_learner_from(args: argparse.Namespace) -> Learner:
    """`collab_learner` (dot product with biases) on the ratings file."""
    from mentor.collab import CollabDataLoaders, collab_learner

    df = collab_frame(args)
    if df.shape[1] < 3:
        raise CLIError(
            f"{args.data!r} has {df.shape[1]} column(s) with --sep {args.sep!r}; a ratings "
            "file needs user, item and rating (try --sep '\\t' for tab-separated files)"
        )
    cols: dict[str, Any] = {
        k: _column(df, v, f"--{k.replace('_name', '')}-col") if v else None
        for k, v in (
            ("user_name", args.user_col),
            ("item_name", args.item_col),
            ("rating_name", args.rating_col),
        )
    }
    try:
        low, high = (float(v) for v in args.y_range.split(","))
    except ValueError as err:
        raise CLIError(f"--y-range must be LOW,HIGH such as 0,5.5, got {args.y_range!r}") from err
    dls = CollabDataLoaders.from_df(
        df,
        **cols,
        valid_pct=_valid_pct(args),
        seed=args.seed,
        bs=args.bs or 64,
        device=_device(args),
    )
    _say(f"batch size {dls.bs} ({len(df):,} ratings)")
    # the course's weight decay for collaborative filtering: 0.01 overfits ml-100k in 3 epochs
    return collab_learner(dls, n_factors=args.factors, y_range=(low, high), wd=0.1)


def text_learner_from(args: argparse.Namespace) -> Learner:
    """`text_classifier_learner` (small AWD-LSTM from scratch) on a CSV or a folder."""
    from mentor.text import TextDataLoaders, text_classifier_learner
    from mentor.train import accuracy

    source = _existing(args.data, "text CSV or folder")
    common = {"bs": args.bs or 64, "device": _device(args), "seed": args.seed}
    if source.is_dir():
        # train/ and valid/ folders when there are, else a random 20% (as for images)
        pct = args.valid_pct
        if pct is None and not ((source / "train").is_dir() and (source / "valid").is_dir()):
            pct = 0.2
        dls = TextDataLoaders.from_folder(source, valid_pct=pct, **common)
    else:
        df = _read_csv(args.data)
        dls = TextDataLoaders.from_df(
            df,
            text_col=_column(df, args.text_col, "--text-col"),
            label_col=_column(df, args.label_col, "--label-col"),
            valid_pct=_valid_pct(args),
            **common,
        )
    return text_classifier_learner(dls, size="small", metrics=accuracy)


BUILDERS = {
    "image": image_learner,
    "segment": segment_learner,
    "tabular": tabular_learner_from,
    "collab": collab_learner_from,
    "text": text_learner_from,
}


def make_learner(args: argparse.Namespace) -> Learner:
    """Seed, build the application's learner (image builders apply --channels-last), and
    apply --bf16 and --quiet."""
    set_seed(args.seed)
    learn = BUILDERS[args.app](args)
    if args.bf16:
        learn.to_bf16()
    learn.progress.show = not args.quiet
    return learn


def suggested_lr(learn: Learner, plot: str | None = None) -> float:
    """Run lr_find, print its suggestions, optionally save the plot; return the one the
    defaults take (`SuggestedLRs.default`: the valley, the slide for a model from scratch).

    Collaborative filtering sweeps a whole epoch: each embedding row is seen rarely, and in
    100 batches the loss stays flat until it diverges (on ml-100k the valley of a 100-batch
    sweep trained to MSE 4.7, of a one-epoch sweep to 0.82).
    """
    sweep = len(learn.dls.train) if isinstance(learn.dls, CollabDataLoaders) else 100
    found = learn.lr_find(num_it=max(sweep, 100), show_plot=False)
    names = ", ".join(f"{k} {v:.2e}" for k, v in found.as_dict().items())
    _say(f"lr_find suggests: {names}")
    if plot and is_main_process():
        import matplotlib.pyplot as plt

        fig = learn.recorder.plot_lr_find(found.as_dict())
        fig.savefig(plot)
        plt.close(fig)
        print(f"lr_find plot written to {plot}")
    return found.default(learn.from_scratch)


def transfers(args: argparse.Namespace, learn: Learner) -> bool:
    """Whether the run fine-tunes a pretrained image model (`fine_tune`'s two fits)."""
    return args.app in ("image", "segment") and not learn.from_scratch


def auto_lr(args: argparse.Namespace, learn: Learner) -> float:
    """`--lr auto`: `fine_tune`'s default rate (2e-3, fastai's) for a pretrained image model,
    whose ImageNet features make one rate hold across data sets, while the sweep would cost
    100 batches (three epochs of a 2,000-image set); else lr_find's suggestion."""
    return FINE_TUNE_LR if transfers(args, learn) else suggested_lr(learn)


def _lr(text: str) -> float | None:
    """The --lr option: None for auto, else a positive float."""
    if text == "auto":
        return None
    try:
        lr = float(text)
    except ValueError as err:
        raise CLIError(f"--lr must be 'auto' or a number such as 1e-3, got {text!r}") from err
    if lr <= 0:
        raise CLIError(f"--lr must be positive, got {text!r}")
    return lr


def train_command(args: argparse.Namespace) -> int:
    """`mentor train APP DATA ...`: train (or --resume), print the epoch table, export to --out
    and write the report. With `--nproc N`, start N processes that each run this command
    data-parallel; under torchrun, train data-parallel (rank 0 prints and writes)."""
    budget = _budget(args)  # the clock starts before the data is read
    if args.nproc > 1 and launched_world_size() == 1:
        from mentor.cli.launch import launch

        return launch(args.argv, args.nproc)
    lr = _lr(args.lr)
    run = TrainingRun.resume(args) if args.resume else None  # refused before any data is read
    if run is not None and lr is not None and lr != run.lr:
        raise CLIError(f"--lr {args.lr} differs from the interrupted run's {run.lr:.3g}")
    learn = make_learner(args)
    parallel = learn.distrib_ctx() if launched_world_size() > 1 else contextlib.nullcontext()
    with parallel:
        sweep_start = time.perf_counter()
        swept = lr is None and not transfers(args, learn)
        if run is None:
            run = TrainingRun.start(args, lr if lr is not None else auto_lr(args, learn))
        sweep = time.perf_counter() - sweep_start if swept else None
        epochs = (
            args.epochs if budget is None else budget.epochs(learn, batch_seconds(learn, sweep))
        )
        limit = TimeLimit(budget) if budget is not None else None
        _say(f"training {epochs} epoch(s) with lr {run.lr:.2e}")
        cbs = [limit] if limit is not None else []
        run.fit(learn, fit_stages(args, learn, run.lr, epochs), resume=args.resume, cbs=cbs)
        last = learn.recorder.values[-1] if learn.recorder.values else {}
        values = {k: v for k, v in last.items() if k not in ("epoch", "time")}
        if values:
            _say("final: " + ", ".join(f"{k} {float(v):.4f}" for k, v in values.items()))
        if limit is not None:
            _say(limit.summary(epochs))
        out = learn.export(args.out)
        _say(f"model exported to {out}")
        title = f"mentor train {args.app} {args.data}"
        report = learn.report(args.report or out.parent, export_path=out, title=title)
        _say(f"report written to {report}")
        run.finish()
    return 0


def _budget(args: argparse.Namespace) -> Budget | None:
    """The --time-budget clock, refused with --resume and --nproc (the budget is one
    uninterrupted run in one process)."""
    if args.time_budget is None:
        return None
    for given, option in ((args.resume, "--resume"), (args.nproc > 1, "--nproc")):
        if given:
            raise CLIError(f"--time-budget cannot be combined with {option}; give --epochs instead")
    return Budget(args.time_budget)


def _say(text: str) -> None:
    """Print on the main process only (rank 0 of a distributed run)."""
    if is_main_process():
        print(text)


def fit_stages(args: argparse.Namespace, learn: Learner, lr: float, epochs: int) -> list[FitStage]:
    """`fine_tune`'s two fits for a pretrained image model (with a time budget, its frozen
    epoch is one of the `epochs`), else one one-cycle fit of `epochs`."""
    if transfers(args, learn):
        unfrozen = epochs - 1 if args.time_budget is not None else epochs
        return fine_tune_stages(unfrozen, base_lr=lr)
    return [FitStage(None, epochs, lr)]


def lr_find_command(args: argparse.Namespace) -> int:
    """`mentor lr-find APP DATA ...`: print the suggestions and write the plot."""
    learn = make_learner(args)
    suggested_lr(learn, args.plot)
    return 0
