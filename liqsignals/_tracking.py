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

#: the previous candle's slots of both sides (leading axis: 0 long, 1 short): edges, age (NaN:
#: empty slot), centres along the chain (``hist[side, j, m]``: the centre ``m`` candles back) and
#: how many of them are known
TrackState = namedtuple("TrackState", ["lo", "hi", "age", "hist", "hlen"])

#: the columns of :func:`track_columns`' output, per side (long first, then short), then the
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
def track_side(lo, hi, price, cap, state, side, age, drift, match):
    """Follow one side's clusters ``lo, hi, price`` (``(n, slots)``, NaN: empty slot) from
    ``state[side]`` (updated in place), writing the age in candles (NaN: empty slot), the
    drift in % over ``hist.shape[2] - 1`` candles on the same cluster (NaN until it has been
    tracked that long) and the previous candle's slot the cluster continues (-1: new) into
    ``age, drift, match``."""
    n, k = lo.shape
    lookback = state.hist.shape[2] - 1
    s_lo, s_hi, s_age = state.lo[side], state.hi[side], state.age[side]
    s_hist, s_hlen = state.hist[side], state.hlen[side]
    new_age = np.empty(k)
    new_hist = np.empty((k, lookback + 1))
    new_hlen = np.empty(k, dtype=np.int64)
    for t in range(n):
        for j in range(k):
            p = price[t, j]
            new_hist[j, :] = np.nan
            match[t, j] = -1
            if p != p:
                new_age[j] = np.nan
                new_hlen[j] = 0
                continue
            m = -1
            for i in range(k):
                if s_age[i] == s_age[i] and lo[t, j] < s_hi[i] and s_lo[i] < hi[t, j]:
                    m = i
                    break
            new_hist[j, 0] = p
            if m >= 0:
                new_age[j] = min(cap, s_age[m] + 1.0)
                for q in range(lookback):
                    new_hist[j, q + 1] = s_hist[m, q]
                new_hlen[j] = min(s_hlen[m] + 1, lookback + 1)
            else:
                new_age[j] = 0.0
                new_hlen[j] = 1
            match[t, j] = m
            age[t, j] = new_age[j]
            if new_hlen[j] == lookback + 1:
                drift[t, j] = (p / new_hist[j, lookback] - 1.0) * 100.0
        for j in range(k):
            s_lo[j] = lo[t, j]
            s_hi[j] = hi[t, j]
            s_age[j] = new_age[j]
            s_hlen[j] = new_hlen[j]
            for q in range(lookback + 1):
                s_hist[j, q] = new_hist[j, q]


@njit(cache=True, error_model="numpy")
def track_columns(books, mag, cap, fresh_age, wall, state, out):
    """The tracked columns of the candles in ``books`` (``(2, 3, n, slots)``: side, then low /
    high / price, candle, slot; slot 0 the nearest cluster, ``wall`` the wall's slot or -1)
    from ``state`` (updated in place) into ``out`` (``(n, 12)``, NaN-filled: per side the
    :data:`SIDE_COLUMNS`, then the :data:`MAGNET_COLUMNS`); ``mag``: ``(n, 2)`` the magnet's
    price and side (-1 / +1). The magnet is the first slot of its side with its centre."""
    n, k = books.shape[2], books.shape[3]
    for side in range(2):
        age = np.full((n, k), np.nan)
        drift = np.full((n, k), np.nan)
        match = np.empty((n, k), dtype=np.int64)
        price = books[side, 2]
        track_side(books[side, 0], books[side, 1], price, cap, state, side, age, drift, match)
        c = 5 * side
        sign = -1.0 if side == 0 else 1.0
        for t in range(n):
            a = age[t, 0]
            if a == a:
                out[t, c] = a
                out[t, c + 1] = 1.0 if a < fresh_age else 0.0
                out[t, c + 2] = 1.0 if match[t, 0] == 0 else 0.0
                out[t, c + 3] = drift[t, 0]
            if wall >= 0:
                out[t, c + 4] = age[t, wall]
            if mag[t, 1] == sign:
                for j in range(k):
                    if price[t, j] == mag[t, 0]:
                        out[t, 10] = age[t, j]
                        out[t, 11] = drift[t, j]
                        break
