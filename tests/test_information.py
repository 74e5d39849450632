"""Incremental-information test on constructed markets (liqsignals.analysis.information).

Planted book: every 24 candles a cluster is drawn (side and distance at random) and written into
the ``liq_*`` cluster columns from that candle on; price then drifts toward it for 24 candles. The
book is known at ``t`` and drives the future, so model B (with ``liq_*``) must beat model A.
Random walk: the real engine's ``liq_*`` columns are functions of the past of a driftless walk and
carry no information about its future.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from synthetic import random_candles

from liqsignals import liquidation_features
from liqsignals.analysis.information import (
    InformationOptions,
    Transform,
    information_test,
    log_loss,
    touch_labels,
)

PLANTED_SEEDS = (11, 12, 13, 14, 15)
WALK_SEEDS = (21, 22, 23, 24, 25)
OPTS = InformationOptions(horizon=24, min_train_days=120, resamples=400, step=4,
                          importance_repeats=1)  # fmt: skip


def planted_market(
    seed: int, n: int = 7000, drift: float = 0.0015
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    vol = 0.006
    blocks = int(np.ceil(n / 24))
    side = np.repeat(rng.choice([-1.0, 1.0], blocks), 24)[:n]
    dist = np.repeat(rng.uniform(0.02, 0.05, blocks), 24)[:n]
    steps = rng.normal(0.0, vol, n)
    steps[1:] += side[:-1] * drift  # the book at t moves the candles after t
    close = 100.0 * np.exp(np.cumsum(steps))
    open_ = np.concatenate([[100.0], close[:-1]])
    wick = np.abs(rng.normal(0.0, vol * 0.7, (2, n)))
    df = pd.DataFrame({
        "date": pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC"),
        "open": open_, "high": np.maximum(open_, close) * (1 + wick[0]),
        "low": np.minimum(open_, close) * (1 - wick[1]), "close": close,
        "volume": rng.lognormal(6.0, 0.8, n),
    })  # fmt: skip
    feats = liquidation_features(df, window="1w").copy()
    warm = feats["liq_long_total"].notna().to_numpy()
    up, dn = (side > 0) & warm, (side < 0) & warm
    for s, mask, sign in (("short", up, 1.0), ("long", dn, -1.0)):
        level = close * (1 + sign * dist)
        feats[f"liq_{s}_cluster_price"] = np.where(mask, level, np.nan)
        feats[f"liq_{s}_cluster_size"] = np.where(mask, 1e6, np.nan)
    feats["liq_magnet_dist_pct"] = np.where(warm, side * dist * 100, np.nan)
    return df, feats


def test_touch_labels_known_answer() -> None:
    # flat candles then one spike: sigma from the log returns, touches only where the spike is ahead
    close = np.array([100.0, 101.0, 100.0, 101.0, 100.0, 101.0, 100.0, 100.0, 100.0])
    df = pd.DataFrame({"close": close, "high": close, "low": close})
    df.loc[7, "high"] = 110.0
    lab = touch_labels(df, 2, k=1.0, vol_lookback=3)
    r = np.diff(np.log(close[:4]))
    assert lab["d"].iloc[3] == pytest.approx(np.std(r, ddof=1) * np.sqrt(2))
    assert lab["up"].iloc[5] == 1.0 and lab["up"].iloc[6] == 1.0  # 110 within t+1..t+2
    assert lab["up"].iloc[4] == 0.0
    assert np.isnan(lab["up"].iloc[7]) and np.isnan(lab["up"].iloc[2])  # past data / warm-up


def test_log_loss_and_transform_fit_on_training_only() -> None:
    assert log_loss(np.array([1.0]), np.array([0.5]))[0] == pytest.approx(np.log(2))
    assert log_loss(np.array([0.0]), np.array([1.0]))[0] == pytest.approx(-np.log(1e-6))
    train = np.array([[1.0], [2.0], [3.0], [np.nan]])
    tf = Transform(clip=(0.0, 1.0)).fit(train)
    out = tf.transform(np.array([[1e9], [np.nan]]))
    z = np.log1p(np.array([1.0, 2.0, 3.0]))
    filled = np.append(z, np.median(z))
    expect = (z.max() - filled.mean()) / filled.std()  # clipped at the training maximum
    assert out[0, 0] == pytest.approx(expect)
    assert out.shape == (2, 2) and out[1, 1] == 1.0 and out[0, 1] == 0.0  # missing indicator


def test_planted_book_improvement_excludes_zero() -> None:
    excl = 0
    for seed in PLANTED_SEEDS:
        df, feats = planted_market(seed)
        r = information_test(df, feats, timeframe="1h", options=OPTS)
        assert 0.25 < r.base_rate_up < 0.6
        excl += r.ci_week.low > 0
        top = next(iter(r.importance))
        assert top.startswith("liq_")
    assert excl / len(PLANTED_SEEDS) >= 0.9


def test_random_walk_never_shows_information() -> None:
    """On driftless walks B never beats A with an interval above 0 (no false discovery).

    Measured: the interval is at or below 0 in every seed; the extra ``liq_*`` inputs cost
    out-of-sample log loss (fitting noise with an effective sample of a few hundred horizons),
    so the two-sided interval does not cover 0 in 90-99 % of seeds as a pure-noise
    improvement would: the one-sided false-positive rate is the claim that holds.
    """
    for seed in WALK_SEEDS:
        df = random_candles(seed, 7000, vol=0.006)
        r = information_test(df, timeframe="1h", options=OPTS)
        assert r.ci_week.low <= 0.0, seed
        assert r.improvement < 0.01


def test_result_json_keys_and_bad_input() -> None:
    df, feats = planted_market(3, n=5000)
    r = information_test(df, feats, timeframe="1h", options=OPTS)
    d = r.to_dict()
    for key in ("n", "horizon", "score_price_only", "score_with_liq", "improvement",
                "improvement_ci_low", "improvement_ci_high"):  # fmt: skip
        assert key in d
    assert d["improvement"] == pytest.approx(d["score_price_only"] - d["score_with_liq"])
    assert d["horizon"] == 24 and d["n"] == r.n > 0
    with pytest.raises(ValueError, match="learner"):
        information_test(df, feats, timeframe="1h", options=InformationOptions(learner="svm"))
    with pytest.raises(ValueError, match="liq_long_cluster_price"):
        information_test(df, feats.drop(columns=["liq_long_cluster_price"]), timeframe="1h",
                         options=OPTS)  # fmt: skip
    with pytest.raises(ValueError, match="no month"):
        information_test(df.iloc[:2000], feats.iloc[:2000], timeframe="1h", options=OPTS)
