"""Candle inputs and their single validator, for a frame and for a single candle.

:func:`prepare_inputs` validates a candle frame, :func:`single_inputs` one candle (the live-bot
path); both give the engine's :class:`Inputs` arrays (dates as int64 ns UTC).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "REQUIRED_COLUMNS",
    "Inputs",
    "SingleBuffers",
    "prepare_inputs",
    "single_inputs",
    "to_ns",
]

REQUIRED_COLUMNS = ("date", "open", "high", "low", "close", "volume")


# ----------------------------------------------------------------------------- input checks
@dataclass
class Inputs:
    """Validated input arrays (dates as int64 ns UTC)."""

    dates: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    oi: np.ndarray
    taker_buy: np.ndarray
    ls_ratio: np.ndarray

    def __len__(self) -> int:
        return int(self.dates.shape[0])

    def slice(self, a: int, b: int) -> Inputs:
        return Inputs(*(getattr(self, f)[a:b] for f in self.__dataclass_fields__))


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _date_array(df: pd.DataFrame) -> np.ndarray:
    if "date" in df.columns:
        raw = df["date"]
    elif isinstance(df.index, pd.DatetimeIndex):
        raw = pd.Series(df.index, index=df.index)
    else:
        raise ValueError("missing column 'date' (or a DatetimeIndex)")
    if raw.isna().any():
        raise ValueError(f"column 'date' has NaT at row {_first_bad(raw.isna().to_numpy())}")
    dt = pd.to_datetime(raw, utc=True)
    return dt.dt.as_unit("ns").astype("int64").to_numpy()


def prepare_inputs(df: pd.DataFrame) -> Inputs:
    """Validate a candle frame and return the engine's input arrays.

    Required: ``date`` (or a DatetimeIndex), ``open, high, low, close, volume`` (volume in base
    currency). Optional: ``open_interest`` (coins) or ``open_interest_value`` (quote),
    ``taker_buy_volume`` (base), ``long_short_ratio`` (long accounts / short accounts).
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in REQUIRED_COLUMNS[1:] if c not in df.columns]
    if missing:
        raise ValueError(f"missing column(s) {missing}; need date, open, high, low, close, volume")
    n = len(df)
    dates = _date_array(df)
    if n > 1:
        d = np.diff(dates)
        if np.any(d == 0):
            i = _first_bad(d == 0) + 1
            raise ValueError(f"duplicate date {pd.Timestamp(dates[i], tz='UTC')} at row {i}")
        if np.any(d < 0):
            i = _first_bad(d < 0) + 1
            raise ValueError(f"dates are not sorted ascending: row {i} is earlier than row {i - 1}")

    def col(name: str) -> np.ndarray:
        try:
            arr = pd.to_numeric(df[name], errors="raise").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"column {name!r} is not numeric: {exc}") from exc
        return np.ascontiguousarray(arr)

    o, h, lo, c, v = (col(x) for x in ("open", "high", "low", "close", "volume"))
    for name, arr in (("open", o), ("high", h), ("low", lo), ("close", c), ("volume", v)):
        bad = ~np.isfinite(arr)
        if bad.any():
            raise ValueError(f"column {name!r} has NaN/inf at row {_first_bad(bad)}")
    for name, arr in (("open", o), ("high", h), ("low", lo), ("close", c)):
        if np.any(arr <= 0):
            raise ValueError(
                f"column {name!r} has a non-positive price at row {_first_bad(arr <= 0)}"
            )
    if np.any(h < lo):
        raise ValueError(f"high < low at row {_first_bad(h < lo)}")
    tol = 1e-9
    outside = (np.maximum(o, c) > h * (1 + tol)) | (np.minimum(o, c) < lo * (1 - tol))
    if outside.any():
        raise ValueError(f"open/close outside [low, high] at row {_first_bad(outside)}")
    if np.any(v < 0):
        raise ValueError(f"column 'volume' is negative at row {_first_bad(v < 0)}")

    nan = np.full(n, np.nan)
    if "open_interest" in df.columns:
        oi = col("open_interest")
    elif "open_interest_value" in df.columns:
        oi = col("open_interest_value") / c  # quote value -> coins at the candle's close
    else:
        oi = nan.copy()
    if np.any(oi < 0):
        raise ValueError(f"open interest is negative at row {_first_bad(oi < 0)}")
    tb = col("taker_buy_volume") if "taker_buy_volume" in df.columns else nan.copy()
    if np.any(tb < 0):
        raise ValueError(f"column 'taker_buy_volume' is negative at row {_first_bad(tb < 0)}")
    if np.any(tb > v * (1 + 1e-9)):
        raise ValueError(
            f"taker_buy_volume exceeds volume at row {_first_bad(tb > v * (1 + 1e-9))}"
        )
    lsr = col("long_short_ratio") if "long_short_ratio" in df.columns else nan.copy()
    if np.any(lsr < 0):
        raise ValueError(f"column 'long_short_ratio' is negative at row {_first_bad(lsr < 0)}")
    # one array layout for every caller, so numba compiles (and caches) a single signature
    arrays = (np.require(a, requirements=("C", "W")) for a in (o, h, lo, c, v, oi, tb, lsr))
    return Inputs(np.require(dates, dtype=np.int64, requirements=("C", "W")), *arrays)


