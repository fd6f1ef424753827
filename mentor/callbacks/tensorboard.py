"""`TensorBoardCallback`: losses, learning rates, metrics, weights, the model graph and a batch
of images in TensorBoard's event files (needs the `tensorboard` package:
`pip install "mentor[tensorboard]"`).

Other trackers take a few lines of your own: a `Callback` that reads the epoch table in
`after_epoch`. For MLflow, say (mentor does not depend on it):

    >>> import mlflow
    >>> from mentor.core.device import is_main_process
    >>> from mentor.train import Callback
    >>> class MLflowLogger(Callback):
    ...     order = 65  # after the Recorder (50) has added the epoch's row
    ...     def after_epoch(self) -> None:
    ...         if not is_main_process():  # one process logs a distributed run
    ...             return
    ...         row = self.learn.recorder.values[-1]
    ...         for name, value in row.items():
    ...             if name != "epoch":
    ...                 mlflow.log_metric(name, value, step=self.learn.epoch)
    >>> with mlflow.start_run():
    ...     learn.fit_one_cycle(3, 1e-3, cbs=[MLflowLogger()])
"""

from __future__ import annotations

import warnings
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeGuard

import torch

from mentor.core.device import is_main_process
from mentor.train.callback import Callback, sweeping_lr

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter


