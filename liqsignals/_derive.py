"""numba kernel of the derived ``liq_*`` columns (ATR, distances, drift, intensity, sweeps,
tracking) from the engine's rows: one pass over the candles instead of one numpy operation per
column, for the batch functions and for :class:`liqsignals.FeatureStream` alike (the same
kernel, so a stream and a batch run agree bit for bit by construction).

The arithmetic is that of the plain numpy formulation the columns were defined with
(``tests/test_derive_kernel.py`` keeps that formulation as the reference): the same operations
in the same order, the ATR's window sum in numpy's pairwise order, the intensity as pandas'
rolling ``rank(pct=True, method="max")`` (share of the window's valid values ``<=`` the value).

Layout
------
``px``: ``(3, m)`` high, low, close. ``lv``: ``(m, k)`` the engine's rows. ``src``: the
positions in ``lv`` of the columns in :data:`INPUTS`; ``slots``: the positions of low, high,
price of each side's tracked clusters (nearest, second, third, wall), flat: entry
``(side * 4 + slot) * 3 + field``. Rows
``first .. m - 1`` are derived; the rows before them are context (ATR window, drift, previous
candle). ``hist``: the nearest-cluster sizes of the candles before row ``first`` (the last
``intensity_lookback - 1`` of them are used). ``out``: ``(len(DERIVED), m - first)``, or wider
with ``dst`` giving the row of each derived column (-1: not written).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from liqsignals._tracking import track_row

#: the engine columns the kernel reads, in the order of ``src``
INPUTS: tuple[str, ...] = (
    "liq_long_total",
    "liq_long_band",
    "liq_short_band",
    "liq_long_cluster_price",
    "liq_long_cluster_low",
    "liq_long_cluster_high",
    "liq_long_cluster_size",
    "liq_short_cluster_price",
    "liq_short_cluster_low",
    "liq_short_cluster_high",
    "liq_short_cluster_size",
    "liq_magnet_price",
    "liq_magnet_side",
    "liq_magnet_mean_price",
    "liq_long_liquidated",
    "liq_short_liquidated",
    "liq_long_cluster2_price",
    "liq_short_cluster2_price",
    "liq_long_cluster3_price",
    "liq_short_cluster3_price",
    "liq_long_wall_price",
    "liq_short_wall_price",
)
#: the tracked clusters of a side, in slot order
SLOTS: tuple[str, ...] = ("cluster", "cluster2", "cluster3", "wall")

_DIST = tuple(
    f"liq_{side}_{slot}_dist_{unit}"
    for slot in ("cluster2", "cluster3", "wall")
    for unit in ("pct", "atr")
    for side in ("long", "short")
)
#: the kernel's output rows, in order (``_near``: the size of the nearest cluster the
#: intensity ranks, kept by a stream)
DERIVED: tuple[str, ...] = (
    "liq_imbalance",
    "liq_atr",
    "liq_long_cluster_dist_pct",
    "liq_short_cluster_dist_pct",
    "liq_long_cluster_dist_atr",
    "liq_short_cluster_dist_atr",
    *_DIST,
    "liq_magnet_dist_pct",
    "liq_magnet_mean_dist_pct",
    "liq_magnet_drift",
    "liq_intensity",
    "liq_intensity_bucket",
    "liq_sweep_long",
    "liq_sweep_long_through",
    "liq_sweep_long_notional",
    "liq_sweep_long_low",
    "liq_sweep_short",
    "liq_sweep_short_through",
    "liq_sweep_short_notional",
    "liq_sweep_short_high",
    "_near",
    *(f"liq_{side}_{c}" for side in ("long", "short")
      for c in ("cluster_age", "cluster_fresh", "cluster_same", "cluster_drift_pct", "wall_age")),
    "liq_magnet_age",
    "liq_magnet_tracked_drift",
)  # fmt: skip
_O_NEAR = DERIVED.index("_near")
_O_TRACK = _O_NEAR + 1
_O_INT = DERIVED.index("liq_intensity")
_O_SWEEP = DERIVED.index("liq_sweep_long")
_O_MAG = DERIVED.index("liq_magnet_dist_pct")


@njit(cache=True, inline="always", error_model="numpy")
def _block_sum(a, lo, n):
    """:func:`pairwise_sum` of at most 128 values (numpy's block: 8 accumulators), inlined
    where it is called."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - (n % 8):
        q = lo + i
        r0 += a[q]
        r1 += a[q + 1]
        r2 += a[q + 2]
        r3 += a[q + 3]
        r4 += a[q + 4]
        r5 += a[q + 5]
        r6 += a[q + 6]
        r7 += a[q + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True, error_model="numpy")
def pairwise_sum(a, lo, n):
    """``a[lo : lo + n].sum()`` in numpy's order (pairwise, blocks of 8 accumulators)."""
    if n <= 128:
        return _block_sum(a, lo, n)
    n2 = n // 2
    n2 -= n2 % 8
    return pairwise_sum(a, lo, n2) + pairwise_sum(a, lo + n2, n - n2)


@njit(cache=True)
def _fmax(a, b):
    if b != b:
        return a
    if a != a:
        return b
    return a if a >= b else b


#: output rows per chunk of :func:`rank_max` (at least four lookbacks)
_RANK_CHUNK = 2048


@njit(cache=True, error_model="numpy")
def rank_max(series, start, lookback, out, dst):
    """``out[dst, i - start]`` for each ``i >= start``: the share of the valid values of
    ``series[i - lookback + 1 .. i]`` that are ``<= series[i]`` (NaN with fewer than
    ``max(2, lookback // 4)`` valid values or a NaN value); a few rows by counting, many through
    a Fenwick tree."""
    n = series.shape[0]
    minp = max(2, lookback // 4)
    if n - start <= 16:
        for i in range(start, n):
            x = series[i]
            cnt = 0
            le = 0
            for q in range(max(0, i - lookback + 1), i + 1):
                v = series[q]
                if v == v:
                    cnt += 1
                    if v <= x:
                        le += 1
            out[dst, i - start] = le / cnt if (x == x and cnt >= minp) else np.nan
        return
    # many rows, in chunks: counts of a Fenwick tree over the values the chunk's windows hold,
    # ranked once per chunk (one sort; the 1-based tree index of each valid value its place
    # among the distinct values), so that the tree is small and stays in cache
    lo = max(0, start - lookback + 1)
    chunk = max(_RANK_CHUNK, 4 * lookback)
    tree = np.zeros(chunk + lookback + 1, dtype=np.int64)
    for c0 in range(start, n, chunk):
        c1 = min(n, c0 + chunk)
        w0 = max(lo, c0 - lookback + 1)  # the first value in the window of row c0
        vals = series[w0:c1]
        order = np.argsort(vals, kind="mergesort")  # NaN last
        pos = np.empty(vals.shape[0], dtype=np.int64)
        distinct = 0
        prev = np.nan
        for q in range(order.shape[0]):
            v = vals[order[q]]
            if v != v:
                break
            if not (v == prev):
                distinct += 1
                prev = v
            pos[order[q]] = distinct
        nt = distinct + 1
        tree[:nt] = 0
        cnt = 0
        for i in range(w0, c1):
            if i >= c0 and i - lookback >= w0 and series[i - lookback] == series[i - lookback]:
                q = pos[i - lookback - w0]
                while q < nt:
                    tree[q] -= 1
                    q += q & -q
                cnt -= 1
            x = series[i]
            if x == x:
                q = pos[i - w0]
                while q < nt:
                    tree[q] += 1
                    q += q & -q
                cnt += 1
            if i >= c0:
                if x == x and cnt >= minp:
                    le = 0
                    q = pos[i - w0]
                    while q > 0:
                        le += tree[q]
                        q -= q & -q
                    out[dst, i - start] = le / cnt
                else:
                    out[dst, i - start] = np.nan


#: candles per block of :func:`derive_rows` (the block's engine values are gathered into a small
#: scratch first, so that the candle loop reads them from cache whatever the layout of ``lv``)
_BLOCK = 128


@njit(cache=True)
def _gather(lv, tr, cols, lo, hi, g, g0):
    """``g[g0 + t - lo, j] = lv[t, cols[j]]`` for ``t`` in ``lo .. hi - 1`` (``lv[cols[j], t]``
    if ``tr``: the engine's rows transposed, one column after another)."""
    if tr:
        for j in range(cols.shape[0]):
            c = cols[j]
            for t in range(lo, hi):
                g[g0 + t - lo, j] = lv[c, t]
    else:
        for t in range(lo, hi):
            for j in range(cols.shape[0]):
                g[g0 + t - lo, j] = lv[t, cols[j]]


@njit(cache=True, error_model="numpy")
def derive_rows(px, lv, src, slots, first, hist, look, state, out, dst):
    """The derived columns of rows ``first ..`` (see the module docstring); ``look``: atr
    period, intensity lookback, drift lookback, age limit, fresh age and optionally a sixth
    entry, non-zero if ``lv`` holds the engine's rows transposed (``(k, m)``: one column after
    another, as a frame's block); ``state``: the tracking's state
    (:func:`liqsignals._tracking.new_state`) before row ``first`` (updated in place)."""
    tr = look.shape[0] > 5 and look[5] != 0.0
    high, low, close = px[0], px[1], px[2]
    m = px.shape[1]
    n = m - first
    period, lookback, drift = int(look[0]), int(look[1]), int(look[2])
    nan = np.nan
    # true ranges of the rows the ATR windows reach
    tr_lo = max(0, first - period + 1)
    trs = np.empty(m)
    for t in range(tr_lo, m):
        prev = close[t - 1] if t >= 1 else nan
        trs[t] = _fmax(high[t] - low[t], _fmax(abs(high[t] - prev), abs(low[t] - prev)))
    series = np.empty(hist.shape[0] + n)
    series[: hist.shape[0]] = hist
    res = np.empty(_O_NEAR + 1)
    tres = np.empty(12)
    # the tracking alternates between ``state`` and a scratch state, candle by candle
    cur = state
    nxt = np.empty_like(state)
    ns = src.shape[0]
    # a block's engine values: row 0 the candle before the block, then the block's candles
    size = min(_BLOCK, n)
    gs = np.empty((size + 1, ns))
    gk = np.empty((size, slots.shape[0]))
    c_mag = src[11]
    for b in range(first, m, _BLOCK):
        e = min(m, b + _BLOCK)
        if b >= 1:
            _gather(lv, tr, src, b - 1, e, gs, 0)
        else:
            _gather(lv, tr, src, b, e, gs, 1)
        _gather(lv, tr, slots, b, e, gk, 0)
        for t in range(b, e):
            r = t - first
            g = t - b + 1  # the candle's row in ``gs`` (indexed in place: no views)
            c = close[t]
            warm = gs[g, 0] != gs[g, 0]
            for k in range(_O_NEAR + 1):
                res[k] = nan
            lb, sb = gs[g, 1], gs[g, 2]
            tot = lb + sb
            if tot > 0 and not warm:
                res[0] = (sb - lb) / tot
            atr = nan
            if t >= period - 1:
                lo_t = t - period + 1
                atr = (
                    _block_sum(trs, lo_t, period)
                    if period <= 128
                    else pairwise_sum(trs, lo_t, period)
                ) / period
            lc, sc = gs[g, 3], gs[g, 7]
            dl = (c - lc) / c * 100.0
            ds = (sc - c) / c * 100.0
            if not warm:
                res[1] = atr
                res[2] = dl
                res[3] = ds
                if atr > 0:
                    res[4] = (c - lc) / atr
                    res[5] = (sc - c) / atr
                for s in range(3):
                    lp, sp = gs[g, 16 + 2 * s], gs[g, 17 + 2 * s]
                    res[6 + 4 * s] = (c - lp) / c * 100.0
                    res[7 + 4 * s] = (sp - c) / c * 100.0
                    if atr > 0:
                        res[8 + 4 * s] = (c - lp) / atr
                        res[9 + 4 * s] = (sp - c) / atr
                mag = gs[g, 11]
                res[_O_MAG] = (mag / c - 1.0) * 100.0
                res[_O_MAG + 1] = (gs[g, 13] / c - 1.0) * 100.0
                prev_mag = nan
                if t >= drift:
                    prev_mag = lv[c_mag, t - drift] if tr else lv[t - drift, c_mag]
                res[_O_MAG + 2] = (mag / prev_mag - 1.0) * 100.0
            near = gs[g, 6] if (ds != ds or (dl == dl and dl <= ds)) else gs[g, 10]
            res[_O_NEAR] = near
            series[hist.shape[0] + r] = near
            # sweeps against the previous candle's nearest clusters
            if t >= 1:
                p_lc, p_lc_lo, p_lc_hi = gs[g - 1, 3], gs[g - 1, 4], gs[g - 1, 5]
                p_sc, p_sc_lo, p_sc_hi = gs[g - 1, 7], gs[g - 1, 8], gs[g - 1, 9]
                undefined = warm or gs[g - 1, 0] != gs[g - 1, 0]
            else:
                p_lc = p_lc_lo = p_lc_hi = p_sc = p_sc_lo = p_sc_hi = nan
                undefined = True
            hit_long = low[t] <= p_lc
            hit_short = high[t] >= p_sc
            sw_l = hit_long and c > p_lc_hi
            sw_l_thru = hit_long and c < p_lc_lo
            sw_s = hit_short and c < p_sc_lo
            sw_s_thru = hit_short and c > p_sc_hi
            o = _O_SWEEP
            if not undefined:
                res[o] = 1.0 if sw_l else 0.0
                res[o + 1] = 1.0 if sw_l_thru else 0.0
                res[o + 2] = gs[g, 14] if (sw_l or sw_l_thru) else 0.0
                res[o + 4] = 1.0 if sw_s else 0.0
                res[o + 5] = 1.0 if sw_s_thru else 0.0
                res[o + 6] = gs[g, 15] if (sw_s or sw_s_thru) else 0.0
            if sw_l or sw_l_thru:
                res[o + 3] = p_lc_lo
            if sw_s or sw_s_thru:
                res[o + 7] = p_sc_hi
            for k in range(_O_NEAR + 1):
                if dst[k] >= 0 and k != _O_INT and k != _O_INT + 1:
                    out[dst[k], r] = res[k]
            # cluster tracking (age, fresh flag, continuity, drift) from ``state``
            track_row(gk, t - b, gs[g, 11], gs[g, 12], look, cur, nxt, tres)
            cur, nxt = nxt, cur
            for q in range(12):
                d = dst[_O_TRACK + q]
                if d >= 0:
                    out[d, r] = tres[q]
    if n % 2 == 1:
        state[:, :, :] = cur  # the state after the last row is the scratch one
    # intensity: the nearest cluster's size ranked among its last ``lookback`` values
    if dst[_O_INT] >= 0:
        rank_max(series, hist.shape[0], lookback, out, dst[_O_INT])
        d_b = dst[_O_INT + 1]
        if d_b >= 0:
            for r in range(n):
                v = out[dst[_O_INT], r]
                out[d_b, r] = np.floor(min(max(v, 0.0), 0.999999) * 4.0) if v == v else nan


@njit(cache=True)
def copy_rows(lv, first, dst, out):
    """``out[dst[j], r] = lv[first + r, j]`` (the engine's columns into the output rows; in
    blocks of candles so that both sides stay in cache)."""
    m, k = lv.shape
    for b in range(first, m, 256):
        e = min(m, b + 256)
        for j in range(k):
            d = dst[j]
            if d >= 0:
                for t in range(b, e):
                    out[d, t - first] = lv[t, j]


#: where the parts of :func:`stream_step`'s ``meta`` start: the five lookbacks (atr period,
#: intensity lookback, drift lookback, age limit, fresh age), ``src``, ``slots``, ``dst``, then the
#: output row of each engine column
META_SRC = 5
META_SLOTS = META_SRC + len(INPUTS)
META_DST = META_SLOTS + 2 * len(SLOTS) * 3
META_LEVELS = META_DST + len(DERIVED)


@njit(cache=True, error_model="numpy")
def stream_step(pxb, lvb, new_px, new_row, near, counts, meta, state, out):
    """One new candle of a stream: its high, low, close ``new_px`` and engine row ``new_row``
    join the tail (``pxb`` ``(3, cap)``, ``lvb`` ``(cap, k)``, the last ``counts[0]`` columns /
    rows valid), its feature rows are written into ``out[:, :1]`` (see :func:`derive_rows`) and
    its nearest-cluster size joins ``near`` (the last ``counts[1]`` entries valid)."""
    cap, k = lvb.shape
    filled = min(cap, counts[0] + 1)
    for t in range(cap - filled, cap - 1):
        for f in range(3):
            pxb[f, t] = pxb[f, t + 1]
        for j in range(k):
            lvb[t, j] = lvb[t + 1, j]
    for f in range(3):
        pxb[f, cap - 1] = new_px[f]
    for j in range(k):
        lvb[cap - 1, j] = new_row[j]
    counts[0] = filled
    look = np.empty(5)
    for q in range(5):
        look[q] = meta[q]
    src = meta[META_SRC:META_SLOTS]
    slots = meta[META_SLOTS:META_DST]
    dst = meta[META_DST:META_LEVELS]
    px = pxb[:, cap - filled :]
    lv = lvb[cap - filled :]
    nl = near.shape[0]
    derive_rows(px, lv, src, slots, filled - 1, near[nl - counts[1] :], look, state, out, dst)
    copy_rows(lv, filled - 1, meta[META_LEVELS:], out)
    held = min(nl, counts[1] + 1)
    for q in range(nl - held, nl - 1):
        near[q] = near[q + 1]
    near[nl - 1] = out[dst[_O_NEAR], 0]
    counts[1] = held
