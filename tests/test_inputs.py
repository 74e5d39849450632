"""The one candle validator: every bad input gets the same ValueError from the frame path
(:func:`prepare_inputs`) and the single-candle path (:func:`single_inputs`,
``LiquidationEngine.update``); the frame's message adds the row."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from liqsignals import LiquidationModel, liquidation_levels
from liqsignals._time import dates_to_ns, epoch_unit, parse_duration, to_utc_ns
from liqsignals.engine import LiquidationEngine
from liqsignals.inputs import MAX_VALUE, prepare_inputs, single_inputs
from tests.synthetic import random_candles

ROW = 5
SMALL = {"window": "1d", "bin_bp": 20.0, "entry_samples": 3}


def _good() -> pd.DataFrame:
    return random_candles(3, 30, open_interest=True, taker=True, ls_ratio=True)


def _set(col: str, value: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def mutate(d: pd.DataFrame) -> pd.DataFrame:
        d = d.copy()
        if col == "date" or not isinstance(value, float | int) or isinstance(value, bool):
            d[col] = d[col].astype(object)
        d.loc[ROW, col] = value
        return d

    return mutate


def _candle_set(col: str, value: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Set a whole candle's prices so that only ``col`` is at fault."""

    def mutate(d: pd.DataFrame) -> pd.DataFrame:
        d = d.copy()
        d.loc[ROW, col] = value
        return d

    return mutate


def _oiv(d: pd.DataFrame) -> pd.DataFrame:
    d = d.drop(columns=["open_interest"])
    d["open_interest_value"] = 1e6
    return d


PER_VALUE: list[tuple[str, Callable[[pd.DataFrame], pd.DataFrame], str]] = [
    *(
        (f"{c}-{v}", _set(c, v), f"column '{c}' has NaN/inf")
        for c in ("open", "high", "low", "close", "volume")
        for v in (np.nan, np.inf, -np.inf)
    ),
    *(
        (f"{c}-inf", _set(c, np.inf), f"column '{c}' has inf")
        for c in ("open_interest", "taker_buy_volume", "long_short_ratio")
    ),
    ("oiv-inf", lambda d: _set("open_interest_value", np.inf)(_oiv(d)), "'open_interest_value' has inf"),
    *(
        (f"{c}-huge", _set(c, 1e300), f"column '{c}' exceeds the magnitude bound")
        for c in ("volume", "open_interest", "long_short_ratio")
    ),
    ("oiv-huge", lambda d: _set("open_interest_value", 1e300)(_oiv(d)), "'open_interest_value' exceeds"),
    ("all-prices-huge", lambda d: _set_prices(d, 1e300), "column 'open' exceeds the magnitude bound"),
    ("low-zero", _candle_set("low", 0.0), "column 'low' has a non-positive price"),
    ("open-negative", _candle_set("open", -1.0), "column 'open' has a non-positive price"),
    ("high-below-low", _candle_set("high", 1.0), "column 'high' is below 'low' (high < low)"),
    ("open-outside", lambda d: _set("open", float(d.loc[ROW, "high"]) * 1.01)(d), "column 'open' is outside [low, high]"),
    ("close-outside", lambda d: _set("close", float(d.loc[ROW, "low"]) * 0.99)(d), "column 'close' is outside [low, high]"),
    ("volume-negative", _set("volume", -1.0), "column 'volume' is negative"),
    ("oi-negative", _set("open_interest", -1.0), "column 'open_interest' is negative"),
    ("oiv-negative", lambda d: _set("open_interest_value", -1.0)(_oiv(d)), "column 'open_interest_value' is negative"),
    ("taker-negative", _set("taker_buy_volume", -1.0), "column 'taker_buy_volume' is negative"),
    ("lsr-negative", _set("long_short_ratio", -0.5), "column 'long_short_ratio' is negative"),
    ("taker-over-volume", lambda d: _set("taker_buy_volume", float(d.loc[ROW, "volume"]) * 2)(d), "column 'taker_buy_volume' exceeds volume"),
    ("close-string", _set("close", "x"), "column 'close' is not numeric"),
    ("volume-bool", _set("volume", True), "column 'volume' is not numeric"),
    ("oi-list", _set("open_interest", [1.0]), "column 'open_interest' is not numeric"),
    ("date-nat", _set("date", pd.NaT), "column 'date' has NaT"),
    ("date-timedelta", _set("date", pd.Timedelta("1h")), "column 'date' holds a Timedelta"),
    ("date-garbage", _set("date", "not a date"), "column 'date' is not a date"),
    ("date-epoch-implausible", _set("date", 12345), "column 'date' has an epoch number of no plausible unit"),
    ("date-bool", _set("date", True), "column 'date' holds a boolean"),
]  # fmt: skip


