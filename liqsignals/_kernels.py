"""numba kernels of the cohort engine: plain arrays in, plain arrays out.

One function, :func:`run_candles`, advances the engine state over a block of candles; the batch
API calls it once over the whole frame and the incremental engine calls it with one candle, so the
two share every floating-point operation and agree bit for bit.

State layout
------------
``book_long``, ``book_short`` : mass per price bin in *stored units*: the real mass (quote
    notional) is ``stored * S``, where ``S = fst[F_SCALE]`` is a global survival factor. Closing a
    share ``f`` of every surviving position is then ``S *= 1 - f``, O(1) instead of O(bins).
``wipe_long``, ``wipe_short`` : sequence number of the candle that last liquidated each bin.
cohort ring (``coh_*``) : each candle's deposits (absolute bin, stored mass) so they can be removed
    when they expire; a deposit is still alive iff its bin was not wiped after it was made.
``ist`` / ``fst`` : integer / float scalars (indices below).

Bins are absolute: bin ``k`` covers prices ``[B**k, B**(k+1))``, ``B = 1 + bin_bp/1e4``; array
position ``i`` holds bin ``k0 + i``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# integer state
I_K0 = 0  # absolute bin of array position 0
I_SEQ = 1  # candles processed so far
I_HEAD = 2  # ring position of the oldest live cohort
I_SIZE = 3  # live cohorts
I_LONG_TOP = 4  # highest bin that may hold long mass (absolute)
I_SHORT_BOT = 5  # lowest bin that may hold short mass (absolute)
I_PREV_DATE = 6  # ns of the previous candle
I_HAS_PREV = 7
N_ISTATE = 8

# float state
F_SCALE = 0
F_PREV_CLOSE = 1
F_PREV_OI = 2  # previous open interest in coins (NaN: unknown)
F_TOT_LONG = 3  # stored units
F_TOT_SHORT = 4
F_OPENED_LONG = 5  # cumulative real mass, for conservation checks
F_OPENED_SHORT = 6
F_LIQ_LONG = 7
F_LIQ_SHORT = 8
F_CLOSED_LONG = 9
F_CLOSED_SHORT = 10
F_EXPIRED_LONG = 11
F_EXPIRED_SHORT = 12
N_FSTATE = 13

NONE_TOP = -(2**62)
NONE_BOT = 2**62

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
N_OUT = 21

# float parameters
P_INV_LOGB = 0
P_LOGB = 1
P_WINDOW_NS = 2
P_HALF_LIFE_NS = 3  # <= 0: no decay
P_PARTICIPATION = 4
P_TILT = 5
P_DECAY_WITH_OI = 6
P_BAND = 7  # fraction
P_RANGE = 8  # fraction
P_DENSE = 9
P_MIN_SHARE = 10
P_GAP_FACTOR = 11
P_MAG_POWER = 12
P_MAX_GAP_BINS = 13
N_PARAMS = 14

RENORM_BELOW = 1e-150


@njit(cache=True)
def _bin_of(price, inv_logb):
    return np.int64(math.floor(math.log(price) * inv_logb))


@njit(cache=True)
def _renormalise(book_long, book_short, coh_mass, fst):
    s = fst[F_SCALE]
    for i in range(book_long.shape[0]):
        book_long[i] *= s
        book_short[i] *= s
    for i in range(coh_mass.shape[0]):
        for j in range(coh_mass.shape[1]):
            coh_mass[i, j] *= s
    fst[F_TOT_LONG] *= s
    fst[F_TOT_SHORT] *= s
    fst[F_SCALE] = 1.0


@njit(cache=True)
def _expire(
    date,
    book_long,
    book_short,
    wipe_long,
    wipe_short,
    coh_date,
    coh_seq,
    coh_bin,
    coh_mass,
    coh_n,
    n_half,
    ist,
    fst,
    window_ns,
):
    k0 = ist[I_K0]
    cap = coh_date.shape[0]
    s = fst[F_SCALE]
    while ist[I_SIZE] > 0:
        h = ist[I_HEAD]
        if date - coh_date[h] < window_ns:
            break
        seq = coh_seq[h]
        for d in range(coh_n[h]):
            i = coh_bin[h, d] - k0
            m = coh_mass[h, d]
            if d < n_half:
                if wipe_long[i] <= seq:
                    v = book_long[i] - m
                    book_long[i] = v if v > 0.0 else 0.0
                    fst[F_TOT_LONG] -= m
                    fst[F_EXPIRED_LONG] += m * s
            else:
                if wipe_short[i] <= seq:
                    v = book_short[i] - m
                    book_short[i] = v if v > 0.0 else 0.0
                    fst[F_TOT_SHORT] -= m
                    fst[F_EXPIRED_SHORT] += m * s
        ist[I_HEAD] = (h + 1) % cap
        ist[I_SIZE] -= 1
    if fst[F_TOT_LONG] < 0.0:
        fst[F_TOT_LONG] = 0.0
    if fst[F_TOT_SHORT] < 0.0:
        fst[F_TOT_SHORT] = 0.0


@njit(cache=True)
def _scan_clusters(
    book, s, start, stop, step, mean, dense, max_gap, min_mass, k0, out_lo, out_hi, out_sum, out_wk
):
    """Clusters on one side, scanning from ``start`` toward ``stop`` (exclusive) by ``step``.

    A cluster is a run of dense bins (mass >= dense * mean) that may bridge up to ``max_gap``
    non-dense bins; it is kept when its mass reaches ``min_mass``. Returns the number found;
    ``out_*`` get the array positions of its lowest/highest bin, its mass and the mass-weighted
    mean *absolute* bin coordinate (bin centres at ``k + 0.5``; absolute so that the result does
    not depend on where the array starts).
    """
    n = 0
    in_run = False
    run_sum = 0.0
    run_wk = 0.0
    run_first = 0
    run_last = 0
    gap = 0
    gap_sum = 0.0
    gap_wk = 0.0
    thr = dense * mean
    i = start
    while i != stop:
        m = book[i] * s
        if m > 0.0 and m >= thr:
            if not in_run:
                in_run = True
                run_sum = 0.0
                run_wk = 0.0
                run_first = i
            else:
                run_sum += gap_sum
                run_wk += gap_wk
            gap = 0
            gap_sum = 0.0
            gap_wk = 0.0
            run_sum += m
            run_wk += m * (i + k0 + 0.5)
            run_last = i
        elif in_run:
            gap += 1
            gap_sum += m
            gap_wk += m * (i + k0 + 0.5)
            if gap > max_gap:
                if run_sum >= min_mass and run_sum > 0.0:
                    out_lo[n] = min(run_first, run_last)
                    out_hi[n] = max(run_first, run_last)
                    out_sum[n] = run_sum
                    out_wk[n] = run_wk / run_sum
                    n += 1
                in_run = False
                gap = 0
                gap_sum = 0.0
                gap_wk = 0.0
        i += step
    if in_run and run_sum >= min_mass and run_sum > 0.0:
        out_lo[n] = min(run_first, run_last)
        out_hi[n] = max(run_first, run_last)
        out_sum[n] = run_sum
        out_wk[n] = run_wk / run_sum
        n += 1
    return n


@njit(cache=True)
def _summaries(close, book_long, book_short, ist, fst, prm, out_row, w_lo, w_hi, w_sum, w_wk):
    nb = book_long.shape[0]
    k0 = ist[I_K0]
    s = fst[F_SCALE]
    inv_logb = prm[P_INV_LOGB]
    logb = prm[P_LOGB]
    kc = _bin_of(close, inv_logb) - k0
    kb_lo = _bin_of(close * (1.0 - prm[P_BAND]), inv_logb) - k0
    kb_hi = _bin_of(close * (1.0 + prm[P_BAND]), inv_logb) - k0
    kr_lo = _bin_of(close * (1.0 - prm[P_RANGE]), inv_logb) - k0
    kr_hi = _bin_of(close * (1.0 + prm[P_RANGE]), inv_logb) - k0
    kb_lo = max(kb_lo, 0)
    kb_hi = min(kb_hi, nb - 1)
    kr_lo = max(kr_lo, 0)
    kr_hi = min(kr_hi, nb - 1)
    kc = min(max(kc, 0), nb - 1)

    long_band = 0.0
    for i in range(kb_lo, kc + 1):
        long_band += book_long[i]
    short_band = 0.0
    for i in range(kc, kb_hi + 1):
        short_band += book_short[i]
    out_row[O_LONG_BAND] = long_band * s
    out_row[O_SHORT_BAND] = short_band * s

    long_range = 0.0
    for i in range(kr_lo, kc + 1):
        long_range += book_long[i]
    short_range = 0.0
    for i in range(kc, kr_hi + 1):
        short_range += book_short[i]
    long_range *= s
    short_range *= s
    n_long_bins = kc - kr_lo + 1
    n_short_bins = kr_hi - kc + 1
    dense = prm[P_DENSE]
    max_gap = np.int64(prm[P_MAX_GAP_BINS])
    min_share = prm[P_MIN_SHARE]
    power = prm[P_MAG_POWER]
    min_dist = 100.0 * (math.exp(logb) - 1.0)  # one bin, in %

    best_score = -1.0
    best_price = np.nan
    best_side = np.nan
    total_both = long_range + short_range

    for side in range(2):
        if side == 0:
            book = book_long
            side_total = long_range
            nbins = n_long_bins
            start = kc
            stop = kr_lo - 1
            step = -1
        else:
            book = book_short
            side_total = short_range
            nbins = n_short_bins
            start = kc
            stop = kr_hi + 1
            step = 1
        base = O_LC_PRICE if side == 0 else O_SC_PRICE
        out_row[base] = np.nan
        out_row[base + 1] = np.nan
        out_row[base + 2] = np.nan
        out_row[base + 3] = np.nan
        if side_total <= 0.0 or nbins <= 0:
            continue
        mean = side_total / nbins
        n = _scan_clusters(
            book,
            s,
            start,
            stop,
            step,
            mean,
            dense,
            max_gap,
            min_share * side_total,
            k0,
            w_lo,
            w_hi,
            w_sum,
            w_wk,
        )
        for c in range(n):
            centre = math.exp(w_wk[c] * logb)
            if c == 0:
                out_row[base] = centre
                out_row[base + 1] = math.exp((w_lo[c] + k0) * logb)
                out_row[base + 2] = math.exp((w_hi[c] + k0 + 1) * logb)
                out_row[base + 3] = w_sum[c]
            dist = abs(centre / close - 1.0) * 100.0
            if dist < min_dist:
                dist = min_dist
            score = (w_sum[c] / total_both) / dist**power
            if score > best_score:
                best_score = score
                best_price = centre
                best_side = -1.0 if side == 0 else 1.0
    out_row[O_MAG_PRICE] = best_price
    out_row[O_MAG_SIDE] = best_side
    out_row[O_MAG_SCORE] = best_score if best_score >= 0.0 else np.nan

    # liquidity gaps: distance to the first bin of meaningful combined mass
    out_row[O_GAP_ABOVE] = np.nan
    out_row[O_GAP_BELOW] = np.nan
    n_all = kr_hi - kr_lo + 1
    if total_both > 0.0 and n_all > 0:
        thr = prm[P_GAP_FACTOR] * total_both / n_all
        for i in range(kc + 1, kr_hi + 1):
            m = (book_long[i] + book_short[i]) * s
            if m > 0.0 and m >= thr:
                out_row[O_GAP_ABOVE] = (math.exp((i + k0) * logb) / close - 1.0) * 100.0
                break
        for i in range(kc - 1, kr_lo - 1, -1):
            m = (book_long[i] + book_short[i]) * s
            if m > 0.0 and m >= thr:
                out_row[O_GAP_BELOW] = (1.0 - math.exp((i + k0 + 1) * logb) / close) * 100.0
                break


@njit(cache=True)
def run_candles(
    dates,
    opens,
    highs,
    lows,
    closes,
    volumes,
    oi,
    taker_buy,
    ls_ratio,
    book_long,
    book_short,
    wipe_long,
    wipe_short,
    coh_date,
    coh_seq,
    coh_bin,
    coh_mass,
    coh_n,
    ist,
    fst,
    prm,
    f_long_log,
    f_short_log,
    lev_w,
    n_entries,
    out,
    summaries,
    snap_rows,
    snap_k_lo,
    snap_long,
    snap_short,
):
    """Advance the state over candles ``0..n-1``; row ``t`` of ``out`` gets candle ``t``'s values.

    ``lev_w`` holds the leverage weights: one row for all candles, or one row per candle (several
    exchanges, each with its own margin tiers, weighted by their share of the candle's volume).
    ``snap_rows`` (sorted candle indices) selects candles whose book, bins
    ``snap_k_lo .. snap_k_lo + snap_long.shape[1] - 1`` (absolute), is copied into
    ``snap_long``/``snap_short`` (real mass, float32) for heatmaps.
    """
    n = dates.shape[0]
    n_lev = f_long_log.shape[0]
    n_half = n_lev * n_entries
    inv_logb = prm[P_INV_LOGB]
    window_ns = prm[P_WINDOW_NS]
    half_life_ns = prm[P_HALF_LIFE_NS]
    cap = coh_date.shape[0]
    nb = book_long.shape[0]
    max_runs = nb // 2 + 2
    w_lo = np.empty(max_runs, dtype=np.int64)
    w_hi = np.empty(max_runs, dtype=np.int64)
    w_sum = np.empty(max_runs, dtype=np.float64)
    w_wk = np.empty(max_runs, dtype=np.float64)
    entries = np.empty(n_entries, dtype=np.float64)
    n_snap = snap_rows.shape[0]
    snap_pos = 0
    snap_w = snap_long.shape[1]

    for t in range(n):
        k0 = ist[I_K0]
        date = dates[t]
        o = opens[t]
        h = highs[t]
        lo = lows[t]
        c = closes[t]
        vol = volumes[t]
        filler = vol <= 0.0
        seq = ist[I_SEQ]
        wrow = t if lev_w.shape[0] == n else 0  # per-candle leverage weights, or one row
        has_prev = ist[I_HAS_PREV] == 1
        dt = float(date - ist[I_PREV_DATE]) if has_prev else 0.0

        # 0. expire cohorts older than the window
        _expire(
            date,
            book_long,
            book_short,
            wipe_long,
            wipe_short,
            coh_date,
            coh_seq,
            coh_bin,
            coh_mass,
            coh_n,
            n_half,
            ist,
            fst,
            window_ns,
        )
        s = fst[F_SCALE]

        # 1. consume: the price path from the previous close through this candle's range
        liq_long = 0.0
        liq_short = 0.0
        if not filler:
            p_lo = lo
            p_hi = h
            if has_prev:
                pc = fst[F_PREV_CLOSE]
                if pc < p_lo:
                    p_lo = pc
                if pc > p_hi:
                    p_hi = pc
            kl = np.int64(math.ceil(math.log(p_lo) * inv_logb - 0.5))
            top = ist[I_LONG_TOP]
            if top != NONE_TOP and kl <= top:
                i0 = max(kl - k0, 0)
                i1 = min(top - k0, nb - 1)
                acc = 0.0
                for i in range(i0, i1 + 1):
                    acc += book_long[i]
                    book_long[i] = 0.0
                    wipe_long[i] = seq
                liq_long = acc * s
                fst[F_TOT_LONG] -= acc
                if fst[F_TOT_LONG] < 0.0:
                    fst[F_TOT_LONG] = 0.0
                ist[I_LONG_TOP] = kl - 1
            kh = np.int64(math.floor(math.log(p_hi) * inv_logb - 0.5))
            bot = ist[I_SHORT_BOT]
            if bot != NONE_BOT and kh >= bot:
                i0 = max(bot - k0, 0)
                i1 = min(kh - k0, nb - 1)
                acc = 0.0
                for i in range(i0, i1 + 1):
                    acc += book_short[i]
                    book_short[i] = 0.0
                    wipe_short[i] = seq
                liq_short = acc * s
                fst[F_TOT_SHORT] -= acc
                if fst[F_TOT_SHORT] < 0.0:
                    fst[F_TOT_SHORT] = 0.0
                ist[I_SHORT_BOT] = kh + 1
            fst[F_LIQ_LONG] += liq_long
            fst[F_LIQ_SHORT] += liq_short

        # 2. close: owners close positions (open-interest drop, else time decay)
        oi_t = oi[t]
        oi_prev = fst[F_PREV_OI]
        have_doi = (not math.isnan(oi_t)) and (not math.isnan(oi_prev)) and oi_prev > 0.0
        frac = 0.0
        if have_doi:
            if oi_t < oi_prev:
                frac = (oi_prev - oi_t) / oi_prev
            if prm[P_DECAY_WITH_OI] > 0.0 and half_life_ns > 0.0 and dt > 0.0:
                frac = 1.0 - (1.0 - frac) * math.pow(0.5, dt / half_life_ns)
        elif half_life_ns > 0.0 and dt > 0.0:
            frac = 1.0 - math.pow(0.5, dt / half_life_ns)
        if frac > 0.0:
            if frac > 1.0 - 1e-12:
                frac = 1.0 - 1e-12
            fst[F_CLOSED_LONG] += fst[F_TOT_LONG] * s * frac
            fst[F_CLOSED_SHORT] += fst[F_TOT_SHORT] * s * frac
            s = s * (1.0 - frac)
            fst[F_SCALE] = s
            if s < RENORM_BELOW:
                _renormalise(book_long, book_short, coh_mass, fst)
                s = fst[F_SCALE]

        # 3. open: new leveraged positions at entry prices spread over the candle
        opened_long = 0.0
        opened_short = 0.0
        slot = (ist[I_HEAD] + ist[I_SIZE]) % cap
        coh_n[slot] = 0
        if not filler:
            typical = (h + lo + c) / 3.0
            if have_doi:
                notional = (oi_t - oi_prev) * typical if oi_t > oi_prev else 0.0
            else:
                notional = prm[P_PARTICIPATION] * vol * typical
            tb = taker_buy[t]
            lsr = ls_ratio[t]
            if not math.isnan(tb) and vol > 0.0:
                share = tb / vol
            elif not math.isnan(lsr) and lsr > 0.0:
                share = lsr / (1.0 + lsr)
            elif h > lo:
                share = 0.5 + 0.5 * prm[P_TILT] * (c - o) / (h - lo)
            else:
                share = 0.5
            if share < 0.0:
                share = 0.0
            if share > 1.0:
                share = 1.0
            opened_long = notional * share
            opened_short = notional - opened_long
            if notional > 0.0:
                # entry prices: equal-probability strata of a triangular distribution
                span = h - lo
                if span <= 0.0:
                    for e in range(n_entries):
                        entries[e] = c
                else:
                    mode = typical
                    fc = (mode - lo) / span
                    for e in range(n_entries):
                        u = (e + 0.5) / n_entries
                        if u < fc:
                            entries[e] = lo + math.sqrt(u * span * (mode - lo))
                        else:
                            entries[e] = h - math.sqrt((1.0 - u) * span * (h - mode))
                for e in range(n_entries):
                    entries[e] = math.log(entries[e])
                inv_s = 1.0 / s
                d = 0
                for side in range(2):
                    side_mass = opened_long if side == 0 else opened_short
                    for j in range(n_lev):
                        m = side_mass * lev_w[wrow, j] / n_entries * inv_s
                        flog = f_long_log[j] if side == 0 else f_short_log[j]
                        for e in range(n_entries):
                            k = np.int64(math.floor((entries[e] + flog) * inv_logb))
                            i = k - k0
                            if side == 0:
                                book_long[i] += m
                                if k > ist[I_LONG_TOP] or ist[I_LONG_TOP] == NONE_TOP:
                                    ist[I_LONG_TOP] = k
                            else:
                                book_short[i] += m
                                if k < ist[I_SHORT_BOT] or ist[I_SHORT_BOT] == NONE_BOT:
                                    ist[I_SHORT_BOT] = k
                            coh_bin[slot, d] = k
                            coh_mass[slot, d] = m
                            d += 1
                    if side == 0:
                        fst[F_TOT_LONG] += opened_long * inv_s
                    else:
                        fst[F_TOT_SHORT] += opened_short * inv_s
                coh_n[slot] = d
                fst[F_OPENED_LONG] += opened_long
                fst[F_OPENED_SHORT] += opened_short
        coh_date[slot] = date
        coh_seq[slot] = seq
        ist[I_SIZE] += 1

        # bookkeeping for the next candle
        if not math.isnan(oi_t):
            fst[F_PREV_OI] = oi_t
        elif not filler:
            fst[F_PREV_OI] = np.nan
        fst[F_PREV_CLOSE] = c
        ist[I_PREV_DATE] = date
        ist[I_HAS_PREV] = 1
        ist[I_SEQ] = seq + 1

        row = out[t]
        row[O_LONG_LIQ] = liq_long
        row[O_SHORT_LIQ] = liq_short
        row[O_LONG_TOTAL] = fst[F_TOT_LONG] * s
        row[O_SHORT_TOTAL] = fst[F_TOT_SHORT] * s
        row[O_LONG_OPENED] = opened_long
        row[O_SHORT_OPENED] = opened_short
        if summaries:
            _summaries(c, book_long, book_short, ist, fst, prm, row, w_lo, w_hi, w_sum, w_wk)

        while snap_pos < n_snap and snap_rows[snap_pos] == t:
            base = snap_k_lo - k0
            for j in range(snap_w):
                i = base + j
                if 0 <= i < nb:
                    snap_long[snap_pos, j] = book_long[i] * s
                    snap_short[snap_pos, j] = book_short[i] * s
                else:
                    snap_long[snap_pos, j] = 0.0
                    snap_short[snap_pos, j] = 0.0
            snap_pos += 1
