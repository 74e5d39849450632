"""numba kernels of the cohort engine: named state in, named state out.

One driver, :func:`run_candles`, advances the engine state over a block of candles; the batch
API calls it once over the whole frame and the incremental engine calls it with one candle, so the
two share every floating-point operation and agree bit for bit. The driver is a loop over small
helpers; each side of the book (longs below price, shorts above) is one :class:`Side` and every
per-side step is written once, with ``side.sign`` (-1 long, +1 short) saying which way is
"toward the price".

State
-----
:data:`STATE_DTYPE` (one record, ``state[0]``): ``k0`` absolute bin of array position 0, ``seq``
    candles processed, ``head`` / ``size`` the cohort ring's oldest live slot and live count,
    ``prev_date`` / ``has_prev`` the previous candle, ``scale`` the global survival factor ``S``,
    ``prev_close``, ``prev_oi`` (open interest in coins; NaN: unknown).
:class:`Side` : ``book`` mass per price bin in *stored units* (the real mass, quote notional, is
    ``stored * S``: closing a share ``f`` of every position is ``S *= 1 - f``, O(1) instead of
    O(bins)); ``wipe`` the sequence number of the candle that last liquidated each bin; ``acc``
    one :data:`SIDE_DTYPE` record: ``edge`` (longs: highest bin that may hold mass, shorts:
    lowest; :data:`NONE` times ``sign`` when empty), ``total`` (stored units) and the cumulative
    real masses ``opened, liquidated, closed, expired`` (for conservation checks).
:class:`Cohorts` : a ring of each candle's deposits, removed when they expire; a deposit is
    still alive iff its bin was not wiped after it was made. A candle deposits, per side and
    leverage ``j``, one equal stored mass at each of its ``n_entries`` entry prices ``e``, in bin
    ``floor((entry[e] + f_log[j]) / log(B))``; the ring keeps the candle's log entry prices
    (``entry``, one row per candle) and its stored mass per side and leverage (``mass``: the
    long leverages, then the short ones), and the bins are computed again, by the same
    arithmetic, when the deposits expire (a sixth of the memory of keeping every deposit's bin
    and mass). ``n`` is the candle's deposit count (0, or ``2 * n_lev * n_entries``).
:class:`Mix` ``bk_long`` / ``bk_short`` : the book split by leverage bucket (low, medium, high),
    stored units; every deposit, expiry, wipe and renormalisation of a side's book is repeated
    on its bucket row, so the rows sum to the book (up to rounding) and the band totals per
    bucket (``O_LB_LOW ..``) sum to the band.

Bins are absolute: bin ``k`` covers prices ``[B**k, B**(k+1))``, ``B = 1 + bin_bp/1e4``; array
position ``i`` holds bin ``k0 + i``.
"""

from __future__ import annotations

import math
from collections import namedtuple
from typing import Any

import numpy as np
from numba import carray, farray, from_dtype, njit, types
from numba.extending import intrinsic

STATE_DTYPE = np.dtype(
    [
        ("k0", np.int64),
        ("seq", np.int64),
        ("head", np.int64),
        ("size", np.int64),
        ("prev_date", np.int64),
        ("has_prev", np.int64),
        ("scale", np.float64),
        ("prev_close", np.float64),
        ("prev_oi", np.float64),
    ]
)
SIDE_DTYPE = np.dtype(
    [
        ("edge", np.int64),
        ("total", np.float64),
        ("opened", np.float64),
        ("liquidated", np.float64),
        ("closed", np.float64),
        ("expired", np.float64),
    ]
)

LONG = -1  # Side.sign: the direction from the price toward the side's mass
SHORT = 1
NONE = 2**62  # Side.acc edge ``sign * NONE``: the side holds no mass

Side = namedtuple("Side", ["book", "wipe", "acc", "sign"])
Cohorts = namedtuple("Cohorts", ["date", "seq", "entry", "mass", "n"])
Candles = namedtuple(
    "Candles",
    [
        "dates", "open", "high", "low", "close", "volume", "oi", "taker_buy", "ls_ratio",
        "mark_high",  # mark-price high over the candle's span (NaN: unknown)
        "mark_low",  # mark-price low (NaN: unknown)
    ],
)  # fmt: skip
Params = namedtuple(
    "Params",
    [
        "inv_logb",
        "logb",
        "window_ns",
        "half_life_ns",  # <= 0: no decay
        "participation",
        "tilt",
        "decay_with_oi",  # 1.0 / 0.0
        "band",  # fraction
        "range",  # fraction
        "dense",
        "min_share",
        "gap_factor",
        "mag_power",
        "max_gap_bins",
        "min_mass",  # absolute significance floor (quote)
        "summaries",  # 1.0: the book readout after every candle, 0.0: the core outputs only
        "reach_lo",  # lowest price a candle's steps touch, as a factor of its low
        "reach_hi",  # highest, as a factor of its high
        "mark",  # 1.0: consume by the mark-price range where a candle has one, 0.0: last price
    ],
    defaults=(0.0,),
)
# leverage mix: log liquidation factors per leverage, weights (one row, or one per candle);
# ``bucket``: each leverage's bucket (:data:`N_BUCKETS`: low, medium, high) and the per-bucket
# books ``bk_long`` / ``bk_short`` (``(N_BUCKETS, n_bins)``, stored units like ``Side.book``,
# same bins: they live with the mix because the mix's order indexes them)
Mix = namedtuple(
    "Mix", ["f_long_log", "f_short_log", "weights", "n_entries", "bucket", "bk_long", "bk_short"]
)
N_BUCKETS = 3
# candles whose book (absolute bins k_lo .. k_lo + width - 1) is copied out, real mass float32
Snap = namedtuple("Snap", ["rows", "k_lo", "long", "short"])
# scratch of a run: per cluster, array positions of its lowest/highest bin, mass, mean bin;
# the entry prices of one candle; the dense bins of one scan; the bin edge prices of the book
# and the book start they were computed for (see new_work)
Work = namedtuple("Work", ["lo", "hi", "sum", "wk", "entries", "pos", "edge", "edge_k0"])
# where one side's deposits of a candle go: book offset k0, 1/S, 1/log(B), cohort slot, row
# of the leverage weights, the side's first column of the cohort's masses
Deposit = namedtuple("Deposit", ["k0", "inv_s", "inv_logb", "slot", "wrow", "d0"])
# what the cluster readout of one candle needs besides the book: ``edge[i]`` is the lower edge
# price of array position ``i``, ``exp((i + k0) * log(B))`` (:func:`fill_edges`)
Ctx = namedtuple("Ctx", ["close", "s", "k0", "total", "edge"])
EDGES_UNSET = -(2**62)  # Work.edge_k0 before the first fill

