"""The one alignment rule for slower series (liqsignals.align): a bar is used from its close on,
a point event (funding) from the first candle opening at or after it, mark high / low only from
the same or a finer timeframe. Checked on hand-made series with values worked out by hand, by
prefix equality (data cut at t gives the same values for every candle closed by t), and through
each place that merges series: the datadir loader and the strategies' market inputs."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic import random_candles

from liqsignals import align
from liqsignals.data import datadir as dd
from liqsignals.strategy import market_data as md

PAIR = "BTC/USDT:USDT"
T0 = pd.Timestamp("2024-01-01", tz="UTC")


def _dates(n: int, freq: str, start: pd.Timestamp = T0) -> pd.Series:
    return pd.Series(pd.date_range(start, periods=n, freq=freq))


# ------------------------------------------------------------------------------ the rule, by hand


def test_a_4h_bar_is_first_seen_by_the_candle_closing_at_its_close():
    candles = _dates(40, "15min")  # 00:00 .. 09:45
    oi = _dates(3, "4h")  # bars 00:00, 04:00, 08:00
    got = align.align_level(candles, "15m", oi, {"oi": [10.0, 20.0, 30.0]}, "4h")["oi"]
    # candle 03:45 (row 15) closes at 04:00 = the close of the 00:00 bar
    assert np.isnan(got[:15]).all()
    assert (got[15:31] == 10.0).all()  # 03:45 .. 07:30
    assert (got[31:] == 20.0).all()  # 07:45 (close 08:00) on: the 04:00 bar; 08:00 bar at 12:00


def test_epoch_millisecond_dates_align_like_datetimes_and_nat_is_an_error():
    candles = _dates(40, "15min")
    oi = _dates(3, "4h")
    ms = lambda d: d.astype("int64") // 1_000_000  # noqa: E731  (datetime64[ns] -> epoch ms)
    want = align.align_level(candles, "15m", oi, {"oi": [10.0, 20.0, 30.0]}, "4h")["oi"]
    got = align.align_level(ms(candles), "15m", ms(oi), {"oi": [10.0, 20.0, 30.0]}, "4h")["oi"]
    np.testing.assert_array_equal(got, want)
    assert (got[15:31] == 10.0).all()  # not read as nanoseconds (a 1970 date would see every bar)
    with pytest.raises(ValueError, match="NaT"):
        align.align_level(candles, "15m", pd.Series([T0, pd.NaT]), {"oi": [1.0, 2.0]}, "4h")


def test_a_bar_of_the_candles_own_timeframe_aligns_one_to_one():
    candles = _dates(6, "15min")
    oi = candles.drop(index=[2])  # a missing bar stays missing: never the previous one
    got = align.align_level(candles, "15m", oi, {"oi": [1.0, 2.0, 4.0, 5.0, 6.0]}, "15m")["oi"]
    np.testing.assert_array_equal(got, [1.0, 2.0, np.nan, 4.0, 5.0, 6.0])


def test_a_stale_level_is_not_carried_on():
    candles = _dates(24, "1h")
    ratio = pd.Series([T0])  # one 4h bar, known 04:00, used while less than 4h old
    got = align.align_level(candles, "1h", ratio, {"r": [1.5]}, "4h")["r"]
    expected = np.full(24, np.nan)
    expected[3:7] = 1.5  # candles 03:00 .. 06:00 (closes 04:00 .. 07:00)
    np.testing.assert_array_equal(got, expected)


def test_finer_flows_are_summed_over_complete_candles_only():
    candles = _dates(3, "15min")
    taker = _dates(9, "5min").drop(index=[4])  # the second candle misses a bar
    got = align.align_flow(candles, "15m", taker, {"t": np.arange(8, dtype=float) + 1}, "5m")["t"]
    np.testing.assert_array_equal(got, [1 + 2 + 3, np.nan, 6 + 7 + 8])
    with pytest.raises(align.Refused, match="cannot be summed"):
        align.align_flow(candles, "15m", _dates(2, "1h"), {"t": [1.0, 2.0]}, "1h")


def test_funding_events_are_used_from_the_first_candle_opening_at_or_after_them():
    candles = _dates(40, "15min", T0 - pd.Timedelta("15min"))  # 23:45 .. 09:30
    events = pd.Series([T0, T0 + pd.Timedelta("8h")])
    got = align.align_events(candles, events, {"f": [0.0001, 0.0002]})["f"]
    assert np.isnan(got[0])  # 23:45
    assert (got[1:33] == 0.0001).all()  # 00:00 .. 07:45 (the 08:00 event is at its close)
    assert (got[33:] == 0.0002).all()  # 08:00 on


def test_resolution_names_how_a_series_relates_to_the_candles():
    assert align.resolution("15m", "15m") == "same"
    assert align.resolution("15m", "5m") == "finer"
    assert align.resolution("15m", "10m") == "uneven"
    assert align.resolution("15m", "1h") == "coarser"
    with pytest.raises(ValueError, match="positive"):
        align.resolution(pd.Timedelta(0), "1h")


# ------------------------------------------------------------------------------ mark candles


def _mark(n: int, freq: str, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 + np.cumsum(rng.normal(0, 1, n))
    return pd.DataFrame(
        {
            "date": _dates(n, freq),
            "open": close,
            "high": close + rng.uniform(0.1, 2, n),
            "low": close - rng.uniform(0.1, 2, n),
            "close": close,
            "volume": 0.0,
        }
    )


def test_1h_mark_candles_are_refused_for_15m_candles():
    candles = _dates(8, "15min")
    mark = _mark(2, "1h")
    with pytest.raises(align.Refused, match="coarser"):
        align.align_extremes(candles, "15m", mark["date"], mark["high"], mark["low"], "1h")
    inputs = pd.DataFrame({"date": candles})
    with pytest.raises(align.Refused):
        md.attach_mark(inputs, mark, "15m", "1h")
    assert list(inputs.columns) == ["date"]


def test_1h_mark_candles_are_used_one_to_one_for_1h_candles():
    mark = _mark(5, "1h")
    inputs = md.attach_mark(pd.DataFrame({"date": mark["date"]}), mark, "1h")
    np.testing.assert_array_equal(inputs["mark_high"], mark["high"])
    np.testing.assert_array_equal(inputs["mark_low"], mark["low"])


def test_5m_mark_candles_are_aggregated_into_15m_candles():
    mark = _mark(9, "5min").drop(index=[7])  # the third candle's span is incomplete
    candles = _dates(3, "15min")
    hi, lo = align.align_extremes(candles, "15m", mark["date"], mark["high"], mark["low"], "5m")
    h, low = mark["high"].to_numpy(), mark["low"].to_numpy()
    np.testing.assert_array_equal(hi, [h[0:3].max(), h[3:6].max(), np.nan])
    np.testing.assert_array_equal(lo, [low[0:3].min(), low[3:6].min(), np.nan])


def test_the_datadir_loader_refuses_a_coarser_mark_and_aggregates_a_finer_one(tmp_path, caplog):
    candles = random_candles(1, 12, freq="15min")
    dd.save_candles(_mark(3, "1h"), tmp_path, PAIR, "1h", "mark")
    with caplog.at_level(logging.DEBUG, logger="liqsignals.data.datadir"):
        out = dd.attach_market_data(candles, tmp_path, PAIR, "15m", kinds=["mark"])
    assert "mark_high" not in out.columns
    assert any("mark" in r.getMessage() and "coarser" in r.getMessage() for r in caplog.records)
    fine = _mark(36, "5min")
    dd.save_candles(fine, tmp_path, PAIR, "5m", "mark")
    out = dd.attach_market_data(candles, tmp_path, PAIR, "15m", kinds=["mark"])
    np.testing.assert_array_equal(
        out["mark_high"], fine["high"].to_numpy().reshape(12, 3).max(axis=1)
    )
    np.testing.assert_array_equal(
        out["mark_low"], fine["low"].to_numpy().reshape(12, 3).min(axis=1)
    )


# ------------------------------------------------------------------------------ prefix equality


def _series(kind: str, n15: int) -> tuple[pd.DataFrame, str]:
    """A random series of ``kind`` covering ``n15`` 15m candles, and its timeframe."""
    rng = np.random.default_rng(11)
    if kind == "open_interest":  # 4h beside 15m
        d = _dates(n15 // 16 + 1, "4h")
        return pd.DataFrame({"date": d, "v": rng.uniform(1, 2, len(d))}), "4h"
    if kind == "long_short_ratio":  # 1h beside 15m
        d = _dates(n15 // 4 + 1, "1h")
        return pd.DataFrame({"date": d, "v": rng.uniform(0.5, 2, len(d))}), "1h"
    if kind == "taker_volume":  # 5m flow into 15m
        d = _dates(n15 * 3, "5min")
        return pd.DataFrame({"date": d, "v": rng.uniform(0, 5, len(d))}), "5m"
    if kind == "funding_rate":  # 8h point events
        d = _dates(n15 // 32 + 1, "8h")
        return pd.DataFrame({"date": d, "v": rng.normal(0, 1e-4, len(d))}), "8h"
    m = _mark(n15 * 3, "5min")
    return m.rename(columns={"high": "v", "low": "w"}), "5m"


def _attach(kind: str, candles: pd.Series, series: pd.DataFrame, period: str) -> np.ndarray:
    if kind in ("open_interest", "long_short_ratio"):
        return align.align_level(candles, "15m", series["date"], {"v": series["v"]}, period)["v"]
    if kind == "taker_volume":
        return align.align_flow(candles, "15m", series["date"], {"v": series["v"]}, period)["v"]
    if kind == "funding_rate":
        return align.align_events(candles, series["date"], {"v": series["v"]})["v"]
    hi, lo = align.align_extremes(candles, "15m", series["date"], series["v"], series["w"], period)
    return np.column_stack([hi, lo])


@pytest.mark.parametrize(
    "kind", ["open_interest", "long_short_ratio", "taker_volume", "funding_rate", "mark"]
)
def test_cutting_candles_and_series_at_t_keeps_every_value_up_to_t(kind):
    n = 200
    candles = _dates(n, "15min")
    series, period = _series(kind, n)
    full = _attach(kind, candles, series, period)
    assert np.isfinite(full).sum() > n // 2  # the series is attached
    p = pd.Timedelta(period)
    for cut in (1, 7, 15, 16, 17, 63, 64, 65, 111, 199):
        t = candles[cut] + pd.Timedelta("15min")  # close of candle ``cut``
        seen_candles = candles[candles + pd.Timedelta("15min") <= t]
        # what exists at t: bars closed by t, events stamped by t
        known = series["date"] + (pd.Timedelta(0) if kind == "funding_rate" else p) <= t
        part = _attach(kind, seen_candles, series.loc[known].reset_index(drop=True), period)
        np.testing.assert_array_equal(part, full[: len(seen_candles)], err_msg=f"{kind} {t}")


# ------------------------------------------------------------------------------ strategy inputs


class _DP:
    def __init__(self, frames: dict[str, pd.DataFrame]) -> None:
        self.frames = frames

    def get_pair_dataframe(self, pair: str, timeframe: str, candle_type: str = "") -> pd.DataFrame:
        return self.frames.get(f"{timeframe}-{candle_type}", pd.DataFrame())


def _datadir_with_series(root: Path, candles: pd.DataFrame) -> Path:
    rng = np.random.default_rng(5)
    n = len(candles)
    dd.save_series(
        pd.DataFrame(
            {
                "date": candles["date"],
                "taker_buy_volume": candles["volume"] * rng.uniform(0.2, 0.8, n),
                "taker_sell_volume": candles["volume"] * 0.5,
            }
        ),
        root, PAIR, "15m", "taker_volume",
    )  # fmt: skip
    hours = _dates(n // 4, "1h")
    dd.save_series(
        pd.DataFrame(
            {
                "date": hours,
                "long_short_ratio": rng.uniform(0.5, 2, len(hours)),
                "long_account": np.nan,
                "short_account": np.nan,
            }
        ),
        root, PAIR, "1h", "long_short_ratio",
    )  # fmt: skip
    dd.save_candles(_mark(n // 4, "1h"), root, PAIR, "1h", "mark")
    return root


def test_market_inputs_attach_every_series_by_the_rule_and_log_the_set(tmp_path, caplog):
    candles = random_candles(2, 96, freq="15min")
    datadir = _datadir_with_series(tmp_path, candles)
    oi = pd.DataFrame({"date": candles["date"], "open_interest_amount": np.arange(96.0) + 1})
    fr = pd.DataFrame({"date": [T0, T0 + pd.Timedelta("8h")], "open": [0.001, -0.001]})
    mark = _mark(96, "15min")
    dp = _DP({"15m-open_interest": oi, "1h-funding_rate": fr, "15m-mark": mark})
    warned: set[tuple[str, str]] = set()
    with caplog.at_level(logging.INFO, logger="liqsignals.strategy.market_data"):
        got = md.market_inputs(candles, dp, PAIR, "15m", warned, datadir=datadir)
        md.market_inputs(candles, dp, PAIR, "15m", warned, datadir=datadir)
    lines = [r.getMessage() for r in caplog.records if "inputs for" in r.getMessage()]
    assert lines == [
        f"liqsignals inputs for {PAIR}: open_interest, funding_rate, mark_high, mark_low, "
        "taker_buy_volume, long_short_ratio"
    ]  # once, not per call
    np.testing.assert_array_equal(got["open_interest"], np.arange(96.0) + 1)  # 1:1
    assert (got["funding_rate"][:32] == 0.001).all() and (got["funding_rate"][32:] == -0.001).all()
    np.testing.assert_array_equal(got["mark_high"], mark["high"])
    taker = dd.load_taker_volume(datadir, PAIR, "15m")
    np.testing.assert_array_equal(got["taker_buy_volume"], taker["taker_buy_volume"])
    ratio = dd.load_long_short_ratio(datadir, PAIR, "1h")["long_short_ratio"].to_numpy()
    # the 1h bar opening at hour h is used by the 15m candles closing at h+1 .. h+2 (exclusive)
    np.testing.assert_array_equal(got["long_short_ratio"][3:-1], np.repeat(ratio, 4)[: 96 - 4])
    assert np.isnan(got["long_short_ratio"][:3]).all()


def test_market_inputs_log_each_missing_series_once_with_the_reason(tmp_path, caplog):
    candles = random_candles(2, 96, freq="15min")
    dd.save_candles(_mark(24, "1h"), tmp_path, PAIR, "1h", "mark")  # coarser only
    warned: set[tuple[str, str]] = set()
    with caplog.at_level(logging.INFO, logger="liqsignals.strategy.market_data"):
        for _ in range(3):
            got = md.market_inputs(candles, _DP({}), PAIR, "15m", warned, datadir=tmp_path)
    text = [r.getMessage() for r in caplog.records]
    assert list(got.columns) == ["date", "open", "high", "low", "close", "volume"]
    for series in ("open_interest", "funding_rate", "mark", "taker_volume", "long_short_ratio"):
        mine = [m for m in text if m.startswith(f"liqsignals: no {series} for {PAIR}")]
        assert len(mine) == 1, (series, text)
    (mark_line,) = [m for m in text if m.startswith("liqsignals: no mark")]
    assert "only 1h mark candles, coarser than the 15m candles" in mark_line
    assert "last-price" in mark_line
    assert f"liqsignals inputs for {PAIR}: candles only" in text
