"""`write_report`: one self-contained HTML page about a training run.

The page holds the data summary, a few examples, the `lr_find` sweep, loss and metric curves
and the learning-rate and momentum schedules of every fit, the epoch table, what the model
gets wrong on the validation set (confusion matrix and top losses, or predicted against
actual values for regression) and where the model was exported. Figures are inline PNGs, so
the one file can be mailed or opened anywhere. `learn.report(folder)` and every `mentor train`
run write it.
"""

from __future__ import annotations

import contextlib
import datetime
import html
import io
import tempfile
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from mentor.core.device import is_main_process
from mentor.data.block_loaders import BlockDataLoaders
from mentor.data.block_summary import describe
from mentor.train.interpret import ClassificationInterpretation
from mentor.train.losses import loss_decodes
from mentor.train.report_plots import (
    epoch_table,
    figure_html,
    plot_fit_losses,
    plot_fit_metrics,
    plot_fit_schedules,
    plot_regression,
    table_html,
)

if TYPE_CHECKING:
    from mentor.train.learner import Learner

MAX_CLASSES_PLOTTED = 30  # larger confusion matrices are unreadable; the table stays


@dataclass
class Section:
    """One part of the report: a heading and its HTML."""

    title: str
    body: str


def write_report(
    learn: Learner,
    folder: str | Path = ".",
    export_path: str | Path | None = None,
    title: str = "mentor training report",
    top_k: int = 9,
) -> Path:
    """Write `folder/report.html` about `learn`'s data, training and validation results.

    Args:
        learn: a learner, usually trained (sections with nothing to show are left out).
        folder: where the page goes (created when missing; default the current folder).
        export_path: the exported `.mentor` file, named in the report when given.
        title: the page's heading. top_k: how many items with the highest loss to show (9).

    Returns:
        The path of the page.

    In a distributed run every rank calls it (the validation predictions are gathered from
    all of them) and rank 0 writes the page.

    Example:
        >>> learn.fine_tune(2)
        >>> learn.report("runs/pets", export_path=learn.export("pets.mentor"))
    """
    folder = Path(folder)
    builders: list[tuple[str, Callable[[], Section | list[Section] | None]]] = [
        ("Data", lambda: _data_section(learn)),
        ("Examples (training data)", lambda: _examples_section(learn)),
        ("Learning-rate finder", lambda: _lr_find_section(learn)),
        ("Training", lambda: _training_sections(learn)),
        ("Validation results", lambda: _interpretation_sections(learn, top_k)),
        ("Export", lambda: _export_section(export_path)),
    ]
    sections = [section for name, build in builders for section in _drawn(name, build)]
    file = folder / "report.html"
    if not is_main_process():  # every rank builds it (predictions are gathered), one writes
        return file
    folder.mkdir(parents=True, exist_ok=True)
    file.write_text(_page(title, _facts_html(_run_facts(learn)), sections), encoding="utf-8")
    return file


def _drawn(name: str, build: Callable[[], Section | list[Section] | None]) -> list[Section]:
    """The sections `build` makes (none for None); a part that fails (data it can't show,
    say) becomes a section that names the error, with a warning, so the rest of the report
    is still written."""
    try:
        built = build()
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError) as err:
        warnings.warn(f"report: the {name!r} part could not be drawn: {err}", stacklevel=3)
        return [Section(name, f"<p>Could not be drawn: {html.escape(str(err))}</p>")]
    if built is None:
        return []
    return built if isinstance(built, list) else [built]


# ----- sections -----
def _run_facts(learn: Learner) -> dict[str, Any]:
    import mentor

    params = list(learn.model.parameters())
    seconds = sum(float(row.get("time", 0.0)) for fit in learn.recorder.fits for row in fit.values)
    return {
        "Written": datetime.datetime.now().isoformat(timespec="seconds"),
        "Model": type(learn.model).__name__,
        "Parameters": f"{sum(p.numel() for p in params):,} "
        f"({sum(p.numel() for p in params if p.requires_grad):,} trainable now)",
        "Loss": _name(learn.loss_func),
        "Metrics": ", ".join(m.name for m in learn.metrics) or "none",
        "Training time": f"{seconds:.1f} s in {len(learn.recorder.fits)} fit(s)",
        "Device": str(learn.dls.device),
        "Versions": f"mentor {mentor.__version__}, torch {torch.__version__}",
    }


