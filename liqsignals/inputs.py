"""Candle inputs and their single validator, for a frame and for a single candle.

:func:`prepare_inputs` validates a candle frame, :func:`single_inputs` one candle (the live-bot
path); both give the engine's :class:`Inputs` arrays (dates as int64 ns UTC). Both apply the same
rules, column by column in the order of :data:`CHECKED_COLUMNS`, and raise the same
``ValueError`` ``"column '<name>' <problem>"``; a frame's message ends with ``" at row <i>"``
(the position of the first offending row).

Rules (``MAX_VALUE`` is the magnitude bound):

- ``date``: datetimes (naive ones read as UTC), ISO strings or integer epoch numbers, whose unit
  (s, ms, us, ns) is told by magnitude (:mod:`liqsignals._time`); NaT, Timedelta values and
  implausible epoch numbers are rejected. Frames: strictly ascending, no duplicates.
- ``open, high, low, close``: finite, ``> 0`` and ``<= MAX_VALUE``; ``low <= high``;
  ``open`` and ``close`` within ``[low, high]`` (relative tolerance 1e-9).
- ``volume``: finite, ``>= 0`` and ``<= MAX_VALUE``.
- optional ``open_interest`` (coins), ``open_interest_value`` (quote; converted to coins at the
  close), ``taker_buy_volume`` (base; ``<= volume``), ``long_short_ratio``: NaN means
  "unknown" (the model then does without it); otherwise finite, ``>= 0`` and ``<= MAX_VALUE``.
- optional ``mark_high``, ``mark_low``: the mark price's high and low over the candle's own span
  (aligned by the caller; a coarser mark series must not be spread over finer candles). Both
  columns or neither; NaN means "unknown" (that candle then liquidates by last price) and must
  be NaN in both at once; otherwise finite, ``> 0`` and ``<= MAX_VALUE``, with
  ``mark_low <= mark_high``. The mark range need not lie inside ``[low, high]``.
- every value numeric (booleans and strings rejected); frames without MultiIndex or duplicated
  columns.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from liqsignals._time import dates_to_ns, format_utc, to_utc_ns

__all__ = [
    "CHECKED_COLUMNS",
    "MARK_COLUMNS",
    "MAX_VALUE",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "Inputs",
    "SingleBuffers",
    "prepare_inputs",
    "single_inputs",
    "single_values",
    "to_ns",
]

REQUIRED_COLUMNS = ("date", "open", "high", "low", "close", "volume")
OPTIONAL_COLUMNS = (
    "open_interest",
    "open_interest_value",
    "taker_buy_volume",
    "long_short_ratio",
    "mark_high",
    "mark_low",
)
#: the mark-price columns: optional, but only as a pair (see the module docstring)
MARK_COLUMNS = ("mark_high", "mark_low")
#: The magnitude bound of every price, volume and optional input: larger values (1e300, say)
#: would overflow the model's notionals (price * amount * leverage, summed over a window).
MAX_VALUE = 1e15
_PRICES = ("open", "high", "low", "close", "mark_high", "mark_low")
CHECKED_COLUMNS = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
_TOL = 1e-9

# per-column problems, shared by the frame and the single-candle checks
_NOT_NUMERIC = "is not numeric"
_NON_FINITE = "has NaN/inf"
_INFINITE = "has inf (NaN means unknown; inf is not a value)"
_NON_POSITIVE = "has a non-positive price"
_NEGATIVE = "is negative"
_TOO_LARGE = f"exceeds the magnitude bound MAX_VALUE={MAX_VALUE:g}"
_HIGH_LOW = "is below 'low' (high < low)"
_OUTSIDE = "is outside [low, high]"
_TAKER = "exceeds volume"
_MARK_ORDER = "is below 'mark_low' (mark_high < mark_low)"
_MARK_ALONE = "is given without 'mark_low' (give both mark columns or neither)"
_LOW_ALONE = "is given without 'mark_high' (give both mark columns or neither)"
_MARK_NAN = "is NaN where 'mark_low' is not (both or neither unknown)"
_LOW_NAN = "is NaN where 'mark_high' is not (both or neither unknown)"


def _message(name: str, problem: str, row: int | None = None) -> str:
    where = "" if row is None else f" at row {row}"
    if name in ("open_interest", "open_interest_value") and problem == _NEGATIVE:
        problem = "is negative (open interest is negative)"
    return f"column {name!r} {problem}{where}"


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
    mark_high: np.ndarray
    mark_low: np.ndarray

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
    return dates_to_ns(raw, "date")


def _numeric(df: pd.DataFrame, name: str) -> np.ndarray:
    s = df[name]
    if s.dtype.kind == "b":
        raise ValueError(_message(name, _NOT_NUMERIC, 0))
    if s.dtype.kind in "iuf":
        return np.ascontiguousarray(s.to_numpy(dtype=np.float64))
    num = pd.to_numeric(s, errors="coerce")
    was_na = np.asarray(s.isna())
    bad = np.asarray(num.isna()) & ~was_na
    obj = np.asarray(s, dtype=object)
    bools = np.fromiter((isinstance(v, bool | np.bool_) for v in obj), bool, obj.shape[0])
    if bad.any() or bools.any():
        raise ValueError(_message(name, _NOT_NUMERIC, _first_bad(bad | bools)))
    return np.ascontiguousarray(num.to_numpy(dtype=np.float64, na_value=np.nan))


def _check_array(name: str, arr: np.ndarray, optional: bool) -> None:
    """The per-column rules on an array (the first failing rule, at its first row)."""
    finite = np.isfinite(arr)
    if optional:
        bad = np.isinf(arr)
        if bad.any():
            raise ValueError(_message(name, _INFINITE, _first_bad(bad)))
    elif not finite.all():
        raise ValueError(_message(name, _NON_FINITE, _first_bad(~finite)))
    with np.errstate(invalid="ignore"):
        if name in _PRICES:
            bad = arr <= 0
            problem = _NON_POSITIVE
        else:
            bad = arr < 0
            problem = _NEGATIVE
        if bad.any():
            raise ValueError(_message(name, problem, _first_bad(bad)))
        bad = arr > MAX_VALUE
        if bad.any():
            raise ValueError(_message(name, _TOO_LARGE, _first_bad(bad)))


def _check_value(name: str, v: float, optional: bool) -> None:
    """The same rules on one value (the single-candle path)."""
    if v - v != 0.0:  # NaN or inf
        if v != v and optional:
            return
        raise ValueError(_message(name, _INFINITE if optional else _NON_FINITE))
    if name in _PRICES:
        if not v > 0.0:
            raise ValueError(_message(name, _NON_POSITIVE))
    elif v < 0.0:
        raise ValueError(_message(name, _NEGATIVE))
    if v > MAX_VALUE:
        raise ValueError(_message(name, _TOO_LARGE))


def _check_columns(df: pd.DataFrame) -> None:
    if isinstance(df.columns, pd.MultiIndex):
        raise ValueError(
            "the frame has MultiIndex columns; pass one market's flat columns "
            "(date, open, high, low, close, volume)"
        )
    dup = df.columns[df.columns.duplicated()]
    used = [c for c in dup if c in CHECKED_COLUMNS]
    if used:
        raise ValueError(f"column {used[0]!r} appears more than once")


def prepare_inputs(df: pd.DataFrame) -> Inputs:
    """Validate a candle frame and return the engine's input arrays.

    Required: ``date`` (or a DatetimeIndex), ``open, high, low, close, volume`` (volume in base
    currency). Optional: ``open_interest`` (coins) or ``open_interest_value`` (quote),
    ``taker_buy_volume`` (base), ``long_short_ratio`` (long accounts / short accounts),
    ``mark_high`` and ``mark_low`` (the mark price's range over the candle). The rules
    are in the module docstring; a violation raises ``ValueError`` naming the column and row.
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"expected a pandas DataFrame, got {type(df).__name__}")
    _check_columns(df)
    missing = [c for c in REQUIRED_COLUMNS[1:] if c not in df.columns]
    if missing:
        raise ValueError(f"missing column(s) {missing}; need date, open, high, low, close, volume")
    n = len(df)
    dates = _date_array(df)
    if n > 1:
        d = np.diff(dates)
        if np.any(d == 0):
            i = _first_bad(d == 0) + 1
            raise ValueError(
                f"column 'date' has a duplicate date {format_utc(int(dates[i]))} at row {i}"
            )
        if np.any(d < 0):
            i = _first_bad(d < 0) + 1
            raise ValueError(
                f"column 'date' is not sorted ascending: row {i} is earlier than row {i - 1}"
            )

    arrays: dict[str, np.ndarray] = {}
    for name in CHECKED_COLUMNS[1:]:
        if name in df.columns:
            arr = _numeric(df, name)
            _check_array(name, arr, name in OPTIONAL_COLUMNS)
            arrays[name] = arr
    o, h, lo, c, v = (arrays[x] for x in REQUIRED_COLUMNS[1:])
    if np.any(h < lo):
        raise ValueError(_message("high", _HIGH_LOW, _first_bad(h < lo)))
    outside_o = (o > h * (1 + _TOL)) | (o < lo * (1 - _TOL))
    outside_c = (c > h * (1 + _TOL)) | (c < lo * (1 - _TOL))
    if outside_o.any() or outside_c.any():
        i = _first_bad(outside_o | outside_c)
        raise ValueError(_message("open" if outside_o[i] else "close", _OUTSIDE, i))
    nan = np.full(n, np.nan)
    tb = arrays.get("taker_buy_volume", nan)
    with np.errstate(invalid="ignore"):
        over = tb > v * (1 + _TOL)
    if over.any():
        raise ValueError(_message("taker_buy_volume", _TAKER, _first_bad(over)))
    _check_mark_columns(arrays)
    if "open_interest" in arrays:
        oi = arrays["open_interest"]
    elif "open_interest_value" in arrays:
        oi = arrays["open_interest_value"] / c  # quote value -> coins at the candle's close
    else:
        oi = nan
    lsr = arrays.get("long_short_ratio", nan)
    mh = arrays.get("mark_high", nan)
    ml = arrays.get("mark_low", nan)
    # one array layout for every caller, so numba compiles (and caches) a single signature
    if tb is nan:
        tb = nan.copy()
    if lsr is nan:
        lsr = nan.copy()
    if mh is nan:
        mh, ml = nan.copy(), nan.copy()
    req = (np.require(a, requirements=("C", "W")) for a in (o, h, lo, c, v, oi, tb, lsr, mh, ml))
    return Inputs(np.require(dates, dtype=np.int64, requirements=("C", "W")), *req)


