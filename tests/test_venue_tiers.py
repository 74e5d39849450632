"""Each venue's own maintenance-margin tiers: Binance's table, the documented approximation for
venues without one, and a user's ccxt ``fetch_leverage_tiers`` file overriding either."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from synthetic import random_candles

from liqsignals import LiquidationModel
from liqsignals.model import MarginTier, load_margin_tiers
from liqsignals.multi import MultiFeatureStream, combine_exchanges, liquidation_features_multi
from liqsignals.strategy.settings import pair_model, tiers_files
from liqsignals.tiers import load_tiers, parse_ccxt_tiers, venue_model

BTC = "BTC/USDT:USDT"
TEN_X = {"window": "1d", "bin_bp": 20.0, "entry_samples": 3, "symbol": BTC,
         "leverages": (10.0,), "leverage_weights": (1.0,)}  # fmt: skip


def ccxt_row(tier, lo, hi, mmr, lev, info=None):
    return {"tier": tier, "symbol": BTC, "currency": "USDT", "minNotional": lo,
            "maxNotional": hi, "maintenanceMarginRate": mmr, "maxLeverage": lev,
            "info": info or {}}  # fmt: skip


# a Bybit-like table, written by hand: 2 % maintenance margin up to 1M, then 3 %
BYBIT = {BTC: [ccxt_row(1, 0, 1_000_000, 0.02, 100), ccxt_row(2, 1_000_000, 5_000_000, 0.03, 50)]}


@pytest.fixture
def bybit_file(tmp_path):
    path = tmp_path / "bybit_tiers.json"
    path.write_text(json.dumps(BYBIT))
    return path


def test_binance_is_its_own_table():
    got = load_tiers("binance", BTC)
    assert not got.approximate
    assert got.tiers == tuple(load_margin_tiers(BTC) or ())
    assert (
        got.tiers[0].maintenance_margin_rate == 0.004
    )  # Binance BTC bracket 1 (freqtrade/bundled)
    assert load_tiers("binanceusdm", BTC).tiers == got.tiers


@pytest.mark.parametrize("venue", ["bybit", "okx"])
def test_a_venue_without_a_table_is_the_documented_approximation_and_says_so(venue, caplog):
    import liqsignals.tiers as tiers_mod

    tiers_mod._noted.clear()
    with caplog.at_level(logging.WARNING, logger="liqsignals.tiers"):
        got = load_tiers(venue, BTC)
        again = load_tiers(venue, BTC)
    assert got.approximate and again.approximate
    assert got.source == "approximation: Binance USDT-M's table for the same symbol"
    assert got.tiers == load_tiers("binance", BTC).tiers
    notes = [r.getMessage() for r in caplog.records if venue in r.getMessage()]
    assert len(notes) == 1 and "approximation" in notes[0]  # logged once
    assert got.to_dict()["approximate"] is True


def test_a_symbol_no_table_has_is_the_flat_rate_flagged():
    got = load_tiers("bybit", "NOPE/USDT:USDT")
    assert got.approximate and got.tiers is None
    assert "flat maintenance_margin_rate" in got.source


def test_a_user_file_replaces_the_venue_tiers(bybit_file):
    got = load_tiers("bybit", BTC, bybit_file)
    assert not got.approximate and got.source == "user file bybit_tiers.json"
    # maintenance amounts derived as the exchanges define them: 1M * (3 % - 2 %) = 10,000
    assert got.tiers == (
        MarginTier(0.0, 1_000_000.0, 0.02, 100.0, 0.0),
        MarginTier(1_000_000.0, 5_000_000.0, 0.03, 50.0, 10_000.0),
    )
    # a given info.cum / info.mmDeduction wins over the derived amount
    raw = {BTC: [ccxt_row(1, 0, 1e6, 0.02, 100), ccxt_row(2, 1e6, 5e6, 0.03, 50, {"mmDeduction": "9000"})]}  # fmt: skip
    assert parse_ccxt_tiers(raw, BTC)[1].maintenance_amount == 9000.0


def test_a_user_file_changes_the_venue_levels_in_the_combined_book(bybit_file):
    a = random_candles(1, 240, vol=0.02)
    b = random_candles(2, 240, vol=0.02)
    model = LiquidationModel(**TEN_X)
    plain = combine_exchanges({"binance": a, "bybit": b}, model)
    own = combine_exchanges({"binance": a, "bybit": b}, model, tiers_files={"bybit": bybit_file})
    # binance 10x long: (1 - 1/10) / (1 - 0.004) (bracket 1, cum 0); bybit from the file:
    # (1 - 1/10) / (1 - 0.02)
    np.testing.assert_allclose(own.f_long, [0.9 / 0.996, 0.9 / 0.98], rtol=1e-12)
    np.testing.assert_allclose(own.f_short, [1.1 / 1.004, 1.1 / 1.02], rtol=1e-12)
    np.testing.assert_allclose(plain.f_long, [0.9 / 0.996, 0.9 / 0.996], rtol=1e-12)
    kw = {"tiers_files": {"bybit": bybit_file}}
    batch = liquidation_features_multi({"binance": a, "bybit": b}, model, **kw)
    before = liquidation_features_multi({"binance": a, "bybit": b}, model)
    assert not np.allclose(
        batch["liq_long_cluster_price"], before["liq_long_cluster_price"], equal_nan=True
    )
    # the live stream resolves the same tiers: the same values, bit for bit
    stream = MultiFeatureStream(model, exchanges=["binance", "bybit"], **kw)
    rows = stream.update_many({"binance": a, "bybit": b})
    np.testing.assert_array_equal(rows.to_numpy(), batch.to_numpy())


BAD_FILES = [
    ("not json", "is not valid JSON"),
    (json.dumps([1, 2]), "expected ccxt's fetch_leverage_tiers format"),
    (json.dumps({BTC: []}), "must be a non-empty list of tiers"),
    (json.dumps({BTC: [{"tier": 1}]}), "tier 1 has no 'minNotional'"),
    (json.dumps({BTC: [ccxt_row(1, 0, 1e6, "two", 100)]}), "'maintenanceMarginRate' must be a number"),
    (json.dumps({BTC: [ccxt_row(1, 0, 1e6, 0.6, 100)]}), r"maintenanceMarginRate must be in \[0, 0.5\)"),
    (json.dumps({BTC: [ccxt_row(1, 5e5, 1e5, 0.01, 100)]}), "needs 0 <= minNotional < maxNotional"),
    (json.dumps({BTC: [ccxt_row(1, 0, 1e6, 0.01, 100), ccxt_row(2, 2e6, 3e6, 0.02, 50)]}), "not contiguous"),
    (json.dumps({BTC: [ccxt_row(1, 0, 1e6, 0.01, 0.5)]}), "maxLeverage must be >= 1"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BAD_FILES)
def test_a_malformed_file_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "tiers.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        load_tiers("bybit", BTC, path)
    assert "tiers" in str(err.value)  # names the file
    with pytest.raises(ValueError, match=message):
        combine_exchanges(
            {"binance": random_candles(1, 5), "bybit": random_candles(2, 5)},
            LiquidationModel(**TEN_X),
            tiers_files={"bybit": path},
        )


def test_a_missing_file_and_a_file_without_the_symbol(tmp_path, caplog):
    with pytest.raises(ValueError, match="does not exist"):
        load_tiers("bybit", BTC, tmp_path / "nope.json")
    path = tmp_path / "eth_only.json"
    path.write_text(json.dumps({"ETH/USDT:USDT": BYBIT[BTC]}))
    with caplog.at_level(logging.WARNING, logger="liqsignals.tiers"):
        got = load_tiers("bybit", BTC, path)
    assert got.approximate  # falls back to the approximation, with a warning
    assert any("has no tiers for BTC/USDT:USDT" in r.getMessage() for r in caplog.records)


def test_a_user_file_too_small_for_the_leverage_mix_is_refused(tmp_path):
    path = tmp_path / "low.json"
    path.write_text(json.dumps({BTC: [ccxt_row(1, 0, 1e6, 0.01, 20)]}))
    with pytest.raises(ValueError, match="exceeds every tier's maximum leverage"):
        venue_model(LiquidationModel(symbol=BTC), "bybit", path)  # the default mix has 100x


def test_strategy_settings_read_the_tiers_files(bybit_file):
    config = {"liqsignals": {"tiers_file": {"bybit": str(bybit_file)}}}
    assert tiers_files(config) == {"bybit": bybit_file}
    assert tiers_files({}) == {}
    with pytest.raises(ValueError, match="must map venue -> JSON path"):
        tiers_files({"liqsignals": {"tiers_file": "x.json"}})
    m = pair_model(BTC, "1d", "all", {}, venue="bybit", tiers_file=bybit_file)
    assert m.tiers is not None and m.tiers[0].maintenance_margin_rate == 0.02
    assert pair_model(BTC, "1d", "all", {}) == LiquidationModel(window="1d", symbol=BTC)
    assert pair_model(BTC, "1d", "all", {}).tiers == load_tiers("binance", BTC).tiers


def test_a_strategy_takes_the_tiers_of_its_configs_venue(bybit_file):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "strategies"))
    from LiqSweepReversal import LiqSweepReversal

    base = {"trading_mode": "futures", "stake_currency": "USDT", "dry_run": True}
    on_binance = LiqSweepReversal({**base, "exchange": {"name": "binance"}}).liq_model(BTC)
    assert on_binance.tiers == load_tiers("binance", BTC).tiers
    on_bybit = LiqSweepReversal({**base, "exchange": {"name": "Bybit"}}).liq_model(BTC)
    assert load_tiers("bybit", BTC).approximate  # the flagged approximation (logged once)
    assert on_bybit.tiers == load_tiers("bybit", BTC).tiers
    config = {**base, "exchange": {"name": "bybit"}}
    config["liqsignals"] = {"tiers_file": {"bybit": str(bybit_file)}}
    from_file = LiqSweepReversal(config).liq_model(BTC)
    assert from_file.tiers is not None and from_file.tiers[0].maintenance_margin_rate == 0.02
