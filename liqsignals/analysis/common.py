"""Helpers the evaluations share: horizons in candles, candle dates and spacing, UTC
conversions, the Spearman rank correlation, and JSON-safe values."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from liqsignals._time import to_utc_ns, utc_dates
from liqsignals._time import utc_timestamp as time_utc_timestamp
from liqsignals.features import timeframe_to_timedelta
from liqsignals.model import parse_duration

__all__ = [
    "candle_dates",
    "candle_spacing",
    "duration_text",
    "format_timedelta",
    "future_extremes",
    "horizon_candles",
    "json_safe",
    "json_value",
    "spearman",
    "utc_datetime64",
    "utc_dates",
    "utc_timestamp",
]


def horizon_candles(horizon: int | str, timeframe: str | pd.Timedelta) -> int:
    """A horizon in candles: an int (or digit string) is already candles; a duration such as
    ``"1d"`` or ``"36h"`` is divided by the timeframe and must be a whole number of candles."""
    if isinstance(horizon, bool):
        raise ValueError(f"horizon must be candles or a duration, got {horizon!r}")
    if isinstance(horizon, int | np.integer) or (isinstance(horizon, str) and horizon.isdigit()):
        h = int(horizon)
    else:
        tf = timeframe if isinstance(timeframe, pd.Timedelta) else timeframe_to_timedelta(timeframe)
        td = parse_duration(horizon, "horizon")
        ratio = td / tf
        if abs(ratio - round(ratio)) > 1e-9:
            raise ValueError(f"horizon {horizon!r} is not a whole number of {timeframe} candles")
        h = int(round(ratio))
    if h < 1:
        raise ValueError(f"horizon must be at least one candle, got {horizon!r}")
    return h


def candle_spacing(dates: Any) -> pd.Timedelta:
    """The most common spacing of ``dates`` (a candle frame's timeframe)."""
    d = pd.Series(utc_dates(dates)).diff().dropna()
    if d.empty:
        raise ValueError("need at least two candles to know their timeframe")
    return pd.Timedelta(d.mode().iloc[0])


def candle_dates(df: pd.DataFrame) -> np.ndarray:
    """A candle frame's ``date`` column (or DatetimeIndex) as :func:`utc_dates`."""
    if "date" in df.columns:
        return utc_dates(df["date"])
    if isinstance(df.index, pd.DatetimeIndex):
        return utc_dates(df.index)
    raise ValueError("missing column 'date' (or a DatetimeIndex)")


def utc_datetime64(value: Any) -> np.datetime64:
    """A date (see :func:`liqsignals._time.to_utc_ns`) as a naive UTC ``datetime64[ns]``."""
    return np.datetime64(to_utc_ns(value, what="parameter"), "ns")


def utc_timestamp(value: Any) -> pd.Timestamp | None:
    """``value`` as a UTC ``pd.Timestamp`` (:func:`liqsignals._time.utc_timestamp`); ``None``
    stays ``None``."""
    return None if value is None else time_utc_timestamp(value)


def spearman(x: np.ndarray | pd.Series, y: np.ndarray | pd.Series) -> float:
    """Spearman rank correlation (average ranks for ties); NaN when either side is constant or
    fewer than three pairs are finite."""
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return math.nan
    ra = pd.Series(a[ok]).rank(method="average").to_numpy()
    rb = pd.Series(b[ok]).rank(method="average").to_numpy()
    if np.ptp(ra) == 0 or np.ptp(rb) == 0:
        return math.nan
    return float(np.corrcoef(ra, rb)[0, 1])


def future_extremes(high: np.ndarray, low: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray]:
    """``max(high[t+1 .. t+h])`` and ``min(low[t+1 .. t+h])`` for every ``t`` (NaN when the
    horizon runs past the data)."""
    n = high.shape[0]
    fmax = np.full(n, np.nan)
    fmin = np.full(n, np.nan)
    if n - h >= 1:
        fmax[: n - h] = np.lib.stride_tricks.sliding_window_view(high[1:], h).max(axis=1)
        fmin[: n - h] = np.lib.stride_tricks.sliding_window_view(low[1:], h).min(axis=1)
    return fmax, fmin


def json_value(v: Any) -> Any:
    """numpy scalar -> plain Python, NaN -> None (for JSON); see :func:`json_safe`."""
    if isinstance(v, np.integer | int) and not isinstance(v, bool):
        return int(v)
    if isinstance(v, np.bool_ | bool):
        return bool(v)
    if isinstance(v, np.floating | float):
        return None if not math.isfinite(float(v)) else float(v)
    return v


def format_timedelta(td: pd.Timedelta) -> str:
    """``1d``, ``4h`` or ``15m``: the largest whole unit of ``td``."""
    for unit, length in (("d", pd.Timedelta(days=1)), ("h", pd.Timedelta(hours=1))):
        if td >= length and td % length == pd.Timedelta(0):
            return f"{td // length}{unit}"
    return f"{td // pd.Timedelta(minutes=1)}m"


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN/inf -> None, numpy scalars -> Python, timestamps -> ISO strings,
    mappings and sequences converted item by item (what ``json.dumps(allow_nan=False)`` takes)."""
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating | float):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, pd.Timestamp):
        return str(obj)
    return obj


def duration_text(candles: int, timeframe: str) -> str:
    """``candles`` of ``timeframe`` as a duration, e.g. ``duration_text(24, "1h") == "1d"``."""
    return format_timedelta(timeframe_to_timedelta(timeframe) * candles)