def _check_mark_columns(arrays: Mapping[str, np.ndarray]) -> None:
    """The pair rules of ``mark_high`` / ``mark_low`` on a frame's arrays."""
    has_h, has_l = "mark_high" in arrays, "mark_low" in arrays
    if has_h != has_l:
        raise ValueError(
            _message(*(("mark_high", _MARK_ALONE) if has_h else ("mark_low", _LOW_ALONE)))
        )
    if not has_h:
        return
    mh, ml = arrays["mark_high"], arrays["mark_low"]
    nan_h, nan_l = np.isnan(mh), np.isnan(ml)
    odd = nan_h != nan_l
    if odd.any():
        i = _first_bad(odd)
        raise ValueError(
            _message(*(("mark_high", _MARK_NAN) if nan_h[i] else ("mark_low", _LOW_NAN)), i)
        )
    with np.errstate(invalid="ignore"):
        bad = mh < ml
    if bad.any():
        raise ValueError(_message("mark_high", _MARK_ORDER, _first_bad(bad)))


def _check_mark_values(mh: float, ml: float, has_h: bool, has_l: bool) -> None:
    """The same pair rules on one candle's values (``has_*``: the key was given)."""
    if has_h != has_l:
        raise ValueError(
            _message(*(("mark_high", _MARK_ALONE) if has_h else ("mark_low", _LOW_ALONE)))
        )
    if (mh != mh) != (ml != ml):
        raise ValueError(
            _message(*(("mark_high", _MARK_NAN) if mh != mh else ("mark_low", _LOW_NAN)))
        )
    if mh < ml:
        raise ValueError(_message("mark_high", _MARK_ORDER))


