"""Several exchanges for one market: combined inputs, own margin tiers, exchange filter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic import random_candles

from liqsignals import LiquidationEngine, LiquidationModel, liquidation_features, liquidation_levels
from liqsignals.multi import combine_exchanges, liquidation_features_multi, liquidation_levels_multi

SMALL = {"window": "1d", "bin_bp": 20.0, "entry_samples": 3}
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def test_one_exchange_equals_single_frame_bit_for_bit():
    df = random_candles(1, 200, open_interest=True, taker=True)
    multi = liquidation_levels_multi({"binance": df}, **SMALL)
    np.testing.assert_array_equal(multi.to_numpy(), liquidation_levels(df, **SMALL).to_numpy())
    feats = liquidation_features_multi({"binance": df}, **SMALL)
    np.testing.assert_array_equal(feats.to_numpy(), liquidation_features(df, **SMALL).to_numpy())


def test_two_identical_venues_double_the_book():
    df = random_candles(2, 200)
    one = liquidation_levels(df, **SMALL)
    two = liquidation_levels_multi({"a": df, "b": df.copy()}, **SMALL)
    for col in ("liq_long_liquidated", "liq_short_total", "liq_long_band", "liq_long_cluster_size"):
        np.testing.assert_allclose(two[col], 2 * one[col], rtol=1e-9)
    # prices of clusters do not move
    np.testing.assert_allclose(
        two["liq_long_cluster_price"], one["liq_long_cluster_price"], rtol=1e-12
    )


def test_volume_and_open_interest_are_summed_in_the_right_units():
    a = random_candles(3, 50, open_interest=True)
    b = a.copy()
    b[["open", "high", "low", "close"]] *= 1.001  # a second venue trading slightly higher
    b["volume"] = a["volume"] * 3
    b["open_interest"] = a["open_interest"] * 2
    c = combine_exchanges({"a": a, "b": b}, LiquidationModel(**SMALL))
    typical_a = (a["high"] + a["low"] + a["close"]) / 3
    typical_b = (b["high"] + b["low"] + b["close"]) / 3
    expected_volume = a["volume"] + b["volume"] * typical_b / typical_a
    np.testing.assert_allclose(c.frame["volume"], expected_volume, rtol=1e-12)
    np.testing.assert_allclose(c.frame["open_interest"], a["open_interest"] * 3, rtol=1e-12)
    quote_a = a["volume"] * typical_a
    quote_b = b["volume"] * typical_b
    np.testing.assert_allclose(c.shares["b"], quote_b / (quote_a + quote_b), rtol=1e-12)
    np.testing.assert_allclose(c.weights.sum(axis=1), 1.0, rtol=1e-12)
    assert list(c.frame["close"]) == list(a["close"])  # prices from the reference (first) venue


def test_each_exchange_keeps_its_own_margin_tiers():
    """Venue a opens only 10x positions, venue b only 50x: the book holds both liquidation
    prices, in proportion to each venue's volume."""
    n = 60
    df = pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC"),
            "open": 100.0,
            "high": 100.0,
            "low": 100.0,
            "close": 100.0,
            "volume": 10.0,
        }
    )
    b = df.assign(volume=30.0)
    base = LiquidationModel(window="1d", entry_samples=1, close_half_life=None)
    models = {
        "a": base.replace(leverages=(10.0,), leverage_weights=(1.0,)),
        "b": base.replace(leverages=(50.0,), leverage_weights=(1.0,)),
    }
    c = combine_exchanges({"a": df, "b": b}, base, models=models)
    from liqsignals.inputs import prepare_inputs
    from liqsignals.multi import combined_engine

    eng = combined_engine(c, base)
    eng.run(prepare_inputs(c.frame), weights=c.weights)
    snap = eng.snapshot()
    held = snap.prices[snap.long > 0]
    long_10x = 100 * (1 - 0.1 + 0.005)
    long_50x = 100 * (1 - 0.02 + 0.005)
    assert len(held) == 2
    assert held[0] == pytest.approx(long_10x, rel=1e-3) and held[1] == pytest.approx(
        long_50x, rel=1e-3
    )
    mass = snap.long[snap.long > 0]
    assert mass[1] / mass[0] == pytest.approx(3.0)  # venue b trades three times the volume


