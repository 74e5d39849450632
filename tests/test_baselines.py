"""Candle-only baselines, the long-share test and the bootstrap of Spearman differences.

Constructed data only (no research data): bars come from random-walk candles through
``realised_bars`` with per-candle estimates given directly (no engine), and the realised series is
generated either from the estimate plus noise (the model must beat the fitted candle-only baseline
with an interval above 0) or from the candles alone (it must not).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from synthetic import random_candles

from liqsignals.analysis import baselines as bl
from liqsignals.analysis.common import spearman
from liqsignals.analysis.realised import realised_bars

N_BARS = 360  # 4h bars of 1h candles: 240 training, 120 evaluated
SEEDS = (1, 2, 3)


def constructed_bars(seed: int, source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training and evaluated bars whose realised liquidations come from ``source``.

    Per-candle estimates are the candle's path excursion each way times a per-bar factor
    ``exp(z)``, ``z ~ N(0, 0.6)`` independent of the candles (information the candles lack).
    ``source="estimate"``: realised = the bar's estimate x lognormal(0, 0.4) noise.
    ``source="candles"``: realised = path excursion cubed (scaled) x lognormal(0, 0.4): a law of
    the candles alone, which the log-linear baseline can represent.
    """
    rng = np.random.default_rng(seed)
    df = random_candles(seed, N_BARS * 4 + 8, vol=0.01)
    df["volume"] = df["volume"] * rng.lognormal(0.0, 0.5, len(df))
    o, h, low = (df[c].to_numpy() for c in ("open", "high", "low"))
    qv = df["volume"].to_numpy() * (h + low + df["close"].to_numpy()) / 3
    z = rng.normal(0.0, 0.6, (2, N_BARS + 2)).repeat(4, axis=1)[:, : len(df)]
    est = pd.DataFrame({
        "liq_long_liquidated": qv * (o - low) / o * np.exp(z[0]),
        "liq_short_liquidated": qv * (h - o) / o * np.exp(z[1]),
    })  # fmt: skip
    dates = pd.date_range(df["date"].iloc[0], periods=N_BARS, freq="4h")
    dummy = pd.DataFrame({"date": dates, "long_liquidation_usd": 1.0,
                          "short_liquidation_usd": 1.0})  # fmt: skip
    bars = realised_bars(df, dummy, estimates=est)
    noise = rng.lognormal(0.0, 0.4, (2, len(bars)))
    if source == "estimate":
        bars["real_long"] = bars["est_long"] * noise[0]
        bars["real_short"] = bars["est_short"] * noise[1]
    else:
        for side, k in (("long", 0), ("short", 1)):
            p = bars[f"path_{side}"].to_numpy()
            bars[f"real_{side}"] = (p / np.median(p)) ** 3 * 1e5 * noise[k]
    return bars.iloc[:240].reset_index(drop=True), bars.iloc[240:].reset_index(drop=True)


# ----------------------------------------------------------------------------- acceptance
@pytest.mark.parametrize("seed", SEEDS)
def test_realised_from_estimate_beats_fitted_baseline(seed):
    train, test = constructed_bars(seed, "estimate")
    res = bl.compare_baselines(train, test, resamples=500, seed=seed).to_dict()
    for side in ("long", "short"):
        assert res[f"diff_vs_fitted_{side}_ci_low"] > 0, res
        assert res[f"diff_vs_path_{side}_ci_low"] > 0
    # the side split follows the estimate too
    assert res["diff_share_vs_fitted_ci_low"] > 0
    assert res["long_share_spearman"] > res["fitted_long_share_spearman"]


@pytest.mark.parametrize("seed", SEEDS)
def test_realised_from_candles_does_not_beat_fitted_baseline(seed):
    train, test = constructed_bars(seed, "candles")
    res = bl.compare_baselines(train, test, resamples=500, seed=seed).to_dict()
    for side in ("long", "short"):
        assert not res[f"diff_vs_fitted_{side}_ci_low"] > 0, res
        assert res[f"diff_vs_fitted_{side}"] < 0  # the candle law is what the baseline fits
        assert res[f"fitted_baseline_spearman_{side}"] > 0.8
    assert not res["diff_share_vs_fitted_ci_low"] > 0


def test_json_keys_of_the_comparison():
    train, test = constructed_bars(1, "estimate")
    res = bl.compare_baselines(train, test, resamples=50).to_dict()
    for side in ("long", "short"):
        for key in (f"fitted_baseline_spearman_{side}", f"diff_vs_fitted_{side}",
                    f"diff_vs_fitted_{side}_ci_low", f"diff_vs_fitted_{side}_ci_high",
                    f"path_baseline_spearman_{side}", f"diff_vs_path_{side}_ci_low"):  # fmt: skip
            assert isinstance(res[key], float)
    for key in ("long_share_spearman", "excursion_long_share_spearman",
                "fitted_long_share_spearman"):  # fmt: skip
        assert -1.0 <= res[key] <= 1.0
    assert res["n_train_bars"] == 240 and res["n_busy_bars"] == 60
    assert res["bootstrap_block"] == 12 and res["bootstrap_resamples"] == 50
    assert len(res["fitted_coef_long"]) == 7