def _data_section(learn: Learner) -> Section:
    dls = learn.dls
    facts: dict[str, Any] = {"Data": type(dls).__name__}
    for name, loader in (("Training", dls.train), ("Validation", dls.valid)):
        if loader is not None:
            facts[f"{name} items"] = _n_items(loader)
            facts[f"{name} batches"] = len(loader) if loader.has_len() else "unknown"
    vocab = dls.vocab
    if vocab:
        shown = ", ".join(map(str, vocab[:20])) + (", ..." if len(vocab) > 20 else "")
        facts[f"Vocabulary ({len(vocab)})"] = shown
    with contextlib.suppress(ValueError, TypeError):
        facts["One training batch"] = describe(tuple(dls.one_batch("train")))
    return Section("Data", _facts_html(facts))


def _n_items(loader: Any) -> str:
    """How many items a loader goes through, read off the loaders it wraps."""
    inner = loader
    while hasattr(inner, "loader") and not hasattr(inner, "dataset"):
        inner = inner.loader
    if hasattr(inner, "n_tokens"):  # a language-model stream
        return f"{len(inner.docs):,} texts, {inner.n_tokens:,} tokens"
    for attr in ("dataset", "docs"):
        if hasattr(inner, attr):
            return f"{len(getattr(inner, attr)):,}"
    n = getattr(inner, "n", None)
    return f"{n:,}" if isinstance(n, int) else "unknown"


def _examples_section(learn: Learner) -> Section | None:
    dls = learn.dls
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        # a figure goes to a file where no display shows it: keep that file out of the way
        if isinstance(dls, BlockDataLoaders):
            shown = dls.show_batch(fname=Path(tmp) / "batch.png")
        else:
            shown = dls.show_batch()
    if isinstance(shown, pd.DataFrame):
        return Section("Examples (training data)", table_html(shown))
    return Section("Examples (training data)", figure_html(shown, "a batch of training data"))


def _lr_find_section(learn: Learner) -> Section | None:
    sweep = learn.recorder.sweep
    if sweep is None:
        return None
    found = ", ".join(f"{name} {lr:.2e}" for name, lr in sweep.suggestions.items())
    body = f"<p>Suggestions: {html.escape(found)}</p>"
    return Section("Learning-rate finder", body + figure_html(learn.recorder.plot_lr_find(), "lr"))


def _training_sections(learn: Learner) -> list[Section]:
    fits = learn.recorder.fits
    if not fits:
        return []
    curves = figure_html(plot_fit_losses(fits), "losses")
    metrics = plot_fit_metrics(fits)
    if metrics is not None:
        curves += figure_html(metrics, "metrics per epoch")
    return [
        Section("Loss and metrics", curves),
        Section("Schedules", figure_html(plot_fit_schedules(fits), "learning rate and momentum")),
        Section("Epochs", table_html(epoch_table(fits))),
    ]


def _interpretation_sections(learn: Learner, top_k: int) -> list[Section]:
    """Classification or regression results on the validation set, or the sections of a
    learner's own `report_sections(top_k)` (segmentation); nothing for the others (language
    models, multi-label), whose predictions are not one per item."""
    dls = learn.dls
    own = getattr(learn, "report_sections", None)  # an application's own (segmentation)
    if callable(own) and dls.valid is not None:
        return list(own(top_k))
    if dls.valid is None or not _one_target_per_item(dls):
        return []
    inputs, preds, targets, losses = learn.get_preds(with_input=True, with_loss=True)
    if preds.ndim == 2 and preds.shape[1] > 1 and not targets.is_floating_point():
        decoded = loss_decodes(learn.loss_func, preds)
        interp = ClassificationInterpretation(learn, inputs, preds, targets, losses, decoded)
        return _classification_sections(interp, top_k)
    if preds.numel() == targets.numel() and targets.is_floating_point():
        return _regression_sections(learn, preds.flatten(), targets.flatten(), losses, top_k)
    return []


def _one_target_per_item(dls: Any) -> bool:
    batch = dls.one_batch("valid")
    target = batch[-1] if isinstance(batch, list | tuple) and len(batch) > 1 else None
    if not isinstance(target, torch.Tensor):
        return False
    return target.ndim == 1 or (target.ndim == 2 and target.shape[1] == 1)


