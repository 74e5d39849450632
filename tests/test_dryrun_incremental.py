"""The dry-run path of ``LiqStrategy`` on the frames freqtrade hands a running bot: new candles
only go to the engine, any other change of history rebuilds it, and the columns equal the batch
computation on the same frame either way."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _dryrun_support import LIVE_FRAME, load_strategy

from liqsignals import sample
from liqsignals.features import FeatureStream

PAIR = "BTC/USDT:USDT"
META = {"pair": PAIR}


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return sample.load_candles(PAIR, "15m").iloc[:2000].reset_index(drop=True)


def liq(df: pd.DataFrame) -> np.ndarray:
    return df[[c for c in df.columns if c.startswith("liq_")]].to_numpy(dtype=float)


def batch(frame: pd.DataFrame) -> np.ndarray:
    return liq(load_strategy().populate_indicators(frame.copy(), META))


def stream(strategy) -> FeatureStream:
    return FeatureStream(strategy.liq_model(PAIR), **strategy.liq_feature_kwargs())


def filler_at(frame: pd.DataFrame, i: int) -> pd.DataFrame:
    """freqtrade's stand-in for a candle missing from an answer: flat at the previous close."""
    out = frame.copy()
    prev = out.loc[i - 1, "close"]
    out.loc[i, ["open", "high", "low", "close", "volume"]] = [prev, prev, prev, prev, 0.0]
    return out


def test_new_candles_only_and_unchanged_frames(candles: pd.DataFrame) -> None:
    strategy = load_strategy(live=True)
    strategy.populate_indicators(candles.iloc[:LIVE_FRAME].copy(), META)
    for end in range(LIVE_FRAME + 1, LIVE_FRAME + 4):
        out = strategy.populate_indicators(candles.iloc[:end].copy(), META)
        stats = strategy.liq_stream_stats(PAIR)
        assert (stats.last_mode, stats.last_fed) == ("update", 1)
    np.testing.assert_array_equal(liq(out), batch(candles.iloc[:end]))
    again = strategy.populate_indicators(candles.iloc[:end].copy(), META)
    stats = strategy.liq_stream_stats(PAIR)
    assert (stats.last_mode, stats.last_fed, stats.unchanged) == ("unchanged", 0, 1)
    np.testing.assert_array_equal(liq(again), liq(out))
    # two candles at once (a bot that missed one analysis) and a rolled frame
    out = strategy.populate_indicators(candles.iloc[5 : end + 2].copy(), META)
    stats = strategy.liq_stream_stats(PAIR)
    assert (stats.last_mode, stats.last_fed, stats.rebuilds) == ("update", 2, 1)
    assert stats.candles_fed == LIVE_FRAME + 3 + 2


def test_a_candle_filled_in_later_rebuilds_the_engine(candles: pd.DataFrame) -> None:
    """A candle missing from an answer is a zero-volume filler in freqtrade's frame until a later
    answer brings the real one: the engine saw the filler, so it must be rebuilt."""
    strategy = load_strategy(live=True)
    hole = LIVE_FRAME - 40
    strategy.populate_indicators(filler_at(candles.iloc[:LIVE_FRAME], hole), META)
    out = strategy.populate_indicators(candles.iloc[: LIVE_FRAME + 1].copy(), META)
    stats = strategy.liq_stream_stats(PAIR)
    assert (stats.rebuilds, stats.last_mode) == (2, "rebuild")
    np.testing.assert_array_equal(liq(out), batch(candles.iloc[: LIVE_FRAME + 1]))


@pytest.mark.parametrize(
    "change",
    ["gap", "older start", "shorter", "new column"],
)
def test_other_history_changes_rebuild(candles: pd.DataFrame, change: str) -> None:
    strategy = load_strategy(live=True)
    strategy.populate_indicators(candles.iloc[100 : 100 + LIVE_FRAME].copy(), META)
    if change == "gap":  # a candle the engine saw is gone
        frame = candles.iloc[100 : 101 + LIVE_FRAME].drop(index=1000)
    elif change == "older start":  # more history than the engine started with
        frame = candles.iloc[50 : 101 + LIVE_FRAME]
    elif change == "shorter":  # the frame ends before the last candle the engine saw
        frame = candles.iloc[100 : 90 + LIVE_FRAME]
    else:  # an input column appears (open interest becomes available)
        frame = candles.iloc[100 : 101 + LIVE_FRAME].assign(open_interest=1.0)
    frame = frame.reset_index(drop=True)
    inputs = strategy.liq_inputs(frame, PAIR).assign(
        **({"open_interest": 1.0} if change == "new column" else {})
    )
    names, feats = strategy.liq_live_cache.features(PAIR, inputs, lambda: stream(strategy))
    stats = strategy.liq_stream_stats(PAIR)
    assert (stats.rebuilds, stats.last_mode) == (2, "rebuild"), change
    assert feats.shape == (len(frame), len(names))


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_dates_of_any_resolution_and_naive_dates_are_read_as_utc_nanoseconds(unit: str) -> None:
    from liqsignals.strategy.live_cache import ns_dates

    aware = pd.date_range("2024-01-01", periods=4, freq="15min", tz="UTC").as_unit(unit)
    want = np.array([1704067200 + 900 * i for i in range(4)], dtype=np.int64) * 10**9
    np.testing.assert_array_equal(ns_dates(pd.Series(aware)), want)
    np.testing.assert_array_equal(ns_dates(pd.Series(aware.tz_localize(None))), want)
    with pytest.raises(ValueError, match="NaT"):
        ns_dates(pd.Series([aware[0], pd.NaT]))


def test_an_invalid_new_candle_raises_and_the_next_frame_rebuilds(candles: pd.DataFrame) -> None:
    strategy = load_strategy(live=True)
    strategy.populate_indicators(candles.iloc[:LIVE_FRAME].copy(), META)
    bad = candles.iloc[: LIVE_FRAME + 1].copy()
    bad.loc[LIVE_FRAME, "close"] = np.nan
    with pytest.raises(ValueError, match="close"):
        strategy.populate_indicators(bad, META)
    # freqtrade logs the error and carries on; the next frame (the candle corrected) rebuilds
    out = strategy.populate_indicators(candles.iloc[: LIVE_FRAME + 2].copy(), META)
    stats = strategy.liq_stream_stats(PAIR)
    assert (stats.rebuilds, stats.last_mode) == (2, "rebuild")
    np.testing.assert_array_equal(liq(out), batch(candles.iloc[: LIVE_FRAME + 2]))
