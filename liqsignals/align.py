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
    magnitude; NaT is an error)."""
    return dates_to_ns(values)


def _matrix(values: Mapping[str, np.ndarray | pd.Series]) -> tuple[list[str], np.ndarray]:
    names = list(values)
    cols = [np.asarray(values[n], dtype=np.float64) for n in names]
    return names, np.column_stack(cols) if cols else np.empty((0, 0))


def _latest(at: np.ndarray, stamps: np.ndarray, mat: np.ndarray, max_age: int | None) -> np.ndarray:
    """Per ``at``, the row of ``mat`` with the latest stamp ``<= at`` (rows with every value NaN
    skipped; among equal stamps the last row), NaN when none or when older than ``max_age``."""
    keep = ~np.isnan(mat).all(axis=1) if mat.shape[1] else np.zeros(len(mat), bool)
    stamps, mat = stamps[keep], mat[keep]
    order = np.argsort(stamps, kind="stable")
    stamps, mat = stamps[order], mat[order]
    idx = np.searchsorted(stamps, at, side="right") - 1
    ok = idx >= 0
    if max_age is not None:
        ok &= at - stamps[np.maximum(idx, 0)] < max_age if len(stamps) else ok
    out = np.full((len(at), mat.shape[1]), np.nan)
    out[ok] = mat[idx[ok]]
    return out


def _delta(value: str | pd.Timedelta) -> pd.Timedelta:
    if isinstance(value, pd.Timedelta):
        return value
    from liqsignals._time import timeframe_to_timedelta

    return timeframe_to_timedelta(value)


def resolution(timeframe: str | pd.Timedelta, period: str | pd.Timedelta) -> str:
    """``"same"``, ``"finer"`` (``period`` divides ``timeframe``), ``"uneven"`` (finer but not a
    divisor) or ``"coarser"``: how a series of timeframe ``period`` relates to the candles."""
    tf, p = _delta(timeframe), _delta(period)
    if p <= pd.Timedelta(0) or tf <= pd.Timedelta(0):
        raise ValueError(f"timeframes must be positive, got {timeframe!r} and {period!r}")
    if p == tf:
        return "same"
    if p > tf:
        return "coarser"
    return "finer" if tf % p == pd.Timedelta(0) else "uneven"


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
    order = np.argsort(stamps, kind="stable")
    st = stamps[order]
    last = np.r_[st[1:] != st[:-1], True] if len(st) else np.zeros(0, bool)
    rows, st = order[last], st[last]
    corder = np.argsort(cand, kind="stable")
    cs = cand[corder]
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
    slot, rows, n = _slots(candle_dates, tf, series_dates, p)
    use = slot >= 0
    slot, rows = slot[use], rows[use]
    hv = np.asarray(high, dtype=np.float64)[rows]
    lv = np.asarray(low, dtype=np.float64)[rows]
    hi, lo = np.full(n, -np.inf), np.full(n, np.inf)
    np.fmax.at(hi, slot, hv)
    np.fmin.at(lo, slot, lv)
    need = int(tf / p)
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
