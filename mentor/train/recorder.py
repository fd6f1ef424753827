"""`Recorder`: losses, learning rates, momentums and metrics of a fit, and their plots."""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from mentor.core.device import find_bs
from mentor.core.dist import gather_objects, sum_totals
from mentor.train.callback import Callback, sweeping_lr

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


class Recorder(Callback):
    """Records every fit: per-batch train loss (raw and smoothed), learning rate and momentum,
    and per-epoch train loss, valid loss, metrics and time.

    `losses`, `lrs`, `values` and the plots cover the latest fit, as in fastai; `fits` keeps a
    `FitRecord` of every finished fit of the learner (the two fits of `fine_tune`, say) and
    `sweep` the latest `lr_find`, which reports draw.

    Losses stay on the device and are read every `flush_every` batches and at the end of each
    phase, so recording never forces a device sync per batch.

    Args:
        beta: smoothing of the train loss (exponentially weighted, debiased; default 0.98).
        flush_every: read pending losses from the device every this many batches (default 32).
    """

    order = 50

    def __init__(self, beta: float = 0.98, flush_every: int = 32) -> None:
        super().__init__()
        self.beta, self.flush_every = beta, flush_every
        self.fits: list[FitRecord] = []
        self.sweep: LRSweep | None = None
        self._reset()

    def _reset(self) -> None:
        self.losses: list[float] = []
        self.smooth_losses: list[float] = []
        self.lrs: list[float] = []
        self.moms: list[float] = []
        self.values: list[dict[str, float]] = []
        self.iters: list[int] = []
        self.last_valid: dict[str, float] = {}
        self.train_loss = math.nan
        self._smooth, self._n_smooth = 0.0, 0
        self._epoch_loss, self._epoch_count = 0.0, 0
        self._pending: list[torch.Tensor] = []
        self._pending_bs: list[int] = []
        self._valid_losses: list[torch.Tensor] = []
        self._valid_bs: list[int] = []
        self._epoch_start = 0.0

    # ----- events -----
    def before_fit(self) -> None:
        """Start a fresh history."""
        self._reset()

    def before_epoch(self) -> None:
        """Start the epoch clock and the epoch's train-loss sums (kept when resuming mid-epoch)."""
        self._epoch_start = time.perf_counter()
        if not self.learn.skip_batches:
            self.flush()  # a cancelled epoch's pending losses must not count in this one
            self._epoch_loss, self._epoch_count = 0.0, 0
        self.train_loss = math.nan
        self.last_valid = {}

    def before_validate(self) -> None:
        """Reset the validation sums and the metrics."""
        self._valid_losses, self._valid_bs = [], []
        for metric in self.learn.metrics:
            metric.reset()

    def after_batch(self) -> None:
        """Keep the batch loss (on the device), lr and momentum; feed the metrics."""
        learn = self.learn
        bs = find_bs(learn.yb or learn.xb)
        if learn.training:
            self._pending.append(learn.loss)
            self._pending_bs.append(bs)
            group = learn.opt.param_groups[-1]
            self.lrs.append(group["lr"])
            self.moms.append(_momentum(group))
            if len(self._pending) >= self.flush_every:
                self.flush()
        else:
            self._valid_losses.append(learn.loss)
            self._valid_bs.append(bs)
            for metric in learn.metrics:
                metric.accumulate(learn.pred, *learn.yb)

    def after_train(self) -> None:
        """The epoch's train loss: the mean over its batches (of every process), weighted by
        batch size."""
        self.flush()
        loss, count = self._epoch_loss, self._epoch_count
        if self.learn.sharded:
            totals = sum_totals(
                gather_objects([torch.tensor([loss, count], dtype=torch.float64)]),
                torch.device("cpu"),
            )
            loss, count = totals[0].tolist()
        self.train_loss = loss / count if count else math.nan

    def after_validate(self) -> None:
        """Read the validation loss and the metrics (the one sync of the validation phase);
        with sharded loaders, the sums and counts of every process are added first."""
        totals = self._valid_totals()
        if self.learn.sharded:
            totals = self._reduce_valid(totals)
        if totals is None:
            self.last_valid = {}
            return
        loss_sum, count, n_bad, n_batches = totals.tolist()  # one read for all
        mean = loss_sum / count
        if n_bad:
            warnings.warn(
                f"the validation loss is {mean}: {int(n_bad)} of {int(n_batches)} validation "
                "batches gave a loss that is not finite (NaN or inf); check the validation data "
                "and the model's outputs",
                RuntimeWarning,
                stacklevel=2,
            )
        valid = {"valid_loss": mean}
        for metric in self.learn.metrics:
            valid[metric.name] = metric.value
        self.last_valid = valid

    def _valid_totals(self) -> torch.Tensor | None:
        """(loss sum weighted by batch size, items, non-finite batches, batches) on the
        device, None before the first batch."""
        if not self._valid_losses:
            return None
        losses = torch.stack(self._valid_losses).float()
        weights = torch.tensor(self._valid_bs, dtype=torch.float32, device=losses.device)
        return torch.stack([
            (losses * weights).sum(), weights.sum(), (~losses.isfinite()).sum().float(),
            torch.tensor(float(len(losses)), device=losses.device),
        ])  # fmt: skip

    def _reduce_valid(self, totals: torch.Tensor | None) -> torch.Tensor | None:
        """The loss totals and every metric's `totals()` added over all processes (the
        metrics get theirs back through `load_totals`)."""
        mine = [] if totals is None else [totals.double()]
        parts = gather_objects([mine, *[_totals_of(m) for m in self.learn.metrics]])
        device = self.learn.dls.device
        for i, metric in enumerate(self.learn.metrics, 1):
            summed = sum_totals([p[i] for p in parts], device)
            metric.load_totals(summed) if summed else metric.reset()
        loss_totals = sum_totals([p[0] for p in parts], torch.device("cpu"))
        return loss_totals[0] if loss_totals else None

    def after_epoch(self) -> None:
        """Append the epoch's row to the history."""
        row: dict[str, float] = {"epoch": self.learn.epoch, "train_loss": self.train_loss}
        row["valid_loss"] = self.last_valid.get("valid_loss", math.nan)
        for metric in self.learn.metrics:
            row[metric.name] = self.last_valid.get(metric.name, math.nan)
        row["time"] = time.perf_counter() - self._epoch_start
        self.values.append(row)
        self.iters.append(len(self.losses))

    def after_fit(self) -> None:
        """Keep the finished fit in `fits` (a learning-rate sweep is kept in `sweep` instead)."""
        self.flush()
        if sweeping_lr(self.learn.cbs):
            return
        values = [dict(v) for v in self.values]
        self.fits.append(
            FitRecord(
                self.metric_names,
                values,
                list(self.smooth_losses),
                list(self.lrs),
                list(self.moms),
                list(self.iters),
            )
        )

    # ----- reading -----
    def flush(self) -> None:
        """Move pending batch losses from the device into `losses` and `smooth_losses`."""
        if not self._pending:
            return
        values = torch.stack(self._pending).float().tolist()
        for value, bs in zip(values, self._pending_bs):
            self._n_smooth += 1
            self._smooth = self.beta * self._smooth + (1 - self.beta) * value
            self.losses.append(value)
            self.smooth_losses.append(self._smooth / (1 - self.beta**self._n_smooth))
            self._epoch_loss += value * bs
            self._epoch_count += bs
        self._pending, self._pending_bs = [], []

    @property
    def smooth_loss(self) -> float:
        """The latest smoothed train loss (reads pending losses from the device)."""
        self.flush()
        return self.smooth_losses[-1] if self.smooth_losses else math.nan

    @property
    def n_batches(self) -> int:
        """The number of training batches recorded in this fit (read or still pending)."""
        return len(self.losses) + len(self._pending)

    @property
    def metric_names(self) -> list[str]:
        """The column names of the epoch table."""
        names = ["epoch", "train_loss", "valid_loss"]
        return names + [m.name for m in self.learn.metrics] + ["time"]

    def to_df(self) -> pd.DataFrame:
        """The per-epoch history as a data frame."""
        import pandas as pd

        return pd.DataFrame(self.values, columns=self.metric_names)

    # ----- checkpoints -----
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue recording exactly after a resume."""
        self.flush()
        keys = ("losses", "smooth_losses", "lrs", "moms", "values", "iters", "train_loss")
        state: dict[str, Any] = {key: getattr(self, key) for key in keys}
        state.update(smooth=self._smooth, n_smooth=self._n_smooth)
        state.update(epoch_loss=self._epoch_loss, epoch_count=self._epoch_count)
        state["fits"] = [asdict(fit) for fit in self.fits]
        state["sweep"] = asdict(self.sweep) if self.sweep is not None else None
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        self.losses, self.smooth_losses = list(state["losses"]), list(state["smooth_losses"])
        self.lrs, self.moms = list(state["lrs"]), list(state["moms"])
        self.values, self.iters = [dict(v) for v in state["values"]], list(state["iters"])
        self.train_loss = state["train_loss"]
        self._smooth, self._n_smooth = state["smooth"], state["n_smooth"]
        self._epoch_loss, self._epoch_count = state["epoch_loss"], state["epoch_count"]
        self.fits = [FitRecord(**fit) for fit in state.get("fits", [])]
        sweep = state.get("sweep")
        self.sweep = LRSweep(**sweep) if sweep else None

    # ----- plots -----
    def plot_loss(self, skip_start: int = 5, with_valid: bool = True) -> Figure:
        """Train loss per batch (smoothed) and valid loss per epoch."""
        from mentor.core.figures import subplots

        self.flush()
        fig, ax = subplots()
        steps = range(skip_start, len(self.losses))
        ax.plot(steps, self.smooth_losses[skip_start:], label="train")
        valid = [(it, row["valid_loss"]) for it, row in zip(self.iters, self.values)]
        valid = [(it, v) for it, v in valid if not math.isnan(v) and it > skip_start]
        if with_valid and valid:
            ax.plot(*zip(*valid), marker="o", label="valid")
        ax.set(xlabel="batch", ylabel="loss")
        ax.legend()
        return fig

    def plot_sched(self) -> Figure:
        """Learning rate and momentum per batch."""
        from mentor.core.figures import subplots

        fig, (ax_lr, ax_mom) = subplots(1, 2, figsize=(10, 4))
        ax_lr.plot(self.lrs)
        ax_lr.set(xlabel="batch", ylabel="learning rate")
        ax_mom.plot(self.moms)
        ax_mom.set(xlabel="batch", ylabel="momentum")
        return fig

    def plot_metrics(self) -> Figure:
        """Losses and each metric per epoch."""
        from mentor.core.figures import subplots

        names = [n for n in self.metric_names if n not in ("epoch", "time", "train_loss")]
        fig, axes = subplots(1, len(names), figsize=(4 * len(names), 3.5), squeeze=False)
        epochs = [row["epoch"] for row in self.values]
        for ax, name in zip(axes[0], names):
            if name == "valid_loss":
                ax.plot(epochs, [row["train_loss"] for row in self.values], label="train_loss")
            ax.plot(epochs, [row[name] for row in self.values], marker="o", label=name)
            ax.set(xlabel="epoch", title=name)
            ax.legend()
        fig.tight_layout()
        return fig

    def plot_lr_find(
        self, suggestions: dict[str, float] | None = None, skip_end: int = 5
    ) -> Figure:
        """Smoothed loss against learning rate (log scale) of the latest `lr_find`, with its
        suggestions (or `suggestions`) marked."""
        from mentor.core.figures import subplots

        if self.sweep is None:
            raise ValueError("no learning-rate sweep recorded yet; run learn.lr_find() first")
        end = max(len(self.sweep.lrs) - skip_end, 1)
        lrs, losses = self.sweep.lrs[:end], self.sweep.losses[:end]
        marks = self.sweep.suggestions if suggestions is None else suggestions
        fig, ax = subplots()
        ax.plot(lrs, losses)
        ax.set(xscale="log", xlabel="learning rate", ylabel="loss (smoothed)")
        for i, (name, lr) in enumerate(marks.items()):
            ax.plot(
                lr, _loss_at(lrs, losses, lr), "o", color=f"C{i + 1}", label=f"{name}: {lr:.2e}"
            )
        if marks:
            ax.legend()
        return fig


@dataclass
class FitRecord:
    """The history of one finished fit: the epoch table (`names` are its columns), and per
    training batch the smoothed loss, learning rate and momentum; `iters[i]` is the number of
    batches done at the end of epoch i."""

    names: list[str]
    values: list[dict[str, float]]
    smooth_losses: list[float]
    lrs: list[float]
    moms: list[float]
    iters: list[int]


@dataclass
class LRSweep:
    """What `lr_find` measured: smoothed loss per learning rate, and its suggestions."""

    lrs: list[float]
    losses: list[float]
    suggestions: dict[str, float] = field(default_factory=dict)


def _totals_of(metric: Any) -> list[torch.Tensor]:
    """A metric's sums and counts, refused with a message when it can't give them."""
    try:
        return list(metric.totals())
    except NotImplementedError:
        raise NotImplementedError(
            f"metric {metric.name!r} ({type(metric).__name__}) can't be combined across "
            "processes: implement totals() and load_totals() (or derive it from SumMetric) to "
            "train it distributed"
        ) from None


def _momentum(group: dict[str, Any]) -> float:
    if "betas" in group:
        return float(group["betas"][0])
    return float(group.get("momentum", math.nan))


def _loss_at(lrs: list[float], losses: list[float], lr: float) -> float:
    """The loss recorded at the learning rate closest to `lr` (on a log scale)."""
    nearest = min(range(len(lrs)), key=lambda i: abs(math.log(lrs[i]) - math.log(lr)))
    return losses[nearest]