# output columns of the kernel (order matters: engine.py names them)
O_LONG_LIQ = 0
O_SHORT_LIQ = 1
O_LONG_TOTAL = 2
O_SHORT_TOTAL = 3
O_LONG_OPENED = 4
O_SHORT_OPENED = 5
O_LONG_BAND = 6
O_SHORT_BAND = 7
O_LC_PRICE = 8
O_LC_LO = 9
O_LC_HI = 10
O_LC_SIZE = 11
O_SC_PRICE = 12
O_SC_LO = 13
O_SC_HI = 14
O_SC_SIZE = 15
O_MAG_PRICE = 16
O_MAG_SIDE = 17
O_MAG_SCORE = 18
O_GAP_ABOVE = 19
O_GAP_BELOW = 20
# the second and third nearest significant clusters per side (price, low, high, size each)
O_LC2_PRICE = 21  # .. 24; the third: O_LC2_PRICE + 4 .. 28
O_SC2_PRICE = 29  # .. 32; the third: 33 .. 36
# the wall: the largest significant cluster with its centre in the band (price, low, high, size)
O_LW_PRICE = 37
O_SW_PRICE = 41
# the magnet over all significant clusters: score-weighted mean centre, pull in [-1, 1]
O_MAGW_PRICE = 45
O_MAGW_PULL = 46
# gap widths above and below (% of the close)
O_GAP_ABOVE_W = 47
O_GAP_BELOW_W = 48
# band totals per leverage bucket (low, medium, high): longs, then shorts
O_LB_LOW = 49  # .. 51
O_SB_LOW = 52  # .. 54
N_OUT = 55

RENORM_BELOW = 1e-150


def new_state() -> np.ndarray:
    """A fresh :data:`STATE_DTYPE` record (empty book, survival factor 1, OI unknown)."""
    state = np.zeros(1, dtype=STATE_DTYPE)
    state[0]["scale"] = 1.0
    state[0]["prev_oi"] = np.nan
    return state


def new_work(n_bins: int, n_entries: int) -> Work:
    """Scratch for :func:`run_candles` on a book of ``n_bins`` bins (clusters alternate with
    gaps, so at most ``n_bins // 2 + 1`` per side) and ``n_entries`` entry prices; the edge
    prices are filled by the first run (:func:`fill_edges`)."""
    n = n_bins // 2 + 2
    return Work(
        np.empty(n, dtype=np.int64),
        np.empty(n, dtype=np.int64),
        np.empty(n, dtype=np.float64),
        np.empty(n, dtype=np.float64),
        np.empty(n_entries, dtype=np.float64),
        np.empty(n_bins + 2, dtype=np.int64),
        np.empty(n_bins + 1, dtype=np.float64),
        np.full(1, EDGES_UNSET, dtype=np.int64),
    )


def new_side_acc(sign: int) -> np.ndarray:
    """A fresh :data:`SIDE_DTYPE` record for the side ``sign`` (:data:`LONG` / :data:`SHORT`)."""
    acc = np.zeros(1, dtype=SIDE_DTYPE)
    acc[0]["edge"] = sign * NONE
    return acc


# ----------------------------------------------------------------------------- small helpers
# Every helper that takes arrays (or named tuples of arrays) is a *leaf*: it calls no other
# helper that takes arrays and makes no array views. numba counts references to every array a
# helper receives; for a leaf, LLVM's reference-count pruning removes that bookkeeping, while a
# helper that passes arrays on keeps an atomic increment and decrement per array per call (with
# the whole state in named tuples, about a microsecond per candle). The driver
# (:func:`run_candles`) is therefore a flat sequence of leaf calls (the rare
# :func:`renormalise` is a plain call). ``error_model="numpy"``: no division-by-zero checks
# (the divisors are never zero; the checks' error paths also defeat that pruning).
@njit(cache=True, inline="always", error_model="numpy")
def bin_of(price, inv_logb):
    return np.int64(math.floor(math.log(price) * inv_logb))


@njit(cache=True, inline="always", error_model="numpy")
def clamp_total(acc):
    """A side's stored total (record ``acc``) never below zero (rounding)."""
    if acc.total < 0.0:
        acc.total = 0.0


@njit(cache=True, inline="always", error_model="numpy")
def rescale_side(side, s):
    book = side.book
    for i in range(book.shape[0]):
        book[i] *= s
    side.acc[0].total *= s


@njit(cache=True, inline="always", error_model="numpy")
def rescale_cohorts(coh, s):
    for i in range(coh.mass.shape[0]):
        for j in range(coh.mass.shape[1]):
            coh.mass[i, j] *= s


@njit(cache=True, inline="always", error_model="numpy")
def rescale_buckets(bk, s):
    for b in range(bk.shape[0]):
        for i in range(bk.shape[1]):
            bk[b, i] *= s


@njit(cache=True, inline="always", error_model="numpy")
def consume_buckets(bk, acc, sign, reach, k0):
    """:func:`consume_side`'s wipe on the bucket books (called before it, while ``acc`` still
    holds the side's edge): every bin from the edge to ``reach`` empties."""
    edge = acc.edge
    if edge == sign * NONE or sign * (reach - edge) < 0:
        return
    nb = bk.shape[1]
    i0 = max(min(reach, edge) - k0, 0)
    i1 = min(max(reach, edge) - k0, nb - 1)
    for b in range(bk.shape[0]):
        for i in range(i0, i1 + 1):
            bk[b, i] = 0.0


@njit(cache=True, inline="always", error_model="numpy")
def fill_edges(work, k0, logb):
    """``work.edge[i] = exp((i + k0) * logb)``, the lower edge price of array position ``i``
    (the readout's edges and gaps look them up instead of calling ``exp``: the same
    expression, the same values), unless already filled for this ``k0``."""
    if work.edge_k0[0] == k0:
        return
    edge = work.edge
    for i in range(edge.shape[0]):
        edge[i] = math.exp((i + k0) * logb)
    work.edge_k0[0] = k0


@njit(cache=True, error_model="numpy")
def renormalise(st, long, short, coh):
    """Fold the survival factor into the stored masses (``S`` back to 1), before it underflows.
    Rare: a plain call, not inlined."""
    s = st.scale
    rescale_side(long, s)
    rescale_side(short, s)
    rescale_cohorts(coh, s)
    st.scale = 1.0


@njit(cache=True, inline="always", error_model="numpy")
def expire_side(side, bk, bucket, flog, coh, h, m0, k0, s, inv_logb):
    """Remove cohort ``h``'s deposits on ``side`` (leverages ``flog``, masses from column
    ``m0`` of ``coh.mass``) from its book and bucket books ``bk``, except where the bin was
    liquidated after the cohort was made (that mass left already). The bins are those of
    :func:`deposit_side`, computed by the same arithmetic from the stored entry prices."""
    acc = side.acc[0]
    book, wipe = side.book, side.wipe
    seq = coh.seq[h]
    n_e = coh.entry.shape[1]
    for j in range(flog.shape[0]):
        m = coh.mass[h, m0 + j]
        b = bucket[j]
        for e in range(n_e):
            i = np.int64(math.floor((coh.entry[h, e] + flog[j]) * inv_logb)) - k0
            if wipe[i] <= seq:
                v = book[i] - m
                book[i] = v if v > 0.0 else 0.0
                v = bk[b, i] - m
                bk[b, i] = v if v > 0.0 else 0.0
                acc.total -= m
                acc.expired += m * s


@njit(cache=True, inline="always", error_model="numpy")
def expiring(st, coh_date, date, window_ns):
    """Step 0's next cohort: the ring slot of the oldest live cohort if it was opened a window
    or more before ``date`` (it leaves the book), else -1."""
    if st.size > 0 and date - coh_date[st.head] >= window_ns:
        return st.head
    return -1


