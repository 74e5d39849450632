"""The cost-aware event study on constructed data (no research data).

Random walks on a price lattice (steps of one tick, 64 per candle; candle high/low are the path's
extremes): a level on the lattice is touched exactly, so exiting at the touch or after the horizon
is a bounded stopping time of a martingale and the true mean gross trade is 0. Over a fixed list of
seeds the 95 % interval of the mean gross trade must cover 0 in 90-99 % of them; and for every
trade ``net = gross - costs``, each cost recomputed here from its definition.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from liqsignals.analysis import trades as T
from liqsignals.analysis.competing import CompetingOptions

SEEDS = tuple(range(60))
OPTS = CompetingOptions(horizon=24, swing_lookback=72)


def lattice_candles(seed: int, n: int = 4000, k: int = 64, start: int = 5000):
    rng = np.random.default_rng(seed)
    path = start + np.concatenate([[0], np.cumsum(rng.integers(0, 2, n * k) * 2 - 1)])
    o = path[:-1:k][:n].astype(float)
    c = path[k::k][:n].astype(float)
    seg = path[1:].reshape(n, k)
    dates = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC")
    df = pd.DataFrame({"date": dates, "open": o, "high": np.maximum(seg.max(1), o),
                       "low": np.minimum(seg.min(1), o), "close": c, "volume": 1.0})  # fmt: skip
    return df, rng


def random_clusters(df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """liq_* cluster columns at random lattice distances (1-199 ticks), random sizes."""
    c = df["close"].to_numpy()
    n = len(c)
    return pd.DataFrame({
        "liq_long_cluster_price": c - rng.integers(1, 200, n),
        "liq_short_cluster_price": c + rng.integers(1, 200, n),
        "liq_long_cluster_size": rng.lognormal(0, 1, n),
        "liq_short_cluster_size": rng.lognormal(0, 1, n),
    })  # fmt: skip


@pytest.mark.parametrize("rule", ["liq", "swing"])
def test_gross_interval_covers_zero_on_random_walks(rule):
    covered = []
    for seed in SEEDS:
        df, rng = lattice_candles(seed)
        side, level = T.rule_levels(df, random_clusters(df, rng), rule, OPTS)
        trades = T.event_trades(df, side, level, horizon=24, step=6)
        assert len(trades) > 300
        s = T.trade_summary(trades, block=T.week_block(6, pd.Timedelta("1h")), resamples=500,
                            seed=seed)  # fmt: skip
        covered.append(s.gross.low <= 0.0 <= s.gross.high)
    share = float(np.mean(covered))
    assert 0.90 <= share <= 0.99, share


def _funding(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    d = pd.date_range(df["date"].iloc[0], df["date"].iloc[-1], freq="8h")
    return pd.DataFrame(
        {"date": d, "funding_rate": np.random.default_rng(seed).normal(1e-4, 3e-4, len(d))}
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_net_is_gross_minus_costs_for_every_trade(seed):
    df, rng = lattice_candles(seed, n=1500)
    side, level = T.rule_levels(df, random_clusters(df, rng), "liq", OPTS)
    costs = T.TradeCosts(fee_bp=5.0, slippage_bp=2.0, wick_factor=3.0)
    fund = _funding(df, seed)
    tr = T.event_trades(df, side, level, horizon=24, step=6, costs=costs, funding=fund)
    o, h, lo, c = (df[k].to_numpy() for k in ("open", "high", "low", "close"))
    rng_c = h - lo
    dates = df["date"]
    assert tr["touch"].any() and (~tr["touch"]).any() and tr["wick"].any()
    for row in tr.itertuples():
        t, s, lv = row.i, row.side, row.level
        entry = o[t + 1]
        exit_, j, touch = c[t + 24], t + 24, False
        for k in range(t + 1, t + 25):
            if (s > 0 and o[k] >= lv) or (s < 0 and o[k] <= lv):
                exit_, j, touch = o[k], k, True
                break
            if (s > 0 and h[k] >= lv) or (s < 0 and lo[k] <= lv):
                exit_, j, touch = lv, k, True
                break
        wick = t >= 24 and rng_c[t] >= 2.0 * rng_c[t - 24 : t].mean()
        gross = s * (exit_ / entry - 1) * 1e4
        fee = 5.0 + 5.0 * exit_ / entry
        slip = 2.0 * (3.0 if wick else 1.0) + (0.0 if touch else 2.0 * exit_ / entry)
        paid = fund.loc[(fund["date"] > dates[t + 1])
                        & (fund["date"] <= dates[j] + pd.Timedelta("1h")), "funding_rate"]  # fmt: skip
        funding = s * paid.sum() * 1e4
        assert row.entry == entry and row.exit == pytest.approx(exit_)
        assert bool(row.touch) == touch and bool(row.wick) == wick
        assert row.gross_bp == pytest.approx(gross)
        assert row.fee_bp == pytest.approx(fee)
        assert row.slippage_bp == pytest.approx(slip)
        assert row.funding_bp == pytest.approx(funding, abs=1e-9)
        assert row.net_bp == pytest.approx(gross - fee - slip - funding)
    s = T.trade_summary(tr, block=28, resamples=200)
    d = s.to_dict()
    assert d["mean_trade_bp"] == pytest.approx(tr["net_bp"].mean())
    assert d["break_even_cost_bp"] == pytest.approx((tr["gross_bp"] - tr["funding_bp"]).mean())
    # at a round-trip cost equal to the break-even, the mean net trade is 0
    assert d["mean_trade_bp_ci_low"] <= d["mean_trade_bp"] <= d["mean_trade_bp_ci_high"]


def test_one_trade_by_hand():
    # t=2: close 100, level above at 103; t+1 opens 100, candle 4 reaches 104 -> exit at 103
    df = pd.DataFrame({
        "date": pd.date_range("2024-01-01", periods=8, freq="1h", tz="UTC"),
        "open":  [100, 100, 100, 100, 101, 103, 103, 103],
        "high":  [101, 101, 101, 102, 104, 104, 104, 104],
        "low":   [99, 99, 99, 99, 100, 102, 102, 102],
        "close": [100, 100, 100, 101, 103, 103, 103, 103],
        "volume": 1.0,
    })  # fmt: skip
    side = np.zeros(8)
    level = np.full(8, np.nan)
    side[2], level[2] = 1, 103.0
    tr = T.event_trades(df, side, level, horizon=4, step=1, costs=T.TradeCosts(5, 2))
    assert len(tr) == 1
    r = tr.iloc[0]
    assert r["entry"] == 100 and r["exit"] == 103 and r["touch"]
    assert r["gross_bp"] == pytest.approx(300.0)
    assert r["fee_bp"] == pytest.approx(5 + 5 * 1.03)
    assert r["slippage_bp"] == pytest.approx(2.0)  # entry only: the touch exit is a limit
    assert r["net_bp"] == pytest.approx(300 - 10.15 - 2.0)
    # short toward 90 that is never touched: time exit at close of t+4 (103)
    side[2], level[2] = -1, 90.0
    r = T.event_trades(df, side, level, horizon=4, step=1).iloc[0]
    assert not r["touch"] and r["exit"] == 103
    assert r["gross_bp"] == pytest.approx(-300.0)
    assert r["slippage_bp"] == pytest.approx(2.0 + 2.0 * 1.03)


def test_mirror_is_the_other_side_at_the_same_log_distance():
    df, rng = lattice_candles(3, n=300)
    feats = random_clusters(df, rng)
    s1, l1 = T.rule_levels(df, feats, "liq", OPTS)
    s2, l2 = T.rule_levels(df, feats, "mirror", OPTS)
    c = df["close"].to_numpy()
    ok = s1 != 0
    assert ok.sum() > 200
    np.testing.assert_array_equal(s2[ok], -s1[ok])
    np.testing.assert_allclose(np.log(l2[ok] / c[ok]), -np.log(l1[ok] / c[ok]))


def test_paired_difference_on_shared_samples():
    df, rng = lattice_candles(5, n=1500)
    feats = random_clusters(df, rng)
    a = T.event_trades(df, *T.rule_levels(df, feats, "liq", OPTS), horizon=24, step=6)
    b = T.event_trades(df, *T.rule_levels(df, feats, "mirror", OPTS), horizon=24, step=6)
    d = T.paired_difference(a, b.iloc[5:], block=28, resamples=200)
    want = a["gross_bp"].to_numpy()[5:] - b["gross_bp"].to_numpy()[5:]
    assert d["vs_mirror_n"] == len(a) - 5
    assert d["vs_mirror_gross_bp"] == pytest.approx(want.mean())
    assert (
        d["vs_mirror_gross_bp_ci_low"] < d["vs_mirror_gross_bp"] < d["vs_mirror_gross_bp_ci_high"]
    )


def test_bad_input_is_a_clear_error():
    df, rng = lattice_candles(4, n=300)
    with pytest.raises(ValueError, match="rule must be"):
        T.rule_levels(df, None, "round", OPTS)
    with pytest.raises(ValueError, match="needs the liq_"):
        T.rule_levels(df, None, "liq", OPTS)
    with pytest.raises(ValueError, match="fee_bp"):
        T.TradeCosts(fee_bp=-1)
    with pytest.raises(ValueError, match="one value per candle"):
        T.event_trades(df, np.zeros(5), np.zeros(5), horizon=4)
    side = np.zeros(len(df))
    side[50] = 1
    level = np.full(len(df), np.nan)
    level[50] = df["close"].iloc[50] - 1  # "above" but below the close
    with pytest.raises(ValueError, match="not on its side"):
        T.event_trades(df, side, level, horizon=4, step=1)
    with pytest.raises(ValueError, match="no trades"):
        T.trade_summary(T.event_trades(df, np.zeros(len(df)), level, horizon=4), block=4)


def test_cli_on_the_bundled_sample(capsys):
    from liqsignals import sample
    from liqsignals.cli import main

    rc = main(["evaluate", "trades", "--datadir", str(sample.datadir()), "--pairs",
               "BTC/USDT:USDT", "--timeframe", "1h", "--rules", "swing", "--horizon", "4h",
               "--resamples", "200", "--json"])  # fmt: skip
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("mean_trade_bp", "mean_trade_bp_ci_low", "mean_trade_bp_ci_high",
                "break_even_cost_bp", "gross_mean_trade_bp"):  # fmt: skip
        assert isinstance(out[key], float)
    assert out["rule"] == "swing" and out["funding"] is True and out["fee_bp"] == 5.0
    assert out["mean_trade_bp_ci_low"] <= out["mean_trade_bp"] <= out["mean_trade_bp_ci_high"]
    assert len(out["cells"]) == 1
    rc = main(["evaluate", "trades", "--datadir", str(sample.datadir()), "--pairs",
               "BTC/USDT:USDT", "--timeframe", "1h", "--fee-bp", "-1"])  # fmt: skip
    assert rc == 2
