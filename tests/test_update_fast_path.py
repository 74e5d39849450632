"""The per-candle fast path: scalar validation of a dict candle and the kernel's address table.

``inputs.single_values`` takes a scalar path for the common dict of floats and must accept
exactly what the full single-candle rules accept, with the same values, and leave every invalid
candle to them (same message). ``LiquidationEngine.update`` runs the kernel on an address table
of the engine's arrays, which must follow every replacement of those arrays (grown book, grown
cohort ring, restored state) and stay bit-identical to the batch path.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from synthetic import random_candles

from liqsignals import LiquidationEngine, liquidation_levels
from liqsignals.columns import LEVEL_COLUMNS
from liqsignals.features import FeatureStream, liquidation_features
from liqsignals.inputs import MAX_VALUE, SingleBuffers, single_inputs, single_values
from liqsignals.inputs import _fast_values as fast_values

SMALL = {"window": "1d", "bin_bp": 20.0, "entry_samples": 3}
BASE = {"open": 100.0, "high": 101.0, "low": 99.0, "close": 100.5, "volume": 12.0}
TS = pd.Timestamp("2024-03-01 12:00", tz="UTC")
TS_NS = 1_709_294_400_000_000_000  # 2024-03-01 12:00 UTC, by hand


def full_rules(candle):
    inp = single_inputs(candle, SingleBuffers())
    return (
        int(inp.dates[0]),
        *(float(a[0]) for a in (inp.open, inp.high, inp.low, inp.close, inp.volume)),
        float(inp.oi[0]),
        float(inp.taker_buy[0]),
        float(inp.ls_ratio[0]),
        float(inp.mark_high[0]),
        float(inp.mark_low[0]),
    )


def same(a, b) -> bool:
    return len(a) == len(b) and all(
        x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y))
        for x, y in zip(a, b, strict=True)
    )


FAST = [
    {"date": TS, **BASE},
    {"date": TS.tz_localize(None), **BASE},
    {"date": TS_NS, **BASE},
    {"date": TS_NS // 1_000_000, **BASE},  # ccxt's milliseconds
    {"date": np.datetime64(TS_NS, "ns"), **BASE},
    {"date": TS, **{k: np.float64(v) for k, v in BASE.items()}},
    {"date": TS, **BASE, "open_interest": 5.0, "taker_buy_volume": 12.0, "long_short_ratio": 1.5},
    {"date": TS, **BASE, "open_interest_value": 1005.0},
    {"date": TS, **BASE, "open_interest": math.nan, "open_interest_value": 1005.0},
    {"date": TS, **BASE, "open_interest": 0.0, "taker_buy_volume": math.nan, "extra": "x"},
    {"date": TS, **BASE, "enter_long": 1},  # seven keys, none of them an optional input
    {"date": TS, **BASE, "open": 101.0 * (1 + 1e-9), "volume": 0.0},  # on the tolerance
    {"date": TS, **BASE, "high": MAX_VALUE, "low": MAX_VALUE, "open": MAX_VALUE,
     "close": MAX_VALUE},
    {"date": TS, **BASE, "mark_high": 101.5, "mark_low": 98.5},  # outside [low, high] is fine
    {"date": TS, **BASE, "mark_high": math.nan, "mark_low": math.nan},
    {"date": TS, **BASE, "mark_high": 100.0, "mark_low": 100.0},
]  # fmt: skip

SLOW = [
    {"date": TS_NS // 10**9, **BASE},  # seconds
    {"date": "2024-03-01T12:00:00Z", **BASE},
    {"date": np.datetime64(TS_NS // 10**6, "ms"), **BASE},
    {"date": TS.to_pydatetime(), **BASE},
    {"date": TS, **{**BASE, "volume": 12}},  # an int
    {"date": TS, **BASE, "open_interest": np.float32(5.0)},
    pd.Series(BASE, name=TS),
]


@pytest.mark.parametrize("candle", FAST)
def test_fast_path_takes_the_common_candles_with_the_full_rules_values(candle):
    assert fast_values(candle) is not None
    assert same(single_values(candle), full_rules(candle))
    assert single_values(candle)[0] == TS_NS


@pytest.mark.parametrize("candle", SLOW)
def test_other_forms_take_the_full_rules(candle):
    if isinstance(candle, dict):
        assert fast_values(candle) is None
    assert same(single_values(candle), full_rules(candle))
    assert single_values(candle)[0] == TS_NS


def test_open_interest_value_is_converted_at_the_close():
    vals = single_values({"date": TS, **BASE, "open_interest_value": 1005.0})
    assert vals[6] == 1005.0 / 100.5
    # an explicit open_interest wins, even when it is NaN (unknown)
    vals = single_values(
        {"date": TS, **BASE, "open_interest": math.nan, "open_interest_value": 9.0}
    )
    assert math.isnan(vals[6])


BAD = [
    {**BASE, "low": 0.0, "open": 0.5, "close": 0.5},
    {**BASE, "low": -1.0},
    {**BASE, "high": math.inf},
    {**BASE, "close": math.nan},
    {**BASE, "high": 98.0},
    {**BASE, "open": 101.0 * (1 + 3e-9)},
    {**BASE, "close": 99.0 * (1 - 3e-9)},
    {**BASE, "volume": -0.5},
    {**BASE, "volume": math.nan},
    {**BASE, "high": MAX_VALUE * 1.01, "open": MAX_VALUE * 1.01, "close": MAX_VALUE * 1.01},
    {**BASE, "volume": MAX_VALUE * 2},
    {**BASE, "open_interest": -1.0},
    {**BASE, "open_interest_value": math.inf},
    {**BASE, "long_short_ratio": MAX_VALUE * 2},
    {**BASE, "taker_buy_volume": 12.0 * (1 + 3e-9)},
    {**BASE, "open": True},
    {**BASE, "volume": "twelve"},
    {**BASE, "mark_high": 101.0},
    {**BASE, "mark_low": 99.0},
    {**BASE, "mark_high": 99.0, "mark_low": 99.5},
    {**BASE, "mark_high": math.nan, "mark_low": 99.0},
    {**BASE, "mark_high": 101.0, "mark_low": math.nan},
    {**BASE, "mark_high": 101.0, "mark_low": 0.0},
    {**BASE, "mark_high": math.inf, "mark_low": 99.0},
    {**BASE, "mark_high": MAX_VALUE * 2, "mark_low": 99.0},
    {"open": 100.0, "high": 101.0, "low": 99.0, "close": 100.5},
    # six keys with the volume missing and an optional input in its place
    {"open": 100.0, "high": 101.0, "low": 99.0, "close": 100.5, "open_interest": 5.0},
]


@pytest.mark.parametrize("values", BAD)
@pytest.mark.parametrize("date", [TS, TS_NS, 5, None, pd.NaT, np.datetime64("NaT", "ns")])
def test_invalid_candles_get_the_full_rules_message(values, date):
    candle = {"date": date, **values}
    assert fast_values(candle) is None
    with pytest.raises(ValueError) as want:
        single_inputs(candle, SingleBuffers())
    with pytest.raises(ValueError) as got:
        single_values(candle)
    assert str(got.value) == str(want.value)
    assert str(want.value).startswith(("column ", "missing column"))
    with pytest.raises(ValueError) as through_engine:
        LiquidationEngine(**SMALL).update(candle)
    assert str(through_engine.value) == str(want.value)


def _incremental(df: pd.DataFrame, cut: int, restore_at: int | None = None) -> pd.DataFrame:
    eng = LiquidationEngine(**SMALL)
    first = eng.update_many(df.iloc[:cut])
    rows = []
    for i, r in enumerate(df.iloc[cut:].to_dict("records"), start=cut):
        if i == restore_at:
            eng = LiquidationEngine.from_state(eng.state_dict())
        rows.append(eng.update(r))
    rest = pd.DataFrame(rows, index=df.index[cut:], columns=list(LEVEL_COLUMNS))
    return pd.concat([first, rest]).astype(float)


def _identical(a: pd.DataFrame, b: pd.DataFrame) -> None:
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())
    assert list(a.columns) == list(b.columns)


def test_a_full_cohort_ring_grows_before_the_next_candle():
    # with these gaps the ring fills exactly (size == capacity) before one candle expires: the
    # kernel asks for a free slot before its expiry, so the ring must grow first (it raised
    # "engine arrays too small after 0 of 1")
    df = random_candles(30, 49, gaps=True)
    _identical(_incremental(df, 10), liquidation_levels(df, **SMALL))


def test_update_follows_grown_books_and_a_restored_state():
    # a strong trend moves the price out of the book again and again (the book grows, the
    # address table is rebuilt); a restored state replaces every array mid-run
    df = random_candles(3, 400, vol=0.03)
    df[["open", "high", "low", "close"]] *= np.exp(np.linspace(0, 2.5, len(df)))[:, None]
    batch = liquidation_levels(df, **SMALL)
    _identical(_incremental(df, 1), batch)
    _identical(_incremental(df, 30, restore_at=200), batch)


def test_feature_stream_update_uses_the_single_candle_path():
    df = random_candles(5, 160, open_interest=True, taker=True)
    full = liquidation_features(df, **SMALL)
    stream = FeatureStream(**SMALL)
    stream.update_many(df.iloc[:100])
    records = df.iloc[100:].to_dict("records")
    bad = {**records[0], "high": records[0]["low"] * 0.5}
    with pytest.raises(ValueError, match=r"^column 'high' is below 'low' \(high < low\)$"):
        stream.update(bad)  # an invalid candle is refused and leaves the stream usable
    rows = []
    for r in records:
        r = {**r, "date": int(r["date"].value // 1_000_000)}  # ccxt's epoch milliseconds
        rows.append(stream.update(r))
    got = pd.DataFrame(rows, columns=full.columns)
    np.testing.assert_array_equal(got.to_numpy(), full.iloc[100:].to_numpy())