@njit(cache=True, inline="always", error_model="numpy")
def consume_side(side, reach, seq, k0, s):
    """Step 1 on one side: the price reached absolute bin ``reach``; every bin from the side's
    edge to ``reach`` is liquidated. Returns the real mass liquidated."""
    acc = side.acc[0]
    edge = acc.edge
    if edge == side.sign * NONE or side.sign * (reach - edge) < 0:
        return 0.0
    book, wipe = side.book, side.wipe
    nb = book.shape[0]
    i0 = max(min(reach, edge) - k0, 0)
    i1 = min(max(reach, edge) - k0, nb - 1)
    total = 0.0
    for i in range(i0, i1 + 1):
        total += book[i]
        book[i] = 0.0
        wipe[i] = seq
    liq = total * s
    acc.total -= total
    clamp_total(acc)
    acc.edge = reach + side.sign
    acc.liquidated += liq
    return liq


@njit(cache=True, inline="always", error_model="numpy")
def path_range(lo, hi, prev_close, has_prev):
    """Price range of the path: the previous close (if any) through this candle's range."""
    p_lo = lo
    p_hi = hi
    if has_prev:
        if prev_close < p_lo:
            p_lo = prev_close
        if prev_close > p_hi:
            p_hi = prev_close
    return p_lo, p_hi


@njit(cache=True, inline="always", error_model="numpy")
def trigger_range(lo, hi, mark_lo, mark_hi, prev_close, has_prev, use_mark):
    """Price range that liquidates in step 1: with ``use_mark`` and a known mark range (both
    values not NaN) the candle's mark low/high, else its last-price low/high; either joined
    with the previous close (:func:`path_range`). The previous close is last price even on the
    mark path: a mark range starts at its own open, which on a contiguous series lies within
    the mark-last basis of that close (a few basis points, below a bin), and over a gap in the
    candles the close is the last price known before it."""
    if use_mark and mark_lo == mark_lo and mark_hi == mark_hi:
        return path_range(mark_lo, mark_hi, prev_close, has_prev)
    return path_range(lo, hi, prev_close, has_prev)


@njit(cache=True, inline="always", error_model="numpy")
def close_fraction(oi_t, oi_prev, dt, prm):
    """Step 2's share of every position that closes: the open-interest drop (optionally with
    time decay on top), else time decay alone. Returns ``(have_doi, fraction)``."""
    have_doi = (not math.isnan(oi_t)) and (not math.isnan(oi_prev)) and oi_prev > 0.0
    frac = 0.0
    if have_doi:
        if oi_t < oi_prev:
            frac = (oi_prev - oi_t) / oi_prev
        if prm.decay_with_oi > 0.0 and prm.half_life_ns > 0.0 and dt > 0.0:
            frac = 1.0 - (1.0 - frac) * math.pow(0.5, dt / prm.half_life_ns)
    elif prm.half_life_ns > 0.0 and dt > 0.0:
        frac = 1.0 - math.pow(0.5, dt / prm.half_life_ns)
    return have_doi, frac


@njit(cache=True, inline="always", error_model="numpy")
def close_positions(st, long_acc, short_acc, frac):
    """Step 2: a share ``frac`` of every surviving position closes (``S *= 1 - frac``).
    Returns True when the factor fell below :data:`RENORM_BELOW` (then :func:`renormalise`)."""
    if frac > 1.0 - 1e-12:
        frac = 1.0 - 1e-12
    s = st.scale
    long_acc.closed += long_acc.total * s * frac
    short_acc.closed += short_acc.total * s * frac
    st.scale = s * (1.0 - frac)
    return st.scale < RENORM_BELOW


@njit(cache=True, inline="always", error_model="numpy")
def long_share(o, h, lo, c, vol, tb, lsr, tilt):
    """Long share of new positions: taker buy share, else ``r/(1+r)``, else the candle's body
    tilt; clipped to ``[0, 1]``."""
    if not math.isnan(tb) and vol > 0.0:
        share = tb / vol
    elif not math.isnan(lsr) and lsr > 0.0:
        share = lsr / (1.0 + lsr)
    elif h > lo:
        share = 0.5 + 0.5 * tilt * (c - o) / (h - lo)
    else:
        share = 0.5
    if share < 0.0:
        share = 0.0
    if share > 1.0:
        share = 1.0
    return share


@njit(cache=True, inline="always", error_model="numpy")
def entry_logs(entries, h, lo, c):
    """Logs of the entry prices: equal-probability strata of a triangular distribution over
    ``[lo, h]`` with its mode at the typical price (all at ``c`` for a flat candle)."""
    n = entries.shape[0]
    span = h - lo
    if span <= 0.0:
        for e in range(n):
            entries[e] = c
    else:
        mode = (h + lo + c) / 3.0
        fc = (mode - lo) / span
        for e in range(n):
            u = (e + 0.5) / n
            if u < fc:
                entries[e] = lo + math.sqrt(u * span * (mode - lo))
            else:
                entries[e] = h - math.sqrt((1.0 - u) * span * (h - mode))
    for e in range(n):
        entries[e] = math.log(entries[e])


@njit(cache=True, inline="always", error_model="numpy")
def deposit_side(side, bk, bucket, flog, weights, entries, side_mass, coh, at):
    """Step 3 on one side: ``side_mass`` (real) spread over the leverages (log liquidation
    factors ``flog``, weights ``weights[at.wrow]``) and ``entries`` (log prices), each landing
    at its liquidation bin of the book and of its leverage's bucket book ``bk``; cohort
    ``at.slot`` records the stored mass per leverage from column ``at.d0`` on (see
    :class:`Deposit`; the entries are recorded by the caller)."""
    n_e = entries.shape[0]
    acc = side.acc[0]
    book, sign = side.book, side.sign
    empty = sign * NONE
    k0, inv_s, inv_logb, slot = at.k0, at.inv_s, at.inv_logb, at.slot
    for j in range(flog.shape[0]):
        m = side_mass * weights[at.wrow, j] / n_e * inv_s
        b = bucket[j]
        for e in range(n_e):
            k = np.int64(math.floor((entries[e] + flog[j]) * inv_logb))
            book[k - k0] += m
            bk[b, k - k0] += m
            if sign * (k - acc.edge) < 0 or acc.edge == empty:
                acc.edge = k
        coh.mass[slot, at.d0 + j] = m
    acc.total += side_mass * inv_s
    acc.opened += side_mass


@njit(cache=True, inline="always", error_model="numpy")
def record_entries(coh, slot, entries):
    """The candle's log entry prices into cohort ``slot`` (its deposits' bins follow from them)."""
    for e in range(entries.shape[0]):
        coh.entry[slot, e] = entries[e]


@njit(cache=True, inline="always", error_model="numpy")
def opened_notional(h, lo, c, vol, oi_t, oi_prev, have_doi, participation):
    """Step 3's notional opened: the open-interest rise at the typical price, else a share of
    the candle's quote volume."""
    typical = (h + lo + c) / 3.0
    if have_doi:
        return (oi_t - oi_prev) * typical if oi_t > oi_prev else 0.0
    return participation * vol * typical


