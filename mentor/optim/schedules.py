"""Schedules: pure functions of training progress `pos` in [0, 1] that compose.

`start` / `end` may be floats or 1-D numpy arrays (one value per layer group); with arrays the
schedule returns an array. Evaluating a schedule is cheap (it runs once per batch) and never
mutates its inputs.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence

import numpy as np

HyperValue = float | np.ndarray
Schedule = Callable[[float], HyperValue]


def _as_value(value: float | Sequence[float] | np.ndarray, name: str) -> HyperValue:
    """A float, or a private 1-D float64 copy of an array-like (so later edits don't leak in)."""
    if isinstance(value, (np.ndarray, Sequence)):
        array = np.array(value, dtype=np.float64)
        if array.ndim > 1:
            raise ValueError(f"{name} must be a float or a 1-D array, got shape {array.shape}")
        return array
    return float(value)


def _check_pos(pos: float) -> None:
    if not 0.0 <= pos <= 1.0:
        raise ValueError(f"schedule position must be in [0, 1], got pos={pos}")


def sched_lin(start: HyperValue, end: HyperValue) -> Schedule:
    """Linear schedule from `start` (pos 0) to `end` (pos 1)."""
    start_value, end_value = _as_value(start, "start"), _as_value(end, "end")
    span = end_value - start_value

    def schedule(pos: float) -> HyperValue:
        _check_pos(pos)
        return start_value + pos * span

    return schedule


def sched_cos(start: HyperValue, end: HyperValue) -> Schedule:
    """Half-cosine schedule from `start` (pos 0) to `end` (pos 1), flat at both ends."""
    start_value, end_value = _as_value(start, "start"), _as_value(end, "end")
    half_span = (end_value - start_value) / 2

    def schedule(pos: float) -> HyperValue:
        _check_pos(pos)
        return start_value + (1.0 - math.cos(math.pi * pos)) * half_span

    return schedule


def sched_exp(start: HyperValue, end: HyperValue) -> Schedule:
    """Geometric schedule from `start` to `end` (both > 0): start * (end / start) ** pos."""
    start_value, end_value = _as_value(start, "start"), _as_value(end, "end")
    if np.any(np.asarray(start_value) <= 0) or np.any(np.asarray(end_value) <= 0):
        raise ValueError(
            f"sched_exp needs positive start and end, got start={start}, end={end}; "
            "use sched_lin or sched_cos to reach 0"
        )
    ratio = end_value / start_value

    def schedule(pos: float) -> HyperValue:
        _check_pos(pos)
        return start_value * ratio**pos

    return schedule


def sched_no(start: HyperValue, end: HyperValue | None = None) -> Schedule:
    """Constant schedule at `start` (`end` is ignored; it is there for a uniform signature)."""
    start_value = _as_value(start, "start")

    def schedule(pos: float) -> HyperValue:
        _check_pos(pos)
        return start_value.copy() if isinstance(start_value, np.ndarray) else start_value

    return schedule


def sched_poly(start: HyperValue, end: HyperValue, power: float) -> Schedule:
    """Polynomial schedule: start + (end - start) * pos ** power (power > 0)."""
    if power <= 0:
        raise ValueError(f"sched_poly needs power > 0, got power={power}")
    start_value, end_value = _as_value(start, "start"), _as_value(end, "end")
    span = end_value - start_value

    def schedule(pos: float) -> HyperValue:
        _check_pos(pos)
        return start_value + pos**power * span

    return schedule


def _piecewise(bounds: list[float], scheds: list[Schedule]) -> Schedule:
    """Piecewise schedule: scheds[i] runs on [bounds[i], bounds[i+1]] with its own local pos.

    `bounds` is strictly increasing from 0.0 to 1.0 and has one entry more than `scheds`.
    """
    starts = bounds[:-1]
    widths = [hi - lo for lo, hi in zip(bounds[:-1], bounds[1:])]
    last = len(scheds) - 1

    def schedule(pos: float) -> HyperValue:
        _check_pos(pos)
        index = min(bisect.bisect_right(starts, pos) - 1, last)
        local_pos = min((pos - starts[index]) / widths[index], 1.0)
        return scheds[index](local_pos)

    return schedule


def combine_scheds(pcts: Sequence[float], scheds: Sequence[Schedule]) -> Schedule:
    """Chain `scheds`, the i-th running over a fraction pcts[i] of training (pcts sum to 1).

    Example: `combine_scheds([0.3, 0.7], [sched_lin(0.1, 1.0), sched_cos(1.0, 0.0)])`.
    """
    if len(pcts) != len(scheds):
        raise ValueError(f"got {len(pcts)} pcts for {len(scheds)} schedules; pass one each")
    if any(pct < 0 for pct in pcts) or not math.isclose(sum(pcts), 1.0, abs_tol=1e-6):
        raise ValueError(f"pcts must be >= 0 and sum to 1, got {list(pcts)}")
    bounds, kept = [0.0], []
    total = 0.0
    for pct, sched in zip(pcts, scheds):
        if pct > 0:  # a segment of width 0 is never reached
            total += pct
            bounds.append(total)
            kept.append(sched)
    bounds[-1] = 1.0
    return _piecewise(bounds, kept)


def _check_pct_start(pct_start: float) -> None:
    if not 0.0 <= pct_start <= 1.0:
        raise ValueError(f"pct_start must be in [0, 1], got {pct_start}")


def one_cycle_lr(
    lr_max: HyperValue, div: float = 25.0, div_final: float = 1e5, pct_start: float = 0.25
) -> Schedule:
    """One-cycle lr: cosine from lr_max/div up to lr_max over pct_start, then down to
    lr_max/div_final.

    Args: lr_max (float or one per layer group), div=25., div_final=1e5, pct_start=0.25.
    """
    _check_pct_start(pct_start)
    lr_peak = _as_value(lr_max, "lr_max")
    return combine_scheds(
        [pct_start, 1.0 - pct_start],
        [sched_cos(lr_peak / div, lr_peak), sched_cos(lr_peak, lr_peak / div_final)],
    )


def one_cycle_mom(
    moms: tuple[float, float, float] = (0.95, 0.85, 0.95), pct_start: float = 0.25
) -> Schedule:
    """One-cycle momentum: cosine from moms[0] to moms[1] over pct_start, then to moms[2].

    Args: moms=(0.95, 0.85, 0.95), pct_start=0.25.
    """
    _check_pct_start(pct_start)
    if len(moms) != 3:
        raise ValueError(f"moms must be (start, middle, end), got {moms!r}")
    return combine_scheds(
        [pct_start, 1.0 - pct_start],
        [sched_cos(moms[0], moms[1]), sched_cos(moms[1], moms[2])],
    )


def flat_cos_lr(lr: HyperValue, pct_start: float = 0.75) -> Schedule:
    """Flat at `lr` for pct_start of training, then cosine annealing to 0.

    Args: lr (float or one per layer group), pct_start=0.75.
    """
    _check_pct_start(pct_start)
    lr_value = _as_value(lr, "lr")
    return combine_scheds(
        [pct_start, 1.0 - pct_start], [sched_no(lr_value), sched_cos(lr_value, 0.0)]
    )


def _check_sgdr(n_cycles: int, cycle_len: int, cycle_mult: int) -> None:
    for name, value in (
        ("n_cycles", n_cycles),
        ("cycle_len", cycle_len),
        ("cycle_mult", cycle_mult),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")


def sgdr_cycle_ends(n_cycles: int, cycle_len: int = 1, cycle_mult: int = 1) -> list[int]:
    """Epoch at which each SGDR cycle ends (cumulative); cycle k lasts cycle_len*cycle_mult**k.

    Example: `sgdr_cycle_ends(3, 1, 2)` -> `[1, 3, 7]`.
    """
    _check_sgdr(n_cycles, cycle_len, cycle_mult)
    ends, epoch = [], 0
    for cycle in range(n_cycles):
        epoch += cycle_len * cycle_mult**cycle
        ends.append(epoch)
    return ends


def sgdr_total_epochs(n_cycles: int, cycle_len: int = 1, cycle_mult: int = 1) -> int:
    """Total number of epochs of an SGDR run (the end of its last cycle)."""
    return sgdr_cycle_ends(n_cycles, cycle_len, cycle_mult)[-1]


def sgdr_lr(
    lr_max: HyperValue,
    n_cycles: int,
    cycle_len: int = 1,
    cycle_mult: int = 1,
    lr_min: HyperValue = 0.0,
) -> Schedule:
    """Cosine annealing with warm restarts (SGDR) over the whole run, pos in [0, 1].

    Args: lr_max (float or one per layer group), n_cycles, cycle_len=1 (epochs of the first
    cycle), cycle_mult=1 (each cycle is this many times longer than the previous), lr_min=0.
    Train for `sgdr_total_epochs(n_cycles, cycle_len, cycle_mult)` epochs.
    """
    ends = sgdr_cycle_ends(n_cycles, cycle_len, cycle_mult)
    total = ends[-1]
    # one correctly rounded division per bound: a restart lands exactly where a loop's
    # pos = iteration / n_iterations crosses the epoch boundary
    bounds = [0.0] + [end / total for end in ends]
    anneal = sched_cos(_as_value(lr_max, "lr_max"), _as_value(lr_min, "lr_min"))
    return _piecewise(bounds, [anneal] * n_cycles)