def to_ns(value: Any) -> int:
    """One candle date as int nanoseconds UTC (:func:`liqsignals._time.to_utc_ns`)."""
    return to_utc_ns(value, "date")


class SingleBuffers:
    """Reused one-element input arrays for :meth:`LiquidationEngine.update`."""

    def __init__(self) -> None:
        self.inputs = Inputs(np.zeros(1, dtype=np.int64), *(np.zeros(1) for _ in range(10)))


def _float(name: str, v: Any) -> float:
    if type(v) is float:
        return v
    if isinstance(v, bool | np.bool_):
        raise ValueError(_message(name, _NOT_NUMERIC))
    if isinstance(v, int | np.integer | np.floating):
        return float(v)
    try:
        return float(pd.to_numeric(v))
    except (TypeError, ValueError):
        raise ValueError(_message(name, _NOT_NUMERIC)) from None


_TS = pd.Timestamp
_DT64 = np.datetime64
_F64 = np.float64
_NS_DT64 = np.dtype("datetime64[ns]")
_NAT_NS = np.iinfo(np.int64).min
_HI_TOL = 1 + _TOL
_LO_TOL = 1 - _TOL
# plausible epoch dates (1990..2100) in nanoseconds and in milliseconds (ccxt's format): the
# ranges liqsignals._time.to_utc_ns reads as those units
_NS_MIN, _NS_MAX = 631_152_000 * 10**9, 4_102_444_800 * 10**9
_MS_MIN, _MS_MAX = 631_152_000 * 10**3, 4_102_444_800 * 10**3