@njit(cache=True, inline="always", error_model="numpy")
def finish_candle(st, coh, date, oi_t, close, filler):
    """Close the candle: its cohort joins the ring; remember date, close and open interest."""
    slot = (st.head + st.size) % coh.date.shape[0]
    coh.date[slot] = date
    coh.seq[slot] = st.seq
    st.size += 1
    if not math.isnan(oi_t):
        st.prev_oi = oi_t
    elif not filler:
        st.prev_oi = np.nan
    st.prev_close = close
    st.prev_date = date
    st.has_prev = 1
    st.seq += 1


# ----------------------------------------------------------------------------- book readout
@njit(cache=True, inline="always", error_model="numpy")
def band_sums(book, bk, lo, hi, band_lo, band_hi, range_lo, range_hi):
    """Five sums over ``book[lo..hi]``, each in index order: the band
    ``book[band_lo..band_hi]``, the cluster range ``book[range_lo..range_hi]`` and the band of
    each bucket book ``bk[b, band_lo..band_hi]`` (stored units).

    ``lo..hi`` is cut into stretches that lie in the same intervals (at most five), each summed
    by a loop without branches: every sum still adds its bins in index order, so the values
    are those of one loop testing both intervals at every bin."""
    band = rng = t0 = t1 = t2 = 0.0
    i = lo
    while i <= hi:
        end = hi  # the stretch i..end: the next end of an interval, or hi
        if i <= band_lo - 1 < end:
            end = band_lo - 1
        if i <= band_hi < end:
            end = band_hi
        if i <= range_lo - 1 < end:
            end = range_lo - 1
        if i <= range_hi < end:
            end = range_hi
        in_band = band_lo <= i <= band_hi
        if range_lo <= i <= range_hi:
            if in_band:
                for j in range(i, end + 1):
                    m = book[j]
                    rng += m
                    band += m
                    t0 += bk[0, j]
                    t1 += bk[1, j]
                    t2 += bk[2, j]
            else:
                for j in range(i, end + 1):
                    rng += book[j]
        elif in_band:
            for j in range(i, end + 1):
                band += book[j]
                t0 += bk[0, j]
                t1 += bk[1, j]
                t2 += bk[2, j]
        i = end + 1
    return band, rng, t0, t1, t2


@njit(cache=True, inline="always", error_model="numpy")
def put_bands(row, col, bucket_col, sums, s, min_mass):
    """The band of :func:`band_sums` into ``row[col]`` and its bucket totals into
    ``row[bucket_col ..]`` (real mass). Each is 0 below the significance floor ``min_mass``,
    and the buckets are all 0 when the band is (a bucket book keeps rounding dust where
    deposits expired), so the three sum to the band within ``3 * min_mass``."""
    band = floored(sums[0] * s, min_mass)
    row[col] = band
    if band > 0.0:
        row[bucket_col] = floored(sums[2] * s, min_mass)
        row[bucket_col + 1] = floored(sums[3] * s, min_mass)
        row[bucket_col + 2] = floored(sums[4] * s, min_mass)
    else:
        z = floored(0.0, min_mass)
        row[bucket_col] = z
        row[bucket_col + 1] = z
        row[bucket_col + 2] = z


@njit(cache=True, inline="always", error_model="numpy")
def floored(mass, min_mass):
    """``mass``, or 0 below the significance floor (rounding dust of an emptied book)."""
    return mass if mass >= min_mass else 0.0


@njit(cache=True, inline="always", error_model="numpy")
def scan_clusters(book, s, start, stop, step, thr, max_gap, min_mass, k0, work):
    """Clusters on one side, scanning from ``start`` toward ``stop`` (exclusive) by ``step``.

    A cluster is a run of dense bins (real mass >= ``thr``) that may bridge up to ``max_gap``
    non-dense bins; it is kept when its mass reaches ``min_mass``. Returns the number found;
    ``work`` gets the array positions of its lowest/highest bin, its mass and the mass-weighted
    mean *absolute* bin coordinate (bin centres at ``k + 0.5``; absolute so that the result does
    not depend on where the array starts).

    First the dense bins are listed in scan order (a loop without branches), then the runs are
    built from that list: a run's mass adds its bins in scan order, each bridged stretch of
    non-dense bins summed first and then added (the order of a single scan that keeps the
    bridged bins aside until the next dense bin).
    """
    pos = work.pos
    nd = 0
    i = start
    while i != stop:
        m = book[i] * s
        pos[nd] = i
        nd += np.int64((m > 0.0) & (m >= thr))
        i += step
    n = 0
    r = 0
    while r < nd:
        p = pos[r]
        m = book[p] * s
        run_sum = m
        run_wk = m * (p + k0 + 0.5)
        first = last = p
        r += 1
        while r < nd:
            q = pos[r]
            if (q - last) * step - 1 > max_gap:
                break
            gap_sum = gap_wk = 0.0
            j = last + step
            while j != q:
                mg = book[j] * s
                gap_sum += mg
                gap_wk += mg * (j + k0 + 0.5)
                j += step
            mq = book[q] * s
            run_sum += gap_sum
            run_wk += gap_wk
            run_sum += mq
            run_wk += mq * (q + k0 + 0.5)
            last = q
            r += 1
        if run_sum >= min_mass and run_sum > 0.0:
            work.lo[n] = min(first, last)
            work.hi[n] = max(first, last)
            work.sum[n] = run_sum
            work.wk[n] = run_wk / run_sum
            n += 1
    return n


@njit(cache=True, inline="always", error_model="numpy")
def cluster_threshold(side_total, nbins, prm):
    """Dense-bin threshold and minimum cluster mass of one side (``nbins`` bins scanned)."""
    thr = prm.dense * (side_total / nbins)
    min_mass = max(prm.min_share * side_total, prm.min_mass)
    return thr, min_mass


@njit(cache=True, inline="always", error_model="numpy")
def put_cluster(row, at, work, c, centre, edge):
    """Cluster ``c`` of ``work`` (centre price ``centre``, bin edge prices ``edge``) into
    ``row[at : at + 4]`` (price, low, high, size)."""
    row[at] = centre
    row[at + 1] = edge[work.lo[c]]
    row[at + 2] = edge[work.hi[c] + 1]
    row[at + 3] = work.sum[c]


@njit(cache=True, inline="always", error_model="numpy")
def cluster_readout(work, n, ctx, prm, row, base, base2, wall):
    """One side's readout from the ``n`` clusters :func:`scan_clusters` found (nearest first):
    the nearest to ``row[base : base + 4]`` (price, low, high, size), the second and third to
    ``row[base2 : base2 + 8]``, the largest with its centre within the band (at most
    ``prm.band`` from the close; the nearest of equal ones) to ``row[wall : wall + 4]``.
    Returns the side's best magnet ``(score, price)`` (score -1 without clusters) and the sums
    of its clusters' magnet scores and of score times centre."""
    for j in range(4):
        row[base + j] = np.nan
        row[wall + j] = np.nan
    for j in range(8):
        row[base2 + j] = np.nan
    logb = prm.logb
    min_dist = 100.0 * (math.exp(logb) - 1.0)  # one bin, in %
    linear = prm.mag_power == 1.0  # pow(x, 1.0) is x exactly: skip the call
    best_score = -1.0
    best_price = np.nan
    sum_score = sum_price = 0.0
    wall_c = -1
    wall_centre = np.nan
    for c in range(n):
        centre = math.exp(work.wk[c] * logb)
        if c == 0:
            put_cluster(row, base, work, c, centre, ctx.edge)
        elif c < 3:
            put_cluster(row, base2 + 4 * (c - 1), work, c, centre, ctx.edge)
        rel = abs(centre / ctx.close - 1.0)
        if rel <= prm.band and (wall_c < 0 or work.sum[c] > work.sum[wall_c]):
            wall_c = c
            wall_centre = centre
        dist = max(rel * 100.0, min_dist)
        score = (work.sum[c] / ctx.total) / (dist if linear else dist**prm.mag_power)
        if score > best_score:
            best_score = score
            best_price = centre
        sum_score += score
        sum_price += score * centre
    if wall_c >= 0:
        put_cluster(row, wall, work, wall_c, wall_centre, ctx.edge)
    return (best_score, best_price), (sum_score, sum_price)


