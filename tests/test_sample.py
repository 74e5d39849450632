"""Bundled sample data: what the package ships, read by our loader and by freqtrade's."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from liqsignals import sample


def test_listings() -> None:
    assert sample.pairs() == ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    assert sample.timeframes() == ["5m", "15m", "1h"]
    assert (sample.datadir() / "futures").is_dir()
    with pytest.raises(ValueError, match="no sample data"):
        sample.datadir("kraken")


@pytest.mark.parametrize("pair", ["BTC/USDT:USDT", "ETH/USDT:USDT"])
@pytest.mark.parametrize(
    ("timeframe", "first", "last"),
    [
        ("1h", "2024-06-01 00:00", "2025-05-31 23:00"),
        ("15m", "2024-06-01 00:00", "2025-05-31 23:45"),
        ("5m", "2025-03-01 00:00", "2025-05-31 23:55"),
    ],
)
def test_candles_cover_the_documented_span(
    pair: str, timeframe: str, first: str, last: str
) -> None:
    df = sample.load_candles(pair, timeframe)
    assert list(df.columns) == ["date", "open", "high", "low", "close", "volume"]
    assert df["date"].iloc[0] == pd.Timestamp(first, tz="UTC")
    assert df["date"].iloc[-1] == pd.Timestamp(last, tz="UTC")
    step = df["date"].diff().dropna().unique()
    assert len(step) == 1 and step[0] == pd.Timedelta(timeframe.replace("m", "min"))
    assert (df["high"] >= df[["open", "close"]].max(axis=1)).all()


def test_known_close() -> None:
    # last 1h close of 2024 on Binance BTCUSDT perpetual
    df = sample.load_candles("BTC/USDT:USDT", "1h", timerange="20241231T2300-20241231T2300")
    assert df["close"].tolist() == [93548.9]


def test_freqtrade_reads_the_same_frames() -> None:
    from freqtrade.data.history import load_pair_history
    from freqtrade.enums import CandleType

    for candle_type, timeframe in [("futures", "15m"), ("mark", "1h"), ("funding_rate", "1h")]:
        theirs = load_pair_history(
            "ETH/USDT:USDT",
            timeframe,
            sample.datadir(),
            candle_type=CandleType(candle_type),
            fill_up_missing=False,
        )
        assert len(theirs) > 1000
        if candle_type == "funding_rate":
            from liqsignals.data import load_funding_rate

            ours = load_funding_rate(sample.datadir(), "ETH/USDT:USDT", "1h")
            assert ours["funding_rate"].tolist() == theirs["funding_rate"].tolist()
        else:
            ours = sample.load_candles("ETH/USDT:USDT", timeframe, candle_type)
            pd.testing.assert_frame_equal(ours, theirs.reset_index(drop=True), check_dtype=False)


def test_import_stays_light() -> None:
    code = (
        "import sys, liqsignals, liqsignals.sample, liqsignals.data;"
        "liqsignals.sample.load_candles();"
        "print(sorted(m for m in ('freqtrade', 'ccxt') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
