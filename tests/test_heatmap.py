"""Heatmap matrices and liquidation maps (liqsignals.heatmap): shapes, grids, warm-up, causality,
agreement with the engine, multi-exchange sums and the map helpers."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from liqsignals import sample
from liqsignals.engine import LiquidationEngine, Snapshots
from liqsignals.heatmap import (
    Heatmap,
    LiquidationMap,
    combine_heatmaps,
    combine_maps,
    cumulative_liquidations,
    liquidation_heatmap,
    liquidation_map,
    map_buckets,
    top_clusters,
)
from liqsignals.inputs import prepare_inputs
from liqsignals.model import LiquidationModel

WEEK = pd.Timedelta(weeks=1)


@pytest.fixture(scope="module")
def btc1h() -> pd.DataFrame:
    return sample.load_candles("BTC/USDT:USDT", "1h")


@pytest.fixture(scope="module")
def btc_short(btc1h: pd.DataFrame) -> pd.DataFrame:
    """Two months of hourly candles (enough for a 1w window plus seven weeks of columns)."""
    return btc1h.loc[btc1h["date"] >= "2025-03-01"].reset_index(drop=True)


def planted_candles(weeks: int = 2, price: float = 100.0) -> pd.DataFrame:
    """Quiet hourly candles around one price: every cohort lands in the same bin per side."""
    n = weeks * 7 * 24
    dates = pd.date_range("2025-01-01", periods=n, freq="1h", tz="UTC")
    return pd.DataFrame(
        {
            "date": dates,
            "open": price,
            "high": price * 1.0001,
            "low": price * 0.9999,
            "close": price,
            "volume": 1000.0,
        }
    )


PLANTED_MODEL = LiquidationModel(
    window="1w", leverages=(10.0,), leverage_weights=(1.0,), entry_samples=1
)


def test_shapes_grid_and_candles(btc_short: pd.DataFrame) -> None:
    hm = liquidation_heatmap(btc_short, window="1w", every=6)
    n_t, n_b = hm.shape
    assert hm.long.shape == hm.short.shape == (n_t, n_b)
    assert hm.long.dtype == hm.short.dtype == np.float32
    assert len(hm.edges) == n_b + 1 and np.all(np.diff(hm.edges) > 0)
    assert np.all((hm.prices > hm.edges[:-1]) & (hm.prices < hm.edges[1:]))
    # default start: one window after the first candle; the last candle is always a column
    assert hm.times[0] >= btc_short["date"].iloc[0] + WEEK
    assert hm.times[0] - (btc_short["date"].iloc[0] + WEEK) < pd.Timedelta(hours=6)
    assert hm.times[-1] == btc_short["date"].iloc[-1]
    assert (np.diff(hm.times.asi8) == 6 * 3600 * 10**9).all()
    # default price window: the candles' range widened by 15 %
    sel = btc_short.loc[btc_short["date"] >= hm.times[0] - pd.Timedelta(hours=5)]
    assert hm.edges[0] <= sel["low"].min() * 0.85 * 1.001
    assert hm.edges[-1] >= sel["high"].max() * 1.15
    # the candle of a column spans the candles since the previous column
    last6 = btc_short.iloc[-6:]
    assert hm.close[-1] == last6["close"].iloc[-1]
    assert hm.open[-1] == last6["open"].iloc[0]
    assert hm.high[-1] == last6["high"].max() and hm.low[-1] == last6["low"].min()
    np.testing.assert_array_equal(hm.combined, hm.long + hm.short)
    assert hm.nbytes == n_t * n_b * 4 * 2
    assert hm.long.max() > 0 and hm.short.max() > 0


def test_matches_engine_over_full_history(btc_short: pd.DataFrame) -> None:
    """Starting one window before the first column gives the book of the full-history run."""
    hm = liquidation_heatmap(btc_short, window="1w", start="2025-04-10", every=7)
    inp = prepare_inputs(btc_short)
    rows = np.searchsorted(inp.dates, hm.times.as_unit("ns").asi8).astype(np.int64)
    eng = LiquidationEngine(hm.model, summaries=False)
    res = eng.run(inp, snapshots=Snapshots(rows, hm.k_lo, hm.shape[1]))
    sl, ss = res.snap_long, res.snap_short
    scale = float(sl.max())
    np.testing.assert_allclose(hm.long, sl, rtol=1e-4, atol=scale * 1e-6)
    np.testing.assert_allclose(hm.short, ss, rtol=1e-4, atol=scale * 1e-6)


def test_last_column_equals_liquidation_map(btc_short: pd.DataFrame) -> None:
    at = "2025-04-20 13:00"
    hm = liquidation_heatmap(btc_short, window="1w", start="2025-04-20", end=at, margin=0.15)
    lmap = liquidation_map(btc_short, window="1w", at=at)
    assert lmap.time == hm.times[-1] == pd.Timestamp(at, tz="UTC")
    assert lmap.price == hm.close[-1]
    bins = np.rint(np.log(lmap.prices) / hm.model.bin_log_width() - 0.5).astype(int) - hm.k_lo
    inside = (bins >= 0) & (bins < hm.shape[1])
    assert inside.sum() > 100
    np.testing.assert_allclose(hm.long[-1, bins[inside]], lmap.long[inside], rtol=1e-5, atol=1.0)
    np.testing.assert_allclose(hm.short[-1, bins[inside]], lmap.short[inside], rtol=1e-5, atol=1.0)


def test_max_bins_sums_neighbouring_bins_and_max_times(btc_short: pd.DataFrame) -> None:
    fine = liquidation_heatmap(btc_short, window="1w", max_times=100)
    assert len(fine.times) <= 100
    coarse = liquidation_heatmap(btc_short, window="1w", max_times=100, max_bins=50)
    assert coarse.shape[1] <= 50 and coarse.bins_per_row > 1
    assert coarse.times.equals(fine.times) and coarse.k_lo == fine.k_lo
    f = coarse.bins_per_row
    n = min(fine.shape[1] // f, coarse.shape[1])
    summed = fine.long[:, : n * f].reshape(len(fine.times), n, f).sum(axis=2)
    np.testing.assert_allclose(coarse.long[:, :n], summed, rtol=1e-5, atol=1.0)
    assert coarse.row_bp == pytest.approx(((1 + 10 / 1e4) ** f - 1) * 1e4)
    assert coarse.edges[0] == pytest.approx(fine.edges[0])


def test_to_frame_long_format(btc_short: pd.DataFrame) -> None:
    hm = liquidation_heatmap(btc_short, window="1w", max_times=20, max_bins=80)
    frame = hm.to_frame()
    assert list(frame.columns) == ["date", "price", "long", "short", "combined"]
    assert (frame["combined"] > 0).all()
    assert frame["long"].sum() == pytest.approx(float(hm.long.sum(dtype=np.float64)), rel=1e-6)
    full = hm.to_frame(dropzero=False)
    assert len(full) == hm.shape[0] * hm.shape[1]
    i, j = 7, 33
    row = full.iloc[i * hm.shape[1] + j]
    assert row["date"] == hm.times[i] and row["price"] == hm.prices[j]
    assert row["short"] == hm.short[i, j]


def test_causal_columns(btc_short: pd.DataFrame) -> None:
    """A column never depends on candles after it."""
    full = liquidation_heatmap(btc_short, window="1w", start="2025-04-01", every=5, max_bins=200)
    for n in (len(btc_short) - 400, len(btc_short) - 77):
        part = btc_short.iloc[:n]
        grid = (full.edges[0] * 1.0000001, full.edges[-1] * 0.9999999)
        times = full.times[full.times <= part["date"].iloc[-1]]
        cut = liquidation_heatmap(part, window="1w", times=times, price_range=grid)
        same = liquidation_heatmap(btc_short, window="1w", times=times, price_range=grid)
        assert cut.k_lo == full.k_lo and cut.shape[1] == full.shape[1] * full.bins_per_row
        np.testing.assert_array_equal(cut.long, same.long)
        np.testing.assert_array_equal(cut.short, same.short)


def test_planted_cluster_lands_in_one_row() -> None:
    df = planted_candles()
    hm = liquidation_heatmap(df, PLANTED_MODEL, margin=0.15)
    f_long, f_short, _ = PLANTED_MODEL.liquidation_factors()
    for mat, level in ((hm.long, 100 * f_long[0]), (hm.short, 100 * f_short[0])):
        rows = np.flatnonzero(mat.sum(axis=0) > 0)
        assert len(rows) == 1
        assert hm.edges[rows[0]] <= level < hm.edges[rows[0] + 1]
        assert (mat[:, rows[0]] > 0).all()


def test_like_times_and_combine(btc_short: pd.DataFrame) -> None:
    a = liquidation_heatmap(btc_short, window="1w", max_times=50, max_bins=120)
    b = liquidation_heatmap(btc_short, window="1w", like=a)
    np.testing.assert_array_equal(a.long, b.long)
    assert b.times.equals(a.times) and b.k_lo == a.k_lo and b.bins_per_row == a.bins_per_row
    both = combine_heatmaps([a, b])
    np.testing.assert_allclose(both.long, 2 * a.long, rtol=1e-6)
    np.testing.assert_array_equal(both.close, a.close)
    assert both.meta["parts"] == 2
    other = liquidation_heatmap(btc_short, window="1w", max_times=50, max_bins=60)
    with pytest.raises(ValueError, match="price rows"):
        combine_heatmaps([a, other])
    with pytest.raises(ValueError, match="bin_bp"):
        liquidation_heatmap(btc_short, window="1w", bin_bp=20, like=a)


def test_times_before_data_give_empty_columns(btc_short: pd.DataFrame) -> None:
    first = btc_short["date"].iloc[0]
    times = [first - pd.Timedelta(hours=3), first + pd.Timedelta(days=10)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hm = liquidation_heatmap(btc_short, window="1w", times=times)
    assert hm.long[0].sum() == 0 and np.isnan(hm.close[0])
    assert hm.long[1].sum() > 0 and np.isfinite(hm.close[1])


def test_warns_when_the_book_is_still_filling(btc_short: pd.DataFrame) -> None:
    with pytest.warns(UserWarning, match="incomplete"):
        liquidation_heatmap(btc_short, window="1w", start="2025-03-02", end="2025-03-04")
    with pytest.warns(UserWarning, match="incomplete"):
        liquidation_map(btc_short, window="1w", at="2025-03-03")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": "2025-04-10", "end": "2025-04-01"}, "after end"),
        ({"start": "2025-04-10 00:20", "end": "2025-04-10 00:40"}, "no candles"),
        ({"every": 0}, "every"),
        ({"max_bins": 0}, "max_bins"),
        ({"price_range": (10.0, 5.0)}, "price_range"),
        ({"price_range": (1.0, 1e12), "bin_bp": 0.01}, "GB"),
    ],
)
def test_bad_arguments(btc_short: pd.DataFrame, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        liquidation_heatmap(btc_short, window="1w", **kwargs)


def test_matrix_mode_names(btc_short: pd.DataFrame) -> None:
    hm = liquidation_heatmap(btc_short, window="1w", max_times=5, max_bins=20)
    assert hm.matrix("long") is hm.long and hm.matrix("short") is hm.short
    with pytest.raises(ValueError, match="mode"):
        hm.matrix("both")
    assert isinstance(hm, Heatmap)


# ----------------------------------------------------------------------------- maps
@pytest.fixture(scope="module")
def lmap(btc_short: pd.DataFrame) -> LiquidationMap:
    return liquidation_map(btc_short, window="1w")


def test_map_at_and_sides(btc_short: pd.DataFrame, lmap: LiquidationMap) -> None:
    assert lmap.time == btc_short["date"].iloc[-1]
    assert lmap.price == btc_short["close"].iloc[-1]
    at = liquidation_map(btc_short, window="1w", at="2025-04-15 10:30")
    assert at.time == pd.Timestamp("2025-04-15 10:00", tz="UTC")
    # most long mass sits below the price and most short mass above it
    below = lmap.prices < lmap.price
    assert lmap.long[below].sum() > 0.95 * lmap.long.sum()
    assert lmap.short[~below].sum() > 0.95 * lmap.short.sum()
    with pytest.raises(ValueError, match="before the first candle"):
        liquidation_map(btc_short, window="1w", at="2020-01-01")


def test_cumulative_curves(lmap: LiquidationMap) -> None:
    cum = cumulative_liquidations(lmap)
    down = cum.loc[cum["price"] <= lmap.price]
    up = cum.loc[cum["price"] >= lmap.price]
    assert cum.loc[cum["price"] > lmap.price, "long_cum"].isna().all()
    assert cum.loc[cum["price"] < lmap.price, "short_cum"].isna().all()
    # a deeper fall liquidates more: non-increasing in price below, non-decreasing above
    assert (np.diff(down["long_cum"].to_numpy()) <= 1e-6).all()
    assert (np.diff(up["short_cum"].to_numpy()) >= -1e-6).all()
    assert down["long_cum"].iloc[0] == pytest.approx(lmap.long.sum())
    assert up["short_cum"].iloc[-1] == pytest.approx(lmap.short.sum())


def test_buckets_and_top_clusters(lmap: LiquidationMap) -> None:
    b = map_buckets(lmap, bucket_pct=0.5)
    assert (b.loc[b["price"] > lmap.price, "long"] == 0).all()
    assert (b.loc[b["price"] < lmap.price, "short"] == 0).all()
    assert b["long"].sum() == pytest.approx(lmap.long[lmap.prices < lmap.price].sum())
    assert np.all(b["low"].to_numpy()[1:] == pytest.approx(b["high"].to_numpy()[:-1]))
    top = top_clusters(lmap, n=3, bucket_pct=0.5, min_gap_pct=1.0)
    assert list(top["side"]) == ["long"] * 3 + ["short"] * 3
    longs, shorts = top[top["side"] == "long"], top[top["side"] == "short"]
    assert (longs["price"] < lmap.price).all() and (longs["distance_pct"] < 0).all()
    assert (shorts["price"] > lmap.price).all() and (shorts["distance_pct"] > 0).all()
    assert longs["notional"].is_monotonic_decreasing
    assert longs["notional"].iloc[0] == pytest.approx(b["long"].max())
    gaps = np.abs(np.subtract.outer(longs["price"].to_numpy(), longs["price"].to_numpy()))
    assert (gaps[~np.eye(3, dtype=bool)] >= lmap.price * 0.01 * 0.99).all()


def test_combine_maps(lmap: LiquidationMap) -> None:
    shifted = LiquidationMap(
        time=lmap.time, price=lmap.price, prices=lmap.prices[10:] * 1.0, long=lmap.long[10:],
        short=lmap.short[10:], bin_bp=lmap.bin_bp,
    )  # fmt: skip
    both = combine_maps([lmap, shifted])
    assert len(both.prices) == len(lmap.prices)
    np.testing.assert_allclose(both.prices, lmap.prices, rtol=1e-12)
    np.testing.assert_allclose(both.long[10:], 2 * lmap.long[10:])
    np.testing.assert_allclose(both.long[:10], lmap.long[:10])
    with pytest.raises(ValueError, match="bin_bp"):
        combine_maps([lmap, LiquidationMap(None, 1.0, lmap.prices, lmap.long, lmap.short, 20.0)])


def test_import_stays_light() -> None:
    code = (
        "import sys, liqsignals, liqsignals.heatmap, liqsignals.plotting, liqsignals.plot_cli;"
        "heavy = [m for m in ('matplotlib', 'plotly', 'tqdm', 'freqtrade') if m in sys.modules];"
        "assert not heavy, heavy;"
        "assert liqsignals.LiquidationMap is liqsignals.engine.LiquidationMap"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
