"""When a slower series' value may be used by a candle: the one alignment rule.

Every series beside the candles (open interest, long/short ratio, taker buy volume, funding,
mark-price candles) is merged onto the candle frame here and nowhere else, so backtests, the
datadir loaders and a running bot all read the same values at the same candle.

The rule
--------
* **Bars** (open interest, long/short ratio, taker volume, mark candles): a series row dated
  ``s`` at the series' timeframe ``p`` describes the bar ``[s, s + p)`` and is known from its
  close ``s + p`` on, never earlier. The candle ``[d, d + tf)`` may use it when
  ``s + p <= d + tf``. A 4h open-interest bar opening 00:00 is first seen by the 15m candle
  opening 03:45 (close 04:00); a bar of the candles' own timeframe aligns 1:1 with the candle of
  the same date.
* **Levels** (open interest, long/short ratio): per candle the latest bar known by its close, as
  long as it is less than ``max(p, tf)`` old at that close (a stale value is never carried on:
  a missing bar gives NaN, not the one before it).
* **Flows** (taker volume, realised liquidations): the sum over the series' bars inside the
  candle; only a series timeframe that divides the candle's, only complete candles (every bar
  present), otherwise NaN. A coarser flow is never split over candles.
* **Extremes** (mark high / low): the candle's own mark candle when the mark timeframe equals
  the candle timeframe; the max of the highs and min of the lows of the mark candles inside the
  candle when the mark timeframe is finer and divides it (complete spans only, otherwise NaN).
  A **coarser** mark is refused (:class:`Refused`): the high of a 1h mark candle beside 15m
  candles holds prices from later in the hour, so it is never attached.
* **Point events** (funding): an event is known from its own timestamp on. A candle uses the
  latest event at or before its *open* (stricter than the bar rule by up to one candle, so a
  bot that analyses a candle the moment it closes never races the exchange's publication of an
  event stamped exactly at that close, and bot and backtest see the same value).

Only numpy and pandas: the core may use it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from liqsignals._time import dates_to_ns

__all__ = [
    "Refused",
    "align_events",
    "align_extremes",
    "align_flow",
    "align_level",
    "known_at",
    "resolution",
]


class Refused(ValueError):
    """A series that must not be attached to these candles (the reason is the message)."""


def _dates(values: pd.Series | pd.DatetimeIndex | np.ndarray) -> pd.Series:
    """UTC datetimes (ms) of a date column, index reset."""
    out = pd.Series(pd.to_datetime(values, utc=True))
    return out.dt.as_unit("ms").reset_index(drop=True)


def _ns(values: pd.Series | pd.DatetimeIndex | np.ndarray) -> np.ndarray:
    """int64 nanoseconds UTC of a date column, read as everywhere in the project
    (:func:`liqsignals._time.dates_to_ns`: naive datetimes as UTC, epoch numbers by their
    magnitude; NaT is an error). Datetimes without NaT are read from their int64 values
    (:func:`_datetime_ns`); everything else, and every error, goes through ``dates_to_ns``."""
    got = _datetime_ns(values)
    return dates_to_ns(values) if got is None else got


#: nanoseconds per unit of the datetime resolutions pandas holds
_UNIT_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
#: |nanoseconds| read from the int64 values without pandas' bounds check (about 1684 .. 2255,
#: inside the nanosecond range); dates beyond it go through ``dates_to_ns``
_NS_LIMIT = 9 * 10**18


def _stored(values: object) -> tuple[np.ndarray, int] | None:
    """The int64 storage (UTC) of a ``Series``, ``Index``, ``DatetimeArray`` or 1-d numpy
    array of naive or timezone-aware datetimes at s / ms / us / ns resolution, not empty, and
    its nanoseconds per unit; ``None`` for anything else."""
    if isinstance(values, pd.Series | pd.Index):
        values = values.array
    if isinstance(values, pd.arrays.DatetimeArray):
        unit, i8 = values.unit, values.asi8  # int64 of the UTC dates, also for tz-aware ones
    elif isinstance(values, np.ndarray) and values.dtype.kind == "M" and values.ndim == 1:
        unit, i8 = np.datetime_data(values.dtype)[0], values.view(np.int64)
    else:
        return None
    scale = _UNIT_NS.get(unit)
    return None if scale is None or not len(i8) else (i8, scale)


def _datetime_ns(values: object) -> np.ndarray | None:
    """int64 nanoseconds UTC of the common date columns (:func:`_stored`) without NaT and
    within +-9e18 ns of the epoch, the values :func:`liqsignals._time.dates_to_ns` gives, read
    from their int64 storage; ``None`` for anything else (``dates_to_ns`` then reads it, with
    its errors). The result may share memory with ``values``: read it, do not modify it."""
    got = _stored(values)
    if got is None:
        return None
    i8, scale = got
    limit = _NS_LIMIT // scale
    if i8.min() < -limit or i8.max() > limit:  # NaT is the int64 minimum
        return None
    return i8 if scale == 1 else i8 * np.int64(scale)


def _increasing_stored(values: object) -> tuple[np.ndarray, int] | None:
    """:func:`_stored` of strictly increasing dates without NaT, within the limits of
    :func:`_datetime_ns`; ``None`` otherwise. (NaT, the int64 minimum, can only be the first of
    strictly increasing values: the check of the first value's limit sees it.)"""
    got = _stored(values)
    if got is None or not _increasing(got[0]):
        return None
    i8, scale = got
    limit = _NS_LIMIT // scale
    return None if i8[0] < -limit or i8[-1] > limit else got


def _matrix(values: Mapping[str, np.ndarray | pd.Series]) -> tuple[list[str], np.ndarray]:
    names = list(values)
    cols = [np.asarray(values[n], dtype=np.float64) for n in names]
    return names, np.column_stack(cols) if cols else np.empty((0, 0))


def _latest(at: np.ndarray, stamps: np.ndarray, mat: np.ndarray, max_age: int | None) -> np.ndarray:
    """Per ``at``, the row of ``mat`` with the latest stamp ``<= at`` (rows with every value NaN
    skipped; among equal stamps the last row), NaN when none or when older than ``max_age``."""
    keep = ~np.isnan(mat).all(axis=1) if mat.shape[1] else np.zeros(len(mat), bool)
    if not keep.all():
        stamps, mat = stamps[keep], mat[keep]
    if not _increasing(stamps):  # a stable sort of strictly increasing stamps keeps them
        order = np.argsort(stamps, kind="stable")
        stamps, mat = stamps[order], mat[order]
    idx = np.searchsorted(stamps, at, side="right") - 1
    ok = idx >= 0
    if max_age is not None:
        ok &= at - stamps[np.maximum(idx, 0)] < max_age if len(stamps) else ok
    out = np.full((len(at), mat.shape[1]), np.nan)
    out[ok] = mat[idx[ok]]
    return out


def _increasing(values: np.ndarray) -> bool:
    """Whether ``values`` are strictly increasing (then a stable sort leaves them in place)."""
    return bool((values[1:] > values[:-1]).all())


def _delta(value: str | pd.Timedelta) -> pd.Timedelta:
    if isinstance(value, pd.Timedelta):
        return value
    from liqsignals._time import timeframe_to_timedelta

    return timeframe_to_timedelta(value)


_ZERO = pd.Timedelta(0)


def resolution(timeframe: str | pd.Timedelta, period: str | pd.Timedelta) -> str:
    """``"same"``, ``"finer"`` (``period`` divides ``timeframe``), ``"uneven"`` (finer but not a
    divisor) or ``"coarser"``: how a series of timeframe ``period`` relates to the candles."""
    tf, p = _delta(timeframe), _delta(period)
    if p <= _ZERO or tf <= _ZERO:
        raise ValueError(f"timeframes must be positive, got {timeframe!r} and {period!r}")
    if p == tf:
        return "same"
    if p > tf:
        return "coarser"
    return "finer" if tf % p == _ZERO else "uneven"


def known_at(dates: pd.Series, period: str | pd.Timedelta) -> pd.Series:
    """When each bar dated ``dates`` (bar open) at timeframe ``period`` is known: its close."""
    return _dates(dates) + _delta(period)


def align_level(
    candle_dates: pd.Series,
    timeframe: str | pd.Timedelta,
    series_dates: pd.Series,
    values: Mapping[str, np.ndarray | pd.Series],
    period: str | pd.Timedelta,
) -> dict[str, np.ndarray]:
    """Per candle, the latest series bar known by the candle's close and less than
    ``max(period, timeframe)`` old then; NaN otherwise. ``values`` maps names to arrays row for
    row with ``series_dates``; returns float arrays row for row with ``candle_dates``. Rows with
    every value NaN are skipped (a later gap is not filled by them)."""
    tf, p = _delta(timeframe), _delta(period)
    names, mat = _matrix(values)
    closes = _ns(candle_dates) + tf.value
    got = _latest(closes, _ns(series_dates) + p.value, mat, max(p, tf).value)
    return {name: got[:, j].copy() for j, name in enumerate(names)}


def _slots(
    candle_dates: pd.Series, tf: pd.Timedelta, series_dates: pd.Series, p: pd.Timedelta
) -> tuple[np.ndarray, np.ndarray, int]:
    """Per series row (the last of equal dates), the index of the candle whose span holds the
    whole bar, or -1; the rows' positions; the number of candles."""
    cand = _ns(candle_dates)
    stamps = _ns(series_dates)
    if _increasing(stamps):  # sorted, no equal dates: every row is the last of its date
        rows, st = np.arange(len(stamps)), stamps
    else:
        order = np.argsort(stamps, kind="stable")
        st = stamps[order]
        last = np.r_[st[1:] != st[:-1], True] if len(st) else np.zeros(0, bool)
        rows, st = order[last], st[last]
    ordered = _increasing(cand)
    corder = np.arange(len(cand)) if ordered else np.argsort(cand, kind="stable")
    cs = cand if ordered else cand[corder]
    pos = np.searchsorted(cs, st, side="right") - 1
    inside = pos >= 0
    inside[inside] = st[inside] + p.value <= cs[pos[inside]] + tf.value
    slot = np.full(len(st), -1, dtype=np.int64)
    slot[inside] = corder[pos[inside]]
    return slot, rows, len(cand)


def align_flow(
    candle_dates: pd.Series,
    timeframe: str | pd.Timedelta,
    series_dates: pd.Series,
    values: Mapping[str, np.ndarray | pd.Series],
    period: str | pd.Timedelta,
) -> dict[str, np.ndarray]:
    """Per candle, the sum of the series bars inside it, NaN unless all ``timeframe / period``
    bars are there. A series that is not the candles' timeframe or a divisor of it raises
    :class:`Refused`."""
    tf, p = _delta(timeframe), _delta(period)
    kind = resolution(tf, p)
    if kind in ("coarser", "uneven"):
        raise Refused(f"a {p} flow cannot be summed into {tf} candles ({kind} timeframe)")
    slot, rows, n = _slots(candle_dates, tf, series_dates, p)
    use = slot >= 0
    slot, rows = slot[use], rows[use]
    need = int(tf / p)
    bars = np.bincount(slot, minlength=n)
    out: dict[str, np.ndarray] = {}
    for name in values:
        v = np.asarray(values[name], dtype=np.float64)[rows]
        known = ~np.isnan(v)
        total = np.bincount(slot, weights=np.where(known, v, 0.0), minlength=n)
        seen = np.bincount(slot, weights=known.astype(np.float64), minlength=n)
        out[name] = np.where((bars >= need) & (seen > 0), total, np.nan)
    return out


def _floats(values: object, n: int) -> np.ndarray | None:
    """A float64 column of ``n`` rows as a numpy array (``None`` for anything else)."""
    if isinstance(values, pd.Series):
        dtype = values.dtype
        if not isinstance(dtype, np.dtype) or dtype != np.float64 or len(values) != n:
            return None
        return values.to_numpy()
    if isinstance(values, np.ndarray) and values.dtype == np.float64 and values.shape == (n,):
        return values
    return None


def _same_extremes(
    candle_dates: object, series_dates: object, high: object, low: object
) -> tuple[np.ndarray, np.ndarray] | None:
    """What :func:`align_extremes` gives for a series of the candles' own timeframe, for the
    common inputs: datetimes (:func:`_stored`) strictly increasing on both sides, the series
    dates a contiguous run of the candle dates where they overlap, float64 high / low row for
    row with them. ``None`` otherwise (the general path then aligns them).

    Each series row then falls in the candle of its own date or in none (a row before the
    first candle or after the last), so per candle the general path applies one
    ``fmax(-inf, high)`` / ``fmin(inf, low)``, which is the value itself unless it is NaN, and
    counts one row: a candle is complete when its row has both values. Candles without a row,
    or with a NaN in it, are NaN."""
    cand = _increasing_stored(candle_dates)
    if cand is None:
        return None
    n = len(cand[0])
    series = _stored(series_dates)
    if series is None:
        return None
    m = len(series[0])
    hv, lv = _floats(high, m), _floats(low, m)
    if hv is None or lv is None:
        return None
    if n == m and cand[1] == series[1] and (cand[0] == series[0]).all():
        # the same dates (a bot's mark frame beside its candles); same unit, so same ns
        gap = np.isnan(hv) | np.isnan(lv)
        return np.where(gap, np.nan, hv), np.where(gap, np.nan, lv)
    series = _increasing_stored(series_dates)
    if series is None:
        return None
    cs, st = cand[0] * np.int64(cand[1]), series[0] * np.int64(series[1])
    a = int(np.searchsorted(cs, st[0]))  # the first candle at or after the first row
    b = int(np.searchsorted(st, cs[0]))  # the first row at or after the first candle
    size = min(n - a, m - b)
    hi, lo = np.full(n, np.nan), np.full(n, np.nan)
    if size > 0:
        if not (cs[a : a + size] == st[b : b + size]).all():
            return None
        h, lw = hv[b : b + size], lv[b : b + size]
        gap = np.isnan(h) | np.isnan(lw)
        hi[a : a + size] = np.where(gap, np.nan, h)
        lo[a : a + size] = np.where(gap, np.nan, lw)
    return hi, lo


def align_extremes(
    candle_dates: pd.Series,
    timeframe: str | pd.Timedelta,
    series_dates: pd.Series,
    high: np.ndarray | pd.Series,
    low: np.ndarray | pd.Series,
    period: str | pd.Timedelta,
) -> tuple[np.ndarray, np.ndarray]:
    """Per candle, the high and low of a price series over the candle's own span: the same
    timeframe 1:1, a finer one (dividing the candle) as max / min over complete spans (NaN
    otherwise). A coarser or uneven series raises :class:`Refused` with the reason."""
    tf, p = _delta(timeframe), _delta(period)
    kind = resolution(tf, p)
    if kind == "coarser":
        raise Refused(
            f"{p} candles are coarser than the {tf} candles: their high / low include prices "
            "from after the candle's close"
        )
    if kind == "uneven":
        raise Refused(f"{p} candles do not divide {tf} candles into whole spans")
    if kind == "same":
        got = _same_extremes(candle_dates, series_dates, high, low)
        if got is not None:
            return got
    slot, rows, n = _slots(candle_dates, tf, series_dates, p)
    use = slot >= 0
    slot, rows = slot[use], rows[use]
    hv = np.asarray(high, dtype=np.float64)[rows]
    lv = np.asarray(low, dtype=np.float64)[rows]
    need = int(tf / p)
    if hv.ndim == lv.ndim == 1 and _increasing(slot):  # at most one row per candle
        # what the general path below gives then: fmax.at / fmin.at apply one fmax(-inf, h) /
        # fmin(inf, l) per candle and each count is 0 or 1, so a candle is complete when its
        # row has both values and one row is enough
        use = ~np.isnan(hv) & ~np.isnan(lv) if need <= 1 else np.zeros(len(slot), bool)
        hi, lo = np.full(n, np.nan), np.full(n, np.nan)
        hi[slot[use]] = np.fmax(-np.inf, hv[use])
        lo[slot[use]] = np.fmin(np.inf, lv[use])
        return hi, lo
    hi, lo = np.full(n, -np.inf), np.full(n, np.inf)
    np.fmax.at(hi, slot, hv)
    np.fmin.at(lo, slot, lv)
    complete = (np.bincount(slot, weights=(~np.isnan(hv)).astype(float), minlength=n) >= need) & (
        np.bincount(slot, weights=(~np.isnan(lv)).astype(float), minlength=n) >= need
    )
    return np.where(complete, hi, np.nan), np.where(complete, lo, np.nan)


def align_events(
    candle_dates: pd.Series,
    event_dates: pd.Series,
    values: Mapping[str, np.ndarray | pd.Series],
) -> dict[str, np.ndarray]:
    """Point events (funding): per candle the latest event at or before the candle's open;
    NaN before the first event. Events with every value NaN are skipped."""
    names, mat = _matrix(values)
    got = _latest(_ns(candle_dates), _ns(event_dates), mat, None)
    return {name: got[:, j].copy() for j, name in enumerate(names)}
