"""Candle hygiene: each documented treatment, and a clear error where none is safe."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from liqsignals.data import hygiene
from liqsignals.sample import load_candles


def _candles(periods: int = 6) -> pd.DataFrame:
    close = 100.0 + np.arange(periods, dtype="float64")
    return pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=periods, freq="1h", tz="UTC"),
            "open": close,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "volume": 5.0,
        }
    )


def test_fillers_in_sample_data_are_found() -> None:
    df = load_candles("BTC/USDT:USDT", "15m")
    mask = hygiene.filler_mask(df)
    assert mask.sum() == 4
    assert df.loc[mask, "date"].min() == pd.Timestamp("2024-10-28 20:00", tz="UTC")
    report = hygiene.check_candles(df, "15m")
    assert report.ok and report.fillers == 4
    dropped = hygiene.clean_candles(df, "15m", fillers="drop")
    assert len(dropped) == len(df) - 4 and not hygiene.filler_mask(dropped).any()


def test_gaps_reported_and_filled_like_freqtrade() -> None:
    df = _candles(6).drop(index=[2, 3]).reset_index(drop=True)
    gaps = hygiene.find_gaps(df, "1h")
    assert gaps.to_dict("records") == [
        {
            "start": pd.Timestamp("2024-01-01 02:00", tz="UTC"),
            "stop": pd.Timestamp("2024-01-01 03:00", tz="UTC"),
            "missing": 2,
        }
    ]
    assert not hygiene.check_candles(df, "1h").ok
    filled = hygiene.clean_candles(df, "1h", fill_gaps=True)
    assert len(filled) == 6
    assert (
        filled.loc[2:3, ["open", "high", "low", "close"]].to_numpy().tolist() == [[101.0] * 4] * 2
    )
    assert filled.loc[2:3, "volume"].tolist() == [0.0, 0.0]
    assert hygiene.filler_mask(filled).tolist() == [False, False, True, True, False, False]
    assert hygiene.clean_candles(df, "1h")["date"].tolist() == df["date"].tolist()


def test_unsorted_and_exact_duplicates_are_fixed() -> None:
    df = _candles(5)
    messy = pd.concat([df.iloc[[3, 0, 1]], df.iloc[[1, 2, 4]]], ignore_index=True)
    report = hygiene.check_candles(messy, "1h")
    assert report.unsorted and report.exact_duplicates == 1 and not report.problems
    pd.testing.assert_frame_equal(
        hygiene.clean_candles(messy, "1h"), df.assign(date=df["date"].dt.as_unit("ms"))
    )


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.assign(close=d["close"].where(d.index != 2)), "'close' is missing"),
        (lambda d: d.assign(low=d["low"].where(d.index != 1, -5.0)), "'low' is <= 0"),
        (lambda d: d.assign(volume=d["volume"].where(d.index != 4, -1.0)), "'volume' is negative"),
        (lambda d: d.assign(high=d["high"].where(d.index != 3, 1.0)), "'high' is below"),
        (lambda d: d.assign(low=d["low"].where(d.index != 3, 1e6)), "'low' is above"),
        (lambda d: d.assign(date=d["date"] + pd.Timedelta(minutes=1)), "not on the 1h grid"),
        (
            lambda d: pd.concat([d, d.iloc[[2]].assign(close=101.5)], ignore_index=True),
            "different values, first at 2024-01-01 02:00",
        ),
        (lambda d: d.drop(columns="volume"), "lack column"),
    ],
)
def test_unfixable_input_raises_naming_the_problem(mutate, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        hygiene.clean_candles(mutate(_candles(6)), "1h")


def test_first_offending_date_is_named() -> None:
    df = _candles(6)
    df.loc[4, "open"] = np.inf
    with pytest.raises(ValueError, match="2024-01-01 04:00"):
        hygiene.clean_candles(df)
