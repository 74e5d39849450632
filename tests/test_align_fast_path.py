"""The numpy fast paths of liqsignals.align and the strategies' funding / mark columns give the
same arrays, bit for bit, and the same errors as the general path for every input: randomized
candle, funding and mark frames (gaps, equal dates, unsorted dates, NaT, NaN values, all-NaN
rows, naive and timezone-aware dates of every resolution, events before and after the candles,
empty frames, finer / same / coarser mark timeframes), each aligned once as it is and once with
the fast paths switched off (the general path, the code as it was before them)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from liqsignals import align
from liqsignals.strategy import market_data as md

T0 = pd.Timestamp("2024-03-01", tz="UTC")
UNITS = ("s", "ms", "us", "ns")
SEEDS = range(60)


@contextlib.contextmanager
def general_path() -> Iterator[None]:
    """Every fast path off: no date read from its int64 storage, no sort skipped, funding rows
    dropped by pandas' ``dropna``, the mark columns looked up in a set."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(align, "_stored", lambda values: None)
        mp.setattr(align, "_increasing", lambda values: False)
        mp.setattr(md, "_dated_floats", lambda frame, col: None)
        mp.setattr(md, "_has_columns", lambda frame, names: set(names) <= set(frame.columns))
        yield


def outcome(fn: Callable[[], Any]) -> tuple[Any, ...]:
    try:
        return ("ok", fn())
    except Exception as exc:  # the errors must match too
        return ("error", type(exc), str(exc))


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.int64)


def assert_same(fast: tuple[Any, ...], full: tuple[Any, ...]) -> None:
    assert fast[0] == full[0], (fast, full)
    if fast[0] == "error":
        assert fast[1:] == full[1:]
        return
    got, want = fast[1], full[1]
    if isinstance(want, dict):
        assert list(got) == list(want)
        pairs = [(got[k], want[k]) for k in want]
    else:
        assert len(got) == len(want)
        pairs = list(zip(got, want, strict=True))
    for g, w in pairs:
        assert g.dtype == w.dtype == np.float64
        np.testing.assert_array_equal(g, w)
        np.testing.assert_array_equal(_bits(g), _bits(w))  # NaN and signed zeros, bit for bit


def both_ways(fn: Callable[[], Any]) -> tuple[Any, ...]:
    fast = outcome(fn)
    with general_path():
        full = outcome(fn)
    assert_same(fast, full)
    return fast


# ----------------------------------------------------------------------------- random inputs
def _as_dates(ns: np.ndarray, rng: np.random.Generator, nat: bool) -> pd.Series:
    """int64 nanoseconds as a date Series of a random resolution and timezone (NaT maybe)."""
    unit = UNITS[rng.integers(len(UNITS))]
    tz = [None, "UTC", "UTC", "Asia/Tokyo"][rng.integers(4)]
    idx = pd.to_datetime(ns, unit="ns", utc=True)
    if tz is None:
        idx = idx.tz_localize(None)
    elif tz != "UTC":
        idx = idx.tz_convert(tz)
    s = pd.Series(idx).dt.as_unit(unit)
    if nat and len(s):
        s.iloc[rng.integers(len(s))] = pd.NaT
    return s


def _grid(rng: np.random.Generator, n: int, step: pd.Timedelta, start: int = 0) -> np.ndarray:
    return T0.value + (start + np.arange(n)) * step.value


