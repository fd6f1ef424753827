"""The training script the distributed tests start: in one process (the reference), under
`torchrun`, or as ranks started by hand. Unchanged between those: mentor sees `WORLD_SIZE`.

    python tests/distributed/worker.py OUT CASE [CASE ...]

Cases (each writes its results in OUT; rank 0 writes the weights, every rank its own
`<case>.rank<r>.json` for the checks that compare ranks):

- `tabular`, `cnn`: one epoch of a model without batch norm at a global batch of 64 (each of
  N processes reads 64 / N); weights, the validation row and `get_preds` written.
- `accumulate`: an epoch of the tabular model accumulating gradients over 2 batches; counts
  DDP's gradient all-reduces.
- `files`: two epochs of the tabular model with a CSV log, checkpoints every 7 batches, export
  and report, all under a relative path from a working folder of the rank's own
  (`OUT/cwd<rank>`): only rank 0's folder may get files.
- `resume:CHECKPOINT`: the `files` run resumed from CHECKPOINT (the one before the last of a
  `files` run, in its rank 0's folder), to compare with the uninterrupted weights.
- `cuda_sync_bn`: the CNN with batch norm on CUDA, under `distrib_ctx(sync_bn=True)` when
  started by torchrun (NCCL), else plainly.
- `killed`: slow epochs that never end on their own; each rank writes `ready.<rank>` (its pid)
  once it has trained a few batches, for the test to kill one.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import pandas as pd
import torch.distributed as dist
from safetensors.torch import save_file
from torch import nn
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

from mentor.callbacks.csv_logger import CSVLogger
from mentor.callbacks.gradients import GradientAccumulation
from mentor.core.dist import group_ready
from mentor.core.paths import data_path
from mentor.core.seed import set_seed
from mentor.tabular import TabularDataLoaders, tabular_config, tabular_learner
from mentor.train import Callback, F1Score, Learner, accuracy
from mentor.vision.data import ImageDataLoaders

GLOBAL_BS = 64
RANK = int(os.environ.get("RANK", "0"))
WORLD = int(os.environ.get("WORLD_SIZE", "1"))
ADULT_ROWS, ADULT_VALID = 3001, 601  # an odd validation set: the ranks' blocks differ in size


def tabular_learn(path: str | Path = ".") -> Learner:
    """A tabular model without batch norm on 3,001 rows of adult_sample."""
    df = pd.read_csv(data_path() / "adult_sample" / "adult.csv").head(ADULT_ROWS)
    dls = TabularDataLoaders.from_df(
        df, path=path, y_names="salary", cat_names=["workclass", "education", "sex"],
        cont_names=["age", "fnlwgt", "education-num"], bs=GLOBAL_BS // WORLD,
        valid_idx=list(range(ADULT_ROWS - ADULT_VALID, ADULT_ROWS)), device="cpu",
    )  # fmt: skip
    config = tabular_config(use_bn=False, bn_cont=False)
    return tabular_learner(dls, layers=[32, 16], config=config, metrics=[accuracy, F1Score()])


def cnn_learn(device: str = "cpu", batch_norm: bool = False) -> Learner:
    """A small CNN (without batch norm unless asked) on mnist_tiny's image folders (699
    validation images)."""
    dls = ImageDataLoaders.from_folder(
        data_path() / "mnist_tiny", bs=GLOBAL_BS // WORLD, num_workers=0,
        device=None if device == "cuda" else device, img_mode="L",
    )  # fmt: skip
    norm: list[nn.Module] = [nn.BatchNorm2d(8)] if batch_norm else []
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, stride=2, padding=1), *norm, nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2),
    )  # fmt: skip
    return Learner(dls, model, metrics=[accuracy, F1Score()])


def write_weights(learn: Learner, file: Path) -> None:
    if RANK == 0:
        save_file({k: v.contiguous() for k, v in learn.model.state_dict().items()}, str(file))


def write_json(file: Path, value: object) -> None:
    file.write_text(json.dumps(value))


def one_epoch(out: Path, case: str, learn: Learner) -> None:
    learn.fit_one_cycle(1, 3e-3)
    preds, targets = learn.get_preds()
    write_weights(learn, out / f"{case}.safetensors")
    row = {k: float(v) for k, v in learn.recorder.values[-1].items() if k != "time"}
    write_json(out / f"{case}.rank{RANK}.json", {
        "row": row, "preds": preds.tolist(), "targets": targets.tolist(),
        "lr_find": learn.lr_find(num_it=20, show_plot=False).valley if case == "tabular" else None,
    })  # fmt: skip


def files_run(out: Path, resume_from: Path | None = None) -> Learner:
    """The `files` run (or its resumed twin) from the rank's own working folder, inside an
    explicit `distrib_ctx` (the other cases turn distributed training on by themselves)."""
    folder = out / (f"cwd{RANK}" if resume_from is None else f"resume{RANK}")
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)
    learn = tabular_learn(path=".")
    with learn.distrib_ctx():
        learn.fit_one_cycle(2, 3e-3, cbs=[CSVLogger()], checkpoint_every=7, resume_from=resume_from)
        if resume_from is None:
            learn.export("export.mentor")
            learn.report("report")
    name = "files" if resume_from is None else "resume"
    write_weights(learn, out / f"{name}.safetensors")
    write_json(
        out / f"{name}.rank{RANK}.json",
        {"group_after": group_ready(), "ddp_after": learn.ddp is not None},
    )
    return learn


class CountAllReduces(Callback):
    """Counts the gradient all-reduces of the fit's DDP wrapper (a communication hook)."""

    order = -10  # after the wrapper is made, before the first batch

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def before_fit(self) -> None:
        if self.learn.ddp is not None:
            self.learn.ddp.register_comm_hook(None, self._count)  # type: ignore[operator]

    def _count(self, state, bucket):  # noqa: ANN001, ANN202 - DDP checks real annotations
        self.calls += 1
        return default_hooks.allreduce_hook(dist.group.WORLD, bucket)


