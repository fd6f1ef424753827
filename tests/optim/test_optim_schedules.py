import math

import numpy as np
import pytest

from mentor.optim import (
    combine_scheds,
    flat_cos_lr,
    one_cycle_lr,
    one_cycle_mom,
    sched_cos,
    sched_exp,
    sched_lin,
    sched_no,
    sched_poly,
    sgdr_cycle_ends,
    sgdr_lr,
    sgdr_total_epochs,
)


def test_basic_schedules_endpoints_and_midpoints():
    assert sched_lin(1.0, 3.0)(0.25) == pytest.approx(1.5)
    assert sched_cos(1.0, 3.0)(0.0) == pytest.approx(1.0)
    assert sched_cos(1.0, 3.0)(0.5) == pytest.approx(2.0)
    assert sched_cos(1.0, 3.0)(1.0) == pytest.approx(3.0)
    # cosine is flat near the ends: it moves less than linear at pos 0.1
    assert sched_cos(0.0, 1.0)(0.1) == pytest.approx((1 - math.cos(0.1 * math.pi)) / 2)
    assert sched_exp(1e-4, 1e-2)(0.5) == pytest.approx(1e-3)
    assert sched_no(2.0, 5.0)(0.7) == 2.0
    assert sched_poly(0.0, 8.0, 3)(0.5) == pytest.approx(1.0)


def test_array_schedules_per_group_and_inputs_untouched():
    start = np.array([1e-4, 1e-3])
    end = np.array([1e-2, 1e-1])
    values = sched_exp(start, end)(0.5)
    np.testing.assert_allclose(values, [1e-3, 1e-2])
    values[:] = 0.0
    np.testing.assert_allclose(sched_exp(start, end)(0.5), [1e-3, 1e-2])
    np.testing.assert_array_equal(start, [1e-4, 1e-3])
    constant = sched_no(start)
    constant(0.3)[:] = 5.0  # editing an output must not change the schedule
    np.testing.assert_array_equal(constant(0.3), start)


def test_combine_scheds_local_positions():
    sched = combine_scheds([0.3, 0.7], [sched_lin(0.0, 1.0), sched_lin(1.0, 0.0)])
    assert sched(0.15) == pytest.approx(0.5)
    assert sched(0.3) == pytest.approx(1.0)
    assert sched(0.65) == pytest.approx(0.5)
    assert sched(1.0) == pytest.approx(0.0)


def test_combine_scheds_skips_empty_segment():
    sched = combine_scheds([1.0, 0.0], [sched_lin(0.0, 1.0), sched_no(9.0)])
    assert sched(1.0) == pytest.approx(1.0)


def test_one_cycle_lr_start_peak_end():
    lr_max, div, div_final = 1e-2, 25.0, 1e5
    sched = one_cycle_lr(lr_max, div=div, div_final=div_final, pct_start=0.25)
    assert sched(0.0) == pytest.approx(lr_max / div)
    assert sched(0.25) == pytest.approx(lr_max)
    assert sched(1.0) == pytest.approx(lr_max / div_final)
    # halfway up the warm-up: cosine midpoint between lr_max/div and lr_max
    assert sched(0.125) == pytest.approx((lr_max / div + lr_max) / 2)
    assert sched(0.2) < sched(0.25) > sched(0.3)


def test_one_cycle_lr_per_group_array():
    lrs = np.array([1e-4, 1e-3, 1e-2])
    np.testing.assert_allclose(one_cycle_lr(lrs)(0.25), lrs)
    np.testing.assert_allclose(one_cycle_lr(lrs)(0.0), lrs / 25)


def test_one_cycle_mom_start_trough_end():
    sched = one_cycle_mom((0.95, 0.85, 0.95), pct_start=0.25)
    assert sched(0.0) == pytest.approx(0.95)
    assert sched(0.25) == pytest.approx(0.85)
    assert sched(1.0) == pytest.approx(0.95)
    assert 0.85 < sched(0.6) < 0.95


def test_flat_cos_lr():
    sched = flat_cos_lr(1e-3, pct_start=0.75)
    assert sched(0.0) == sched(0.5) == sched(0.75) == pytest.approx(1e-3)
    assert sched(0.875) == pytest.approx(5e-4)
    assert sched(1.0) == pytest.approx(0.0, abs=1e-12)


def test_sgdr_cycle_ends_and_total():
    assert sgdr_cycle_ends(3, cycle_len=1, cycle_mult=2) == [1, 3, 7]
    assert sgdr_total_epochs(3, cycle_len=1, cycle_mult=2) == 7
    assert sgdr_cycle_ends(3, cycle_len=2, cycle_mult=1) == [2, 4, 6]


def test_sgdr_restarts_with_cycle_mult_2():
    lr_max, n_batches = 0.1, 10
    sched = sgdr_lr(lr_max, n_cycles=3, cycle_len=1, cycle_mult=2)
    total_iters = sgdr_total_epochs(3, 1, 2) * n_batches
    lrs = [sched(i / total_iters) for i in range(total_iters + 1)]
    for start_epoch, length in [(0, 1), (1, 2), (3, 4)]:
        first = start_epoch * n_batches
        last = (start_epoch + length) * n_batches - 1
        assert lrs[first] == pytest.approx(lr_max), f"no restart at epoch {start_epoch}"
        assert lrs[last] < 0.03 * lr_max  # minimum just before the next restart
        # halfway through the cycle the cosine is at lr_max / 2
        assert lrs[first + length * n_batches // 2] == pytest.approx(lr_max / 2)
        assert all(a > b for a, b in zip(lrs[first:last], lrs[first + 1 : last + 1]))
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)


def test_sgdr_plain_and_lr_min():
    sched = sgdr_lr(1.0, n_cycles=2, cycle_len=1, cycle_mult=1, lr_min=0.1)
    assert sched(0.0) == pytest.approx(1.0)
    assert sched(0.25) == pytest.approx(0.55)
    assert sched(0.5) == pytest.approx(1.0)
    assert sched(1.0) == pytest.approx(0.1)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: sched_exp(0.0, 1.0), "positive start and end"),
        (lambda: combine_scheds([0.5, 0.6], [sched_no(1.0), sched_no(1.0)]), "sum to 1"),
        (lambda: combine_scheds([1.0], [sched_no(1.0), sched_no(1.0)]), "1 pcts for 2"),
        (lambda: one_cycle_lr(1e-3, pct_start=1.5), "pct_start"),
        (lambda: sgdr_cycle_ends(0), "n_cycles"),
        (lambda: sgdr_lr(1.0, 2, cycle_mult=0), "cycle_mult"),
        (lambda: sched_lin(np.ones((2, 2)), 1.0), "1-D"),
    ],
)
def test_schedule_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_pos_out_of_range():
    with pytest.raises(ValueError, match="pos=1.5"):
        one_cycle_lr(1e-3)(1.5)
