"""numba kernel of the cluster tracking: which cluster of a candle is which of the previous one.

The engine reports a few clusters per side and candle (nearest, second, third, the wall: the
"slots"), each as its lower and upper edge and its centre. :func:`track_row` follows them
through the candles, one candle at a time: a cluster of candle ``t`` *is* the first cluster of
candle ``t - 1`` (in slot order) on the same side whose price span overlaps its own (``low_t < high_{t-1}`` and ``low_{t-1} < high_t``);
otherwise it is new. A tracked cluster carries its age (candles since it became significant,
counted up to ``cap``) and its last ``lookback`` centres, from which its drift over ``lookback``
candles follows.

The recursion runs from a :class:`TrackState` (the previous candle's slots) and leaves the state
after the last candle there, so a stream that keeps the state gets the values of one run over the
whole history, bit for bit. Ages are capped so that a run started ``cap`` or more candles earlier
(from an empty state) gives the same values too: the derived columns look back a bounded number of
candles.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

#: the previous candle's slots of both sides (leading axis: 0 long, 1 short): edges, age (NaN:
#: empty slot), centres along the chain (``hist[side, j, m]``: the centre ``m`` candles back) and
#: how many of them are known
TrackState = namedtuple("TrackState", ["lo", "hi", "age", "hist", "hlen"])

#: the columns of :func:`track_row`'s output, per side (long first, then short), then the
#: magnet's two
SIDE_COLUMNS: tuple[str, ...] = ("cluster_age", "cluster_fresh", "cluster_same",
                                 "cluster_drift_pct", "wall_age")  # fmt: skip
MAGNET_COLUMNS: tuple[str, ...] = ("magnet_age", "magnet_tracked_drift")


def new_state(slots: int, lookback: int) -> TrackState:
    """An empty :class:`TrackState` for ``slots`` clusters per side and candle and a drift over
    ``lookback`` candles."""
    return TrackState(
        np.full((2, slots), np.nan),
        np.full((2, slots), np.nan),
        np.full((2, slots), np.nan),
        np.full((2, slots, lookback + 1), np.nan),
        np.zeros((2, slots), dtype=np.int64),
    )


@njit(cache=True, error_model="numpy")
def track_row(rows, r, mag_price, mag_side, look, state, work, res):
    """Follow one candle's clusters from ``state`` (updated in place) and write the
    :data:`SIDE_COLUMNS` of both sides, then the :data:`MAGNET_COLUMNS` into ``res`` (12
    values, NaN where undefined).

    ``rows[r]``: low, high, price of each side's slots (entry ``(side * k + slot) * 3 + field``;
    slot 0 the nearest cluster, the last the wall); ``look[3]``, ``look[4]``: the age cap and
    the fresh age; ``work``: scratch of ``(k, lookback + 5)``. A cluster is the first slot of
    the previous candle (slot order) on its side whose span overlaps its own; it carries that
    slot's age (capped) and centres, from which its drift over ``lookback`` candles follows (NaN
    until tracked that long). The magnet is the first slot of its side with its centre.

    Arrays are indexed in place, not through views (a view costs a reference count each)."""
    s_lo, s_hi, s_age, s_hist, s_hlen = state.lo, state.hi, state.age, state.hist, state.hlen
    k = s_lo.shape[1]
    lookback = s_hist.shape[2] - 1
    w_age, w_len, w_lo, w_hi = lookback + 1, lookback + 2, lookback + 3, lookback + 4
    cap, fresh_age = look[3], look[4]
    for q in range(12):
        res[q] = np.nan
    for side in range(2):
        c = 5 * side
        sign = -1.0 if side == 0 else 1.0
        for j in range(k):
            base = (side * k + j) * 3
            lo, hi, p = rows[r, base], rows[r, base + 1], rows[r, base + 2]
            work[j, w_lo] = lo
            work[j, w_hi] = hi
            if p != p:
                work[j, w_age] = np.nan
                work[j, w_len] = 0.0
                continue
            m = -1
            for i in range(k):
                a_i = s_age[side, i]
                if a_i == a_i and lo < s_hi[side, i] and s_lo[side, i] < hi:
                    m = i
                    break
            # the centres along the chain: entries past the chain's length are never read
            work[j, 0] = p
            if m >= 0:
                age = min(cap, s_age[side, m] + 1.0)
                h = min(s_hlen[side, m], lookback)
                for q in range(h):
                    work[j, q + 1] = s_hist[side, m, q]
                length = min(s_hlen[side, m] + 1, lookback + 1)
            else:
                age = 0.0
                length = 1
            work[j, w_age] = age
            work[j, w_len] = length
            drift = np.nan
            if length == lookback + 1:
                drift = (p / work[j, lookback] - 1.0) * 100.0
            if j == 0:
                res[c] = age
                res[c + 1] = 1.0 if age < fresh_age else 0.0
                res[c + 2] = 1.0 if m == 0 else 0.0
                res[c + 3] = drift
            if j == k - 1:
                res[c + 4] = age
            if mag_side == sign and p == mag_price and res[10] != res[10]:
                # the first slot with the magnet's centre (its age is never NaN)
                res[10] = age
                res[11] = drift
        for j in range(k):
            s_lo[side, j] = work[j, w_lo]
            s_hi[side, j] = work[j, w_hi]
            s_age[side, j] = work[j, w_age]
            length = int(work[j, w_len])
            s_hlen[side, j] = length
            for q in range(length):
                s_hist[side, j, q] = work[j, q]