#: One validated candle: date (int ns UTC), open, high, low, close, volume, open interest
#: (coins), taker buy volume, long/short ratio, mark high, mark low (NaN: unknown), as Python
#: numbers.
SingleValues = tuple[int, float, float, float, float, float, float, float, float, float, float]


def _fast_values(candle: dict[str, Any]) -> SingleValues | None:
    """The common live candle (a dict of floats, the date a Timestamp, a datetime64[ns] or an
    epoch number in ms or ns) accepted with scalar checks only; ``None`` for anything else,
    including every invalid candle (:func:`single_values` then applies the full rules, so the
    messages stay those of :func:`single_inputs`). Accepts exactly what the full rules accept,
    with the same values."""
    get: Callable[[str], Any] = candle.get
    d = get("date")
    td = type(d)
    if td is _TS:
        try:
            ns = d.value  # NaT is not a Timestamp instance of this type
        except OverflowError:  # beyond nanosecond dates: the full rules say so
            return None
    elif td is int:
        if _NS_MIN <= d <= _NS_MAX:
            ns = d
        elif _MS_MIN <= d <= _MS_MAX:
            ns = d * 1_000_000
        else:
            return None
    elif td is _DT64 and d.dtype == _NS_DT64:
        ns = int(d.view("i8"))
        if ns == _NAT_NS:
            return None
    else:
        return None
    o = get("open")
    h = get("high")
    lo = get("low")
    c = get("close")
    v = get("volume")
    t = type(o)
    if (t is not float and t is not _F64) or type(h) is not t or type(lo) is not t:
        return None
    if type(c) is not t or type(v) is not t:
        return None
    if t is _F64:
        o, h, lo, c, v = float(o), float(h), float(lo), float(c), float(v)
    # finite, positive, bounded, low <= high, open and close inside [low, high]; NaN fails
    if not (0.0 < lo <= h <= MAX_VALUE and 0.0 <= v <= MAX_VALUE):
        return None
    lo_tol = lo * _LO_TOL
    hi_tol = h * _HI_TOL
    if not (lo_tol <= o <= hi_tol and 0.0 < o <= MAX_VALUE):
        return None
    if not (lo_tol <= c <= hi_tol and 0.0 < c <= MAX_VALUE):
        return None
    if len(candle) == 6:
        # the six required columns (all present: their types were checked) and nothing else
        return ns, o, h, lo, c, v, math.nan, math.nan, math.nan, math.nan, math.nan
    oi = get("open_interest")
    oiv = get("open_interest_value")
    tb = get("taker_buy_volume")
    lsr = get("long_short_ratio")
    mh = get("mark_high")
    ml = get("mark_low")
    if oi is None and oiv is None and tb is None and lsr is None and mh is None and ml is None:
        return ns, o, h, lo, c, v, math.nan, math.nan, math.nan, math.nan, math.nan
    if (mh is None) != (ml is None):
        return None
    opt = []
    for x in (oi, oiv, tb, lsr, mh, ml):
        if x is None:
            opt.append(math.nan)
            continue
        tx = type(x)
        if tx is not float and tx is not _F64:
            return None
        x = float(x)
        if x == x and not 0.0 <= x <= MAX_VALUE:
            return None
        opt.append(x)
    oi_f, oiv_f, tb_f, lsr_f, mh_f, ml_f = opt
    if tb_f > v * _HI_TOL:
        return None
    if mh_f == mh_f:
        # finite: a positive price, not below the mark low (a NaN mark low fails here too)
        if not 0.0 < ml_f <= mh_f:
            return None
    elif ml_f == ml_f:
        return None
    if oi is None and oiv is not None:
        oi_f = oiv_f / c
    return ns, o, h, lo, c, v, oi_f, tb_f, lsr_f, mh_f, ml_f


