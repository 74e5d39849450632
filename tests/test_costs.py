"""Backtest costs: slippage through the strategies' price hooks, and fee / funding totals.

Expected values are worked out by hand from the definitions in ``liqsignals.strategy.costs``.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from liqsignals.strategy import costs

ROOT = Path(__file__).resolve().parent.parent


def _strategy(module: str, cls: str, config: dict):
    spec = importlib.util.spec_from_file_location(module, ROOT / "strategies" / f"{module}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[module] = mod
    spec.loader.exec_module(mod)
    return getattr(mod, cls)(config)


def test_slipped_price_moves_against_the_trader():
    assert costs.slipped_price(100.0, 2.0, buy=True) == pytest.approx(100.02)
    assert costs.slipped_price(100.0, 2.0, buy=False) == pytest.approx(99.98)
    assert costs.slipped_price(100.0, 25.0, buy=True) == pytest.approx(100.25)
    p = 12345.678901
    assert costs.slipped_price(p, 0.0, buy=True) == p  # exactly freqtrade's price at 0 bp


def test_settings_validate_and_read_the_config():
    default = costs.SlippageSettings()
    assert default.slippage_bp == 0.0 and default.describe() == "no slippage"
    s = costs.slippage_settings({"liqsignals": {"slippage_bp": 2}}, default)
    assert s.entry_bp(False) == 2 and s.entry_bp(True) == 6
    assert "6 bp on wick entries" in s.describe()
    assert costs.slippage_settings({}, costs.SlippageSettings(1.5, 2.0)).entry_bp(True) == 3.0
    for bad in ({"slippage_bp": -1}, {"slippage_bp": math.nan}, {"slippage_bp": "2"},
                {"slippage_bp": True}, {"wick_slippage_factor": 0.5}):  # fmt: skip
        with pytest.raises(ValueError, match="liqsignals\\."):
            costs.slippage_settings({"liqsignals": bad}, default)
    with pytest.raises(ValueError, match="must be an object"):
        costs.slippage_settings({"liqsignals": [1]}, default)


def test_trade_costs_by_hand():
    trades = [
        # long sweep entry (wick), exit through custom_exit: both sides slipped
        {"amount": 2.0, "open_rate": 100.0, "close_rate": 110.0, "fee_open": 0.0005,
         "fee_close": 0.0005, "funding_fees": -0.3, "exit_reason": "magnet_target",
         "enter_tag": "sweep_long"},
        # short, stopped out: the exit has no price hook
        {"amount": 1.0, "open_rate": 50.0, "close_rate": 55.0, "fee_open": 0.001,
         "fee_close": 0.001, "funding_fees": 0.2, "exit_reason": "stop_loss",
         "enter_tag": "magnet_down"},
    ]  # fmt: skip
    c = costs.trade_costs(trades, costs.SlippageSettings(2.0, 3.0), ("sweep_long",))
    assert c.trades == 2
    # fees: 2*100*0.0005 + 2*110*0.0005 + 50*0.001 + 55*0.001 = 0.1 + 0.11 + 0.05 + 0.055
    assert c.fees == pytest.approx(0.315)
    # funding paid: 0.3 paid by the long, 0.2 received by the short
    assert c.funding == pytest.approx(0.1)
    # slippage: entry 200 * 6 bp = 0.12, exit 220 * 2 bp = 0.044, short entry 50 * 2 bp = 0.01
    assert c.slippage == pytest.approx(0.174)
    assert c.unslipped_exits == 1
    assert c.unslipped_slippage == pytest.approx(55 * 2e-4)
    zero = costs.trade_costs(trades)
    assert zero.slippage == 0 and zero.unslipped_slippage == 0 and zero.fees == c.fees
    with pytest.raises(ValueError, match="amount"):
        costs.trade_costs([{"amount": "x"}])


BACKTEST = {"runmode": "backtest"}


def test_hooks_at_zero_slippage_return_freqtrade_price():
    s = _strategy("LiqSweepReversal", "LiqSweepReversal", dict(BACKTEST))
    trade = SimpleNamespace(is_short=False)
    p = 98765.4321
    assert s.custom_entry_price("BTC/USDT:USDT", None, None, p, "sweep_long", "long") == p
    assert s.custom_exit_price("BTC/USDT:USDT", trade, None, p, 0.01, "magnet_target") == p


def test_sweep_entries_pay_the_wick_factor():
    cfg = dict(BACKTEST, liqsignals={"slippage_bp": 2.0})
    s = _strategy("LiqSweepReversal", "LiqSweepReversal", cfg)
    entry = s.custom_entry_price
    assert entry("X", None, None, 100.0, "sweep_long", "long") == pytest.approx(100.06)
    assert entry("X", None, None, 100.0, "sweep_short", "short") == pytest.approx(99.94)
    assert entry("X", None, None, 100.0, "other", "long") == pytest.approx(100.02)
    ext = s.custom_exit_price
    assert ext("X", SimpleNamespace(is_short=False), None, 100.0, 0.0, "x") == pytest.approx(99.98)
    assert ext("X", SimpleNamespace(is_short=True), None, 100.0, 0.0, "x") == pytest.approx(100.02)
    m = _strategy("LiqMagnetTrend", "LiqMagnetTrend", dict(cfg))
    # no wick entries in the magnet trend: every entry pays the base slippage
    assert m.custom_entry_price("X", None, None, 100.0, "magnet_up", "long") == pytest.approx(
        100.02
    )


def test_no_slippage_in_dry_run():
    cfg = {"runmode": "dry_run", "liqsignals": {"slippage_bp": 5.0}}
    s = _strategy("LiqMagnetTrend", "LiqMagnetTrend", cfg)
    assert s.custom_entry_price("X", None, None, 100.0, "magnet_up", "long") == 100.0
    assert s.custom_exit_price("X", SimpleNamespace(is_short=True), None, 100.0, 0, "x") == 100.0


def test_bad_slippage_config_is_a_clear_error():
    with pytest.raises(ValueError, match="slippage_bp"):
        _strategy("LiqMagnetTrend", "LiqMagnetTrend", {"liqsignals": {"slippage_bp": -2}})
