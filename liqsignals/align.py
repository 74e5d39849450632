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

__all__ = [
    "Refused",
    "align_events",
    "align_extremes",
    "align_flow",
    "align_level",
    "known_at",
    "resolution",
]

_MS = pd.Timedelta(milliseconds=1)


class Refused(ValueError):
    """A series that must not be attached to these candles (the reason is the message)."""


def _dates(values: pd.Series | pd.DatetimeIndex | np.ndarray) -> pd.Series:
    """UTC datetimes (ms) of a date column, index reset."""
    out = pd.Series(pd.to_datetime(values, utc=True))
    return out.dt.as_unit("ms").reset_index(drop=True)


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
    names = list(values)
    known = pd.DataFrame({"_known": known_at(series_dates, p)})
    for name in names:
        known[name] = np.asarray(values[name], dtype=np.float64)
    known = known.dropna(subset=names, how="all").sort_values("_known", kind="stable")
    known = known.drop_duplicates("_known", keep="last")
    closes = pd.DataFrame({"_close": _dates(candle_dates) + tf})
    order = np.argsort(closes["_close"].to_numpy(), kind="stable")
    merged = pd.merge_asof(
        closes.iloc[order],
        known,
        left_on="_close",
        right_on="_known",
        direction="backward",
        tolerance=max(p, tf) - _MS,
    )
    out: dict[str, np.ndarray] = {}
    for name in names:
        col = np.empty(len(closes))
        col[order] = merged[name].to_numpy(dtype=np.float64)
        out[name] = col
    return out


def _spans(
    candle_dates: pd.Series, tf: pd.Timedelta, series_dates: pd.Series, p: pd.Timedelta
) -> tuple[pd.DataFrame, pd.Series]:
    """Series rows tagged with the candle they fall in (``_slot``, complete bars only) and
    the candle dates."""
    dates = _dates(candle_dates)
    rows = pd.DataFrame({"date": _dates(series_dates), "_row": np.arange(len(series_dates))})
    rows = rows.sort_values("date", kind="stable")
    slots = pd.DataFrame({"_slot": dates.sort_values(kind="stable").to_numpy()})
    rows = pd.merge_asof(rows, slots, left_on="date", right_on="_slot", direction="backward")
    inside = rows["_slot"].notna() & (rows["date"] + p <= rows["_slot"] + tf)
    return rows.loc[inside], dates


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
    rows, dates = _spans(candle_dates, tf, series_dates, p)
    names = list(values)
    for name in names:
        rows[name] = np.asarray(values[name], dtype=np.float64)[rows["_row"].to_numpy()]
    rows = rows.drop_duplicates("date", keep="last")
    grouped = rows.groupby("_slot")
    sums = grouped[names].sum(min_count=1)
    counts = grouped["date"].count()
    sums = sums.where(counts >= int(tf / p), np.nan)
    out = sums.reindex(pd.DatetimeIndex(dates))
    return {name: out[name].to_numpy(dtype=np.float64) for name in names}


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
    rows, dates = _spans(candle_dates, tf, series_dates, p)
    idx = rows["_row"].to_numpy()
    rows["_hi"] = np.asarray(high, dtype=np.float64)[idx]
    rows["_lo"] = np.asarray(low, dtype=np.float64)[idx]
    rows = rows.drop_duplicates("date", keep="last")
    grouped = rows.groupby("_slot")
    hi, lo = grouped["_hi"].max(), grouped["_lo"].min()
    complete = (grouped["_hi"].count() >= int(tf / p)) & (grouped["_lo"].count() >= int(tf / p))
    hi, lo = hi.where(complete, np.nan), lo.where(complete, np.nan)
    index = pd.DatetimeIndex(dates)
    return hi.reindex(index).to_numpy(dtype=np.float64), lo.reindex(index).to_numpy(
        dtype=np.float64
    )


def align_events(
    candle_dates: pd.Series,
    event_dates: pd.Series,
    values: Mapping[str, np.ndarray | pd.Series],
) -> dict[str, np.ndarray]:
    """Point events (funding): per candle the latest event at or before the candle's open;
    NaN before the first event. Events with every value NaN are skipped."""
    names = list(values)
    events = pd.DataFrame({"_at": _dates(event_dates)})
    for name in names:
        events[name] = np.asarray(values[name], dtype=np.float64)
    events = events.dropna(subset=names, how="all").sort_values("_at", kind="stable")
    events = events.drop_duplicates("_at", keep="last")
    opens = pd.DataFrame({"_open": _dates(candle_dates)})
    order = np.argsort(opens["_open"].to_numpy(), kind="stable")
    merged = pd.merge_asof(
        opens.iloc[order], events, left_on="_open", right_on="_at", direction="backward"
    )
    out: dict[str, np.ndarray] = {}
    for name in names:
        col = np.empty(len(opens))
        col[order] = merged[name].to_numpy(dtype=np.float64)
        out[name] = col
    return out