def _shuffle_some(ns: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    ns = ns.copy()
    if len(ns) < 2:
        return ns
    if rng.random() < p:  # gaps
        ns = ns[rng.random(len(ns)) > 0.1]
    if rng.random() < p and len(ns):  # equal dates
        i = rng.integers(len(ns), size=max(1, len(ns) // 20))
        ns = np.sort(np.r_[ns, ns[i]])
    if rng.random() < p / 2:  # out of order
        ns = rng.permutation(ns)
    if rng.random() < p / 4 and len(ns):  # an odd date, off the grid
        ns[rng.integers(len(ns))] += int(rng.integers(1, 10**9))
    return ns


def _values(rng: np.random.Generator, n: int, p_nan: float) -> np.ndarray:
    v = 100 + rng.standard_normal(n)
    special = rng.random(n)
    v[special < 0.02] = 0.0
    v[(special >= 0.02) & (special < 0.04)] = -0.0
    v[(special >= 0.04) & (special < 0.05)] = np.inf
    v[(special >= 0.05) & (special < 0.06)] = -np.inf
    v[rng.random(n) < p_nan] = np.nan
    return v


def _candles(rng: np.random.Generator, tf: pd.Timedelta, odd: float) -> pd.Series:
    n = int(rng.integers(0, 120)) if rng.random() < 0.1 else int(rng.integers(1, 120))
    ns = _shuffle_some(_grid(rng, n, tf, int(rng.integers(-5, 5))), rng, odd)
    return _as_dates(ns, rng, nat=rng.random() < odd / 4)


def _funding(rng: np.random.Generator, odd: float) -> pd.DataFrame:
    step = pd.Timedelta(hours=[1, 8][rng.integers(2)])
    n = int(rng.integers(0, 40))
    ns = _shuffle_some(_grid(rng, n, step, int(rng.integers(-10, 10))), rng, odd)
    when = _as_dates(ns, rng, nat=rng.random() < odd)
    col = "funding_rate" if rng.random() < 0.5 else "open"
    frame = pd.DataFrame({"date": when, col: _values(rng, len(ns), 0.3 * odd) / 1e4})
    if rng.random() < 0.3:
        frame["close"] = _values(rng, len(frame), 0.5)
    if rng.random() < 0.1:
        frame[col] = np.nan
    if rng.random() < 0.2:
        frame.index = frame.index + 1000  # a frame not indexed from 0
    return frame


def _mark(rng: np.random.Generator, candles: pd.Series, tf: pd.Timedelta, odd: float):
    kind = rng.random()
    if kind < 0.6:
        period = tf
    elif kind < 0.85:
        period = tf / [3, 5][rng.integers(2)]
    else:
        period = tf * [2, 4][rng.integers(2)]
    if rng.random() < 0.4 and period == tf and not candles.isna().any():
        ns = candles.dt.tz_localize(None).dt.as_unit("ns").to_numpy().view(np.int64)  # the same
        ns = ns[int(rng.integers(0, 3)) : len(ns) - int(rng.integers(0, 3))]
    else:
        n = int(rng.integers(0, 400))
        ns = _grid(rng, n, period, int(rng.integers(-20, 20)))
    ns = _shuffle_some(ns, rng, odd)
    when = _as_dates(ns, rng, nat=rng.random() < odd / 3)
    high = _values(rng, len(ns), 0.2 * odd)
    with np.errstate(invalid="ignore"):  # inf - inf
        low = high - np.abs(_values(rng, len(ns), 0.2 * odd))
    frame = pd.DataFrame({"date": when, "open": high, "high": high, "low": low})
    if rng.random() < 0.05:
        frame = frame.drop(columns=["low"])
    return frame, period


def _odd(seed: int) -> float:
    return 0.0 if seed % 3 == 0 else 0.5  # a third of the seeds: the common, clean inputs


# ----------------------------------------------------------------------------- the frames
@pytest.mark.parametrize("seed", SEEDS)
def test_funding_columns_are_the_general_paths(seed):
    rng = np.random.default_rng(seed)
    odd = _odd(seed)
    candles = _candles(rng, pd.Timedelta("15min"), odd)
    for frame in [_funding(rng, odd) for _ in range(4)]:
        both_ways(lambda f=frame: md._funding_columns(candles, f))
    both_ways(lambda: md._funding_columns(candles, None))
    empty = pd.DataFrame({"date": pd.Series([], dtype="datetime64[ms, UTC]"), "open": []})
    both_ways(lambda: md._funding_columns(candles, empty))


@pytest.mark.parametrize("seed", SEEDS)
def test_mark_columns_are_the_general_paths(seed):
    rng = np.random.default_rng(seed)
    odd = _odd(seed)
    tf = pd.Timedelta(["15min", "1h"][rng.integers(2)])
    candles = _candles(rng, tf, odd)
    for _ in range(4):
        frame, period = _mark(rng, candles, tf, odd)
        both_ways(lambda f=frame: md._mark_columns(candles, f, tf, None))
        both_ways(lambda f=frame, p=period: md._mark_columns(candles, f, None, p))
        both_ways(lambda f=frame, p=period: md._mark_columns(candles, f, tf, p))
        if len(frame) and "low" in frame:  # the values as arrays and with another length
            both_ways(
                lambda f=frame, p=period: align.align_extremes(
                    candles, tf, f["date"], f["high"].to_numpy(), f["low"].to_numpy()[:-1], p
                )
            )


@pytest.mark.parametrize("seed", SEEDS)
def test_every_alignment_is_the_general_paths(seed):
    rng = np.random.default_rng(seed)
    odd = _odd(seed)
    tf = pd.Timedelta("15min")
    candles = _candles(rng, tf, odd)
    for p in ("5min", "15min", "1h"):
        period = pd.Timedelta(p)
        n = int(rng.integers(0, 300))
        ns = _shuffle_some(_grid(rng, n, period, int(rng.integers(-30, 30))), rng, odd)
        when = _as_dates(ns, rng, nat=rng.random() < odd / 3)
        vals = {"a": _values(rng, n, 0.3), "b": _values(rng, n, 0.3 * odd)}
        both_ways(lambda w=when, v=vals: align.align_events(candles, w, v))
        both_ways(lambda w=when, v=vals, q=period: align.align_level(candles, tf, w, v, q))
        both_ways(lambda w=when, v=vals, q=period: align.align_flow(candles, tf, w, v, q))
        for dated in (when, pd.DatetimeIndex(when), when.array):
            both_ways(
                lambda w=dated, v=vals, q=period: align.align_extremes(
                    candles, tf, w, v["a"], v["b"], q
                )
            )


# ----------------------------------------------------------------------------- the cases, by hand
def _frame(dates: pd.Series, high: list[float], low: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"date": dates, "high": high, "low": low})


def test_the_common_inputs_take_the_fast_paths(monkeypatch):
    """A bot's frames (us, UTC, sorted, the mark frame on the candles' dates) never reach
    ``dates_to_ns`` nor pandas' ``dropna``; the values are the hand-made ones."""
    candles = pd.Series(pd.date_range(T0, periods=8, freq="15min").as_unit("us"))
    funding = pd.DataFrame(
        {
            "date": pd.date_range(T0 - pd.Timedelta("1h"), periods=3, freq="1h").as_unit("us"),
            "open": [1.0, 2.0, 3.0],
        }
    )
    mark = _frame(candles, [float(i) for i in range(8)], [-float(i) for i in range(8)])
    mark.loc[3, "low"] = np.nan

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("general path taken")

    monkeypatch.setattr(align, "dates_to_ns", refuse)
    monkeypatch.setattr(pd.DataFrame, "dropna", refuse)
    got = md._funding_columns(candles, funding)["funding_rate"]
    np.testing.assert_array_equal(got, [2.0] * 4 + [3.0] * 4)  # 00:00 .. 00:45 see 00:00
    hi_lo = md._mark_columns(candles, mark, "15m", None)
    np.testing.assert_array_equal(hi_lo["mark_high"], [0, 1, 2, np.nan, 4, 5, 6, 7])
    np.testing.assert_array_equal(hi_lo["mark_low"], [0, -1, -2, np.nan, -4, -5, -6, -7])
    shifted = mark.iloc[2:].reset_index(drop=True)  # begins two candles late
    shifted = pd.concat(
        [shifted, _frame(pd.Series([candles.iloc[-1] + pd.Timedelta("15min")]), [99.0], [-99.0])],
        ignore_index=True,
    )
    hi = md._mark_columns(candles, shifted, "15m", None)["mark_high"]
    np.testing.assert_array_equal(hi, [np.nan, np.nan, 2, np.nan, 4, 5, 6, 7])


def test_a_funding_row_without_date_or_rate_is_dropped_as_by_dropna():
    candles = pd.Series(pd.date_range(T0, periods=4, freq="1h"))
    funding = pd.DataFrame(
        {
            "date": pd.Series([T0, T0 + pd.Timedelta("1h"), pd.NaT, T0 + pd.Timedelta("3h")]),
            "funding_rate": [1.0, np.nan, 3.0, 4.0],
        }
    )
    got = both_ways(lambda: md._funding_columns(candles, funding))[1]["funding_rate"]
    np.testing.assert_array_equal(got, [1.0, 1.0, 1.0, 4.0])
    only_gaps = funding.assign(funding_rate=np.nan)
    assert both_ways(lambda: md._funding_columns(candles, only_gaps))[1] == {}


@pytest.mark.parametrize("unit", UNITS)
def test_nat_and_dates_beyond_nanoseconds_raise_as_before(unit):
    candles = pd.Series(pd.date_range(T0, periods=4, freq="1h")).dt.as_unit(unit)
    funding = pd.DataFrame({"date": candles, "open": [1.0, 2.0, 3.0, 4.0]})
    with_nat = candles.copy()
    with_nat.iloc[2] = pd.NaT
    err = both_ways(lambda: md._funding_columns(with_nat, funding))
    assert err[0] == "error" and "NaT at row 2" in err[2]
    err = both_ways(
        lambda: md._mark_columns(with_nat, _frame(candles, [1.0] * 4, [0.0] * 4), "1h", None)
    )
    assert err[0] == "error" and "NaT at row 2" in err[2]
    if unit != "ns":  # 2300 is beyond nanoseconds: pandas' own error, unchanged
        far = pd.Series(pd.to_datetime(["2300-01-01", "2300-01-02"]).as_unit(unit))
        err = both_ways(lambda: md._funding_columns(far, funding))
        assert err[0] == "error"
        err = both_ways(
            lambda: md._mark_columns(far, _frame(far, [1.0, 2.0], [0.0, 1.0]), "1d", None)
        )
        assert err[0] == "error"
        late = pd.DataFrame({"date": far, "open": [np.nan, 1.0]})  # a row dropped, one beyond
        err = both_ways(lambda: md._funding_columns(candles, late))
        assert err[0] == "error"


def test_coarser_and_uneven_marks_are_refused_as_before():
    candles = pd.Series(pd.date_range(T0, periods=8, freq="15min"))
    coarse = _frame(pd.Series(pd.date_range(T0, periods=2, freq="1h")), [1.0, 2.0], [0.0, 1.0])
    err = both_ways(lambda: md._mark_columns(candles, coarse, "15m", "1h"))
    assert err[:2] == ("error", align.Refused)
    err = both_ways(lambda: md._mark_columns(candles, coarse, "15m", "10m"))
    assert err[:2] == ("error", align.Refused)


def test_odd_frames_go_the_general_way_with_its_errors():
    candles = pd.Series(pd.date_range(T0, periods=4, freq="1h"))
    rates = [1.0, 2.0, 3.0, 4.0]
    frames = [
        pd.DataFrame({"date": candles, "funding_rate": rates}).astype({"funding_rate": "Float64"}),
        pd.DataFrame({"date": candles.astype(object), "open": rates}),
        pd.DataFrame({"date": candles.astype("int64") // 10**6, "open": rates}),  # epoch ms
        pd.DataFrame({"date": candles, "high": rates}),  # neither funding_rate nor open
        pd.DataFrame([[T0, 1.0, 2.0]], columns=["date", "open", "open"]),
        pd.DataFrame({("date", ""): candles, ("open", ""): rates}),
    ]
    for frame in frames:
        both_ways(lambda f=frame: md._funding_columns(candles, f))
    marks = [
        _frame(candles, rates, rates).astype({"high": "float32"}),
        _frame(candles.astype(str), rates, rates),
        pd.DataFrame({("date", ""): candles, ("high", ""): rates, ("low", ""): rates}),
        pd.DataFrame([[T0, 1.0, 2.0, 0.0]], columns=["date", "high", "high", "low"]),
        pd.DataFrame({"high": rates, "low": rates}),  # no date
    ]
    for frame in marks:
        both_ways(lambda f=frame: md._mark_columns(candles, f, "1h", None))