def single_values(candle: Mapping[str, Any] | pd.Series) -> SingleValues:
    """One candle validated as :func:`single_inputs` does (the same rules and messages) and
    returned as a tuple of Python numbers (:data:`SingleValues`); the common dict of floats
    takes a scalar fast path."""
    if type(candle) is dict:
        fast = _fast_values(candle)
        if fast is not None:
            return fast
    inp = single_inputs(candle, SingleBuffers())
    return (
        int(inp.dates[0]),
        *(float(a[0]) for a in (inp.open, inp.high, inp.low, inp.close, inp.volume)),
        float(inp.oi[0]),
        float(inp.taker_buy[0]),
        float(inp.ls_ratio[0]),
        float(inp.mark_high[0]),
        float(inp.mark_low[0]),
    )  # type: ignore[return-value]


def single_inputs(
    candle: Mapping[str, Any] | pd.Series, buf: SingleBuffers | None = None
) -> Inputs:
    """Inputs for one candle without building a DataFrame (the live-bot path); the same rules
    and messages as :func:`prepare_inputs` (without the row)."""
    get = candle.get
    date = get("date")
    if date is None and isinstance(candle, pd.Series):
        date = candle.name
    if date is None:
        raise ValueError("missing column 'date' (or a Series named by its date)")
    ns = to_utc_ns(date, "date")
    vals = []
    for name in REQUIRED_COLUMNS[1:]:
        v = get(name)
        if v is None:
            raise ValueError(
                f"missing column(s) [{name!r}]; need date, open, high, low, close, volume"
            )
        v = _float(name, v)
        _check_value(name, v, False)
        vals.append(v)
    o, h, lo, c, vol = vals
    opt = []
    for name in OPTIONAL_COLUMNS:
        v = get(name)
        if v is None:
            opt.append(math.nan)
            continue
        v = _float(name, v)
        _check_value(name, v, True)
        opt.append(v)
    oi, oiv, tb, lsr, mh, ml = opt
    if h < lo:
        raise ValueError(_message("high", _HIGH_LOW))
    if o > h * (1 + _TOL) or o < lo * (1 - _TOL):
        raise ValueError(_message("open", _OUTSIDE))
    if c > h * (1 + _TOL) or c < lo * (1 - _TOL):
        raise ValueError(_message("close", _OUTSIDE))
    if tb > vol * (1 + _TOL):
        raise ValueError(_message("taker_buy_volume", _TAKER))
    _check_mark_values(mh, ml, get("mark_high") is not None, get("mark_low") is not None)
    if get("open_interest") is None and get("open_interest_value") is not None:
        oi = oiv / c
    inp = (buf or SingleBuffers()).inputs
    inp.dates[0] = ns
    inp.open[0] = o
    inp.high[0] = h
    inp.low[0] = lo
    inp.close[0] = c
    inp.volume[0] = vol
    inp.oi[0] = oi
    inp.taker_buy[0] = tb
    inp.ls_ratio[0] = lsr
    inp.mark_high[0] = mh
    inp.mark_low[0] = ml
    return inp
