"""Prediction with a trained `Learner`: `get_preds` over a loader, `predict` for one item."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import torch

from mentor.core import dist
from mentor.core.device import split_batch, to_device
from mentor.data.encoders import ItemEncoder, decoded_output
from mentor.data.loaders import DataLoaders, DeviceLoader
from mentor.data.shard import Shard, shard_loader, shard_of
from mentor.train.losses import loss_activation, loss_decodes

if TYPE_CHECKING:
    from mentor.train.learner import Learner


def get_preds(
    learn: Learner,
    dl: Iterable[Any] | None = None,
    with_input: bool = False,
    with_loss: bool = False,
    act: Callable[[torch.Tensor], torch.Tensor] | bool | None = None,
) -> tuple[Any, ...]:
    """Predictions and targets over `dl` (default: the validation set), on the CPU.

    Args:
        with_input: also return the inputs (first). with_loss: also return the loss of each
            item (last; the loss must accept `reduction='none'`, as torch's and ours do).
        act: the activation applied to the outputs: None uses the loss's (softmax for
            cross-entropy, sigmoid for binary cross-entropy), False none, or a function.

    Returns:
        `(preds, targets)`, with inputs first and losses last when asked for.
    """
    loader = learn.dls.valid if dl is None else dl
    if loader is None:
        raise ValueError("there is no validation set; pass dl= to predict on other data")
    if learn.sharded and shard_of(loader) is None:  # each process predicts its block
        loader = shard_loader(loader, Shard(dist.rank(), dist.world_size(), train=False))
    inputs: list[torch.Tensor] = []
    preds: list[torch.Tensor] = []
    targets: list[torch.Tensor] = []
    n_inp = learn.dls.n_inp
    learn.model.eval()
    with torch.inference_mode(), learn.autocast:
        for batch in loader:
            xb, yb = split_batch(to_device(batch, learn.dls.device), n_inp)
            preds.append(learn.model(*xb).float())
            targets.extend(yb[:1])
            if with_input:
                inputs.append(xb[0])
    base = getattr(loader, "loader", loader)  # a DeviceLoader's wrapped loader
    item_order = getattr(base, "item_order", None)
    if learn.sharded:  # every process's predictions, in rank order (= item order)
        preds, targets, inputs, item_order = _gather(preds, targets, inputs, item_order)
    order = _restore_order(item_order, sum(len(p) for p in preds))
    out = torch.cat(preds).cpu()[order]
    target = torch.cat(targets).cpu()[order] if targets else None
    result: list[Any] = [_activate(learn.loss_func, out, act), target]
    if with_input:
        result.insert(0, _cat_padded(inputs, getattr(base, "pad_idx", 0))[order])
    if with_loss:
        if target is None:
            raise ValueError("with_loss=True needs targets, but the batches have none")
        result.append(_item_losses(learn.loss_func, out, target))
    return tuple(result)


def _gather(*parts: Any) -> tuple[Any, ...]:
    """Lists (per batch) gathered from every process and joined in rank order."""
    gathered = dist.gather_objects([list(p) if p is not None else None for p in parts])
    joined: list[Any] = []
    for i, part in enumerate(parts):
        pieces = [rank_parts[i] for rank_parts in gathered]
        joined.append(None if part is None else [x for piece in pieces for x in piece])
    return tuple(joined)


def _restore_order(item_order: Any, n: int) -> Any:
    """The permutation that puts predictions back in item order, for loaders that yield
    items in another order (length-sorted text batches expose `item_order`)."""
    if item_order is None or len(item_order) != n:
        return slice(None)
    return torch.argsort(torch.as_tensor(item_order))


def _cat_padded(inputs: list[torch.Tensor], pad_value: int) -> torch.Tensor:
    """Inputs of all batches as one tensor; batches of different lengths (texts) are padded
    on the right with `pad_value` to the longest."""
    longest = max(x.shape[-1] for x in inputs) if inputs and inputs[0].ndim > 1 else None
    if longest is not None and any(x.shape[-1] != longest for x in inputs):
        inputs = [
            torch.nn.functional.pad(x, (0, longest - x.shape[-1]), value=pad_value) for x in inputs
        ]
    return torch.cat(inputs).cpu()


def predict(learn: Learner, item: Any) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """The prediction for one item: `(decoded, decoded_tensor, probs)`, as in fastai.

    A raw item (a file path, a PIL image, a numpy array, a DataFrame row: whatever the
    data's items are) goes through `learn.dls.test_dl([item])`, i.e. the validation item and
    batch transforms, so the data must have a `test_dl` (a `DataBlock`'s loaders do). A
    tensor is taken as a model-ready input without its batch axis and goes straight to the
    model. The model runs in eval mode (its mode is restored afterwards).

    Args:
        learn: the learner. item: the raw item or a model-ready tensor.

    Returns:
        `probs`: the output for the item with the loss's activation (softmax for
        cross-entropy, sigmoid for binary cross-entropy, none for regression).
        `decoded_tensor`: the loss's decoding of `probs` (the class index; a boolean vector
        of the labels above the loss's `thresh`; the values themselves for regression; an
        image-to-image model's image as uint8 pixels `[C, H, W]`).
        `decoded`: the target block's reading of it (the label; the list of labels; a float
        or a list of floats); without a target block (unlabelled data, plain loaders) it is
        `decoded_tensor` itself.

    Example:
        >>> label, index, probs = learn.predict("images/3/7463.png")
    """
    dls = learn.dls
    encoder = _item_encoder(dls)
    if isinstance(item, torch.Tensor):
        xb: tuple[Any, ...] = (item.unsqueeze(0),)
    else:
        xb = _raw_item_inputs(dls, encoder, item)
    with _eval_mode(learn.model), torch.inference_mode(), learn.autocast:
        out = learn.model(*to_device(xb, dls.device)).float()
    probs = loss_activation(learn.loss_func, out)
    target = dls.target_block
    decoded_tensor = decoded_output(target, encoder, loss_decodes(learn.loss_func, probs)[0].cpu())
    if target is None:
        decoded: Any = decoded_tensor
    elif target.needs_geometry and not isinstance(item, torch.Tensor) and encoder is not None:
        decoded = target.decode_in_input(decoded_tensor, encoder.geometry(item))
    else:
        decoded = target.decode(decoded_tensor)
    return decoded, decoded_tensor, probs[0].cpu()


def _item_encoder(dls: DataLoaders) -> ItemEncoder | None:
    """The data's encoder of raw items (what `Predictor` runs after export), if it has one."""
    if type(dls).item_encoder is DataLoaders.item_encoder:
        return None
    return dls.item_encoder()


