"""The one set of UTC, epoch, duration and timeframe helpers.

- :func:`parse_duration` reads ``"1w"``, ``"36h"``, ``"1M"`` or a ``Timedelta`` (positive and
  finite: NaN, NaT, ``"nand"``, ``"inf"`` and the like are rejected with a message naming the
  parameter).
- :func:`timeframe_to_timedelta` reads a freqtrade/ccxt timeframe (``"15m"``, ``"1h"``).
- :func:`epoch_unit` tells the unit of integer epoch dates by their magnitude (see below);
  :func:`dates_to_ns` turns a date column (datetimes, strings or epoch numbers) into int64
  nanoseconds UTC; :func:`to_utc_ns` does the same for one date.
- :func:`utc_timestamp` turns nanoseconds (or any date) back into a ``pd.Timestamp`` in UTC and
  :func:`format_utc` formats one as ``2025-01-01 00:00:00+00:00``; :func:`utc_index` turns an
  array of nanoseconds into a ``DatetimeIndex`` in UTC.
- :func:`to_utc_datetime` reads a date column as tz-aware UTC datetimes, :func:`utc_dates` as
  naive ``datetime64[ns]`` in UTC.

Epoch units by magnitude: a date between 1990-01-01 and 2100-01-01 is, in seconds, between
6.3e8 and 4.1e9; in milliseconds (ccxt's format) between 6.3e11 and 4.1e12; in microseconds
between 6.3e14 and 4.1e15; in nanoseconds between 6.3e17 and 4.1e18. The ranges are three
decades apart, so the unit of a plausible date is never ambiguous; a number in none of them (or
a column whose numbers fall in different ranges) is rejected as implausible.

Naive datetimes are read as UTC; timezone-aware ones are converted to UTC.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "EPOCH_MAX",
    "EPOCH_MIN",
    "NAMED_DURATIONS",
    "dates_to_ns",
    "epoch_unit",
    "format_utc",
    "parse_duration",
    "timeframe_to_timedelta",
    "to_utc_ns",
    "to_utc_datetime",
    "utc_dates",
    "utc_index",
    "utc_timestamp",
]

#: Named durations (the model's window names); months are 30 days, a year 365.
NAMED_DURATIONS: dict[str, pd.Timedelta] = {
    "12h": pd.Timedelta(hours=12),
    "1d": pd.Timedelta(days=1),
    "3d": pd.Timedelta(days=3),
    "1w": pd.Timedelta(weeks=1),
    "2w": pd.Timedelta(weeks=2),
    "1M": pd.Timedelta(days=30),
    "3M": pd.Timedelta(days=90),
    "6M": pd.Timedelta(days=180),
    "1y": pd.Timedelta(days=365),
}

_DURATION_UNITS = {"m": "min", "h": "h", "d": "D", "w": "W"}
_TF_UNITS = {"s": "s", "m": "min", "h": "h", "d": "D", "w": "W"}

#: Plausible dates, in seconds since the epoch: 1990-01-01 .. 2100-01-01.
EPOCH_MIN = 631_152_000
EPOCH_MAX = 4_102_444_800
_UNIT_SCALE = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
_UNIT_FACTOR = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}


# ----------------------------------------------------------------------------- durations
def parse_duration(value: str | pd.Timedelta | float | int | None, name: str) -> pd.Timedelta:
    """Parse ``"1w"``, ``"36h"``, ``"1M"`` or a ``Timedelta`` into a positive, finite
    ``Timedelta``; anything else (NaN, NaT, ``"nand"``, ``"infh"``, zero, negative) raises
    ``ValueError`` naming ``name``."""
    if isinstance(value, pd.Timedelta | _dt.timedelta | np.timedelta64):
        td = pd.Timedelta(value)
    elif isinstance(value, str):
        if value in NAMED_DURATIONS:
            td = NAMED_DURATIONS[value]
        else:
            num, unit = value[:-1], value[-1:]
            if unit not in _DURATION_UNITS:
                raise ValueError(
                    f"{name}: cannot parse duration {value!r}; use e.g. 12h, 1d, 3d, 1w, 2w, "
                    f"1M, 3M, 6M, 1y or a number with unit m/h/d/w"
                )
            try:
                amount = float(num)
            except ValueError as exc:
                raise ValueError(f"{name}: cannot parse duration {value!r}") from exc
            if not math.isfinite(amount):
                raise ValueError(f"{name}: duration {value!r} is not a finite number")
            try:
                td = pd.Timedelta(amount, unit=_DURATION_UNITS[unit])
            except (ValueError, OverflowError) as exc:
                raise ValueError(f"{name}: cannot parse duration {value!r}") from exc
    else:
        raise ValueError(f"{name}: expected a duration like '1w', got {value!r}")
    if td is pd.NaT or pd.isna(td):
        raise ValueError(f"{name}: duration is NaT, got {value!r}")
    if td <= pd.Timedelta(0):
        raise ValueError(f"{name}: duration must be positive, got {value!r}")
    return td


def timeframe_to_timedelta(timeframe: str) -> pd.Timedelta:
    """freqtrade/ccxt timeframe (``"15m"``, ``"1h"``, ``"1d"``, ``"1w"``) to a Timedelta.
    Months (``"1M"``) have no fixed length and raise ``ValueError``."""
    if not isinstance(timeframe, str) or len(timeframe) < 2 or timeframe[-1] not in _TF_UNITS:
        raise ValueError(f"invalid timeframe {timeframe!r}: expected e.g. 5m, 15m, 1h, 4h, 1d")
    try:
        amount = int(timeframe[:-1])
    except ValueError as exc:
        raise ValueError(f"invalid timeframe {timeframe!r}") from exc
    if amount <= 0:
        raise ValueError(f"invalid timeframe {timeframe!r}: length must be positive")
    return pd.Timedelta(amount, unit=_TF_UNITS[timeframe[-1]])


# ----------------------------------------------------------------------------- epochs
def _unit_of(value: float) -> str | None:
    for unit, factor in _UNIT_FACTOR.items():
        if EPOCH_MIN * factor <= value <= EPOCH_MAX * factor:
            return unit
    return None


def epoch_unit(values: np.ndarray, name: str = "date") -> str:
    """The unit (``"s"``, ``"ms"``, ``"us"`` or ``"ns"``) of epoch numbers, by magnitude (see
    the module docstring); ``ValueError`` naming ``name`` and the row for an implausible value
    or for values of different units."""
    arr = np.asarray(values)
    if arr.size == 0:
        return "ns"
    unit = _unit_of(float(arr[0]))
    if unit is None:
        raise ValueError(
            f"column {name!r} has an epoch number of no plausible unit (s, ms, us, ns for "
            f"1990..2100) at row 0: {arr[0]!r}"
        )
    factor = _UNIT_FACTOR[unit]
    bad = (arr < EPOCH_MIN * factor) | (arr > EPOCH_MAX * factor)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"column {name!r} has epoch numbers of different or implausible units (row 0 is in "
            f"{unit}) at row {i}: {arr[i]!r}"
        )
    return unit


def _epoch_to_ns(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.floor(arr))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            what = "NaT" if np.isnan(arr[i]) else "a non-integral or infinite epoch number"
            raise ValueError(f"column {name!r} has {what} at row {i}")
    unit = epoch_unit(arr, name)
    return arr.astype(np.int64) * np.int64(_UNIT_SCALE[unit])


def dates_to_ns(raw: Any, name: str = "date") -> np.ndarray:
    """A date column (datetime64, tz-aware, strings, ``Timestamp`` objects or epoch numbers)
    as int64 nanoseconds UTC. ``ValueError`` naming ``name`` (and the row) for NaT, Timedelta
    values, implausible epoch numbers, booleans or values that are not dates."""
    s = raw if isinstance(raw, pd.Series | pd.Index) else pd.Series(raw)
    dtype = s.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or dtype.kind == "M":
        na = np.asarray(pd.isna(s))
        if na.any():
            raise ValueError(f"column {name!r} has NaT at row {int(np.flatnonzero(na)[0])}")
        idx = pd.DatetimeIndex(s)
        if idx.tz is not None:
            idx = idx.tz_convert("UTC").tz_localize(None)
        return np.asarray(idx.as_unit("ns").asi8, dtype=np.int64)
    if dtype.kind == "m":
        raise ValueError(f"column {name!r} holds Timedelta values, not dates")
    if dtype.kind == "b":
        raise ValueError(f"column {name!r} holds booleans, not dates")
    if dtype.kind in "iuf":
        return _epoch_to_ns(
            np.asarray(s, dtype=np.float64 if dtype.kind == "f" else np.int64), name
        )
    values = np.asarray(s, dtype=object)
    out = np.empty(values.shape[0], dtype=np.int64)
    for i, v in enumerate(values):
        try:
            out[i] = to_utc_ns(v, name)
        except ValueError as exc:
            raise ValueError(f"{exc} at row {i}") from None
    return out


def to_utc_ns(value: Any, name: str = "date", *, what: str = "column") -> int:
    """One date (``Timestamp``, ``datetime``, ``datetime64``, ISO string or epoch number of any
    unit in the module docstring) as int nanoseconds UTC; ``ValueError`` naming ``name``
    (``what`` says what it is: ``"column"`` or, for a function argument, ``"parameter"``)."""
    label = f"{what} {name!r}"
    if isinstance(value, pd.Timestamp):
        if value is pd.NaT:
            raise ValueError(f"{label} has NaT")
        try:
            return int(value.value)  # ns since the epoch (UTC, or naive read as UTC), any unit
        except OverflowError as exc:  # a coarser unit holds dates nanoseconds cannot
            raise ValueError(
                f"{label} is outside the dates of nanosecond precision: {value}"
            ) from exc
    if isinstance(value, bool | np.bool_):
        raise ValueError(f"{label} holds a boolean, not a date")
    if isinstance(value, int | np.integer):
        v = int(value)
        unit = _unit_of(v)
        if unit is None:
            raise ValueError(
                f"{label} has an epoch number of no plausible unit (s, ms, us, ns for "
                f"1990..2100): {v!r}"
            )
        return v * _UNIT_SCALE[unit]
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            raise ValueError(f"{label} has NaT")
        if value != math.floor(value):
            raise ValueError(f"{label} has a non-integral epoch number: {value!r}")
        return to_utc_ns(int(value), name, what=what)
    if isinstance(value, pd.Timedelta | _dt.timedelta | np.timedelta64):
        raise ValueError(f"{label} holds a Timedelta, not a date")
    if value is None:
        raise ValueError(f"{label} has NaT")
    if not isinstance(value, str | _dt.datetime | _dt.date | np.datetime64):
        raise ValueError(f"{label} holds a {type(value).__name__}, not a date")
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValueError(f"{label} is not a date: {value!r}") from exc
    if ts is pd.NaT:
        raise ValueError(f"{label} has NaT")
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.as_unit("ns").value)


def utc_timestamp(value: Any) -> pd.Timestamp:
    """Int nanoseconds UTC (or any date :func:`to_utc_ns` reads) as a ``pd.Timestamp`` in UTC."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        return pd.Timestamp(int(value), unit="ns", tz="UTC")
    return pd.Timestamp(to_utc_ns(value), unit="ns", tz="UTC")


def to_utc_datetime(values: Any, unit: str | None = None) -> Any:
    """Dates (a column, an index, an array or one value) as timezone-aware UTC datetimes, the
    way the data modules read a ``date`` column: naive values are taken as UTC, aware ones
    converted, numbers read in ``unit`` (e.g. ``"ms"``). A thin, single home for
    ``pd.to_datetime(values, unit=unit, utc=True)``; the resolution of datetime input is kept."""
    return pd.to_datetime(values, unit=unit, utc=True)


def utc_dates(values: Any) -> np.ndarray:
    """Dates as naive ``datetime64[ns]`` in UTC (naive input is taken as UTC)."""
    idx = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    return idx.tz_convert("UTC").tz_localize(None).as_unit("ns").to_numpy()


def utc_index(ns: Any) -> pd.DatetimeIndex:
    """Int64 nanoseconds UTC (an array) as a ``DatetimeIndex`` in UTC."""
    return pd.DatetimeIndex(pd.to_datetime(np.asarray(ns, dtype=np.int64), utc=True))


def format_utc(value: Any) -> str:
    """A date as ``YYYY-MM-DD HH:MM:SS+00:00`` (the form the messages and reports use)."""
    return str(utc_timestamp(value).floor("s"))