def _set_prices(d: pd.DataFrame, v: float) -> pd.DataFrame:
    d = d.copy()
    d.loc[ROW, ["open", "high", "low", "close"]] = v
    return d


def _frame_error(df: pd.DataFrame) -> str:
    with pytest.raises(ValueError) as exc:
        prepare_inputs(df)
    return str(exc.value)


def _single_error(candle: dict[str, Any]) -> str:
    with pytest.raises(ValueError) as exc:
        single_inputs(candle)
    msg = str(exc.value)
    with pytest.raises(ValueError) as exc2:
        LiquidationEngine(**SMALL).update(candle)
    assert str(exc2.value) == msg
    return msg


@pytest.mark.parametrize("case,mutate,expected", PER_VALUE, ids=[c[0] for c in PER_VALUE])
def test_bad_value_same_message_on_both_paths(case, mutate, expected):
    df = mutate(_good())
    frame_msg = _frame_error(df)
    assert expected in frame_msg, frame_msg
    assert frame_msg.endswith(f" at row {ROW}") or "date" in expected, frame_msg
    single_msg = _single_error(df.iloc[ROW].to_dict())
    # the same message; the frame's names the row (dates: the row sits inside the message)
    assert re.sub(r" at row \d+", "", frame_msg) == single_msg
    # a NaN optional input is "unknown", not an error, on both paths
    assert expected in single_msg


@pytest.mark.parametrize("col", ["open_interest", "taker_buy_volume", "long_short_ratio"])
def test_nan_optional_input_means_unknown_on_both_paths(col):
    df = _set(col, np.nan)(_good())
    inp = prepare_inputs(df)
    one = single_inputs(df.iloc[ROW].to_dict())
    field = {"open_interest": "oi", "taker_buy_volume": "taker_buy", "long_short_ratio": "ls_ratio"}
    assert np.isnan(getattr(inp, field[col])[ROW]) and np.isnan(getattr(one, field[col])[0])


def test_missing_column_same_message_on_both_paths():
    df = _good().drop(columns=["low"])
    msg = _frame_error(df)
    assert msg == _single_error(df.iloc[ROW].to_dict())
    assert "missing column(s) ['low']" in msg


def test_frame_only_rules():
    d = _good()
    assert "not sorted ascending: row 1" in _frame_error(d.iloc[::-1].reset_index(drop=True))
    dup = pd.concat([d.iloc[:10], d.iloc[9:]]).reset_index(drop=True)
    assert "column 'date' has a duplicate date" in _frame_error(
        dup
    ) and "at row 10" in _frame_error(dup)
    twice = pd.concat([d, d[["close"]]], axis=1)
    assert "column 'close' appears more than once" in _frame_error(twice)
    # the single path refuses an old candle through the engine's order check
    eng = LiquidationEngine(**SMALL)
    eng.update(d.iloc[3].to_dict())
    with pytest.raises(ValueError, match="not newer"):
        eng.update(d.iloc[2].to_dict())
    assert "expected a pandas DataFrame" in _frame_error(d.to_dict())  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- epoch dates