def _raw_item_inputs(dls: DataLoaders, encoder: ItemEncoder | None, item: Any) -> tuple[Any, ...]:
    """The model inputs for one raw item: through the data's item encoder (a path, bytes, a
    PIL image or an array for images; a row; a text; a pair), else through `test_dl` (an
    item as the data's getters read it, e.g. a row of the DataFrame an image block was
    built from)."""
    if encoder is not None:
        try:
            return encoder.encode_one(item, dls.device)
        except TypeError:  # not a raw input of the blocks: try it as one of the data's items
            if type(dls).test_dl is DataLoaders.test_dl:
                raise
    if type(dls).test_dl is DataLoaders.test_dl:  # plain loaders: nothing encodes raw items
        raise TypeError(
            f"predict got a {type(item).__name__}, but the learner's data "
            f"({type(dls).__name__}) has no test_dl for raw items; pass a model-ready "
            "tensor, or build the data with a DataBlock (e.g. ImageDataLoaders)"
        )
    batch = next(iter(dls.test_dl([item])))
    parts = tuple(batch) if isinstance(batch, tuple | list) else (batch,)
    return parts[: dls.n_inp]


def show_results(learn: Learner, max_n: int = 9, dl: Iterable[Any] | None = None) -> Any:
    """The first `max_n` items of a validation batch (or of `dl`'s first batch) with their
    targets and the model's predictions, drawn by the data (`dls.show_results`): a figure
    for images (masks and points side by side), a table for rows and texts.

    Example:
        >>> learn.show_results(max_n=6)
    """
    loader = learn.dls.valid if dl is None else DeviceLoader(dl, learn.dls.device)
    if loader is None:
        raise ValueError("there is no validation set; pass dl= to show results on other data")
    batch = next(iter(loader))
    xb, _ = split_batch(batch, learn.dls.n_inp)
    with _eval_mode(learn.model), torch.inference_mode(), learn.autocast:
        out = learn.model(*xb).float()
    decoded = loss_decodes(learn.loss_func, loss_activation(learn.loss_func, out)).cpu()
    return learn.dls.show_results(batch, list(decoded[:max_n]), max_n=max_n)


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """`model` in eval mode for the block, back in its previous mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _activate(loss_func: Any, out: torch.Tensor, act: Any) -> torch.Tensor:
    if act is False:
        return out
    if act is None or act is True:
        return loss_activation(loss_func, out)
    return act(out)


def _item_losses(loss_func: Any, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if not hasattr(loss_func, "reduction"):
        raise ValueError(
            f"with_loss=True needs a loss with a `reduction` attribute; {loss_func!r} has none"
        )
    with _no_reduction(loss_func):
        losses = loss_func(out, target)
    return losses.reshape(out.shape[0], -1).mean(1) if losses.ndim > 1 else losses


@contextlib.contextmanager
def _no_reduction(loss_func: Any) -> Iterator[None]:
    saved = loss_func.reduction
    loss_func.reduction = "none"
    try:
        yield
    finally:
        loss_func.reduction = saved
