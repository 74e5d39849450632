"""``liq_realised_long`` / ``liq_realised_short``: per candle, the recorded events inside the
candle's own interval; NaN where no collector listened for the whole candle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from liqsignals.columns import COLUMNS, REALISED_COLUMNS
from liqsignals.data.liquidations import LONG, SHORT, record_coverage, save_liquidation_events
from liqsignals.strategy.market_data import attach_realised, realised_columns

PAIR = "BTC/USDT:USDT"
T0 = pd.Timestamp("2025-04-01 00:00", tz="UTC")


def _ms(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000)


def _event(minute: float, side: str, value: float) -> dict:
    return {
        "date": T0 + pd.Timedelta(minutes=minute), "exchange": "binance", "symbol": PAIR,
        "side": side, "price": 100.0, "amount": value / 100.0, "value": value,
    }  # fmt: skip


def test_realised_columns_sum_each_candles_own_interval(tmp_path: Path) -> None:
    events = [
        _event(0.0, LONG, 1000.0),  # the first instant of candle 0
        _event(14.999, LONG, 500.0),  # its last millisecond
        _event(15.0, SHORT, 700.0),  # candle 1's first instant, not candle 0's
        _event(31.0, LONG, 300.0),
        _event(31.5, SHORT, 200.0),
        _event(50.0, LONG, 9999.0),  # inside candle 3, which was not fully recorded
    ]
    save_liquidation_events(events, tmp_path, PAIR)
    # listening from 00:00 to 00:50: candles 0..2 complete, candle 3 (00:45-01:00) is not
    record_coverage(tmp_path, PAIR, _ms(T0), _ms(T0 + pd.Timedelta(minutes=50)))
    dates = pd.Series(pd.date_range(T0 - pd.Timedelta(minutes=15), periods=6, freq="15min"))
    cols = realised_columns(dates, "15m", tmp_path, PAIR)
    assert cols is not None
    nan = np.nan
    np.testing.assert_array_equal(cols["liq_realised_long"], [nan, 1500.0, 0.0, 300.0, nan, nan])
    np.testing.assert_array_equal(cols["liq_realised_short"], [nan, 0.0, 700.0, 200.0, nan, nan])


def test_causal_a_later_event_never_changes_an_earlier_candle(tmp_path: Path) -> None:
    save_liquidation_events([_event(5.0, LONG, 100.0)], tmp_path, PAIR)
    record_coverage(tmp_path, PAIR, _ms(T0), _ms(T0 + pd.Timedelta(hours=1)))
    dates = pd.Series(pd.date_range(T0, periods=4, freq="15min"))
    before = realised_columns(dates, "15m", tmp_path, PAIR)
    save_liquidation_events([_event(40.0, SHORT, 55.0)], tmp_path, PAIR)
    after = realised_columns(dates, "15m", tmp_path, PAIR)
    assert before is not None and after is not None
    np.testing.assert_array_equal(before["liq_realised_short"], [0.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(after["liq_realised_short"], [0.0, 0.0, 55.0, 0.0])
    np.testing.assert_array_equal(after["liq_realised_long"][:2], [100.0, 0.0])


def test_attach_without_a_file_changes_nothing(tmp_path: Path) -> None:
    df = pd.DataFrame({"date": pd.date_range(T0, periods=3, freq="1h"), "close": [1.0, 2.0, 3.0]})
    out = attach_realised(df.copy(), {"datadir": str(tmp_path)}, PAIR, "1h")
    assert list(out.columns) == ["date", "close"]
    save_liquidation_events([_event(61.0, LONG, 42.0)], tmp_path, PAIR)
    out = attach_realised(df.copy(), {"datadir": str(tmp_path)}, PAIR, "1h")
    # an imported file without coverage counts from its first to its last event only
    assert list(out.columns) == ["date", "close", "liq_realised_long", "liq_realised_short"]
    assert np.isnan(out["liq_realised_long"]).all()


def test_the_columns_are_in_the_table_and_not_among_the_estimates() -> None:
    assert set(REALISED_COLUMNS) == {"liq_realised_long", "liq_realised_short"}
    assert not set(REALISED_COLUMNS) & set(COLUMNS)
    assert REALISED_COLUMNS["liq_realised_long"].nan_when == "not_recorded"