# ----------------------------------------------------------------------------- known answers
def test_path_excursion_of_one_bar_by_hand():
    train, _ = constructed_bars(4, "estimate")
    df = random_candles(4, N_BARS * 4 + 8, vol=0.01)
    rng = np.random.default_rng(4)
    df["volume"] = df["volume"] * rng.lognormal(0.0, 0.5, len(df))
    b = train.iloc[7]
    inside = df[(df["date"] >= b["date"]) & (df["date"] < b["date"] + pd.Timedelta("4h"))]
    qv = inside["volume"] * (inside["high"] + inside["low"] + inside["close"]) / 3
    o = inside["open"]
    assert len(inside) == 4
    assert b["path_long"] == pytest.approx(float((qv * (o - inside["low"]) / o).sum()))
    assert b["path_short"] == pytest.approx(float((qv * (inside["high"] - o) / o).sum()))


def test_fit_recovers_an_exact_log_linear_law():
    train, test = constructed_bars(5, "estimate")
    coef = np.array([1.0, 0.3, -0.1, 0.5, 0.2, 0.05, 0.4])
    for frame in (train, test):
        x = bl.candle_features(frame)
        frame["real_long"] = np.expm1(x @ coef)
        frame["real_short"] = np.expm1(x @ (coef * 0.5))
    fit = bl.fit_log_linear(train)
    np.testing.assert_allclose(fit.coef_long, coef, atol=1e-6)
    np.testing.assert_allclose(fit.coef_short, coef * 0.5, atol=1e-6)
    pl, ps = fit.predict(test)
    np.testing.assert_allclose(pl, test["real_long"], rtol=1e-6)
    assert fit.n_train == 240


def test_fit_and_features_reject_bad_input():
    train, _ = constructed_bars(6, "estimate")
    with pytest.raises(ValueError, match="training bars"):
        bl.fit_log_linear(train.iloc[:10])
    with pytest.raises(ValueError, match="'quote_volume'.*row 3"):
        bl.candle_features(train.assign(quote_volume=train["quote_volume"].where(
            train.index != 3, 0.0)))  # fmt: skip
    with pytest.raises(ValueError, match="path_long"):
        bl.candle_features(train.drop(columns=["path_long"]))
    with pytest.raises(ValueError, match="collinear"):
        bl.fit_log_linear(train.assign(return_pct=1.0))
    with pytest.raises(ValueError, match="must end before"):
        bl.compare_baselines(train, train)


def test_long_share_and_busier_half():
    share = bl.long_share(np.array([1.0, 0.0, 3.0, 0.0]), np.array([1.0, 2.0, 1.0, 0.0]))
    np.testing.assert_allclose(share[:3], [0.5, 0.0, 0.75])
    assert math.isnan(share[3])
    mask = bl.busier_half(np.array([1.0, 5.0, 2.0, 9.0]), np.array([0.0, 0.0, 0.0, 1.0]))
    assert mask.tolist() == [False, True, False, True]


def test_row_spearman_matches_the_scalar_one_with_ties():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, (20, 30)).astype(float)
    y = x + rng.integers(0, 3, (20, 30))
    got = bl.row_spearman(x, y)
    want = [spearman(x[i], y[i]) for i in range(20)]
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert math.isnan(bl.row_spearman(np.ones((1, 5)), np.arange(5.0)[None])[0])


def test_block_indices_are_circular_runs():
    idx = bl.block_indices(10, 4, 3, seed=1)
    assert idx.shape == (3, 12)
    runs = idx.reshape(3, 3, 4)
    assert ((np.diff(runs, axis=2) % 10) == 1).all()
    with pytest.raises(ValueError):
        bl.block_indices(0, 4, 3, seed=1)


def test_spearman_difference_known_answers():
    rng = np.random.default_rng(3)
    t = rng.normal(size=200)
    same = bl.spearman_difference(t, t + rng.normal(size=200), t + rng.normal(size=200) * 0)
    assert same.estimate < 0  # the "baseline" here is the target itself
    ident = bl.spearman_difference(t, t * 2, t * 3, resamples=100)
    assert ident.estimate == 0 and ident.low == 0 and ident.high == 0 and ident.p_value == 1.0
    noise = rng.normal(size=200)
    better = bl.spearman_difference(t, t, noise, resamples=200)
    assert better.estimate == pytest.approx(1.0 - spearman(noise, t))
    assert better.low > 0.7 and better.p_value == pytest.approx(1 / 201)
    with pytest.raises(ValueError, match="aligned"):
        bl.spearman_difference(t, t[:-1], t)
    with pytest.raises(ValueError, match="usable"):
        bl.spearman_difference(t[:2], t[:2], t[:2])
