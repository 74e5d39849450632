"""numba kernel of the cluster tracking: which cluster of a candle is which of the previous one.

The engine reports a few clusters per side and candle (nearest, second, third, the wall: the
"slots"), each as its lower and upper edge and its centre. :func:`track_row` follows them
through the candles, one candle at a time: a cluster of candle ``t`` *is* the first cluster of
candle ``t - 1`` (in slot order) on the same side whose price span overlaps its own (``low_t < high_{t-1}`` and ``low_{t-1} < high_t``);
otherwise it is new. A tracked cluster carries its age (candles since it became significant,
counted up to ``cap``) and its last ``lookback`` centres, from which its drift over ``lookback``
candles follows.

The recursion runs from a state (the previous candle's slots, :func:`new_state`) and leaves the
state after the last candle there, so a stream that keeps the state gets the values of one run over the
whole history, bit for bit. Ages are capped so that a run started ``cap`` or more candles earlier
(from an empty state) gives the same values too: the derived columns look back a bounded number of
candles.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

#: the state is one float array ``(2, slots, lookback + 5)``: the previous candle's slots of both
#: sides (leading axis: 0 long, 1 short), each its edges (entries :data:`LO`, :data:`HI`), age
#: (:data:`AGE`, NaN: empty slot), how many centres along its chain are known (:data:`LEN`) and
#: those centres (entry ``HIST + m``: the centre ``m`` candles back). One array, not a tuple of
#: them: numba's dispatcher types an array argument quickly, a tuple through Python.
LO, HI, AGE, LEN, HIST = 0, 1, 2, 3, 4

#: the state's former layout (a tuple of arrays), no longer used: numba's cache indexes written
#: before name it in the signatures they hold, and they must still load (to be found stale)
TrackState = namedtuple("TrackState", ["lo", "hi", "age", "hist", "hlen"])

#: the columns of :func:`track_row`'s output, per side (long first, then short), then the
#: magnet's two
SIDE_COLUMNS: tuple[str, ...] = ("cluster_age", "cluster_fresh", "cluster_same",
                                 "cluster_drift_pct", "wall_age")  # fmt: skip
MAGNET_COLUMNS: tuple[str, ...] = ("magnet_age", "magnet_tracked_drift")


def new_state(slots: int, lookback: int) -> np.ndarray:
    """An empty state for ``slots`` clusters per side and candle and a drift over ``lookback``
    candles (no cluster, no centre known)."""
    state = np.full((2, slots, lookback + 1 + HIST), np.nan)
    state[:, :, LEN] = 0.0
    return state


@njit(cache=True, error_model="numpy")
def track_row(rows, r, mag_price, mag_side, look, state, nxt, res):
    """Follow one candle's clusters from ``state`` (:func:`new_state`, the previous candle's;
    left as it is) into ``nxt`` (the state after this candle, same shape) and write the
    :data:`SIDE_COLUMNS` of both sides, then the :data:`MAGNET_COLUMNS` into ``res`` (12
    values, NaN where undefined).

    ``rows[r]``: low, high, price of each side's slots (entry ``(side * k + slot) * 3 + field``;
    slot 0 the nearest cluster, the last the wall); ``look[3]``, ``look[4]``: the age cap and
    the fresh age. A cluster is the first slot of the previous candle (slot order) on its side
    whose span overlaps its own; it carries that slot's age (capped) and centres, from which its
    drift over ``lookback`` candles follows (NaN until tracked that long). The magnet is the
    first slot of its side with its centre. Centres past a chain's length are neither read nor
    written (``nxt`` may hold anything there).

    Arrays are indexed in place, not through views (a view costs a reference count each)."""
    k = state.shape[1]
    lookback = state.shape[2] - 1 - HIST
    cap, fresh_age = look[3], look[4]
    for q in range(12):
        res[q] = np.nan
    for side in range(2):
        c = 5 * side
        sign = -1.0 if side == 0 else 1.0
        for j in range(k):
            base = (side * k + j) * 3
            lo, hi, p = rows[r, base], rows[r, base + 1], rows[r, base + 2]
            nxt[side, j, LO] = lo
            nxt[side, j, HI] = hi
            if p != p:
                nxt[side, j, AGE] = np.nan
                nxt[side, j, LEN] = 0.0
                continue
            m = -1
            for i in range(k):
                a_i = state[side, i, AGE]
                if a_i == a_i and lo < state[side, i, HI] and state[side, i, LO] < hi:
                    m = i
                    break
            # the centres along the chain, newest first
            nxt[side, j, HIST] = p
            if m >= 0:
                age = min(cap, state[side, m, AGE] + 1.0)
                known = int(state[side, m, LEN])
                h = min(known, lookback)
                for q in range(h):
                    nxt[side, j, HIST + 1 + q] = state[side, m, HIST + q]
                length = min(known + 1, lookback + 1)
            else:
                age = 0.0
                length = 1
            nxt[side, j, AGE] = age
            nxt[side, j, LEN] = length
            drift = np.nan
            if length == lookback + 1:
                drift = (p / nxt[side, j, HIST + lookback] - 1.0) * 100.0
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
