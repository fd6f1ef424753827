"""Training runs of `mentor train` that survive an interruption: `--resume` continues them.

A run trains in stages (`fine_tune` is two fits: the head, then everything). Each stage
checkpoints at the end of every epoch into the run's folder, `<out>.checkpoints/`
(`stage1.pt`, `stage2.pt`), beside `run.json`, which keeps the learning rate and every option
that shapes the model or the data (`parser.shaping_options`; a changed one is refused, naming
it). `--resume` reads `run.json` (no second `lr_find`), loads finished stages from their last
checkpoint and continues the interrupted one from its last epoch, exactly. The folder is
removed once the model is exported.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mentor.cli.parser import option_name, shaping_options
from mentor.core.device import is_main_process
from mentor.core.dist import barrier
from mentor.train import Callback, Learner
from mentor.train.checkpoint import CheckpointCallback
from mentor.train.fits import FitStage, run_stage

RUN_FILE = "run.json"


class ResumeError(ValueError):
    """`--resume` cannot continue: nothing to resume, or the options changed."""


@dataclass
class TrainingRun:
    """A run's checkpoint folder, its learning rate and the options it was started with."""

    folder: Path
    lr: float
    options: dict[str, Any]

    @classmethod
    def folder_for(cls, out: str | Path) -> Path:
        """The checkpoint folder of the run that exports to `out`."""
        out = Path(out)
        return out.with_name(out.stem + ".checkpoints")

    @classmethod
    def start(cls, args: argparse.Namespace, lr: float) -> TrainingRun:
        """A new run (an earlier one's checkpoints for the same --out are replaced, with a
        note on stderr: that run could have been continued with --resume)."""
        folder = cls.folder_for(args.out)
        run = cls(folder, lr, _shaping(args))
        if is_main_process():  # one writer in a distributed run
            if (folder / RUN_FILE).exists():
                print(
                    f"mentor: note: starting over; the interrupted run in {str(folder)!r} is "
                    "replaced (--resume would have continued it)",
                    file=sys.stderr,
                )
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            record = {"lr": lr, "options": run.options}
            (folder / RUN_FILE).write_text(json.dumps(record, indent=1))
        barrier()
        return run

    @classmethod
    def resume(cls, args: argparse.Namespace) -> TrainingRun:
        """The interrupted run for `args.out`, checked against the options given now."""
        folder = cls.folder_for(args.out)
        if not (folder / RUN_FILE).exists():
            raise ResumeError(
                f"nothing to resume: no interrupted run in {str(folder)!r} (it is written "
                f"while training to --out {args.out!r}); run again without --resume"
            )
        saved = json.loads((folder / RUN_FILE).read_text())
        now = _shaping(args)
        for key, value in saved["options"].items():
            if now.get(key) != value:
                raise ResumeError(
                    f"{option_name(key)} is {_shown(now.get(key))} but the interrupted run "
                    f"used {_shown(value)}; resume with the same options, or drop --resume to "
                    "start again"
                )
        return cls(folder, float(saved["lr"]), saved["options"])

    def fit(
        self,
        learn: Learner,
        stages: list[FitStage],
        resume: bool,
        cbs: Sequence[Callback] = (),
    ) -> None:
        """Run `stages`, each checkpointed every epoch, with the callbacks `cbs`; with
        `resume`, continue from the stages' checkpoints (a finished stage is loaded, not
        trained again)."""
        for number, stage in enumerate(stages, start=1):
            file = self.folder / f"stage{number}.pt"
            resume_from = file if resume and file.exists() else None
            if resume_from is not None and is_main_process():
                print(f"resuming stage {number} of {len(stages)} from {resume_from}")
            checkpoint = CheckpointCallback(file, "epoch", resume_from)
            run_stage(learn, stage, cbs=[*cbs, checkpoint])

    def finish(self) -> None:
        """The model is exported: the checkpoints are no longer needed."""
        barrier()  # every rank is done with them
        if is_main_process():
            shutil.rmtree(self.folder, ignore_errors=True)


def _shaping(args: argparse.Namespace) -> dict[str, Any]:
    """The options that shape the model or the data, as JSON values."""
    values = {key: getattr(args, key) for key in shaping_options(args.app)}
    return json.loads(json.dumps(values, default=str))


def _shown(value: Any) -> str:
    """An option's value in a message: unset options (None) are "the default"."""
    return "the default" if value is None else repr(value)