@njit(cache=True, inline="always", error_model="numpy")
def pick_magnet(row, long_best, short_best):
    """The cluster with the highest share-over-distance score (longs win ties)."""
    score, price = long_best
    side = -1.0 if score >= 0.0 else np.nan
    if short_best[0] > score:
        score, price = short_best
        side = 1.0
    row[O_MAG_PRICE] = price
    row[O_MAG_SIDE] = side
    row[O_MAG_SCORE] = score if score >= 0.0 else np.nan


@njit(cache=True, inline="always", error_model="numpy")
def mean_magnet(row, long_sums, short_sums):
    """The magnet over all clusters (sums of :func:`more_clusters`): the score-weighted mean
    centre, and the pull (short scores - long scores) / all scores; NaN without clusters."""
    total = long_sums[0] + short_sums[0]
    if total > 0.0:
        row[O_MAGW_PRICE] = (long_sums[1] + short_sums[1]) / total
        row[O_MAGW_PULL] = (short_sums[0] - long_sums[0]) / total
    else:
        row[O_MAGW_PRICE] = np.nan
        row[O_MAGW_PULL] = np.nan


@njit(cache=True, inline="always", error_model="numpy")
def first_dense(long, short, start, stop, step, thr, s):
    """First array position from ``start`` toward ``stop`` (exclusive) whose combined real
    mass reaches ``thr``; -1 if none."""
    lb, sb = long.book, short.book
    i = start
    while i != stop:
        m = (lb[i] + sb[i]) * s
        if m > 0.0 and m >= thr:
            return i
        i += step
    return -1


@njit(cache=True, inline="always", error_model="numpy")
def gap_threshold(ctx, n_all, prm):
    """Combined mass a bin needs to end a liquidity gap (``n_all`` bins in the cluster range);
    -1 when the range holds no mass (no gaps then)."""
    if ctx.total <= 0.0 or n_all <= 0:
        return -1.0
    return max(prm.gap_factor * ctx.total / n_all, prm.min_mass)


@njit(cache=True, inline="always", error_model="numpy")
def gap_pct(i, above, ctx, prm):
    """Distance in % from the close to the first dense bin ``i`` (array position; -1: none)
    above (its lower edge) or below (its upper edge)."""
    if i < 0:
        return np.nan
    if above:
        return (ctx.edge[i] / ctx.close - 1.0) * 100.0
    return (1.0 - ctx.edge[i + 1] / ctx.close) * 100.0


@njit(cache=True, inline="always", error_model="numpy")
def first_thin(long, short, start, stop, step, thr, s):
    """First array position from ``start`` toward ``stop`` (exclusive) whose combined real
    mass is below ``thr`` (or zero); -1 if none."""
    lb, sb = long.book, short.book
    i = start
    while i != stop:
        m = (lb[i] + sb[i]) * s
        if not (m > 0.0 and m >= thr):
            return i
        i += step
    return -1


@njit(cache=True, inline="always", error_model="numpy")
def gap_width(long, short, kc, first, stop, step, thr, ctx, prm):
    """Width in % of the close of the first liquidity gap from the close's bin ``kc`` toward
    ``stop`` (``step`` +1 above, -1 below); ``first``: the first meaningful bin
    (:func:`first_dense`, -1: none). When thin bins lie between the close and ``first``, the
    gap runs from the close to ``first`` (the gap distance); when the bin next to the close's
    is meaningful, the gap is the run of thin bins behind that mass, up to the next
    meaningful bin. NaN without such a gap in the range."""
    if first < 0:
        return np.nan
    if first != kc + step:
        return gap_pct(first, step > 0, ctx, prm)
    j = first_thin(long, short, first, stop, step, thr, ctx.s)
    if j < 0:
        return np.nan
    nxt = first_dense(long, short, j, stop, step, thr, ctx.s)
    if nxt < 0:
        return np.nan
    edge = ctx.edge
    if step > 0:
        return (edge[nxt] - edge[j]) / ctx.close * 100.0
    return (edge[j + 1] - edge[nxt + 1]) / ctx.close * 100.0


@njit(cache=True, inline="always", error_model="numpy")
def clip_bin(price, k0, nb, inv_logb, lowest, highest):
    """Array position of ``price``'s bin, clipped to ``[lowest, highest]``."""
    return min(max(bin_of(price, inv_logb) - k0, lowest), highest)


@njit(cache=True, inline="always", error_model="numpy")
def copy_bins(book, dest, base, s):
    """``dest[j] = book[base + j] * s`` (zero outside the book)."""
    nb = book.shape[0]
    for j in range(dest.shape[0]):
        i = base + j
        dest[j] = book[i] * s if 0 <= i < nb else 0.0


# ----------------------------------------------------------------------------- the steps
@njit(cache=True, inline="always", error_model="numpy")
def copy_snapshots(snap, pos, t, st, long, short):
    """Copy the book into every snapshot row that asks for candle ``t``; returns the next
    snapshot position."""
    while pos < snap.rows.shape[0] and snap.rows[pos] == t:
        base = snap.k_lo - st.k0
        copy_bins(long.book, snap.long[pos], base, st.scale)
        copy_bins(short.book, snap.short[pos], base, st.scale)
        pos += 1
    return pos


# ----------------------------------------------------------------------------- the table
# The kernel receives the addresses of its arrays in one int64 table (:func:`make_table`) and
# views them with ``carray``: one array argument instead of some forty. The caller owns the
# arrays, keeps them alive while the table is used and builds a new table whenever one of them
# is replaced.
def _pointer_to(nbtype: Any) -> Any:
    ptype = types.CPointer(nbtype)

    @intrinsic
    def as_pointer(typingctx: Any, addr: Any) -> Any:
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            return builder.inttoptr(args[0], context.get_value_type(ptype))

        return ptype(types.int64), codegen

    return as_pointer


_P_F64 = _pointer_to(types.float64)
_P_I64 = _pointer_to(types.int64)
_P_F32 = _pointer_to(types.float32)
_P_STATE = _pointer_to(from_dtype(STATE_DTYPE))
_P_SIDE = _pointer_to(from_dtype(SIDE_DTYPE))
# slots 0..35 and 44..49: array addresses (15: run_one's output row), 36..43 sizes, then:
T_N = 50  # candles
T_WROWS = 51  # rows of the leverage weights (1, or one per candle)
T_SNAP_ROWS = 52  # snapshot rows
T_SNAP_WIDTH = 53  # bins per snapshot row
T_SNAP_K_LO = 54  # absolute bin of the snapshots' first column
N_TABLE = 55


