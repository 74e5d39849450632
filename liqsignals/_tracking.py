"""numba kernel of the cluster tracking: which cluster of a candle is which of the previous one.

The engine reports a few clusters per side and candle (nearest, second, third, the wall: the
"slots"), each as its lower and upper edge and its centre. :func:`track` follows them through the
candles: a cluster of candle ``t`` *is* the first cluster of candle ``t - 1`` (in slot order) on the
same side whose price span overlaps its own (``low_t < high_{t-1}`` and ``low_{t-1} < high_t``);
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

#: the previous candle's slots: edges, age (NaN: empty slot), centres along the chain
#: (``hist[j, m]``: the centre ``m`` candles back) and how many of them are known
TrackState = namedtuple("TrackState", ["lo", "hi", "age", "hist", "hlen"])


def new_state(slots: int, lookback: int) -> TrackState:
    """An empty :class:`TrackState` for ``slots`` clusters per candle and a drift over
    ``lookback`` candles."""
    return TrackState(
        np.full(slots, np.nan),
        np.full(slots, np.nan),
        np.full(slots, np.nan),
        np.full((slots, lookback + 1), np.nan),
        np.zeros(slots, dtype=np.int64),
    )


def copy_state(state: TrackState) -> TrackState:
    return TrackState(*(a.copy() for a in state))


@njit(cache=True, error_model="numpy")
def track(lo, hi, price, cap, state):
    """Follow the clusters ``lo, hi, price`` (``(n, slots)`` arrays, NaN: empty slot) from
    ``state``; returns ``(age, drift, match)``: the age in candles (NaN for an empty slot),
    the drift in % over ``state.hist.shape[1] - 1`` candles on the same cluster (NaN until it
    has been tracked that long) and the slot of the previous candle the cluster continues
    (-1: a new cluster or an empty slot). ``state`` is updated in place."""
    n, k = lo.shape
    lookback = state.hist.shape[1] - 1
    age = np.full((n, k), np.nan)
    drift = np.full((n, k), np.nan)
    match = np.full((n, k), -1, dtype=np.int64)
    new_lo = np.empty(k)
    new_hi = np.empty(k)
    new_age = np.empty(k)
    new_hist = np.empty((k, lookback + 1))
    new_hlen = np.empty(k, dtype=np.int64)
    for t in range(n):
        for j in range(k):
            p = price[t, j]
            new_lo[j] = lo[t, j]
            new_hi[j] = hi[t, j]
            new_hist[j, :] = np.nan
            if p != p:
                new_age[j] = np.nan
                new_hlen[j] = 0
                continue
            m = -1
            for i in range(k):
                if (
                    state.age[i] == state.age[i]
                    and lo[t, j] < state.hi[i]
                    and state.lo[i] < hi[t, j]
                ):
                    m = i
                    break
            new_hist[j, 0] = p
            if m >= 0:
                new_age[j] = min(cap, state.age[m] + 1.0)
                for q in range(lookback):
                    new_hist[j, q + 1] = state.hist[m, q]
                new_hlen[j] = min(state.hlen[m] + 1, lookback + 1)
            else:
                new_age[j] = 0.0
                new_hlen[j] = 1
            match[t, j] = m
            age[t, j] = new_age[j]
            if new_hlen[j] == lookback + 1:
                drift[t, j] = (p / new_hist[j, lookback] - 1.0) * 100.0
        for j in range(k):
            state.lo[j] = new_lo[j]
            state.hi[j] = new_hi[j]
            state.age[j] = new_age[j]
            state.hlen[j] = new_hlen[j]
            for q in range(lookback + 1):
                state.hist[j, q] = new_hist[j, q]
    return age, drift, match
