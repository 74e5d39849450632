"""The liquidation-risk forecast on constructed data (no research data, no engine).

Random-walk candles with a book (``liq_*`` band and cluster columns) drawn independently of the
candles; a realised series is generated either from the book at the bar's start plus noise (the
book must improve the walk-forward forecast with an interval above 0) or from past volatility and
volume alone plus noise (it must not).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from synthetic import random_candles

from liqsignals.analysis import risk

N_BARS = 1100  # 4h bars of 1h candles, about six months


def constructed(seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n = N_BARS * 4
    df = random_candles(seed, n, vol=0.01)
    df["volume"] = df["volume"] * rng.lognormal(0.0, 0.5, n)
    c = df["close"].to_numpy()
    feats = pd.DataFrame({
        "liq_long_band": rng.lognormal(12, 1.0, n),
        "liq_short_band": rng.lognormal(12, 1.0, n),
        "liq_long_cluster_size": rng.lognormal(10, 1.0, n),
        "liq_short_cluster_size": rng.lognormal(10, 1.0, n),
        "liq_long_cluster_dist_pct": rng.uniform(0.2, 4.0, n),
        "liq_short_cluster_dist_pct": rng.uniform(0.2, 4.0, n),
    })  # fmt: skip
    no_cluster = rng.random(n) < 0.1  # no long cluster sometimes: size and distance NaN
    feats.loc[no_cluster, ["liq_long_cluster_size", "liq_long_cluster_dist_pct"]] = np.nan
    dates = pd.date_range(df["date"].iloc[0], periods=N_BARS, freq="4h")
    real = pd.DataFrame({"date": dates, "long_liquidation_usd": 1.0,
                         "short_liquidation_usd": 1.0})  # fmt: skip
    assert len(c) == n
    return df, feats, real


def bars_with_target(seed: int, source: str) -> pd.DataFrame:
    df, feats, real = constructed(seed)
    bars = risk.risk_bars(df, feats, real, bar="4h")
    noise = np.random.default_rng(seed + 100).normal(0.0, 0.5, len(bars))
    if source == "book":
        y = (
            0.8 * bars["log_long_band"]
            + 0.5 * bars["log_short_band"]
            - 0.3 * bars["long_cluster_sigmas"]
        )
    else:
        y = 2.0 * bars["log_mean_range_1d"] + 0.7 * bars["log_prev_volume"]
    bars["total"] = y + noise
    return bars


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_target_from_the_book_is_forecast_better_with_it(seed):
    res = risk.risk_test(bars_with_target(seed, "book"), "total", resamples=500, seed=seed)
    d = res.to_dict()
    assert d["improvement_ci_low"] > 0, d
    assert d["r2_b"] > d["r2_a"] + 0.2


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_target_from_past_volatility_is_not_forecast_better_with_the_book(seed):
    res = risk.risk_test(bars_with_target(seed, "candles"), "total", resamples=500, seed=seed)
    d = res.to_dict()
    assert not d["improvement_ci_low"] > 0, d
    assert d["r2_a"] > 0.3  # model A finds the candle law
    assert d["improvement"] <= 0.01 * d["mse_a"]


def test_features_are_read_before_the_bar_opens():
    df, feats, real = constructed(4)
    bars = risk.risk_bars(df, feats, real, bar="4h")
    b = bars.iloc[10]
    dates = pd.DatetimeIndex(df["date"])
    prev = int(np.flatnonzero(dates == b["date"] - pd.Timedelta("1h"))[0])
    assert b["log_long_band"] == pytest.approx(np.log1p(feats["liq_long_band"].iloc[prev]))
    # previous bar: the 4 candles before the bar, by hand
    w = df.iloc[prev - 3 : prev + 1]
    assert b["log_prev_range"] == pytest.approx(np.log(np.log(w["high"].max() / w["low"].min())))
    qv = (w["volume"] * (w["high"] + w["low"] + w["close"]) / 3).sum()
    assert b["log_prev_volume"] == pytest.approx(np.log1p(qv))
    lr = np.diff(np.log(df["close"].to_numpy()[: prev + 1]))[-168:]
    assert b["log_sigma_1w"] == pytest.approx(np.log(np.std(lr, ddof=1)))
    inside = df.iloc[prev + 1 : prev + 5]
    assert b["range"] == pytest.approx(np.log(inside["high"].max() / inside["low"].min()))
    # the future of the book never changes a bar's features
    feats2 = feats.copy()
    feats2.iloc[prev + 1 :] = 1.0
    bars2 = risk.risk_bars(df, feats2, real, bar="4h")
    assert bars2.iloc[10]["log_long_band"] == b["log_long_band"]
    # no cluster: size 0 and distance 10 sigmas
    nan_rows = bars["log_long_cluster"] == 0
    assert nan_rows.any() and (bars.loc[nan_rows, "long_cluster_sigmas"] == 10).all()
    # engine warm-up (NaN band): the bar is left out, not read as an empty book
    feats3 = feats.copy()
    feats3.loc[:prev, "liq_long_band"] = np.nan
    bars3 = risk.risk_bars(df, feats3, real, bar="4h")
    assert pd.Timestamp(bars3["date"].iloc[0]) > pd.Timestamp(b["date"])


def test_walk_forward_fits_only_on_the_past():
    bars = bars_with_target(5, "book")
    wf = risk.walk_forward(bars, "total")
    first = pd.Timestamp(bars["date"].iloc[0])
    assert pd.Timestamp(wf["date"].iloc[0]) >= first + pd.Timedelta(days=60)
    assert pd.Timestamp(wf["date"].iloc[0]).day == 1 and wf["date"].iloc[0].hour == 0
    # changing the targets of a later month does not change an earlier month's forecasts
    m0 = wf["month"].iloc[0]
    changed = bars.copy()
    later = pd.DatetimeIndex(changed["date"]) >= pd.Timestamp(wf.loc[wf["month"] != m0,
                                                                     "date"].iloc[0])  # fmt: skip
    changed.loc[later, "total"] = 99.0
    wf2 = risk.walk_forward(changed, "total")
    sel = wf["month"] == m0
    np.testing.assert_allclose(wf.loc[sel, "pred_b"], wf2.loc[sel, "pred_b"])


def test_bad_input_is_a_clear_error():
    df, feats, real = constructed(6)
    with pytest.raises(ValueError, match="lack column"):
        risk.risk_bars(df, feats.drop(columns=["liq_long_band"]), real)
    with pytest.raises(ValueError, match="same length"):
        risk.risk_bars(df, feats.iloc[:-1], real)
    with pytest.raises(ValueError, match="multiple"):
        risk.risk_bars(df, feats, real, bar="90m")
    bars = risk.risk_bars(df, feats, None)
    with pytest.raises(ValueError, match="no target column"):
        risk.walk_forward(bars, "total")
    with pytest.raises(ValueError, match="no month"):
        risk.walk_forward(bars.iloc[:100], "range")


def test_cli_on_the_bundled_sample(capsys):
    from liqsignals import sample
    from liqsignals.cli import main

    rc = main(["evaluate", "risk", "--datadir", str(sample.datadir()), "--pairs",
               "BTC/USDT:USDT", "--timeframe", "1h", "--timerange", "20240801-20250101",
               "--resamples", "200", "--json"])  # fmt: skip
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("improvement", "improvement_ci_low", "improvement_ci_high", "r2_a", "r2_b"):
        assert isinstance(out[key], float)
    assert out["target"] == "range" and out["n_bars"] > 300
    assert out["improvement_ci_low"] <= out["improvement"] <= out["improvement_ci_high"]
    rc = main(["evaluate", "risk", "--datadir", str(sample.datadir()), "--pairs",
               "BTC/USDT:USDT", "--targets", "total"])  # fmt: skip
    assert rc == 2