def test_exchange_filter_and_errors():
    a, b = random_candles(4, 80), random_candles(5, 80)
    only_b = liquidation_levels_multi({"a": a, "b": b}, exchanges=["b"], **SMALL)
    np.testing.assert_array_equal(only_b.to_numpy(), liquidation_levels(b, **SMALL).to_numpy())
    with pytest.raises(ValueError, match="exchange filter names"):
        liquidation_levels_multi({"a": a}, exchanges=["okx"], **SMALL)
    with pytest.raises(ValueError, match="reference exchange"):
        liquidation_levels_multi({"a": a, "b": b}, exchanges=["a"], reference="b", **SMALL)
    with pytest.raises(ValueError, match="'close' has NaN"):
        bad = b.copy()
        bad.loc[3, "close"] = np.nan
        liquidation_levels_multi({"a": a, "b": bad}, **SMALL)


def test_missing_candles_on_one_venue_count_as_no_volume():
    a = random_candles(6, 100)
    b = a.drop(index=range(40, 50)).reset_index(drop=True)
    c = combine_exchanges({"a": a, "b": b}, LiquidationModel(**SMALL))
    assert (c.shares["b"].iloc[40:50] == 0).all()
    np.testing.assert_allclose(c.frame["volume"].iloc[40:50], a["volume"].iloc[40:50])


def test_combined_engine_state_survives_save_and_restore(tmp_path):
    a, b = random_candles(7, 150), random_candles(8, 150)
    base = LiquidationModel(**SMALL)
    models = {"b": base.replace(leverage="high")}
    c = combine_exchanges({"a": a, "b": b}, base, models=models)
    from liqsignals.inputs import prepare_inputs
    from liqsignals.multi import combined_engine

    full = combined_engine(c, base)
    whole = full.run(prepare_inputs(c.frame), weights=c.weights).values
    first = combined_engine(c, base)
    first.run(prepare_inputs(c.frame.iloc[:90]), weights=c.weights[:90])
    first.save(tmp_path / "s.npz")
    again = LiquidationEngine.load(tmp_path / "s.npz")
    rest = again.run(prepare_inputs(c.frame.iloc[90:]), weights=c.weights[90:]).values
    np.testing.assert_array_equal(rest, whole[90:])


@pytest.mark.skipif(not (SHARED / "bybit").is_dir(), reason="needs ../shared/data beside the repo")
def test_real_binance_and_bybit_together():
    """Binance and Bybit BTC perpetual candles (1h, 2024-01 .. 2025-05) in one book."""
    from liqsignals.data.datadir import load_candles

    frames = {
        ex: load_candles(SHARED / ex, "BTC/USDT:USDT", "1h", timerange="20240101-20250531")
        for ex in ("binance", "bybit")
    }
    model = LiquidationModel(window="1w", symbol="BTC/USDT:USDT")
    combined = liquidation_levels_multi(frames, model)
    alone = liquidation_levels(frames["binance"], model)
    ok = combined["liq_long_total"].notna() & alone["liq_long_total"].notna()
    c, a = combined[ok], alone[ok]
    shares = combine_exchanges(frames, model).shares
    # Bybit adds a real share of the volume, and so of the book
    assert 0.1 < shares["bybit"].mean() < 0.6
    ratio = c["liq_long_total"].sum() / a["liq_long_total"].sum()
    assert 1.1 < ratio < 3.0
    # the same market: the two estimates move together
    for col in ("liq_long_liquidated", "liq_short_liquidated"):
        assert np.corrcoef(c[col], a[col])[0, 1] > 0.9
    close = frames["binance"]["close"][ok]
    lc = c["liq_long_cluster_price"].dropna()
    assert (lc < close[lc.index]).mean() > 0.99