def make_table(
    cd: Candles, state: np.ndarray, long: Side, short: Side, coh: Cohorts, prm_values: np.ndarray,
    mix: Mix, out: np.ndarray | None, work: Work, snap: Snap,
) -> np.ndarray:  # fmt: skip
    """The addresses and sizes :func:`run_candles` views (``prm_values``: the :class:`Params`
    values as a float64 array; ``out``: the one-row output of :func:`run_one`, else ``None``).
    The arrays must be C-contiguous, of the kernel's dtypes and consistent in size, and must
    outlive every call with the table."""
    tab = np.zeros(N_TABLE, dtype=np.int64)
    fill_table(tab, state, long, short, coh, prm_values, mix, work)
    fill_run(tab, cd, mix, out, snap)
    return tab


def _address(i: int, a: np.ndarray, dtype: Any, ndim: int) -> int:
    if a.dtype != dtype or a.ndim != ndim or not a.flags.c_contiguous:
        raise ValueError(f"make_table: array {i} is not a C-contiguous {ndim}-d {dtype}")
    return int(a.ctypes.data)


def fill_table(
    tab: np.ndarray, state: np.ndarray, long: Side, short: Side, coh: Cohorts,
    prm_values: np.ndarray, mix: Mix, work: Work,
) -> None:  # fmt: skip
    """The state's part of a table (:func:`make_table`): what stays while the arrays do."""
    arrays = {
        0: (state, STATE_DTYPE, 1), 1: (long.book, np.float64, 1), 2: (long.wipe, np.int64, 1),
        3: (long.acc, SIDE_DTYPE, 1), 4: (short.book, np.float64, 1),
        5: (short.wipe, np.int64, 1), 6: (short.acc, SIDE_DTYPE, 1), 7: (coh.date, np.int64, 1),
        8: (coh.seq, np.int64, 1), 9: (coh.entry, np.float64, 2), 10: (coh.mass, np.float64, 2),
        11: (coh.n, np.int64, 1), 12: (mix.f_long_log, np.float64, 1),
        13: (mix.f_short_log, np.float64, 1), 16: (work.lo, np.int64, 1),
        17: (work.hi, np.int64, 1), 18: (work.sum, np.float64, 1), 19: (work.wk, np.float64, 1),
        20: (work.entries, np.float64, 1), 21: (prm_values, np.float64, 1),
        44: (mix.bucket, np.int64, 1), 45: (mix.bk_long, np.float64, 2),
        46: (mix.bk_short, np.float64, 2), 47: (work.pos, np.int64, 1),
        48: (work.edge, np.float64, 1), 49: (work.edge_k0, np.int64, 1),
    }  # fmt: skip
    for i, (a, dtype, ndim) in arrays.items():
        tab[i] = _address(i, a, dtype, ndim)
    if len(prm_values) != len(Params._fields):
        raise ValueError("make_table: every parameter")
    tab[36:44] = (
        long.book.shape[0], coh.date.shape[0], coh.mass.shape[1], mix.weights.shape[1],
        mix.f_long_log.shape[0], mix.n_entries, work.lo.shape[0], work.entries.shape[0],
    )  # fmt: skip
    if (
        short.book.shape[0] != tab[36]
        or long.wipe.shape[0] != tab[36]
        or short.wipe.shape[0] != tab[36]
        or mix.f_short_log.shape[0] != tab[40]
        or mix.bucket.shape[0] != tab[40]
        or mix.weights.shape[1] != tab[40]
        or mix.bk_long.shape != (N_BUCKETS, tab[36])
        or mix.bk_short.shape != (N_BUCKETS, tab[36])
        or coh.entry.shape != (tab[37], tab[43])
        or coh.mass.shape[1] != 2 * tab[40]
        or coh.seq.shape[0] != tab[37]
        or coh.n.shape[0] != tab[37]
        or work.hi.shape[0] != tab[42]
        or work.sum.shape[0] != tab[42]
        or work.wk.shape[0] != tab[42]
        or work.pos.shape[0] != tab[36] + 2
        or work.edge.shape[0] != tab[36] + 1
        or work.edge_k0.shape[0] != 1
    ):
        raise ValueError("make_table: the arrays differ in size")


def fill_run(tab: np.ndarray, cd: Candles, mix: Mix, out: np.ndarray | None, snap: Snap) -> None:
    """A run's part of a table (:func:`make_table`): its candles, leverage weights, snapshot
    arrays and, for :func:`run_one`, its output row."""
    n = cd.dates.shape[0]
    for i, a in enumerate(cd):
        tab[22 + i] = _address(22 + i, a, np.int64 if i == 0 else np.float64, 1)
        if a.shape[0] != n:
            raise ValueError("make_table: the candle arrays differ in length")
    tab[14] = _address(14, mix.weights, np.float64, 2)
    if mix.weights.shape[0] not in (1, n) or mix.weights.shape[1] != tab[39]:
        raise ValueError("make_table: one row of leverage weights, or one per candle")
    tab[33] = _address(33, snap.rows, np.int64, 1)
    tab[34] = _address(34, snap.long, np.float32, 2)
    tab[35] = _address(35, snap.short, np.float32, 2)
    if snap.long.shape != snap.short.shape or snap.long.shape[0] != snap.rows.shape[0]:
        raise ValueError("make_table: one snapshot row of each side per snapshot candle")
    tab[15] = 0
    if out is not None:
        tab[15] = _address(15, out, np.float64, 2)
        if n != 1 or out.shape != (1, N_OUT):
            raise ValueError("make_table: run_one takes one candle and one output row")
    tab[T_N] = n
    tab[T_WROWS] = mix.weights.shape[0]
    tab[T_SNAP_ROWS] = snap.rows.shape[0]
    tab[T_SNAP_WIDTH] = snap.long.shape[1]
    tab[T_SNAP_K_LO] = snap.k_lo


# ----------------------------------------------------------------------------- the driver
@njit(cache=True, inline="always", error_model="numpy")
def has_room(cd, t, st, nb, cap, prm):
    """Whether candle ``t`` fits the arrays: the bins its steps may touch lie in the book (two
    bins to spare) and the cohort ring has a free slot."""
    k_lo = np.int64(math.floor(math.log(cd.low[t] * prm.reach_lo) * prm.inv_logb)) - 1
    k_hi = np.int64(math.floor(math.log(cd.high[t] * prm.reach_hi) * prm.inv_logb)) + 1
    return k_lo >= st.k0 and k_hi < st.k0 + nb and st.size + 1 <= cap