def _classification_sections(interp: ClassificationInterpretation, top_k: int) -> list[Section]:
    correct = float((interp.decoded == interp.targets).float().mean())
    summary = f"<p>Validation accuracy {correct:.4f} on {len(interp.targets):,} items.</p>"
    if interp.n_classes <= MAX_CLASSES_PLOTTED:
        summary += figure_html(interp.plot_confusion_matrix(), "confusion matrix")
    confused = pd.DataFrame(interp.most_confused()[:10], columns=["actual", "predicted", "count"])
    if len(confused):
        summary += "<h3>Most confused</h3>" + table_html(confused)
    losses, indices = interp.top_losses(top_k)
    rows = _item_rows(interp.learn.dls, indices.tolist()) if interp.learn else None
    if rows is not None:
        top = table_html(_with_columns(rows, interp, losses, indices))
    else:
        top = figure_html(interp.plot_top_losses(top_k), "items with the highest loss")
    return [Section("Confusion", summary), Section("Top losses (validation)", top)]


def _with_columns(
    rows: pd.DataFrame, interp: ClassificationInterpretation, losses: Any, indices: Any
) -> pd.DataFrame:
    """The items' rows behind the classification results."""
    vocab = interp.vocab
    results = {
        "predicted": [vocab[int(interp.decoded[i])] for i in indices],
        "actual": [vocab[int(interp.targets[i])] for i in indices],
        "loss": losses.tolist(),
        "probability of actual": [float(interp.probs[i, interp.targets[i]]) for i in indices],
    }
    return _results_first(results, rows)


def _item_rows(dls: Any, index: list[int]) -> pd.DataFrame | None:
    """The validation items at `index` as table rows, when the data can decode them
    (`decode_rows` of tabular, collab and text loaders); None otherwise."""
    rows: pd.DataFrame | None = dls.decode_rows(index)
    return rows


def _results_first(results: dict[str, list[Any]], rows: pd.DataFrame) -> pd.DataFrame:
    """The result columns first (wide rows scroll), then the items' own columns."""
    return pd.concat([pd.DataFrame(results), rows.reset_index(drop=True)], axis=1)


def _regression_sections(
    learn: Learner, preds: torch.Tensor, targets: torch.Tensor, losses: torch.Tensor, top_k: int
) -> list[Section]:
    errors = preds - targets
    mse, mae = float((errors**2).mean()), float(errors.abs().mean())
    body = f"<p>Validation MSE {mse:.4f}, MAE {mae:.4f} on {len(targets):,} items.</p>"
    body += figure_html(plot_regression(preds.numpy(), targets.numpy()), "predicted vs actual")
    top_losses, indices = losses.flatten().topk(min(top_k, len(losses)))
    index = indices.tolist()
    rows = _item_rows(learn.dls, index)
    rows = pd.DataFrame({"item": index}) if rows is None else rows
    results = {
        "predicted": preds[indices].tolist(),
        "actual": targets[indices].tolist(),
        "loss": top_losses.tolist(),
    }
    rows = _results_first(results, rows)
    return [Section("Predictions (validation)", body), Section("Top losses", table_html(rows))]


def _export_section(export_path: str | Path | None) -> Section | None:
    if export_path is None:
        return None
    path = Path(export_path)
    size = f" ({path.stat().st_size / 1e6:.1f} MB)" if path.exists() else ""
    code = f"from mentor.inference import Predictor\npredictor = Predictor.load({str(path)!r})"
    body = f"<p>Exported to <code>{html.escape(str(path))}</code>{size}.</p>"
    return Section("Export", body + f"<pre>{html.escape(code)}</pre>")


# ----- the page -----
def _name(obj: Any) -> str:
    return getattr(obj, "__name__", None) or type(obj).__name__


def _facts_html(facts: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in facts.items()
    )
    return f'<table class="facts">{rows}</table>'


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { border-bottom: 2px solid #345; } h2 { margin-top: 1.6em; color: #345; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: left; }
table.facts th { width: 14em; color: #555; font-weight: normal; }
img { max-width: 100%; display: block; margin: 0.6em 0; }
pre { background: #f4f4f4; padding: 0.6em; }
nav a { margin-right: 1em; }
div.scroll { overflow-x: auto; }
"""


def _page(title: str, facts: str, sections: Iterable[Section]) -> str:
    sections = list(sections)
    anchors = [f"s{i}" for i in range(len(sections))]
    nav = " ".join(f'<a href="#{a}">{html.escape(s.title)}</a>' for a, s in zip(anchors, sections))
    body = "".join(
        f'<section id="{a}"><h2>{html.escape(s.title)}</h2>{s.body}</section>'
        for a, s in zip(anchors, sections)
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{facts}<nav>{nav}</nav>{body}</body></html>\n"
    )