class TensorBoardCallback(Callback):
    """Writes a fit to TensorBoard event files in `log_dir`; `tensorboard --logdir` shows them.

    What it writes (tags, and the step each is written at):
        - `batch/train_loss` and `batch/lr_0`, `batch/lr_1`, ... (one per layer group):
          every `every_n_batches` training batches, at step `learn.train_iter` (0, 1, ...
          counted over the fit; TensorBoard's slider smooths the raw losses).
        - `epoch/<column>` for each column of the epoch table (`train_loss`, `valid_loss`,
          the metrics, `time`): at step `learn.epoch`.
        - `weights/<parameter name>` histograms every `hist_every` epochs (after epochs
          `hist_every - 1`, `2 * hist_every - 1`, ...), at step `learn.epoch`.
        - the model graph (`trace_model`), traced in eval mode on the first training batch;
          a model that can't be traced gets a warning and trains on.
        - `images/train_batch`: the first `n_images` inputs of the first training batch when
          they are images (N, 1 or 3, H, W), each scaled to [0, 1] on its own.

    The batch losses stay on the device and are read once every `flush_every` logged batches
    and at the end of each training phase, so logging never forces a device sync per batch.
    Only the main process (rank 0) writes when training is distributed; its `batch/train_loss`
    is the loss of its own share of the batch. Nothing is written during `lr_find`.

    Each fit starts its steps at 0: with `log_dir=None` each fit writes a new run folder
    `learn.path/'runs'/<date-time>` (so `fine_tune`'s two fits show as two runs); a fixed
    `log_dir` gets the events of every fit in it. `run_dir` is the folder of the latest fit.

    Args:
        log_dir: the folder for the event files (default None: a new one per fit, as above).
        trace_model: write the model graph (default True).
        log_images: write the first training batch's images (default True; inputs that are
            not images are skipped). fastai's `log_preds` draws predictions instead.
        n_images: how many images of that batch (default 9).
        hist_every: write weight histograms every this many epochs (default None: never).
        every_n_batches: write the per-batch scalars every this many batches (default 1).
        flush_every: read pending batch losses from the device every this many logged
            batches (default 32).

    Example:
        >>> learn.fit_one_cycle(3, 1e-3, cbs=[TensorBoardCallback("runs/first", hist_every=1)])
        >>> # then, in a shell: tensorboard --logdir runs
    """

    order = 65  # after the Recorder (50): the epoch's row is there in after_epoch

    def __init__(
        self,
        log_dir: str | Path | None = None,
        trace_model: bool = True,
        log_images: bool = True,
        n_images: int = 9,
        hist_every: int | None = None,
        every_n_batches: int = 1,
        flush_every: int = 32,
    ) -> None:
        super().__init__()
        _summary_writer_class()  # fail now, not after the first epoch, without tensorboard
        for name, value in (
            ("n_images", n_images),
            ("hist_every", hist_every),
            ("every_n_batches", every_n_batches),
            ("flush_every", flush_every),
        ):
            if value is not None and value < 1:
                raise ValueError(f"{name}={value!r} must be at least 1; pass a positive count")
        self.log_dir = None if log_dir is None else Path(log_dir)
        self.trace_model, self.log_images, self.n_images = trace_model, log_images, n_images
        self.hist_every, self.every_n_batches = hist_every, every_n_batches
        self.flush_every = flush_every
        self.run_dir: Path | None = None
        self.writer: SummaryWriter | None = None
        self._first_batch = False
        self._pending: list[tuple[int, torch.Tensor, dict[int, float]]] = []

    # ----- events -----
    def before_fit(self) -> None:
        """Open a writer (on the main process, outside `lr_find`)."""
        self._close()
        if not is_main_process() or sweeping_lr(self.learn.cbs):
            return
        self.run_dir = self.log_dir or _new_run_dir(self.learn.path)
        self.writer = _summary_writer_class()(log_dir=str(self.run_dir))
        self._first_batch = True

    def before_batch(self) -> None:
        """On the fit's first training batch: the model graph and the images."""
        if self.writer is None or not self._first_batch or not self.learn.training:
            return
        self._first_batch = False
        if self.trace_model:
            self._write_graph()
        if self.log_images:
            self._write_images()

    def after_batch(self) -> None:
        """Keep the batch loss (on the device) and the learning rates, every N batches."""
        learn = self.learn
        if self.writer is None or not learn.training:
            return
        if learn.train_iter % self.every_n_batches:
            return
        self._pending.append((learn.train_iter, learn.loss, _lr_per_layer_group(learn.opt)))
        if len(self._pending) >= self.flush_every:
            self.flush()

    def after_train(self) -> None:
        """Write the batch scalars still pending."""
        self.flush()

    def after_epoch(self) -> None:
        """Write the epoch table's row, and the weight histograms when they are due."""
        if self.writer is None:
            return
        self.flush()
        learn = self.learn
        row = learn.recorder.values[-1] if learn.recorder.values else {}
        for name in learn.recorder.metric_names:
            if name != "epoch" and name in row:
                self.writer.add_scalar(f"epoch/{name}", row[name], learn.epoch)
        if self.hist_every is not None and (learn.epoch + 1) % self.hist_every == 0:
            self._write_histograms()

    def after_fit(self) -> None:
        """Write what is pending and close the event file."""
        self._close()

    # ----- writing -----
    def flush(self) -> None:
        """Read the pending batch losses from the device (one read) and write them."""
        if self.writer is None or not self._pending:
            return
        losses = torch.stack([loss for _, loss, _ in self._pending]).float().tolist()
        for (step, _, lrs), loss in zip(self._pending, losses):
            self.writer.add_scalar("batch/train_loss", loss, step)
            for group, lr in lrs.items():
                self.writer.add_scalar(f"batch/lr_{group}", lr, step)
        self._pending = []

    def _close(self) -> None:
        if self.writer is None:
            return
        self.flush()
        self.writer.close()
        self.writer = None

    def _write_graph(self) -> None:
        assert self.writer is not None
        try:
            with warnings.catch_warnings(), torch.no_grad():
                # add_graph has no other way than torch.jit.trace, which warns it is deprecated
                warnings.filterwarnings("ignore", category=DeprecationWarning, module="torch")
                self.writer.add_graph(self.learn.model, self.learn.xb, use_strict_trace=False)
        except Exception as err:  # a graph is a nicety: training goes on without it
            warnings.warn(
                f"TensorBoardCallback could not trace {type(self.learn.model).__name__} to draw "
                f"its graph ({type(err).__name__}: {err}); training goes on without the graph "
                "(pass trace_model=False to skip it)",
                stacklevel=2,
            )

    def _write_histograms(self) -> None:
        assert self.writer is not None
        for name, param in self.learn.model.named_parameters():
            weights = param.detach().float().cpu()
            self.writer.add_histogram(f"weights/{name}", weights, self.learn.epoch)

    def _write_images(self) -> None:
        assert self.writer is not None
        images = self.learn.xb[0] if self.learn.xb else None
        if not _is_image_batch(images):
            return
        images = images[: self.n_images].detach().float().cpu()
        low = images.amin(dim=(1, 2, 3), keepdim=True)
        high = images.amax(dim=(1, 2, 3), keepdim=True)
        scaled = (images - low) / (high - low).clamp_min(1e-12)
        self.writer.add_images("images/train_batch", scaled, self.learn.train_iter)


def _summary_writer_class() -> type[SummaryWriter]:
    """torch's `SummaryWriter`, imported here so that mentor imports without tensorboard."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise ImportError(
            "TensorBoardCallback needs the 'tensorboard' package, which is not installed; "
            f'install it with `pip install "mentor[tensorboard]"` ({err})'
        ) from err
    return SummaryWriter


def _is_image_batch(value: object) -> TypeGuard[torch.Tensor]:
    """A batch of grey or colour images: (N, 1 or 3, H, W)."""
    return isinstance(value, torch.Tensor) and value.ndim == 4 and value.shape[1] in (1, 3)


def _lr_per_layer_group(opt: torch.optim.Optimizer) -> dict[int, float]:
    """The learning rate of each layer group (a layer group's decaying and non-decaying
    parameters are two torch param groups with one lr); a param group's index stands in for
    its layer group in optimizers built without mentor's `param_groups`."""
    lrs: dict[int, float] = {}
    for index, group in enumerate(opt.param_groups):
        lrs.setdefault(group.get("layer_group", index), float(group["lr"]))
    return lrs


def _new_run_dir(path: Path) -> Path:
    """A fresh run folder under `path/runs`, named by the date and time."""
    return path / "runs" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")
