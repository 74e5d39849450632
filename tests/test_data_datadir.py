"""Datadir I/O: freqtrade's path rules, loaders, atomic writers and causal merging."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liqsignals.data import datadir as dd


def _candles(start: str, periods: int, freq: str = "1h") -> pd.DataFrame:
    dates = pd.date_range(start, periods=periods, freq=freq, tz="UTC")
    close = 100.0 + np.arange(periods, dtype="float64")
    return pd.DataFrame(
        {
            "date": dates,
            "open": close - 0.5,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": np.full(periods, 10.0),
        }
    )


@pytest.mark.parametrize(
    ("pair", "timeframe", "candle_type"),
    [
        ("BTC/USDT:USDT", "1h", "futures"),
        ("ETH/USDT:USDT", "5m", "mark"),
        ("1000PEPE/USDT:USDT", "8h", "funding_rate"),
        ("BTC/USDT:USDT", "5m", "open_interest"),
        ("BTC/USDT", "1d", "spot"),
        ("BTC/USD:BTC", "1M", "futures"),
    ],
)
def test_paths_match_freqtrade(tmp_path: Path, pair: str, timeframe: str, candle_type: str) -> None:
    from freqtrade.data.history.datahandlers.featherdatahandler import FeatherDataHandler
    from freqtrade.enums import CandleType

    theirs = FeatherDataHandler._pair_data_filename(
        tmp_path, pair, timeframe, CandleType(candle_type)
    )
    assert dd.data_path(tmp_path, pair, timeframe, candle_type) == theirs
    assert dd.filename_to_pair(dd.pair_to_filename(pair)) == pair


def test_extra_kinds_live_where_freqtrade_does_not_look(tmp_path: Path) -> None:
    from freqtrade.data.history.datahandlers.featherdatahandler import FeatherDataHandler
    from freqtrade.enums import TradingMode

    dd.save_candles(_candles("2024-01-01", 5), tmp_path, "BTC/USDT:USDT", "1h")
    ls = pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=5, freq="1h", tz="UTC"),
            "long_short_ratio": 1.5,
            "long_account": 0.6,
            "short_account": 0.4,
        }
    )
    path = dd.save_series(ls, tmp_path, "BTC/USDT:USDT", "1h", "long_short_ratio")
    assert path.parent == tmp_path / "futures" / "liqsignals"
    # freqtrade raises on an unknown candle type in futures/; the subfolder keeps it working
    found = FeatherDataHandler.ohlcv_get_available_data(tmp_path, TradingMode.FUTURES)
    assert [(p, tf, str(ct)) for p, tf, ct in found] == [("BTC/USDT:USDT", "1h", "futures")]
    assert dd.list_data(tmp_path) == [
        ("BTC/USDT:USDT", "1h", "futures"),
        ("BTC/USDT:USDT", "1h", "long_short_ratio"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "20240101-20240301",
        "20240101-",
        "-20240301",
        "20240101T0630-20240102T120000",
        "1704067200-1706745600",
        "1704067200000-",
    ],
)
def test_parse_timerange_matches_freqtrade(text: str) -> None:
    from freqtrade.configuration import TimeRange

    theirs = TimeRange.parse_timerange(text)
    ours = dd.parse_timerange(text)
    assert (ours.start.timestamp() if ours.start is not None else 0) == theirs.startts
    assert (ours.stop.timestamp() if ours.stop is not None else 0) == theirs.stopts


@pytest.mark.parametrize("text", ["2024-01-01", "20240301-20240101", "-", "2024010-", "abc-def"])
def test_parse_timerange_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="timerange"):
        dd.parse_timerange(text)


def test_roundtrip_with_freqtrade_loader(tmp_path: Path) -> None:
    from freqtrade.data.history import load_pair_history
    from freqtrade.enums import CandleType

    df = _candles("2024-01-01", 48)
    dd.save_candles(df, tmp_path, "BTC/USDT:USDT", "1h")
    theirs = load_pair_history(
        "BTC/USDT:USDT", "1h", tmp_path, candle_type=CandleType.FUTURES, fill_up_missing=False
    )
    ours = dd.load_candles(tmp_path, "BTC/USDT:USDT", "1h")
    pd.testing.assert_frame_equal(ours, theirs.reset_index(drop=True), check_dtype=False)
    assert str(ours["date"].dtype) == "datetime64[ms, UTC]"
    trimmed = dd.load_candles(
        tmp_path, "BTC/USDT:USDT", "1h", timerange="20240101T0500-20240101T0700"
    )
    assert list(trimmed["date"].dt.hour) == [5, 6, 7]


def test_open_interest_written_by_freqtrade_is_read(tmp_path: Path) -> None:
    from freqtrade.data.history.datahandlers.featherdatahandler import FeatherDataHandler
    from freqtrade.enums import CandleType

    oi = pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=3, freq="5min", tz="UTC"),
            "open_interest_amount": [1.0, 2.0, 3.0],
            "open_interest_value": [np.nan, np.nan, 300.0],
        }
    )
    FeatherDataHandler(tmp_path).ohlcv_store("BTC/USDT:USDT", "5m", oi, CandleType.OPEN_INTEREST)
    got = dd.load_open_interest(tmp_path, "BTC/USDT:USDT", "5m")
    assert list(got.columns) == list(dd.LAYOUTS["open_interest"])
    assert got["open_interest_amount"].tolist() == [1.0, 2.0, 3.0]
    assert got["open_interest_value"].isna().tolist() == [True, True, False]


def test_funding_rate_both_layouts(tmp_path: Path) -> None:
    dates = pd.date_range("2024-01-01", periods=3, freq="8h", tz="UTC")
    legacy = pd.DataFrame(
        {
            "date": dates,
            "open": [1e-4, 2e-4, -1e-4],
            "high": 0.0,
            "low": 0.0,
            "close": 0.0,
            "volume": 0.0,
        }
    )
    path = dd.data_path(tmp_path, "BTC/USDT:USDT", "1h", "funding_rate")
    dd.write_frame(legacy, path)
    a = dd.load_funding_rate(tmp_path, "BTC/USDT:USDT")
    assert list(a.columns) == ["date", "funding_rate"]
    assert a["funding_rate"].tolist() == [1e-4, 2e-4, -1e-4]
    # the current layout, with a few ms of jitter on the funding time
    dd.write_frame(
        pd.DataFrame(
            {"date": dates + pd.Timedelta(milliseconds=7), "funding_rate": [3e-4, 0.0, 1e-4]}
        ),
        path,
    )
    b = dd.load_funding_rate(tmp_path, "BTC/USDT:USDT")
    assert b["funding_rate"].tolist() == [3e-4, 0.0, 1e-4]
    assert (b["date"] == dates).all()


def test_missing_file_names_path_and_command(tmp_path: Path) -> None:
    datadir = tmp_path / "binance"
    with pytest.raises(FileNotFoundError) as err:
        dd.load_candles(datadir, "BTC/USDT:USDT", "15m", timerange="20240101-")
    msg = str(err.value)
    assert str(datadir / "futures" / "BTC_USDT_USDT-15m-futures.feather") in msg
    assert (
        f"freqtrade download-data --exchange binance --pairs BTC/USDT:USDT --timeframes 15m "
        f"--trading-mode futures --datadir {datadir} --timerange 20240101-" in msg
    )
    with pytest.raises(FileNotFoundError, match="--candle-types open_interest"):
        dd.load_open_interest(datadir, "BTC/USDT:USDT", "5m")
    with pytest.raises(FileNotFoundError, match="liqsignals download long-short"):
        dd.load_long_short_ratio(datadir, "BTC/USDT:USDT", "5m")


def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "futures" / "BTC_USDT_USDT-1h-futures.feather"
    first = _candles("2024-01-01", 10)
    dd.write_frame(first, path)

    def broken(self: pd.DataFrame, target: object, **kwargs: object) -> None:
        Path(str(target)).write_bytes(b"ARROW1 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_feather", broken)
    with pytest.raises(KeyboardInterrupt):
        dd.write_frame(_candles("2025-01-01", 99), path)
    monkeypatch.undo()
    pd.testing.assert_frame_equal(dd.read_frame(path), dd._normalise_dates(first, path))
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_append_frame_dedupes_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "x.feather"
    a = _candles("2024-01-01", 5)
    _, added = dd.append_frame(a, path)
    assert added == 5
    b = _candles("2024-01-01 03:00", 5)
    b["volume"] = 99.0
    _, added = dd.append_frame(b, path)
    assert added == 3
    got = dd.read_frame(path)
    assert len(got) == 8 and got["date"].is_monotonic_increasing
    assert got["volume"].tolist() == [10.0, 10.0, 10.0] + [99.0] * 5  # re-fetched rows replace


# ---------------------------------------------------------------------------- attach_market_data


def _write_oi(datadir: Path, start: str, periods: int, freq: str, tf: str) -> pd.DataFrame:
    oi = pd.DataFrame(
        {
            "date": pd.date_range(start, periods=periods, freq=freq, tz="UTC"),
            "open_interest_amount": np.arange(periods, dtype="float64") + 1000.0,
            "open_interest_value": np.nan,
        }
    )
    dd.save_series(oi, datadir, "BTC/USDT:USDT", tf, "open_interest")
    return oi


def test_attach_levels_use_only_known_rows(tmp_path: Path) -> None:
    candles = _candles("2024-01-01", 6)
    _write_oi(tmp_path, "2024-01-01", 72, "5min", "5m")
    out = dd.attach_market_data(candles, tmp_path, "BTC/USDT:USDT", "1h")
    # candle [00:00, 01:00) may use the row dated 00:55 (complete at 01:00), index 11
    assert out["open_interest"].tolist() == [1011.0, 1023.0, 1035.0, 1047.0, 1059.0, 1071.0]
    # only the amount was stored: the value is derived with the candle's close
    np.testing.assert_allclose(out["open_interest_value"], out["open_interest"] * out["close"])
    assert "long_short_ratio" not in out.columns  # absent kinds are skipped


def test_attach_coarser_level_and_staleness(tmp_path: Path) -> None:
    candles = _candles("2024-01-01", 12)
    ls = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-01-01 00:00", "2024-01-01 04:00"], utc=True),
            "long_short_ratio": [1.2, 0.8],
            "long_account": [np.nan, np.nan],
            "short_account": [np.nan, np.nan],
        }
    )
    dd.save_series(ls, tmp_path, "BTC/USDT:USDT", "4h", "long_short_ratio")
    out = dd.attach_market_data(
        candles, tmp_path, "BTC/USDT:USDT", "1h", kinds=["long_short_ratio"]
    )
    expected = [np.nan] * 3 + [1.2] * 4 + [0.8] * 4 + [np.nan]
    np.testing.assert_array_equal(out["long_short_ratio"].to_numpy(), expected)


def test_attach_flows_need_every_bar(tmp_path: Path) -> None:
    candles = _candles("2024-01-01", 3)
    taker = pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=36, freq="5min", tz="UTC"),
            "taker_buy_volume": 1.0,
            "taker_sell_volume": 2.0,
        }
    ).drop(index=[20])  # one bar missing in the second hour
    dd.save_series(taker, tmp_path, "BTC/USDT:USDT", "5m", "taker_volume")
    out = dd.attach_market_data(candles, tmp_path, "BTC/USDT:USDT", "1h")
    np.testing.assert_array_equal(out["taker_buy_volume"].to_numpy(), [12.0, np.nan, 12.0])


@settings(max_examples=25, deadline=None)
@given(cut=st.integers(min_value=0, max_value=30 * 12))
def test_attach_is_causal(tmp_path_factory: pytest.TempPathFactory, cut: int) -> None:
    """Rows of candles closed by time T do not change when later data is removed."""
    full_dir = tmp_path_factory.mktemp("full")
    part_dir = tmp_path_factory.mktemp("part")
    candles = _candles("2024-01-01", 30)
    oi = _write_oi(full_dir, "2024-01-01", 30 * 12, "5min", "5m")
    taker = pd.DataFrame(
        {
            "date": oi["date"],
            "taker_buy_volume": oi["open_interest_amount"],
            "taker_sell_volume": 0.0,
        }
    )
    dd.save_series(taker, full_dir, "BTC/USDT:USDT", "5m", "taker_volume")
    known_by = oi["date"].iloc[0] + pd.Timedelta(minutes=5) * cut
    seen = oi["date"] + pd.Timedelta(minutes=5) <= known_by
    dd.save_series(oi.loc[seen], part_dir, "BTC/USDT:USDT", "5m", "open_interest")
    dd.save_series(taker.loc[seen], part_dir, "BTC/USDT:USDT", "5m", "taker_volume")
    a = dd.attach_market_data(candles, full_dir, "BTC/USDT:USDT", "1h")
    b = dd.attach_market_data(candles, part_dir, "BTC/USDT:USDT", "1h")
    closed = (candles["date"] + pd.Timedelta(hours=1) <= known_by).to_numpy()
    pd.testing.assert_frame_equal(a.loc[closed], b.loc[closed])


def test_attach_rejects_unsorted_candles(tmp_path: Path) -> None:
    candles = _candles("2024-01-01", 3).iloc[::-1]
    with pytest.raises(ValueError, match="sorted"):
        dd.attach_market_data(candles, tmp_path, "BTC/USDT:USDT", "1h")
