"""Binance public data dumps (data.binance.vision layouts), from small hand-made files."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liqsignals.data import dumps
from liqsignals.data.datadir import (
    load_candles,
    load_long_short_ratio,
    load_open_interest,
    load_taker_volume,
)
from liqsignals.data.liquidations import LONG, SHORT, load_liquidation_events

T0 = 1_717_200_000_000  # 2024-06-01 00:00 UTC
HOUR = 3_600_000
KLINE_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore"
)


def _kline_rows(start_ms: int, n: int, scale: int = 1) -> list[str]:
    rows = []
    for i in range(n):
        t = start_ms + i * HOUR
        rows.append(
            f"{t * scale},{100 + i},{101 + i},{99 + i},{100.5 + i},{10 + i},"
            f"{(t + HOUR - 1) * scale},{1000 + i},{50 + i},{4 + i},{400 + i},0"
        )
    return rows


def _zip(path: Path, text: str) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(path.with_suffix(".csv").name, text)
    return path


def test_names() -> None:
    assert dumps.parse_dump_name("BTCUSDT-1h-2024-06.zip") == ("BTCUSDT", "klines", "1h")
    assert dumps.parse_dump_name("BTCUSDT-15m-2024-06-02.csv") == ("BTCUSDT", "klines", "15m")
    assert dumps.parse_dump_name("1000PEPEUSDT-liquidationSnapshot-2024-06-01.zip") == (
        "1000PEPEUSDT",
        "liquidationSnapshot",
        None,
    )
    assert dumps.symbol_to_pair("1000PEPEUSDT") == "1000PEPE/USDT:USDT"
    assert dumps.symbol_to_pair("ETHUSDC") == "ETH/USDC:USDC"
    with pytest.raises(ValueError, match="not a Binance dump"):
        dumps.parse_dump_name("BTCUSDT_1h.zip")


def test_klines_with_and_without_header(tmp_path: Path) -> None:
    old = _zip(tmp_path / "BTCUSDT-1h-2024-06-01.zip", "\n".join(_kline_rows(T0, 24)) + "\n")
    # the next day: header row and microsecond timestamps, as newer dumps have
    new = _zip(
        tmp_path / "BTCUSDT-1h-2024-06-02.zip",
        KLINE_HEADER + "\n" + "\n".join(_kline_rows(T0 + 24 * HOUR, 24, scale=1000)) + "\n",
    )
    datadir = tmp_path / "binance"
    written = dict(dumps.import_binance_dump([new, old], datadir))
    candles = load_candles(datadir, "BTC/USDT:USDT", "1h")
    assert len(candles) == 48 and candles["date"].diff().dropna().eq(pd.Timedelta(hours=1)).all()
    assert candles["date"].iloc[24] == pd.Timestamp("2024-06-02", tz="UTC")
    assert candles["close"].iloc[24] == 100.5 and candles["volume"].iloc[0] == 10.0
    taker = load_taker_volume(datadir, "BTC/USDT:USDT", "1h")
    assert taker["taker_buy_volume"].iloc[:2].tolist() == [4.0, 5.0]
    assert (taker["taker_buy_volume"] + taker["taker_sell_volume"]).tolist() == candles[
        "volume"
    ].tolist()
    assert written[datadir / "futures" / "BTC_USDT_USDT-1h-futures.feather"] == 48
    # importing again adds nothing
    assert all(n == 0 for _, n in dumps.import_binance_dump([old, new], datadir))


def test_klines_are_readable_by_freqtrade(tmp_path: Path) -> None:
    from freqtrade.data.history import load_pair_history
    from freqtrade.enums import CandleType

    path = _zip(tmp_path / "ETHUSDT-1h-2024-06.zip", "\n".join(_kline_rows(T0, 5)) + "\n")
    dumps.import_binance_dump([path], tmp_path)
    df = load_pair_history(
        "ETH/USDT:USDT", "1h", tmp_path, candle_type=CandleType.FUTURES, fill_up_missing=False
    )
    assert df["open"].tolist() == [100.0, 101.0, 102.0, 103.0, 104.0]


def test_metrics(tmp_path: Path) -> None:
    lines = [",".join(dumps.METRICS_COLUMNS)]
    for i in range(3):
        stamp = (pd.Timestamp("2024-06-01", tz="UTC") + pd.Timedelta(minutes=5 * i)).strftime(
            "%Y-%m-%d %H:%M:%S"
        )
        lines.append(f"{stamp},BTCUSDT,{80000 + i},{5.4e9 + i},1.2,1.3,{1.5 if i != 1 else ''},0.9")
    path = _zip(tmp_path / "BTCUSDT-metrics-2024-06-01.zip", "\n".join(lines) + "\n")
    dumps.import_binance_dump([path], tmp_path)
    oi = load_open_interest(tmp_path, "BTC/USDT:USDT", "5m")
    assert oi["open_interest_amount"].tolist() == [80000.0, 80001.0, 80002.0]
    assert oi["date"].iloc[1] == pd.Timestamp("2024-06-01 00:05", tz="UTC")
    ls = load_long_short_ratio(tmp_path, "BTC/USDT:USDT", "5m")
    assert len(ls) == 2  # the row without a ratio is not stored
    np.testing.assert_allclose(ls["long_account"] + ls["short_account"], 1.0)
    np.testing.assert_allclose(ls["long_account"] / ls["short_account"], ls["long_short_ratio"])


def test_liquidation_snapshot(tmp_path: Path) -> None:
    text = (
        ",".join(dumps.LIQUIDATION_SNAPSHOT_COLUMNS)
        + "\n"
        + f"{T0 + 5},SELL,LIMIT,IOC,10,29000,29100.5,FILLED,3,7\n"
        + f"{T0 + 5},SELL,LIMIT,IOC,10,29000,29100.5,FILLED,3,7\n"
        + f"{T0 + 9},BUY,LIMIT,IOC,4,31000,30900,FILLED,4,4\n"
    )
    path = _zip(tmp_path / "BTCUSDT-liquidationSnapshot-2024-06-01.zip", text)
    dumps.import_binance_dump([path], tmp_path)
    events = load_liquidation_events(tmp_path, "BTC/USDT:USDT")
    assert events["side"].tolist() == [LONG, SHORT]
    assert events["amount"].tolist() == [7.0, 4.0]  # accumulated fill
    assert events["value"].tolist() == [7 * 29100.5, 4 * 30900.0]


def test_bad_files(tmp_path: Path) -> None:
    wrong = _zip(tmp_path / "BTCUSDT-metrics-2024-06-01.zip", "create_time,symbol\n2024,BTC\n")
    with pytest.raises(ValueError, match="missing column"):
        dumps.import_binance_dump([wrong], tmp_path)
    two = tmp_path / "BTCUSDT-1h-2024-06.zip"
    with zipfile.ZipFile(two, "w") as zf:
        zf.writestr("a.csv", "1")
        zf.writestr("b.csv", "2")
    with pytest.raises(ValueError, match="expected one CSV"):
        dumps.import_binance_dump([two], tmp_path)