@pytest.mark.parametrize("unit,factor", [("s", 10**9), ("ms", 10**6), ("us", 10**3), ("ns", 1)])
def test_epoch_dates_read_by_unit_on_both_paths(unit, factor):
    d = _good()
    ns = d["date"].dt.as_unit("ns").astype("int64").to_numpy()
    e = d.assign(date=ns // factor)
    assert epoch_unit(e["date"].to_numpy()) == unit
    np.testing.assert_array_equal(prepare_inputs(e).dates, ns)
    assert single_inputs(e.iloc[ROW].to_dict()).dates[0] == ns[ROW]
    assert to_utc_ns(int(ns[ROW] // factor)) == ns[ROW]


def test_epoch_dates_of_mixed_units_are_rejected():
    d = _good()
    ms = d["date"].dt.as_unit("ms").astype("int64").to_numpy().copy()
    ms[7] //= 1000  # seconds in a millisecond column
    msg = _frame_error(d.assign(date=ms))
    assert "column 'date' has epoch numbers of different or implausible units" in msg
    assert "at row 7" in msg


def test_dates_to_ns_reads_aware_naive_and_strings_alike():
    want = np.array([1_735_689_600 * 10**9, 1_735_693_200 * 10**9])
    np.testing.assert_array_equal(dates_to_ns(pd.Series(pd.to_datetime(want, utc=True))), want)
    np.testing.assert_array_equal(dates_to_ns(pd.Series(pd.to_datetime(want))), want)
    berlin = pd.Series(pd.to_datetime(want, utc=True).tz_convert("Europe/Berlin"))
    np.testing.assert_array_equal(dates_to_ns(berlin), want)
    strings = pd.Series(["2025-01-01 00:00:00+00:00", "2025-01-01T01:00:00Z"])
    np.testing.assert_array_equal(dates_to_ns(strings), want)


# ----------------------------------------------------------------------------- reproduced failures
@pytest.mark.parametrize("col", ["open_interest", "open_interest_value", "long_short_ratio"])
@pytest.mark.parametrize("value", [np.inf, 1e300])
def test_inf_or_huge_optional_input_is_rejected_not_propagated(col, value):
    d = _good()
    if col == "open_interest_value":
        d = _oiv(d)
    d.loc[ROW, col] = value
    with pytest.raises(ValueError, match=f"column '{col}' .* at row {ROW}"):
        liquidation_levels(d, **SMALL)
    with pytest.raises(ValueError, match=f"column '{col}'"):
        LiquidationEngine(**SMALL).update(d.iloc[ROW].to_dict())


@pytest.mark.parametrize(
    "kwargs", [{"window": "nand"}, {"close_half_life": "nanh"}, {"window": "infd"},
               {"close_half_life": float("nan")}, {"window": pd.NaT}, {"close_half_life": "-1h"}],
)  # fmt: skip
def test_nan_durations_window_nand_and_half_life_nanh_are_rejected(kwargs):
    (name,) = kwargs
    with pytest.raises(ValueError, match=name):
        LiquidationModel(**kwargs)
    with pytest.raises(ValueError, match="duration"):
        parse_duration(kwargs[name], name)


def test_timedelta_dates_and_multiindex_columns_give_a_valueerror():
    d = _good()
    td = d.assign(date=d["date"] - d["date"].iloc[0])
    with pytest.raises(ValueError, match="column 'date' holds Timedelta values"):
        liquidation_levels(td, **SMALL)
    with pytest.raises(ValueError, match="column 'date' holds a Timedelta"):
        LiquidationEngine(**SMALL).update(td.iloc[ROW].to_dict())
    multi = d.copy()
    multi.columns = pd.MultiIndex.from_product([["BTC"], d.columns])
    with pytest.raises(ValueError, match="MultiIndex columns"):
        liquidation_levels(multi, **SMALL)


def test_integer_epoch_millisecond_dates_are_read_as_milliseconds():
    d = random_candles(4, 80)
    ms = d.assign(date=d["date"].dt.as_unit("ms").astype("int64"))
    want = liquidation_levels(d, **SMALL)
    got = liquidation_levels(ms, **SMALL)
    assert got["liq_long_total"].notna().sum() > 40  # not every cell NaN
    np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())


def test_magnitude_bound_is_documented_and_applied():
    d = _good()
    d.loc[ROW, "volume"] = MAX_VALUE
    d.loc[ROW, "taker_buy_volume"] = 0.0
    prepare_inputs(d)  # the bound itself is accepted
    d.loc[ROW, "volume"] = MAX_VALUE * 2
    assert "exceeds the magnitude bound" in _frame_error(d)


@pytest.mark.parametrize("when", ["2300-01-01", "1600-01-01"])
def test_a_date_beyond_nanosecond_range_is_a_clear_value_error(when):
    """A Timestamp of second precision can hold dates that nanoseconds cannot: one candle and
    a frame both refuse it with a ValueError (not an OverflowError from pandas)."""
    from liqsignals.inputs import prepare_inputs, single_values

    ts = pd.Timestamp(when).as_unit("s")
    candle = {"date": ts, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0}
    with pytest.raises(ValueError, match="nanosecond"):
        single_values(candle)
    with pytest.raises(ValueError, match="nanosecond"):
        single_values({**candle, "open_interest": 5.0})  # the full rules, past the fast path
    frame = pd.DataFrame({k: [v] for k, v in candle.items()}).astype({"date": "datetime64[s]"})
    with pytest.raises(ValueError):
        prepare_inputs(frame)
