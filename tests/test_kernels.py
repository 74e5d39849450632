"""Each small kernel of ``liqsignals._kernels`` against a plain Python reference on small arrays.

The references are written from the model's description (the engine docstring), not from the
kernels: loops over lists, the triangular distribution's CDF, runs of dense bins found by
grouping.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from numba import njit

from liqsignals import _kernels as k

LOGB = math.log1p(20e-4)
INV = 1.0 / LOGB


def side(sign: int, book, wipe=None, edge=None, total=None):
    book = np.asarray(book, dtype=np.float64).copy()
    wipe = np.full(book.shape[0], -1, np.int64) if wipe is None else np.asarray(wipe, np.int64)
    acc = k.new_side_acc(sign)
    if edge is not None:
        acc[0]["edge"] = edge
    acc[0]["total"] = book.sum() if total is None else total
    return k.Side(book, wipe.copy(), acc, sign)


def ctx_at(close, k0, total, nb, s=1.0):
    """The readout context of a book of ``nb`` bins from absolute bin ``k0`` (edge prices
    computed here with the formula, not by the kernel)."""
    edge = np.array([math.exp((i + k0) * LOGB) for i in range(nb + 1)])
    return k.Ctx(close, s, k0, total, edge)


def params(**kw):
    base = dict(
        inv_logb=INV, logb=LOGB, window_ns=86_400e9, half_life_ns=0.0, participation=0.1,
        tilt=0.5, decay_with_oi=0.0, band=0.02, range=0.05, dense=1.5, min_share=0.02,
        gap_factor=0.5, mag_power=1.0, max_gap_bins=1.0, min_mass=0.0, summaries=1.0,
        reach_lo=0.5, reach_hi=1.5,
    )  # fmt: skip
    base.update(kw)
    return k.Params(**base)


# numba passes a record taken from an array by value from Python: these wrappers take the
# one-record state array and hand its record (a reference) to the kernel
@njit
def _expire_cohorts(date, state, long, short, coh, sides, window_ns):
    """Step 0 as ``run_candles`` runs it: the expiring cohorts, each side's deposits out
    (``sides``: the long and short bucket books, the leverages' buckets and log factors)."""
    st = state[0]
    bk_long, bk_short, bucket, f_long, f_short = sides
    n_lev = f_long.shape[0]
    h = k.expiring(st, coh.date, date, window_ns)
    while h >= 0:
        if coh.n[h] > 0:
            k.expire_side(long, bk_long, bucket, f_long, coh, h, 0, st.k0, st.scale, INV)
            k.expire_side(short, bk_short, bucket, f_short, coh, h, n_lev, st.k0, st.scale, INV)
        st.head = (h + 1) % coh.date.shape[0]
        st.size -= 1
        h = k.expiring(st, coh.date, date, window_ns)


def side_clusters(sd, kc, k_end, side_total, ctx, prm, work, row, base):
    """One side's cluster readout as ``run_candles`` composes it from the kernels."""
    n = 0
    nbins = (k_end - kc) * sd.sign + 1
    if side_total > 0.0 and nbins > 0:
        thr, min_mass = k.cluster_threshold(side_total, nbins, prm)
        stop = k_end + sd.sign
        gap = int(prm.max_gap_bins)
        n = k.scan_clusters(sd.book, ctx.s, kc, stop, sd.sign, thr, gap, min_mass, ctx.k0, work)
    more = {
        k.O_LC_PRICE: (k.O_LC2_PRICE, k.O_LW_PRICE),
        k.O_SC_PRICE: (k.O_SC2_PRICE, k.O_SW_PRICE),
    }
    return k.cluster_readout(work, n, ctx, prm, row, base, *more[base])[0]


def liquidity_gaps(long, short, kc, kr_lo, kr_hi, ctx, prm, row):
    """The liquidity gaps as ``run_candles`` composes them from the kernels."""
    thr = k.gap_threshold(ctx, kr_hi - kr_lo + 1, prm)
    above = k.first_dense(long, short, kc + 1, kr_hi + 1, 1, thr, ctx.s) if thr >= 0 else -1
    row[k.O_GAP_ABOVE] = k.gap_pct(above, True, ctx, prm)
    below = k.first_dense(long, short, kc - 1, kr_lo - 1, -1, thr, ctx.s) if thr >= 0 else -1
    row[k.O_GAP_BELOW] = k.gap_pct(below, False, ctx, prm)


@njit
def _close_positions(state, long, short, coh, frac):
    if k.close_positions(state[0], long.acc[0], short.acc[0], frac):
        k.renormalise(state[0], long, short, coh)


@njit
def _finish_candle(state, coh, date, oi_t, close, filler):
    k.finish_candle(state[0], coh, date, oi_t, close, filler)


def test_bin_of_is_floor_of_log_over_bin_width():
    for p in (0.013, 1.0, 99.7, 60_123.4, 3.3e5):
        assert k.bin_of(p, INV) == math.floor(math.log(p) * INV)
        lo, hi = math.exp(k.bin_of(p, INV) * LOGB), math.exp((k.bin_of(p, INV) + 1) * LOGB)
        assert lo <= p * (1 + 1e-12) and p < hi * (1 + 1e-12)


def ref_consume(sign, book, wipe, edge, reach, seq, k0, s):
    """Bins from the edge to the reached bin (inclusive) are liquidated."""
    book, wipe = list(book), list(wipe)
    if edge == sign * k.NONE or (sign < 0 and reach > edge) or (sign > 0 and reach < edge):
        return 0.0, book, wipe, edge
    lo, hi = sorted((reach, edge))
    got = 0.0
    for kk in range(lo, hi + 1):
        i = kk - k0
        if 0 <= i < len(book):
            got += book[i]
            book[i] = 0.0
            wipe[i] = seq
    new_edge = reach - 1 if sign < 0 else reach + 1
    return got * s, book, wipe, new_edge


@pytest.mark.parametrize(
    "sign,edge,reach",
    [
        (k.LONG, 107, 103),  # price fell to bin 103: longs at 103..107 go
        (k.LONG, 107, 108),  # price above the highest long: nothing
        (k.LONG, 107, 90),  # below the book: everything down to its start
        (k.SHORT, 102, 104),  # price rose to 104: shorts at 102..104 go
        (k.SHORT, 102, 101),
        (k.SHORT, 102, 130),
        (k.LONG, -k.NONE, 103),  # empty side
        (k.SHORT, k.NONE, 103),
    ],
)
def test_consume_side_matches_reference(sign, edge, reach):
    book = np.arange(1.0, 11.0)  # absolute bins 100..109
    sd = side(sign, book, edge=edge)
    want_liq, want_book, want_wipe, want_edge = ref_consume(
        sign, book, sd.wipe, edge, reach, 7, 100, 0.5
    )
    got = k.consume_side(sd, reach, 7, 100, 0.5)
    assert got == pytest.approx(want_liq, rel=1e-15)
    assert sd.book.tolist() == want_book and sd.wipe.tolist() == want_wipe
    assert sd.acc[0]["edge"] == want_edge
    assert sd.acc[0]["total"] == pytest.approx(book.sum() - want_liq / 0.5)
    assert sd.acc[0]["liquidated"] == pytest.approx(want_liq)


def cohort_ring(cap, n_e, n_mass):
    """An empty cohort ring of ``cap`` slots (``n_e`` entry prices, ``n_mass`` masses)."""
    return k.Cohorts(np.zeros(cap, np.int64), np.zeros(cap, np.int64), np.zeros((cap, n_e)),
                     np.zeros((cap, n_mass)), np.zeros(cap, np.int64))  # fmt: skip


def in_bin(b):
    """A log price in the middle of bin ``b``."""
    return (b + 0.5) * LOGB


def test_expire_side_skips_bins_wiped_after_the_deposit():
    sd = side(k.LONG, [5.0, 5.0, 5.0, 5.0], wipe=[-1, 9, 3, -1], total=20.0)  # k0 = 10
    bk = np.full((3, 4), 5.0)
    # two entries (bins 10, 11) and two leverages; the second's log factor is two bins: its
    # deposits land in bins 12, 13
    flog = np.array([0.0, 2.0 * LOGB])
    bucket = np.array([0, 2], np.int64)
    # cohort 1 of a ring of two, made at candle 5; masses 1 (leverage 0) and 3 (leverage 1),
    # then the other side's (not touched here)
    coh = cohort_ring(2, 2, 4)
    coh.seq[1] = 5
    coh.entry[1] = [in_bin(10), in_bin(11)]
    coh.mass[1] = [1.0, 3.0, 9.0, 9.0]
    coh.n[1] = 8
    k.expire_side(sd, bk, bucket, flog, coh, 1, 0, 10, 2.0, INV)
    # reference: deposit (leverage j, bin) leaves unless its bin was wiped after candle 5
    want = [5.0, 5.0, 5.0, 5.0]
    want_bk = np.full((3, 4), 5.0)
    gone = 0.0
    for j, (m, b) in enumerate(((1.0, 0), (3.0, 2))):
        for kk in (10 + 2 * j, 11 + 2 * j):
            i = kk - 10
            if [-1, 9, 3, -1][i] <= 5:
                want[i] = max(want[i] - m, 0.0)
                want_bk[b, i] = max(want_bk[b, i] - m, 0.0)
                gone += m
    assert sd.book.tolist() == want == [4.0, 5.0, 2.0, 2.0]
    assert bk.tolist() == want_bk.tolist()
    assert bk[0].tolist() == [4.0, 5.0, 5.0, 5.0] and bk[2].tolist() == [5.0, 5.0, 2.0, 2.0]
    assert sd.acc[0]["total"] == 20.0 - gone == 13.0
    assert sd.acc[0]["expired"] == gone * 2.0


def test_expire_cohorts_removes_exactly_the_old_cohorts_from_the_ring():
    # ring of capacity 5, head at 3; one leverage (factor 1), two entries per candle
    coh = cohort_ring(5, 2, 2)
    coh.date[:] = [0, 0, 300, 100, 200]
    coh.seq[:] = [0, 0, 3, 1, 2]
    coh.entry[2:] = [[in_bin(1), in_bin(2)], [in_bin(0), in_bin(1)], [in_bin(0), in_bin(3)]]
    coh.mass[2:] = [[1.0, 1.0], [1.5, 3.5], [0.5, 0.5]]  # long, short
    coh.n[2:] = 4
    long, short = side(k.LONG, [10.0] * 4), side(k.SHORT, [10.0] * 4)
    sides = (np.full((3, 4), 10.0), np.full((3, 4), 10.0), np.array([1], np.int64),
             np.zeros(1), np.zeros(1))  # fmt: skip
    state = k.new_state()
    state[0]["head"], state[0]["size"] = 3, 3
    _expire_cohorts(np.int64(350), state, long, short, coh, sides, 200.0)
    # reference: only the cohort dated 100 is a window (200) old at 350; its long mass leaves
    # the long book at both entries' bins (0 and 1), its short mass the short book
    assert long.book.tolist() == [8.5, 8.5, 10.0, 10.0]
    assert short.book.tolist() == [6.5, 6.5, 10.0, 10.0]
    assert sides[0][1].tolist() == [8.5, 8.5, 10.0, 10.0] and sides[0][0].tolist() == [10.0] * 4
    assert sides[1][1].tolist() == [6.5, 6.5, 10.0, 10.0]
    assert (state[0]["head"], state[0]["size"]) == (4, 2)
    assert long.acc[0]["expired"] == 3.0 and short.acc[0]["expired"] == 7.0


def test_path_range_includes_the_previous_close():
    assert k.path_range(10.0, 12.0, 9.0, True) == (9.0, 12.0)
    assert k.path_range(10.0, 12.0, 13.0, True) == (10.0, 13.0)
    assert k.path_range(10.0, 12.0, 11.0, True) == (10.0, 12.0)
    assert k.path_range(10.0, 12.0, 1.0, False) == (10.0, 12.0)


def test_close_fraction_cases_by_hand():
    hour = 3600e9
    p = params(half_life_ns=hour)
    assert k.close_fraction(80.0, 100.0, hour, params()) == (True, pytest.approx(0.2))
    assert k.close_fraction(120.0, 100.0, hour, params()) == (True, 0.0)
    # OI known, decay on top: survivors 0.8 * 0.5
    both = k.close_fraction(80.0, 100.0, hour, params(half_life_ns=hour, decay_with_oi=1.0))
    assert both == (True, pytest.approx(1 - 0.8 * 0.5))
    # OI unknown: time decay alone, two half lives
    assert k.close_fraction(math.nan, 100.0, 2 * hour, p) == (False, pytest.approx(0.75))
    assert k.close_fraction(80.0, math.nan, 2 * hour, p) == (False, pytest.approx(0.75))
    assert k.close_fraction(math.nan, math.nan, 0.0, p) == (False, 0.0)


def test_close_positions_scales_and_renormalises():
    long, short = side(k.LONG, [2.0, 4.0]), side(k.SHORT, [1.0, 1.0])
    coh = cohort_ring(1, 2, 2)
    coh.mass[0] = [3.0, 5.0]
    state = k.new_state()
    _close_positions(state, long, short, coh, 0.25)
    assert state[0]["scale"] == 0.75
    assert long.acc[0]["closed"] == 6.0 * 0.25 and short.acc[0]["closed"] == 2.0 * 0.25
    assert long.book.tolist() == [2.0, 4.0]  # stored units unchanged
    # a fraction of 1 is capped; the factor underflows the threshold: folded into the masses
    state[0]["scale"] = 1e-140
    _close_positions(state, long, short, coh, 1.0)
    s = 1e-140 * 1e-12
    assert state[0]["scale"] == 1.0
    np.testing.assert_allclose(long.book, [2.0 * s, 4.0 * s], rtol=1e-3)
    np.testing.assert_allclose(coh.mass[0], [3.0 * s, 5.0 * s], rtol=1e-3)
    assert long.acc[0]["total"] == pytest.approx(6.0 * s, rel=1e-3)


def test_long_share_order_of_signals():
    nan = math.nan
    assert k.long_share(1.0, 2.0, 1.0, 2.0, 10.0, 7.0, 3.0, 0.5) == 0.7  # taker buy share
    assert k.long_share(1.0, 2.0, 1.0, 2.0, 10.0, nan, 3.0, 0.5) == 0.75  # r / (1 + r)
    # body tilt: close at the high, tilt 0.5 -> 0.5 + 0.25
    assert k.long_share(1.0, 2.0, 1.0, 2.0, 10.0, nan, nan, 0.5) == 0.75
    assert k.long_share(1.0, 1.0, 1.0, 1.0, 10.0, nan, nan, 0.5) == 0.5  # flat candle
    assert k.long_share(2.0, 2.0, 1.0, 1.0, 10.0, nan, nan, 3.0) == 0.0  # clipped


def triangular_cdf(x, lo, hi, mode):
    if x <= mode:
        return (x - lo) ** 2 / ((hi - lo) * (mode - lo))
    return 1 - (hi - x) ** 2 / ((hi - lo) * (hi - mode))


@pytest.mark.parametrize("n", [1, 3, 7])
def test_entry_logs_are_equal_probability_strata(n):
    lo, hi, c = 95.0, 110.0, 108.0
    mode = (hi + lo + c) / 3
    entries = np.empty(n)
    k.entry_logs(entries, hi, lo, c)
    for e, x in enumerate(np.exp(entries)):
        assert triangular_cdf(x, lo, hi, mode) == pytest.approx((e + 0.5) / n, abs=1e-12)
    k.entry_logs(entries, 5.0, 5.0, 5.0)
    np.testing.assert_allclose(entries, math.log(5.0))


def test_deposit_side_places_each_leverage_and_entry_at_its_bin():
    entries = np.log(np.array([100.0, 101.0]))
    flog = np.log(np.array([0.9, 0.95]))
    w = np.array([0.25, 0.75])
    bucket = np.array([2, 0], np.int64)
    k0 = 2200
    sd = side(k.LONG, np.zeros(200))
    bk = np.zeros((3, 200))
    # cohort slot 1 of a ring of two; the long masses first, the short ones after them
    coh = cohort_ring(2, 2, 4)
    weights = np.stack([w * 0, w])  # the weights of row 1
    at = k.Deposit(k0, 0.5, INV, 1, 1, 0)
    k.deposit_side(sd, bk, bucket, flog, weights, entries, 8.0, coh, at)
    want_book = np.zeros(200)
    want_bk = np.zeros((3, 200))
    bins = []
    for j, f in enumerate((0.9, 0.95)):
        m = 8.0 * w[j] / 2 * 0.5
        for p in (100.0, 101.0):
            kk = math.floor(math.log(p * f) / LOGB)
            want_book[kk - k0] += m
            want_bk[bucket[j], kk - k0] += m
            bins.append(kk)
    assert coh.mass[1].tolist() == [8.0 * 0.25 / 4, 8.0 * 0.75 / 4, 0.0, 0.0]
    np.testing.assert_allclose(sd.book, want_book, rtol=1e-15)
    np.testing.assert_allclose(bk, want_bk, rtol=1e-15)
    assert bk[1].sum() == 0.0 and bk[0].sum() == pytest.approx(3.0)
    assert sd.acc[0]["edge"] == max(bins)  # longs: the highest bin
    assert sd.acc[0]["total"] == 4.0 and sd.acc[0]["opened"] == 8.0
    assert coh.mass[0].tolist() == [0.0] * 4
    short = side(k.SHORT, np.zeros(300))
    bk_short = np.zeros((3, 300))
    at = k.Deposit(k0, 0.5, INV, 1, 1, 2)
    k.deposit_side(short, bk_short, bucket, -flog, weights, entries, 8.0, coh, at)
    assert coh.mass[1].tolist() == [0.5, 1.5, 0.5, 1.5]  # the long ones stay
    lowest = min(math.floor(math.log(p / f) / LOGB) for p in (100.0, 101.0) for f in (0.9, 0.95))
    assert short.acc[0]["edge"] == lowest  # shorts: the lowest


def test_record_entries_keeps_the_candles_log_prices():
    coh = cohort_ring(3, 2, 2)
    k.record_entries(coh, 2, np.array([1.5, 2.5]))
    assert coh.entry.tolist() == [[0.0, 0.0], [0.0, 0.0], [1.5, 2.5]]


def test_opened_notional_by_hand():
    typical = (12.0 + 9.0 + 10.5) / 3
    assert k.opened_notional(12.0, 9.0, 10.5, 1000.0, 0, 0, False, 0.1) == 0.1 * 1000 * typical
    assert k.opened_notional(12.0, 9.0, 10.5, 1000.0, 50.0, 40.0, True, 0.1) == 10 * typical
    assert k.opened_notional(12.0, 9.0, 10.5, 1000.0, 30.0, 40.0, True, 0.1) == 0.0


def test_finish_candle_records_the_cohort_and_the_candle():
    coh = cohort_ring(3, 2, 2)
    state = k.new_state()
    state[0]["head"], state[0]["size"], state[0]["seq"] = 2, 2, 9
    _finish_candle(state, coh, np.int64(500), 42.0, 101.0, False)
    st = state[0]
    assert (coh.date[1], coh.seq[1]) == (500, 9)  # slot (2 + 2) % 3
    assert (st["size"], st["seq"], st["prev_date"], st["has_prev"]) == (3, 10, 500, 1)
    assert (st["prev_oi"], st["prev_close"]) == (42.0, 101.0)
    state[0]["size"] = 0
    _finish_candle(state, coh, np.int64(600), math.nan, 99.0, True)
    assert state[0]["prev_oi"] == 42.0  # a filler keeps the last known open interest
    _finish_candle(state, coh, np.int64(700), math.nan, 99.0, False)
    assert math.isnan(state[0]["prev_oi"])  # a traded candle without it: unknown


@pytest.mark.parametrize(
    "lo,hi,band,rng",
    [((0, 9), (0, 9), (3, 9), (0, 9)), ((2, 9), (2, 9), (2, 9), (5, 9)), ((0, 6), (0, 6), (0, 3), (0, 6)),
     ((4, 3), (4, 3), (4, 3), (4, 3))],
)  # fmt: skip
def test_band_sums_are_the_five_range_sums(lo, hi, band, rng):
    book = np.arange(10.0) ** 1.5
    bk = np.stack([np.arange(10.0), np.arange(10.0) * 0.1, np.arange(10.0) ** 2])
    got = k.band_sums(book, bk, lo[0], hi[1], band[0], band[1], rng[0], rng[1])
    want = (
        sum(book[band[0] : band[1] + 1]), sum(book[rng[0] : rng[1] + 1]),
        *(sum(bk[b, band[0] : band[1] + 1]) for b in range(3)),
    )  # fmt: skip
    assert got == want  # each sum in index order: exactly the plain sum


def test_band_sums_match_one_loop_for_every_placement_of_the_intervals():
    """Band and range anywhere relative to the scanned stretch (nested, overlapping, disjoint,
    partly or wholly outside it, empty): each sum is the index-order sum over the bins of the
    stretch inside its interval, bit for bit (masses of very different sizes, so that another
    order of additions would round differently)."""
    rng_ = np.random.default_rng(7)
    n = 12
    book = rng_.random(n) * 10.0 ** rng_.integers(-8, 9, n)
    bk = np.stack([rng_.random(n) * 10.0 ** rng_.integers(-8, 9, n) for _ in range(3)])
    ends = range(-2, n + 2)
    cases = 0
    for lo in range(n):
        for hi in range(lo - 1, n):
            for b0, b1, r0, r1 in (rng_.choice(ends, 4) for _ in range(40)):
                want = [0.0] * 5
                for i in range(lo, hi + 1):
                    if r0 <= i <= r1:
                        want[1] += book[i]
                    if b0 <= i <= b1:
                        want[0] += book[i]
                        for b in range(3):
                            want[2 + b] += bk[b, i]
                got = k.band_sums(book, bk, lo, hi, b0, b1, r0, r1)
                assert got == tuple(want), (lo, hi, b0, b1, r0, r1)
                cases += 1
    assert cases == 40 * sum(n - lo + 1 for lo in range(n))


def test_put_bands_floors_the_band_and_its_buckets():
    row = np.full(k.N_OUT, -1.0)
    k.put_bands(row, k.O_LONG_BAND, k.O_LB_LOW, (10.0, 99.0, 6.0, 0.2, 3.8), 2.0, 1.0)
    assert row[k.O_LONG_BAND] == 20.0
    assert row[k.O_LB_LOW : k.O_LB_LOW + 3].tolist() == [12.0, 0.0, 7.6]  # 0.4 < the floor
    k.put_bands(row, k.O_SHORT_BAND, k.O_SB_LOW, (0.4, 99.0, 0.3, 0.1, 0.0), 2.0, 1.0)
    assert row[k.O_SHORT_BAND] == 0.0  # floored band: no bucket keeps mass either
    assert row[k.O_SB_LOW : k.O_SB_LOW + 3].tolist() == [0.0, 0.0, 0.0]


def ref_clusters(masses, positions, thr, max_gap, min_mass, k0):
    """Runs of dense bins that bridge at most ``max_gap`` non-dense bins, in scan order."""
    out, members, pending = [], None, []

    def close_run():
        total = sum(m for _, m in members)
        if total > 0 and total >= min_mass:
            pos = [p for p, _ in members]
            wk = sum(m * (p + k0 + 0.5) for p, m in members) / total
            out.append((min(pos), max(pos), total, wk))

    for p, m in zip(positions, masses, strict=True):
        if m > 0 and m >= thr:
            if members is None:
                members = []
            members += pending + [(p, m)]
            pending = []
        elif members is not None:
            pending.append((p, m))
            if len(pending) > max_gap:
                close_run()
                members, pending = None, []
    if members is not None:
        close_run()
    return out


@pytest.mark.parametrize("max_gap", [0, 1, 2])
@pytest.mark.parametrize("step", [1, -1])
def test_scan_clusters_matches_reference(max_gap, step):
    book = np.array([0, 5, 6, 0, 1, 7, 0, 0, 0, 4, 0.5, 9, 0, 3, 8], dtype=np.float64)
    start, stop = (0, len(book)) if step == 1 else (len(book) - 1, -1)
    positions = list(range(start, stop, step))
    work = k.new_work(20, 1)
    n = k.scan_clusters(book, 2.0, start, stop, step, 8.0, max_gap, 15.0, 100, work)
    want = ref_clusters([book[p] * 2.0 for p in positions], positions, 8.0, max_gap, 15.0, 100)
    assert n == len(want) and n > 0
    for c, (lo, hi, total, wk) in enumerate(want):
        assert (work.lo[c], work.hi[c]) == (lo, hi)
        assert work.sum[c] == pytest.approx(total, rel=1e-14)
        assert work.wk[c] == pytest.approx(wk, rel=1e-14)


def test_pick_magnet_prefers_higher_score_and_longs_on_ties():
    row = np.zeros(k.N_OUT)
    k.pick_magnet(row, (0.4, 95.0), (0.6, 105.0))
    assert row[[k.O_MAG_PRICE, k.O_MAG_SIDE, k.O_MAG_SCORE]].tolist() == [105.0, 1.0, 0.6]
    k.pick_magnet(row, (0.6, 95.0), (0.6, 105.0))
    assert row[[k.O_MAG_PRICE, k.O_MAG_SIDE, k.O_MAG_SCORE]].tolist() == [95.0, -1.0, 0.6]
    k.pick_magnet(row, (-1.0, math.nan), (-1.0, math.nan))
    assert np.isnan(row[[k.O_MAG_PRICE, k.O_MAG_SIDE, k.O_MAG_SCORE]]).all()


def test_first_dense_and_liquidity_gaps():
    long = side(k.LONG, [0, 4, 0, 0, 0, 0, 0, 0, 0, 0])
    short = side(k.SHORT, [0, 0, 0, 0, 0, 0, 0.1, 0, 3, 0])
    assert k.first_dense(long, short, 5, 10, 1, 1.0, 1.0) == 8  # 0.1 is below the threshold
    assert k.first_dense(long, short, 4, -1, -1, 1.0, 1.0) == 1
    assert k.first_dense(long, short, 4, 1, -1, 1.0, 1.0) == -1
    row = np.zeros(k.N_OUT)
    close = math.exp((1000 + 4.5) * LOGB)
    ctx = ctx_at(close, 1000, 7.1, 10)
    liquidity_gaps(long, short, 4, 0, 9, ctx, params(gap_factor=1.0), row)
    # threshold 7.1 / 10 bins: above, bin 8's lower edge; below, bin 1's upper edge
    assert row[k.O_GAP_ABOVE] == pytest.approx((math.exp(1008 * LOGB) / close - 1) * 100)
    assert row[k.O_GAP_BELOW] == pytest.approx((1 - math.exp(1002 * LOGB) / close) * 100)


def test_copy_bins_and_snapshots():
    book = np.array([1.0, 2.0, 3.0])
    dest = np.zeros(5, np.float32)
    k.copy_bins(book, dest, -1, 2.0)
    assert dest.tolist() == [0.0, 2.0, 4.0, 6.0, 0.0]
    long, short = side(k.LONG, book), side(k.SHORT, book[::-1])
    snap = k.Snap(np.array([0, 2, 2], np.int64), 11, np.zeros((3, 2), np.float32),
                  np.zeros((3, 2), np.float32))  # fmt: skip
    state = k.new_state()
    state[0]["k0"] = 10
    assert k.copy_snapshots(snap, 0, 1, state[0], long, short) == 0  # no row for candle 1
    assert k.copy_snapshots(snap, 1, 2, state[0], long, short) == 3
    assert snap.long[1].tolist() == snap.long[2].tolist() == [2.0, 3.0]
    assert snap.short[1].tolist() == [2.0, 1.0] and snap.long[0].tolist() == [0.0, 0.0]


def test_side_clusters_nearest_cluster_and_magnet():
    book = np.zeros(40)
    book[[30, 31]] = 5.0  # near cluster above the close (bin 20)
    book[[36, 37, 38]] = 8.0  # heavier, farther
    short = side(k.SHORT, book)
    row = np.full(k.N_OUT, -7.0)
    total = book[20:40].sum()
    ctx = ctx_at(math.exp((1000 + 20.5) * LOGB), 1000, total, 40)
    work = k.new_work(60, 1)
    p = params(dense=1.0, min_share=0.1, max_gap_bins=0.0)
    score, price = side_clusters(short, 20, 39, total, ctx, p, work, row, k.O_SC_PRICE)
    near = math.exp((1000 + 31.0) * LOGB)  # mass-weighted centre of bins 30, 31
    assert row[k.O_SC_PRICE] == pytest.approx(near)
    assert row[k.O_SC_LO] == pytest.approx(math.exp(1030 * LOGB))
    assert row[k.O_SC_HI] == pytest.approx(math.exp(1032 * LOGB))
    assert row[k.O_SC_SIZE] == 10.0
    far = math.exp((1000 + 37.5) * LOGB)
    scores = {
        c: (m / total) / (abs(c / ctx.close - 1) * 100) for c, m in ((near, 10.0), (far, 24.0))
    }
    best = max(scores, key=lambda c: scores[c])
    assert price == pytest.approx(best) and score == pytest.approx(scores[best])
    empty = side(k.SHORT, np.zeros(40))
    score, price = side_clusters(empty, 20, 39, 0.0, ctx, p, work, row, k.O_SC_PRICE)
    assert score == -1.0 and math.isnan(price)
    assert np.isnan(row[k.O_SC_PRICE : k.O_SC_SIZE + 1]).all()


def test_floored_drops_mass_below_the_absolute_floor():
    assert k.floored(2.0, 1.0) == 2.0 and k.floored(1.0, 1.0) == 1.0
    assert k.floored(1e-12, 1.0) == 0.0 and k.floored(1e-12, 0.0) == 1e-12


def test_side_clusters_ignore_dust_below_the_absolute_floor():
    book = np.zeros(40)
    book[[30, 31]] = 5e-12  # rounding dust: a "cluster" by share alone
    dust = side(k.SHORT, book)
    ctx = ctx_at(math.exp((1000 + 20.5) * LOGB), 1000, 1e-11, 40)
    work = k.new_work(60, 1)
    row = np.zeros(k.N_OUT)
    no_floor = params(dense=1.0, min_share=0.1, max_gap_bins=0.0)
    assert side_clusters(dust, 20, 39, 1e-11, ctx, no_floor, work, row, k.O_SC_PRICE)[0] > 0
    floor = params(dense=1.0, min_share=0.1, max_gap_bins=0.0, min_mass=1.0)
    score, _ = side_clusters(dust, 20, 39, 1e-11, ctx, floor, work, row, k.O_SC_PRICE)
    assert score == -1.0 and np.isnan(row[k.O_SC_PRICE])
    empty = side(k.LONG, np.zeros(40))
    liquidity_gaps(empty, dust, 20, 0, 39, ctx, params(gap_factor=1.0, min_mass=1.0), row)
    assert np.isnan(row[k.O_GAP_ABOVE]) and np.isnan(row[k.O_GAP_BELOW])


def test_fill_edges_are_the_bin_edge_prices_and_refill_only_for_a_new_start():
    work = k.new_work(6, 1)
    assert work.edge.shape == (7,) and work.edge_k0[0] == k.EDGES_UNSET
    k.fill_edges(work, 500, LOGB)
    assert work.edge.tolist() == [math.exp((i + 500) * LOGB) for i in range(7)]
    work.edge[0] = -1.0
    k.fill_edges(work, 500, LOGB)  # same start: kept
    assert work.edge[0] == -1.0
    k.fill_edges(work, 499, LOGB)
    assert work.edge[0] == math.exp(499 * LOGB) and work.edge_k0[0] == 499


def test_make_table_refuses_arrays_it_cannot_view():
    """The kernel views its arrays through raw addresses, so a table is only built from arrays
    of the right dtype, layout and size: anything else is a ValueError, never a table that
    would read past an array."""
    from synthetic import random_candles

    from liqsignals import LiquidationEngine, LiquidationModel

    eng = LiquidationEngine(LiquidationModel(window="1d", bin_bp=20.0, entry_samples=3))
    eng.update_many(random_candles(1, 30))
    tab = eng._state_table()  # the engine's own arrays build a table
    assert tab[k.T_N] == 0 and tab[36] == eng._long.book.shape[0]
    state, long, short, coh, work, mix = (
        eng._state, eng._long, eng._short, eng._coh, eng._work, eng._kmix,
    )  # fmt: skip
    prm = eng._prm_values
    n = 4
    cd = k.Candles(np.arange(n, dtype=np.int64), *(np.ones(n) for _ in range(10)))
    snap = k.Snap(
        np.zeros(0, np.int64), 0, np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
    )
    ok = k.make_table(cd, state, long, short, coh, prm, mix, None, work, snap)
    assert ok[k.T_N] == n and ok[k.T_WROWS] == 1
    bad_cases = {
        "length": cd._replace(high=np.ones(n + 1)),
        "dtype": cd._replace(dates=np.arange(n, dtype=np.float64)),
        "layout": cd._replace(close=np.ones(2 * n)[::2]),
    }
    for _why, bad in bad_cases.items():
        with pytest.raises(ValueError, match="make_table"):
            k.make_table(bad, state, long, short, coh, prm, mix, None, work, snap)
    short_book = long._replace(book=np.zeros(long.book.shape[0] - 1))
    with pytest.raises(ValueError, match="differ in size"):
        k.make_table(cd, state, short_book, short, coh, prm, mix, None, work, snap)
    with pytest.raises(ValueError, match="weights"):
        k.make_table(
            cd,
            state,
            long,
            short,
            coh,
            prm,
            mix._replace(weights=np.ones((2, mix.weights.shape[1]))),
            None,
            work,
            snap,
        )
    with pytest.raises(ValueError, match="one candle"):
        k.make_table(cd, state, long, short, coh, prm, mix, np.zeros((1, k.N_OUT)), work, snap)
    lopsided = snap._replace(rows=np.zeros(1, np.int64), long=np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match="snapshot"):
        k.make_table(cd, state, long, short, coh, prm, mix, None, work, lopsided)