@njit(cache=True, error_model="numpy")
def run_candles(tab, out):
    """Advance the state over the candles of the table ``tab`` (:func:`make_table`: the
    addresses and sizes of the state, the candles and the snapshot arrays); row ``t`` of
    ``out`` gets candle ``t``'s values (:data:`N_OUT` columns, ``O_*`` order; the book readout
    only with ``prm.summaries``). Returns the number of candles processed: all of them, or
    fewer when a candle does not fit the arrays (:func:`has_room`; the caller grows them and
    resumes), or -1 when the first candle is not newer than the last one processed (nothing
    done).

    The arrays come as addresses (viewed here with ``carray``) rather than as some forty array
    arguments: numba unboxes every array argument of a call from Python, and passes and counts
    references to each one in a call from compiled code (:func:`run_one`), which cost more than
    a candle's own work. ``mix.weights`` holds the leverage weights: one row for all candles,
    or one row per candle (several exchanges, each with its own margin tiers, weighted by their
    share of the candle's volume). ``work`` is scratch (:func:`new_work`, sized for the book).
    ``snap.rows`` (sorted candle indices) selects candles whose book, bins ``snap.k_lo ..
    snap.k_lo + snap.long.shape[1] - 1`` (absolute), is copied into ``snap.long`` /
    ``snap.short`` (real mass, float32) for heatmaps.
    """
    n = tab[T_N]
    nb, cap, n_mass, n_lev = tab[36], tab[37], tab[38], tab[39]
    n_fac, n_work, n_ent = tab[40], tab[42], tab[43]
    state = carray(_P_STATE(tab[0]), (1,))
    long = Side(
        carray(_P_F64(tab[1]), (nb,)), carray(_P_I64(tab[2]), (nb,)),
        carray(_P_SIDE(tab[3]), (1,)), LONG,
    )  # fmt: skip
    short = Side(
        carray(_P_F64(tab[4]), (nb,)), carray(_P_I64(tab[5]), (nb,)),
        carray(_P_SIDE(tab[6]), (1,)), SHORT,
    )  # fmt: skip
    coh = Cohorts(
        carray(_P_I64(tab[7]), (cap,)), carray(_P_I64(tab[8]), (cap,)),
        carray(_P_F64(tab[9]), (cap, n_ent)), carray(_P_F64(tab[10]), (cap, n_mass)),
        carray(_P_I64(tab[11]), (cap,)),
    )  # fmt: skip
    mix = Mix(
        carray(_P_F64(tab[12]), (n_fac,)), carray(_P_F64(tab[13]), (n_fac,)),
        carray(_P_F64(tab[14]), (tab[T_WROWS], n_lev)), tab[41],
        carray(_P_I64(tab[44]), (n_fac,)), carray(_P_F64(tab[45]), (N_BUCKETS, nb)),
        carray(_P_F64(tab[46]), (N_BUCKETS, nb)),
    )  # fmt: skip
    work = Work(
        carray(_P_I64(tab[16]), (n_work,)), carray(_P_I64(tab[17]), (n_work,)),
        carray(_P_F64(tab[18]), (n_work,)), carray(_P_F64(tab[19]), (n_work,)),
        carray(_P_F64(tab[20]), (n_ent,)), carray(_P_I64(tab[47]), (nb + 2,)),
        carray(_P_F64(tab[48]), (nb + 1,)), carray(_P_I64(tab[49]), (1,)),
    )  # fmt: skip
    p = carray(_P_F64(tab[21]), (19,))
    prm = Params(
        p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12], p[13],
        p[14], p[15], p[16], p[17], p[18],
    )  # fmt: skip
    cd = Candles(
        carray(_P_I64(tab[22]), (n,)), carray(_P_F64(tab[23]), (n,)),
        carray(_P_F64(tab[24]), (n,)), carray(_P_F64(tab[25]), (n,)),
        carray(_P_F64(tab[26]), (n,)), carray(_P_F64(tab[27]), (n,)),
        carray(_P_F64(tab[28]), (n,)), carray(_P_F64(tab[29]), (n,)),
        carray(_P_F64(tab[30]), (n,)), carray(_P_F64(tab[31]), (n,)),
        carray(_P_F64(tab[32]), (n,)),
    )  # fmt: skip
    n_snap, width = tab[T_SNAP_ROWS], tab[T_SNAP_WIDTH]
    snap = Snap(
        carray(_P_I64(tab[33]), (n_snap,)), tab[T_SNAP_K_LO],
        carray(_P_F32(tab[34]), (n_snap, width)), carray(_P_F32(tab[35]), (n_snap, width)),
    )  # fmt: skip
    st = state[0]
    if n and st.has_prev == 1 and cd.dates[0] <= st.prev_date:
        return -1
    summaries = prm.summaries > 0.0
    if summaries and n:
        fill_edges(work, st.k0, prm.logb)
    use_mark = prm.mark > 0.0
    nb = long.book.shape[0]
    cap = coh.date.shape[0]
    pos = 0
    entries = work.entries
    n_half = mix.f_long_log.shape[0] * mix.n_entries
    max_gap = np.int64(prm.max_gap_bins)
    bucket, bk_long, bk_short = mix.bucket, mix.bk_long, mix.bk_short
    n_lev = mix.f_long_log.shape[0]
    for t in range(n):
        if not has_room(cd, t, st, nb, cap, prm):
            return t
        row = out[t]
        # ---- the candle's four steps (written out here: see the note on leaf helpers)
        date = cd.dates[t]
        filler = cd.volume[t] <= 0.0  # freqtrade's gap fillers: no trading, time still passes
        has_prev = st.has_prev == 1
        dt = float(date - st.prev_date) if has_prev else 0.0
        # step 0: cohorts opened a window or more before the candle leave the book
        h = expiring(st, coh.date, date, prm.window_ns)
        while h >= 0:
            if coh.n[h] > 0:
                expire_side(long, bk_long, bucket, mix.f_long_log, coh, h, 0, st.k0, st.scale,
                            prm.inv_logb)  # fmt: skip
                expire_side(short, bk_short, bucket, mix.f_short_log, coh, h, n_lev, st.k0,
                            st.scale, prm.inv_logb)  # fmt: skip
            st.head = (h + 1) % cap
            st.size -= 1
            h = expiring(st, coh.date, date, prm.window_ns)
        clamp_total(long.acc[0])
        clamp_total(short.acc[0])
        liq_long = liq_short = 0.0
        if not filler:
            p_lo, p_hi = trigger_range(
                cd.low[t], cd.high[t], cd.mark_low[t], cd.mark_high[t], st.prev_close, has_prev,
                use_mark,
            )  # fmt: skip
            kl = np.int64(math.ceil(math.log(p_lo) * prm.inv_logb - 0.5))
            kh = np.int64(math.floor(math.log(p_hi) * prm.inv_logb - 0.5))
            consume_buckets(bk_long, long.acc[0], LONG, kl, st.k0)
            consume_buckets(bk_short, short.acc[0], SHORT, kh, st.k0)
            liq_long = consume_side(long, kl, st.seq, st.k0, st.scale)
            liq_short = consume_side(short, kh, st.seq, st.k0, st.scale)
        oi_t = cd.oi[t]
        have_doi, frac = close_fraction(oi_t, st.prev_oi, dt, prm)
        if frac > 0.0:
            if close_positions(st, long.acc[0], short.acc[0], frac):
                s_old = st.scale
                renormalise(st, long, short, coh)
                rescale_buckets(bk_long, s_old)
                rescale_buckets(bk_short, s_old)
        # step 3: new positions of the candle into the cohort slot after the live ones
        slot = (st.head + st.size) % coh.date.shape[0]
        coh.n[slot] = 0
        opened_long = opened_short = 0.0
        if not filler:
            h, lo, c, vol = cd.high[t], cd.low[t], cd.close[t], cd.volume[t]
            notional = opened_notional(h, lo, c, vol, oi_t, st.prev_oi, have_doi, prm.participation)
            share = long_share(cd.open[t], h, lo, c, vol, cd.taker_buy[t], cd.ls_ratio[t], prm.tilt)
            opened_long = notional * share
            opened_short = notional - opened_long
            if notional > 0.0:
                entry_logs(entries, h, lo, c)
                wrow = t if mix.weights.shape[0] == cd.dates.shape[0] else 0
                at = Deposit(st.k0, 1.0 / st.scale, prm.inv_logb, slot, wrow, 0)
                deposit_side(
                    long, bk_long, bucket, mix.f_long_log, mix.weights, entries, opened_long,
                    coh, at,
                )  # fmt: skip
                at = Deposit(st.k0, at.inv_s, at.inv_logb, slot, wrow, n_lev)
                deposit_side(
                    short, bk_short, bucket, mix.f_short_log, mix.weights, entries,
                    opened_short, coh, at,
                )  # fmt: skip
                record_entries(coh, slot, entries)
                coh.n[slot] = 2 * n_half
        finish_candle(st, coh, date, oi_t, cd.close[t], filler)
        s = st.scale
        row[O_LONG_LIQ] = liq_long
        row[O_SHORT_LIQ] = liq_short
        row[O_LONG_TOTAL] = long.acc[0].total * s
        row[O_SHORT_TOTAL] = short.acc[0].total * s
        row[O_LONG_OPENED] = opened_long
        row[O_SHORT_OPENED] = opened_short
        if not summaries:
            pos = copy_snapshots(snap, pos, t, st, long, short)
            continue
        # ---- the book readout: band masses, clusters (three per side, the wall), magnets, gaps
        close, k0 = cd.close[t], st.k0
        kc = clip_bin(close, k0, nb, prm.inv_logb, 0, nb - 1)
        kb_lo = clip_bin(close * (1.0 - prm.band), k0, nb, prm.inv_logb, 0, 2**62)
        kb_hi = clip_bin(close * (1.0 + prm.band), k0, nb, prm.inv_logb, -(2**62), nb - 1)
        kr_lo = clip_bin(close * (1.0 - prm.range), k0, nb, prm.inv_logb, 0, 2**62)
        kr_hi = clip_bin(close * (1.0 + prm.range), k0, nb, prm.inv_logb, -(2**62), nb - 1)
        sums = band_sums(long.book, bk_long, min(kb_lo, kr_lo), kc, kb_lo, kc, kr_lo, kc)
        put_bands(row, O_LONG_BAND, O_LB_LOW, sums, s, prm.min_mass)
        long_range = sums[1] * s
        sums = band_sums(short.book, bk_short, kc, max(kb_hi, kr_hi), kc, kb_hi, kc, kr_hi)
        put_bands(row, O_SHORT_BAND, O_SB_LOW, sums, s, prm.min_mass)
        short_range = sums[1] * s
        ctx = Ctx(close, s, k0, long_range + short_range, work.edge)
        # clusters: longs from the close down to the range's low end, shorts up to its high end
        n_c = 0
        nbins = kc - kr_lo + 1
        if long_range > 0.0 and nbins > 0:
            thr, min_mass = cluster_threshold(long_range, nbins, prm)
            n_c = scan_clusters(long.book, s, kc, kr_lo - 1, -1, thr, max_gap, min_mass, k0, work)
        long_best, long_sums = cluster_readout(
            work, n_c, ctx, prm, row, O_LC_PRICE, O_LC2_PRICE, O_LW_PRICE
        )
        n_c = 0
        nbins = kr_hi - kc + 1
        if short_range > 0.0 and nbins > 0:
            thr, min_mass = cluster_threshold(short_range, nbins, prm)
            n_c = scan_clusters(short.book, s, kc, kr_hi + 1, 1, thr, max_gap, min_mass, k0, work)
        short_best, short_sums = cluster_readout(
            work, n_c, ctx, prm, row, O_SC_PRICE, O_SC2_PRICE, O_SW_PRICE
        )
        pick_magnet(row, long_best, short_best)
        mean_magnet(row, long_sums, short_sums)
        # liquidity gaps: the first bin of meaningful combined mass above and below the close
        thr = gap_threshold(ctx, kr_hi - kr_lo + 1, prm)
        above = first_dense(long, short, kc + 1, kr_hi + 1, 1, thr, s) if thr >= 0.0 else -1
        row[O_GAP_ABOVE] = gap_pct(above, True, ctx, prm)
        below = first_dense(long, short, kc - 1, kr_lo - 1, -1, thr, s) if thr >= 0.0 else -1
        row[O_GAP_BELOW] = gap_pct(below, False, ctx, prm)
        row[O_GAP_ABOVE_W] = gap_width(long, short, kc, above, kr_hi + 1, 1, thr, ctx, prm)
        row[O_GAP_BELOW_W] = gap_width(long, short, kc, below, kr_lo - 1, -1, thr, ctx, prm)
        if snap.rows.shape[0]:
            pos = copy_snapshots(snap, pos, t, st, long, short)
    return n


