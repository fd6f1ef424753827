"""`Learner`: a model, its data, a loss and an optimizer, and the training loop that joins them."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, cast

import numpy as np
import torch
from torch import nn

from mentor.core import dist
from mentor.core.device import keep_batch_memory, split_batch, uncompiled
from mentor.core.registry import OPTIMIZERS
from mentor.core.seed import set_rng_state
from mentor.data.loaders import DataLoaders, DeviceLoader
from mentor.data.shard import Shard
from mentor.optim import Adam, freeze_to, lr_per_group, param_groups, set_hyper
from mentor.train.callback import (
    EVENTS,
    Callback,
    CancelBatch,
    CancelEpoch,
    CancelFit,
    CancelTrain,
    CancelValidate,
    handlers,
    training_loop,
)
from mentor.train.errors import check_data, default_loss, explain_loss_error
from mentor.train.metrics import Metric, as_metric
from mentor.train.progress import ProgressCallback
from mentor.train.recorder import Recorder
from mentor.train.terminate import TerminateOnNaN

if TYPE_CHECKING:  # types only: the training layer never imports these modules
    from mentor.callbacks.lr_finder import SuggestedLRs, SuggestFunc
    from mentor.distributed import DistribContext
    from mentor.inference.onnx_export import OnnxExport
    from mentor.train.summary import ModelSummary

LR = float | slice | Sequence[float] | None
"""A learning rate: one for every group, one per group, or `slice(lo, hi)` spread over them."""
OptFunc = Callable[..., torch.optim.Optimizer]
Splitter = Callable[[nn.Module], list[list[nn.Parameter]]]


class Learner:
    """Trains `model` on `dls` with `loss_func` and an optimizer built by `opt_func`.

    Args:
        dls: a `DataLoaders`, or a `(train, valid)` pair of batch iterables (plain
            `torch.utils.data.DataLoader`s work). Batches are `(x, y)` or `(*xs, y)`.
        model: any `nn.Module`.
        loss_func: called as `loss_func(pred, y)`; None takes the loss the data implies
            (`dls.loss_spec`, e.g. cross-entropy for a CategoryBlock), else infers it from the
            first batch (integer targets: cross-entropy, float targets: MSE).
        opt_func: optimizer factory `opt_func(param_groups, lr=...)` (default `Adam`), or
            the name of a registered one ('SGD', 'Adam', 'AdamW', 'RMSProp').
        lr: default learning rate (1e-3). splitter: `model -> list of parameter groups` for
            discriminative learning rates and freezing (default: one group).
        metrics: functions `(pred, y) -> tensor` or `Metric`s, computed on validation.
        cbs: extra callbacks. wd: weight decay (0.01); wd_bn_bias: decay biases and
            normalization weights too (False). train_bn: batch-norm trains in frozen groups.
        path: folder for saved models (`path/model_dir`).

    `model_spec` (an attribute, None by default) says how `export` rebuilds the model:
    `{"factory": "module:function", "kwargs": {...}}`; the application learners set it.

    Example:
        >>> learn = Learner(dls, nn.Sequential(nn.Flatten(), nn.Linear(64, 10)),
        ...                 loss_func=nn.CrossEntropyLoss(), metrics=[accuracy])
        >>> learn.fit_one_cycle(3, 1e-2)
    """

    def __init__(
        self,
        dls: DataLoaders | tuple[Iterable[Any], Iterable[Any] | None],
        model: nn.Module,
        loss_func: Callable[..., torch.Tensor] | None = None,
        opt_func: OptFunc | str = Adam,
        lr: float = 1e-3,
        splitter: Splitter | None = None,
        metrics: Sequence[Any] | Any = None,
        cbs: Sequence[Callback] | None = None,
        wd: float = 0.01,
        wd_bn_bias: bool = False,
        train_bn: bool = True,
        path: str | Path = ".",
        model_dir: str = "models",
    ) -> None:
        self.dls = dls if isinstance(dls, DataLoaders) else DataLoaders(*dls)
        self.model = uncompiled(model).to(self.dls.device)
        # what the training and validation passes call: `torch.compile(model)` after
        # `learn.compile()` (or when given a compiled model), else the model itself
        self.compiled: nn.Module | None = model if model is not self.model else None
        if self.dls.device.type == "cpu":
            keep_batch_memory()  # activations and logits reuse freed pages: 1.6x on an LM
        self.loss_func = loss_func or default_loss(self.dls)
        self.opt_func: OptFunc = OPTIMIZERS.get(opt_func) if isinstance(opt_func, str) else opt_func
        self.lr, self.splitter = lr, splitter
        metric_list = metrics if isinstance(metrics, Sequence) else [metrics]
        self.metrics: list[Metric] = [as_metric(m) for m in metric_list if m is not None]
        self.wd, self.wd_bn_bias, self.train_bn = wd, wd_bn_bias, train_bn
        self.path, self.model_dir = Path(path), model_dir
        self.layer_groups: list[list[nn.Parameter]] = []
        self.model_spec: dict[str, Any] | None = None
        # no pretrained part to keep (e.g. `vision_learner(..., pretrained=False)`): `fine_tune`
        # trains the whole model in one one-cycle fit instead of freezing a random body
        self.from_scratch = False
        self.opt: torch.optim.Optimizer = self.create_opt()
        self.scaler = torch.amp.GradScaler("cuda", enabled=False)
        self.autocast: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        self.epoch, self.n_epoch, self.iter, self.train_iter, self.n_iter = 0, 1, 0, 0, 0
        self.training = False
        self.skip_batches = 0  # a mid-epoch resume: batches of this epoch already trained on
        self.resume_rng: dict[str, Any] | None = None  # the generators' state after them
        self.dl: Iterable[Any] | None = None
        self.xb: tuple[Any, ...] = ()
        self.yb: tuple[Any, ...] = ()
        self.pred: Any = None
        self.loss_grad = self.loss = torch.zeros(())
        self.said_no_valid = False
        # many processes (see mentor.distributed): the DistributedDataParallel wrapper the
        # training batches run through during a fit, whether the loaders read only this
        # process's shard (validation sums are then all-reduced, predictions gathered), and
        # whether a fit under torchrun turns that on by itself
        self.ddp: nn.Module | None = None
        self.sharded = False
        self.auto_distrib = True
        self.cbs: list[Callback] = []
        self._handlers: dict[str, tuple[tuple[Callable[[], None], ...], ...]] = {}
        self.recorder = Recorder()
        self.progress = ProgressCallback()
        self.add_cbs([self.recorder, self.progress, TerminateOnNaN(), *(cbs or ())])

    def __repr__(self) -> str:
        """What fastai users look for: the data, the model and its size, the loss, the
        optimizer, the metrics and callbacks."""
        n_params = sum(p.numel() for p in self.model.parameters())
        opt = getattr(self.opt_func, "__name__", type(self.opt_func).__name__)
        return "\n".join([
            f"Learner on {type(self.dls).__name__} ({self.dls.application})",
            f"  model: {type(self.model).__name__}, {n_params:,} parameters, "
            f"{len(self.layer_groups)} parameter group(s)",
            f"  loss: {type(self.loss_func).__name__}; optimizer: {opt} (lr {self.lr:g}, "
            f"wd {self.wd:g})",
            f"  metrics: {[m.name for m in self.metrics]}",
            f"  callbacks: {[type(cb).__name__ for cb in self.cbs]}",
            f"  path: {str(self.path)!r} (models in {self.model_dir!r})",
        ])  # fmt: skip

    # ----- callbacks -----
    def add_cbs(self, cbs: Iterable[Callback]) -> None:
        """Attach callbacks (kept sorted by `order`)."""
        for cb in cbs:
            if not isinstance(cb, Callback):
                raise TypeError(f"{cb!r} is not a Callback; subclass mentor.train.Callback")
            cb.learn = self
            self.cbs.append(cb)
        self._sort_cbs()

    def remove_cbs(self, cbs: Iterable[Callback]) -> None:
        """Detach callbacks."""
        for cb in cbs:
            self.cbs.remove(cb)
        self._sort_cbs()

    @contextlib.contextmanager
    def added_cbs(self, cbs: Iterable[Callback]) -> Iterator[None]:
        """Attach callbacks for the duration of a `with` block."""
        cbs = list(cbs)
        self.add_cbs(cbs)
        try:
            yield
        finally:
            self.remove_cbs(cbs)

    def _sort_cbs(self) -> None:
        self.cbs.sort(key=lambda cb: cb.order)
        self._handlers = {}
        for event in EVENTS:
            train_cbs, valid_cbs = handlers(self.cbs, event)
            self._handlers[event] = (
                tuple(getattr(cb, event) for cb in valid_cbs),
                tuple(getattr(cb, event) for cb in train_cbs),
            )

    def _event(self, name: str) -> None:
        for handler in self._handlers[name][self.training]:
            handler()

    # ----- the loop: fit -> epoch -> batch -> step -----
    def fit(
        self,
        n_epoch: int,
        lr: float | slice | Sequence[float] | np.ndarray | None = None,
        wd: float | None = None,
        cbs: Sequence[Callback] | None = None,
        reset_opt: bool = False,
        checkpoint_every: str | int | None = None,
        resume_from: str | Path | None = None,
    ) -> None:
        """Train for `n_epoch` epochs at a constant learning rate (default `self.lr`).

        Args:
            lr: a float, one per parameter group, or `slice(hi)` / `slice(lo, hi)`.
            wd: weight decay for this fit. cbs: callbacks for this fit only.
            reset_opt: build a fresh optimizer (losing its state).
            checkpoint_every: 'epoch' or a number of batches: write a checkpoint that
                `resume_from` continues exactly. resume_from: a checkpoint file.
        """
        from mentor.train.checkpoint import checkpoint_callbacks

        with self._processes():
            if reset_opt:
                self.create_opt()
            set_hyper(self.opt, "lr", lr_per_group(self.lr if lr is None else lr, self.n_groups))
            if wd is not None:
                set_hyper(self.opt, "wd", wd)
            self.n_iter = check_data(self.dls)
            self.n_epoch, self.epoch, self.train_iter, self.skip_batches = n_epoch, 0, 0, 0
            self.resume_rng = None
            extra = [*(cbs or ()), *checkpoint_callbacks(self, checkpoint_every, resume_from)]
            self._fit(extra)

    def _processes(self) -> contextlib.AbstractContextManager[None]:
        """Under torchrun, the first fit turns data-parallel training on (the loaders are
        sharded before the fit counts its batches); the fit then names a lost process."""
        if not (self.sharded or (self.auto_distrib and dist.launched_world_size() > 1)):
            return contextlib.nullcontext()
        from mentor.distributed import distributed_fit

        return distributed_fit(self)

    def _fit(self, cbs: list[Callback]) -> None:
        with self.added_cbs(cbs):
            try:
                self._event("before_fit")
                for epoch in range(self.epoch, self.n_epoch):
                    self.epoch = epoch
                    self._run_epoch()
            except CancelFit:
                pass
            self._event("after_fit")

    def _run_epoch(self) -> None:
        try:
            self._event("before_epoch")
            for training in (True, False):
                self.training = training
                dl = self.dls.train if self.training else self._valid_loader()
                if dl is None:
                    continue
                self.dl = dl
                self.model.train(self.training)
                phase = "train" if self.training else "validate"
                try:
                    self._event(f"before_{phase}")
                    with torch.set_grad_enabled(self.training):
                        for self.iter, batch in self._batches(dl):
                            self._run_batch(batch)
                except (CancelTrain, CancelValidate):
                    pass
                self._event(f"after_{phase}")
        except CancelEpoch:
            pass
        self._event("after_epoch")

    def _run_batch(self, batch: Any) -> None:
        self.xb, self.yb = split_batch(batch)
        try:
            self._event("before_batch")
            model = self.ddp if self.training and self.ddp is not None else self._forward_module()
            with self.autocast:
                self.pred = model(*self.xb)
                self._event("after_pred")
                self.loss_grad = self._compute_loss(self.pred, self.yb)
                self.loss = self.loss_grad.detach()
                self._event("after_loss")
            if self.training:
                self._event("before_backward")
                torch.autograd.backward(self.scaler.scale(self.loss_grad))
                self._event("before_step")
                self.scaler.step(self.opt)
                self.scaler.update()
                self._event("after_step")
                self.opt.zero_grad(set_to_none=True)
        except CancelBatch:
            pass
        self._event("after_batch")
        self.train_iter += self.training

    def _forward_module(self) -> nn.Module:
        return self.model if self.compiled is None else self.compiled

    def _compute_loss(self, pred: Any, yb: tuple[Any, ...]) -> torch.Tensor:
        try:
            return self.loss_func(pred, *yb)
        except (RuntimeError, ValueError, IndexError) as err:
            raise ValueError(explain_loss_error(self.loss_func, pred, yb, err)) from err

    def _batches(self, dl: DeviceLoader) -> Iterator[tuple[int, Any]]:
        """Numbered batches of `dl`, past those a mid-epoch checkpoint already trained on;
        the random generators are set back to the checkpoint's right after those, before the
        next batch is fetched, as they were when it was written."""
        skip = self.skip_batches if self.training else 0
        if not skip:
            return enumerate(dl)
        return enumerate(dl.iter_from(skip, self._restore_resume_rng), skip)

    def _restore_resume_rng(self) -> None:
        if self.resume_rng is not None:
            set_rng_state(self.resume_rng)
            self.resume_rng = None

    def _valid_loader(self) -> DeviceLoader | None:
        valid = self.dls.valid
        empty = valid is None or (valid.has_len() and len(valid) == 0)
        if empty and not self.said_no_valid:
            what = "no validation set" if valid is None else "the validation set is empty"
            warnings.warn(
                f"{what}: training without validation (valid_loss and metrics show nan)",
                stacklevel=4,
            )
            self.said_no_valid = True
        return None if empty else valid

    # ----- optimizer, parameter groups, freezing -----
    def create_opt(self) -> torch.optim.Optimizer:
        """(Re)build the optimizer over the splitter's parameter groups (its state is lost)."""
        model = self.model
        self.layer_groups = self.splitter(model) if self.splitter else [list(model.parameters())]
        groups = param_groups(model, lambda _: self.layer_groups, self.wd, self.wd_bn_bias)
        self.opt = self.opt_func(groups, lr=self.lr)
        return self.opt

    @property
    def n_groups(self) -> int:
        """The number of layer groups (for discriminative learning rates)."""
        return len(self.layer_groups)

    def freeze_to(self, n: int, bn_freeze: bool = False) -> None:
        """Train only the layer groups from `n` on (negative counts from the end).

        Batch-norm layers keep training in frozen groups when `train_bn`; `bn_freeze=True`
        also keeps their running statistics fixed.
        """
        from mentor.train.freeze import BnFreeze

        freeze_to(self.model, self.layer_groups, n, self.train_bn)
        self.remove_cbs([cb for cb in self.cbs if isinstance(cb, BnFreeze)])
        if bn_freeze:
            self.add_cbs([BnFreeze(n)])

    def freeze(self, bn_freeze: bool = False) -> None:
        """Train only the last layer group (the head)."""
        self.freeze_to(-1, bn_freeze)

    def unfreeze(self) -> None:
        """Train every layer group."""
        self.freeze_to(0)

    # ----- schedules (see mentor.train.fits) -----
    def fit_one_cycle(
        self,
        n_epoch: int,
        lr_max: LR = None,
        div: float = 25.0,
        div_final: float = 1e5,
        pct_start: float = 0.25,
        moms: tuple[float, float, float] | None = (0.95, 0.85, 0.95),
        wd: float | None = None,
        cbs: Sequence[Callback] | None = None,
        reset_opt: bool = False,
        checkpoint_every: str | int | None = None,
        resume_from: str | Path | None = None,
    ) -> None:
        """One-cycle training; see `mentor.train.fits.fit_one_cycle` (the last three as
        in `fit`)."""
        from mentor.train.fits import fit_one_cycle

        fit_one_cycle(
            self, n_epoch, lr_max, div, div_final, pct_start, moms, wd, cbs,
            reset_opt=reset_opt, checkpoint_every=checkpoint_every, resume_from=resume_from,
        )  # fmt: skip

    def fit_sgdr(
        self,
        n_cycles: int,
        cycle_len: int,
        lr_max: LR = None,
        cycle_mult: int = 1,
        on_cycle_end: Callable[[Learner, int], None] | None = None,
        wd: float | None = None,
        cbs: Sequence[Callback] | None = None,
        reset_opt: bool = False,
        checkpoint_every: str | int | None = None,
        resume_from: str | Path | None = None,
    ) -> None:
        """Cosine annealing with warm restarts; see `mentor.train.fits.fit_sgdr`."""
        from mentor.train.fits import fit_sgdr

        fit_sgdr(
            self, n_cycles, cycle_len, lr_max, cycle_mult, on_cycle_end, wd, cbs,
            reset_opt=reset_opt, checkpoint_every=checkpoint_every, resume_from=resume_from,
        )  # fmt: skip

    def fit_flat_cos(
        self,
        n_epoch: int,
        lr: LR = None,
        pct_start: float = 0.75,
        wd: float | None = None,
        cbs: Sequence[Callback] | None = None,
        reset_opt: bool = False,
        checkpoint_every: str | int | None = None,
        resume_from: str | Path | None = None,
    ) -> None:
        """Flat learning rate then cosine annealing; see `mentor.train.fits.fit_flat_cos`."""
        from mentor.train.fits import fit_flat_cos

        fit_flat_cos(
            self, n_epoch, lr, pct_start, wd, cbs,
            reset_opt=reset_opt, checkpoint_every=checkpoint_every, resume_from=resume_from,
        )  # fmt: skip

    def fine_tune(
        self,
        epochs: int,
        base_lr: float = 2e-3,
        freeze_epochs: int = 1,
        lr_mult: float = 100,
        pct_start: float = 0.3,
        div: float = 5.0,
        wd: float | None = None,
        cbs: Sequence[Callback] | None = None,
        checkpoint_every: str | int | None = None,
        resume_from: str | Path | None = None,
    ) -> None:
        """Train the head frozen, then everything; see `mentor.train.fits.fine_tune`."""
        from mentor.train.fits import fine_tune

        fine_tune(
            self, epochs, base_lr, freeze_epochs, lr_mult, pct_start, div, wd=wd, cbs=cbs,
            checkpoint_every=checkpoint_every, resume_from=resume_from,
        )  # fmt: skip

    def lr_find(
        self,
        start_lr: float = 1e-7,
        end_lr: float = 10,
        num_it: int = 100,
        stop_div: bool = True,
        show_plot: bool = True,
        suggest_funcs: Sequence[SuggestFunc] | None = None,
    ) -> SuggestedLRs:
        """The learning-rate finder; see `mentor.callbacks.lr_finder.lr_find`."""
        from mentor.callbacks.lr_finder import lr_find

        return lr_find(self, start_lr, end_lr, num_it, stop_div, show_plot, suggest_funcs)

    # ----- mixed precision (see mentor.callbacks.mixed_precision) -----
    def to_bf16(self) -> Learner:
        """Train with bfloat16 autocast (CPU and CUDA)."""
        from mentor.callbacks.mixed_precision import set_precision

        return set_precision(self, torch.bfloat16)

    def to_fp16(self) -> Learner:
        """Train with float16 autocast and a gradient scaler (CUDA only)."""
        from mentor.callbacks.mixed_precision import set_precision

        return set_precision(self, torch.float16)

    def to_fp32(self) -> Learner:
        """Train in full precision again."""
        from mentor.callbacks.mixed_precision import set_precision

        return set_precision(self, None)

    # ----- torch.compile -----
    def compile(self, **kwargs: Any) -> Self:
        """Train and validate through `torch.compile(self.model, **kwargs)` (e.g.
        `mode="max-autotune"`); `self.model` stays the plain module, so saving, export,
        freezing, `lr_find` and `predict` work as before and write the same files.

        The first batches take longer (the compilation); see the README for what it gains.
        """
        self.compiled = cast(nn.Module, torch.compile(self.model, **kwargs))  # a module
        return self

    def uncompile(self) -> Self:
        """Train and validate through the plain model again."""
        self.compiled = None
        return self

    # ----- many processes (see mentor.distributed) -----
    def distrib_ctx(self, sync_bn: bool = False, timeout: float | None = None) -> DistribContext:
        """`with learn.distrib_ctx():` trains data-parallel on the processes `torchrun`
        started (a fit under torchrun does so by itself; this makes it explicit, and the
        loaders read everything again after the block). See `mentor.distributed.DistribContext`.

        Args:
            sync_bn: turn batch-norm layers into `SyncBatchNorm` (CUDA) for the block.
            timeout: seconds a collective waits for a silent process (default 1800).
        """
        from mentor.distributed import DistribContext

        return DistribContext(self, sync_bn=sync_bn, timeout=timeout)

    # ----- memory format (see mentor.callbacks.memory_format) -----
    def to_channelslast(self) -> Self:
        """Run the model and its image batches in channels-last memory format (faster
        convolutions for most image sizes; see `ChannelsLast`)."""
        from mentor.callbacks.memory_format import set_memory_format

        set_memory_format(self, last=True)
        return self

    def to_contiguous(self) -> Self:
        """Back to the default (contiguous, channels-first) memory format."""
        from mentor.callbacks.memory_format import set_memory_format

        set_memory_format(self, last=False)
        return self

    # ----- evaluation, prediction, persistence, inspection (see mentor.train.inference) -----
    def validate(self, dl: Iterable[Any] | None = None) -> dict[str, float]:
        """The validation loss and metrics on `dl` (default: the validation set), through the
        callbacks' validation events; returns `{'valid_loss': ..., <metric>: ...}`."""
        loader = self.dls.valid if dl is None else DeviceLoader(dl, self.dls.device)
        if loader is None:
            raise ValueError("there is no validation set; pass dl= to validate on other data")
        if self.sharded and loader.shard_info is None:  # each process validates its block
            loader = loader.shard(Shard(dist.rank(), dist.world_size(), train=False))
        self.training, self.dl = False, loader
        self.model.eval()
        try:
            self._event("before_validate")
            with torch.no_grad():
                for self.iter, batch in enumerate(loader):
                    self._run_batch(batch)
        except CancelValidate:
            pass
        self._event("after_validate")
        return dict(self.recorder.last_valid)

    def get_preds(
        self,
        dl: Iterable[Any] | None = None,
        with_input: bool = False,
        with_loss: bool = False,
        act: Callable[[torch.Tensor], torch.Tensor] | bool | None = None,
    ) -> tuple[Any, ...]:
        """Predictions and targets on `dl`; see `mentor.train.inference.get_preds`."""
        from mentor.train.inference import get_preds

        return get_preds(self, dl, with_input, with_loss, act)

    def predict(self, item: Any) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """`(decoded, decoded_tensor, probs)` for one raw item (a path, an image, a row) or a
        model-ready tensor; see `mentor.train.inference.predict`."""
        from mentor.train.inference import predict

        return predict(self, item)

    def show_results(self, max_n: int = 9, dl: Iterable[Any] | None = None) -> Any:
        """Items of a validation batch with their targets and predictions (a figure for
        images, a table for rows and texts); see `mentor.train.inference.show_results`."""
        from mentor.train.inference import show_results

        return show_results(self, max_n, dl)

    def tta(
        self, dl: Iterable[Any] | None = None, n: int = 4, beta: float = 0.25
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Test-time augmentation: `(preds, targets)`; see `mentor.train.tta.tta`."""
        from mentor.train.tta import tta

        return tta(self, dl, n, beta)

    def save(self, name: str, with_opt: bool = True) -> Path:
        """Save the weights (and optimizer state) to `path/model_dir/name.pth`."""
        from mentor.train.checkpoint import save_learner

        return save_learner(self, name, with_opt)

    def load(self, name: str | Path, with_opt: bool = True, strict: bool = True) -> Learner:
        """Load what `save` wrote (a name in `path/model_dir` or a file path)."""
        from mentor.train.checkpoint import load_learner_state

        load_learner_state(self, name, with_opt, strict)
        return self

    def export(self, path: str | Path | None = None) -> Path:
        """Write the model and its data pipeline to one `.mentor` file, without pickle
        (default `self.path / "export.mentor"`, as fastai's `export.pkl`); see
        `mentor.inference.export.export_learner`."""
        from mentor.inference.export import export_learner
        from mentor.inference.load import DEFAULT_NAME

        return export_learner(self, self.path / DEFAULT_NAME if path is None else path)

    def export_onnx(
        self, path: str | Path, opset: int | None = None, check: bool = True, atol: float = 1e-4
    ) -> OnnxExport:
        """Write a vision or tabular model to an `.onnx` file, checked with onnxruntime when
        installed; returns an `OnnxExport` (path, max_abs_diff). See
        `mentor.inference.onnx_export.export_onnx`."""
        from mentor.inference.onnx_export import export_onnx

        return export_onnx(self, path, opset=opset, check=check, atol=atol)

    def summary(self) -> ModelSummary:
        """A table of the model's layers: output shape, parameters, trainable; with totals."""
        from mentor.train.summary import learner_summary

        return learner_summary(self)

    def report(
        self,
        folder: str | Path = ".",
        export_path: str | Path | None = None,
        title: str = "mentor training report",
        top_k: int = 9,
    ) -> Path:
        """Write `folder/report.html`: data, lr_find, curves, schedules, epochs, confusion
        matrix and top losses, export path; see `mentor.train.report.write_report`."""
        from mentor.train.report import write_report

        return write_report(self, folder, export_path, title, top_k)

    def show_training_loop(self) -> str:
        """Which callbacks run at each event, in order; printed and returned."""
        text = training_loop(self.cbs)
        print(text)
        return text