def accumulate_run(out: Path) -> None:
    """One epoch with gradients accumulated over 2 batches: the weights, and the all-reduces
    DDP made against the optimizer steps."""
    learn = tabular_learn()
    counter = CountAllReduces()
    learn.fit(1, 3e-3, cbs=[GradientAccumulation(2), counter])
    write_weights(learn, out / "accumulate.safetensors")
    steps = -(-len(learn.dls.train) // 2)  # a last, smaller group steps too
    write_json(out / f"accumulate.rank{RANK}.json", {"allreduces": counter.calls, "steps": steps})


class Ready(Callback):
    """Writes `ready.<rank>` after a few batches, then slows every batch down."""

    def __init__(self, out: Path) -> None:
        super().__init__()
        self.out = out

    def after_batch(self) -> None:
        if self.learn.training and self.learn.train_iter == 3:
            (self.out / f"ready.{RANK}").write_text(str(os.getpid()))
        time.sleep(0.05)


def main(out: Path, cases: list[str]) -> None:
    for case in cases:
        set_seed(42)
        if case in ("tabular", "cnn"):
            one_epoch(out, case, tabular_learn() if case == "tabular" else cnn_learn())
        elif case == "accumulate":
            accumulate_run(out)
        elif case == "files":
            files_run(out)
        elif case.startswith("resume:"):
            files_run(out, Path(case.removeprefix("resume:")))
        elif case == "cuda_sync_bn":  # NCCL; with SyncBatchNorm when started by torchrun
            learn = cnn_learn("cuda", batch_norm=True)
            with (
                learn.distrib_ctx(sync_bn=True)
                if WORLD > 1 or "RANK" in os.environ
                else nullcontext()
            ):
                learn.fit_one_cycle(1, 3e-3)
            write_weights(learn, out / f"{case}.safetensors")
        elif case == "killed":
            tabular_learn().fit(1000, 1e-3, cbs=[Ready(out)])
        else:
            raise SystemExit(f"unknown case {case!r}")


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve(), sys.argv[2:])