def to_ns(value: Any) -> int:
    if isinstance(value, pd.Timestamp):
        if value.tzinfo is not None:
            return int(value.value)
        ts = value
    elif isinstance(value, int | np.integer):
        return int(value)
    else:
        ts = pd.Timestamp(value)
    if ts is pd.NaT:
        raise ValueError("candle date is NaT")
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.as_unit("ns").value)


class SingleBuffers:
    """Reused one-element input arrays for :meth:`LiquidationEngine.update`."""

    def __init__(self) -> None:
        self.inputs = Inputs(np.zeros(1, dtype=np.int64), *(np.zeros(1) for _ in range(8)))


def single_inputs(
    candle: Mapping[str, Any] | pd.Series, buf: SingleBuffers | None = None
) -> Inputs:
    """Inputs for one candle without building a DataFrame (the live-bot path)."""
    get = candle.get
    date = get("date")
    if date is None and isinstance(candle, pd.Series):
        date = candle.name
    if date is None:
        raise ValueError("candle has no 'date'")
    vals = []
    for name in REQUIRED_COLUMNS[1:]:
        v = get(name)
        if v is None:
            raise ValueError(f"candle is missing {name!r}")
        v = float(v)
        if not math.isfinite(v):
            raise ValueError(f"candle {name!r} is NaN/inf")
        vals.append(v)
    o, h, lo, c, vol = vals
    if min(o, h, lo, c) <= 0:
        raise ValueError("candle has a non-positive price")
    if h < lo:
        raise ValueError("candle high < low")
    if max(o, c) > h * (1 + 1e-9) or min(o, c) < lo * (1 - 1e-9):
        raise ValueError("candle open/close outside [low, high]")
    if vol < 0:
        raise ValueError("candle volume is negative")

    def opt(name: str) -> float:
        v = get(name)
        return math.nan if v is None else float(v)

    oi = opt("open_interest")
    if math.isnan(oi) and get("open_interest_value") is not None:
        oi = opt("open_interest_value") / c
    tb = opt("taker_buy_volume")
    lsr = opt("long_short_ratio")
    if oi < 0 or tb < 0 or lsr < 0:
        raise ValueError("candle has negative open interest, taker volume or long/short ratio")
    if tb > vol * (1 + 1e-9):
        raise ValueError("candle taker_buy_volume exceeds volume")
    inp = (buf or SingleBuffers()).inputs
    inp.dates[0] = to_ns(date)
    inp.open[0] = o
    inp.high[0] = h
    inp.low[0] = lo
    inp.close[0] = c
    inp.volume[0] = vol
    inp.oi[0] = oi
    inp.taker_buy[0] = tb
    inp.ls_ratio[0] = lsr
    return inp