# ----------------------------------------------------------------------------- one candle
@njit(cache=True, error_model="numpy")
def run_one(tab, date, values, warm_until):
    """One candle through :func:`run_candles` on the arrays of ``tab`` (:func:`make_table`
    with one candle and the output row): the candle's date and ``values`` (open, high, low,
    close, volume, open interest, taker buy volume, long/short ratio, mark high, mark low) are
    written into its one-candle buffers first, and the output row is NaN while ``date <
    warm_until``. Returns :func:`run_candles`' count. The live path's entry point: one call
    from Python with a table and a tuple of numbers."""
    o, h, lo, c, vol, oi, tb, lsr, mh, ml = values
    cd = Candles(
        carray(_P_I64(tab[22]), (1,)), carray(_P_F64(tab[23]), (1,)),
        carray(_P_F64(tab[24]), (1,)), carray(_P_F64(tab[25]), (1,)),
        carray(_P_F64(tab[26]), (1,)), carray(_P_F64(tab[27]), (1,)),
        carray(_P_F64(tab[28]), (1,)), carray(_P_F64(tab[29]), (1,)),
        carray(_P_F64(tab[30]), (1,)), carray(_P_F64(tab[31]), (1,)),
        carray(_P_F64(tab[32]), (1,)),
    )  # fmt: skip
    cd.dates[0] = date
    cd.open[0] = o
    cd.high[0] = h
    cd.low[0] = lo
    cd.close[0] = c
    cd.volume[0] = vol
    cd.oi[0] = oi
    cd.taker_buy[0] = tb
    cd.ls_ratio[0] = lsr
    cd.mark_high[0] = mh
    cd.mark_low[0] = ml
    # typed column-major (the same memory for one row): the layout of the batch calls, so that
    # one compiled run_candles serves both
    out = farray(_P_F64(tab[15]), (1, N_OUT))
    done = run_candles(tab, out)
    if done == 1 and date < warm_until:
        for j in range(N_OUT):
            out[0, j] = np.nan
    return done
