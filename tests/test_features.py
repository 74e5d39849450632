"""liq_* feature columns: constructed scenarios with known answers, causality, streaming."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from synthetic import random_candles

from liqsignals import COLUMNS, liquidation_features, merge_informative
from liqsignals.features import FeatureStream, timeframe_to_timedelta


@pytest.fixture(scope="module")
def real_candles() -> pd.DataFrame:
    from liqsignals import sample

    return sample.load_candles("BTC/USDT:USDT", "15m").iloc[:3000].reset_index(drop=True)


LOGB = math.log1p(10 / 10_000)  # default 10 bp bins
# one 25x leverage, one entry per candle, no decay: every candle plants the same two bins
PLANT = {
    "leverages": (25.0,),
    "leverage_weights": (1.0,),
    "entry_samples": 1,
    "window": "1d",
    "close_half_life": None,
}


def bin_of(price: float) -> int:
    return math.floor(math.log(price) / LOGB)


def centre(k: int) -> float:
    return math.exp((k + 0.5) * LOGB)


def planted(n: int = 48, taker_share: float = 0.75) -> pd.DataFrame:
    """Quiet candles around 100 (range 99.8-100.2) with a taker buy share: longs (liquidation
    price 100*(1-1/25+0.005) = 96.5) and shorts (103.5) pile up in one bin each."""
    return pd.DataFrame(
        {
            "date": pd.date_range("2024-03-01", periods=n, freq="1h", tz="UTC"),
            "open": 100.0,
            "high": 100.2,
            "low": 99.8,
            "close": 100.0,
            "volume": 10.0,
            "taker_buy_volume": 10.0 * taker_share,
        }
    )


K_LONG = bin_of(96.5)
K_SHORT = bin_of(103.5)


# ----------------------------------------------------------------------------- the column table
def test_returns_exactly_the_documented_columns():
    f = liquidation_features(random_candles(1, 80), window="1d")
    assert list(f.columns) == list(COLUMNS)
    for col in COLUMNS.values():
        assert col.unit and col.meaning and col.name.startswith("liq_")


def test_several_windows_with_prefixes():
    df = random_candles(2, 120)
    multi = liquidation_features(df, windows={"fast": "12h", "slow": "1d"})
    assert {
        c.replace("liq_fast_", "liq_") for c in multi.columns if c.startswith("liq_fast_")
    } == set(COLUMNS)
    single = liquidation_features(df, window="1d")
    slow = multi[[c for c in multi.columns if c.startswith("liq_slow_")]]
    slow.columns = [c.replace("liq_slow_", "liq_") for c in slow.columns]
    np.testing.assert_array_equal(slow.to_numpy(), single.to_numpy())
    with pytest.raises(ValueError, match="window name"):
        liquidation_features(df, windows={"bad name": "1d"})


# ----------------------------------------------------------------------------- planted clusters
def test_planted_clusters_book_imbalance_gaps_and_magnet():
    f = liquidation_features(planted(), **PLANT).iloc[-1]
    long_mass = 24 * 0.05 * 10 * 100 * 0.75  # 24 live hourly cohorts in a 1d window
    short_mass = 24 * 0.05 * 10 * 100 * 0.25
    # nearest clusters: exactly the planted bins
    assert f["liq_long_cluster_price"] == pytest.approx(centre(K_LONG), rel=1e-12)
    assert f["liq_long_cluster_low"] == pytest.approx(math.exp(K_LONG * LOGB), rel=1e-12)
    assert f["liq_long_cluster_high"] == pytest.approx(math.exp((K_LONG + 1) * LOGB), rel=1e-12)
    assert f["liq_long_cluster_size"] == pytest.approx(long_mass, rel=1e-12)
    assert f["liq_short_cluster_price"] == pytest.approx(centre(K_SHORT), rel=1e-12)
    assert f["liq_short_cluster_low"] == pytest.approx(math.exp(K_SHORT * LOGB), rel=1e-12)
    assert f["liq_short_cluster_high"] == pytest.approx(math.exp((K_SHORT + 1) * LOGB), rel=1e-12)
    assert f["liq_short_cluster_size"] == pytest.approx(short_mass, rel=1e-12)
    # the book: everything the window holds, and what the last candle opened
    assert f["liq_long_total"] == pytest.approx(long_mass, rel=1e-12)
    assert f["liq_short_total"] == pytest.approx(short_mass, rel=1e-12)
    assert f["liq_long_opened"] == pytest.approx(long_mass / 24, rel=1e-12)
    assert f["liq_short_opened"] == pytest.approx(short_mass / 24, rel=1e-12)
    assert f["liq_long_liquidated"] == 0 and f["liq_short_liquidated"] == 0
    # book within +/-5 % and imbalance (short - long) / (short + long)
    assert f["liq_long_band"] == pytest.approx(long_mass)
    assert f["liq_short_band"] == pytest.approx(short_mass)
    assert f["liq_imbalance"] == pytest.approx((short_mass - long_mass) / (short_mass + long_mass))
    assert f["liq_imbalance"] == pytest.approx(-0.5)
    # distances
    assert f["liq_long_cluster_dist_pct"] == pytest.approx(100 - centre(K_LONG), rel=1e-9)
    assert f["liq_short_cluster_dist_pct"] == pytest.approx(centre(K_SHORT) - 100, rel=1e-9)
    atr = 0.4  # every candle spans 99.8-100.2 and closes at 100
    assert f["liq_atr"] == pytest.approx(atr)
    assert f["liq_long_cluster_dist_atr"] == pytest.approx((100 - centre(K_LONG)) / atr, rel=1e-9)
    assert f["liq_short_cluster_dist_atr"] == pytest.approx((centre(K_SHORT) - 100) / atr, rel=1e-9)
    # liquidity gaps: nothing between the close and the planted bins
    assert f["liq_gap_above_pct"] == pytest.approx(math.exp(K_SHORT * LOGB) - 100, rel=1e-9)
    assert f["liq_gap_below_pct"] == pytest.approx(100 - math.exp((K_LONG + 1) * LOGB), rel=1e-9)
    # magnet: similar distances, three times the mass below -> the long cluster
    assert f["liq_magnet_side"] == -1
    assert f["liq_magnet_price"] == pytest.approx(centre(K_LONG))
    share = long_mass / (long_mass + short_mass)
    assert f["liq_magnet_score"] == pytest.approx(share / (100 - centre(K_LONG)), rel=1e-9)
    assert f["liq_magnet_dist_pct"] == pytest.approx(centre(K_LONG) - 100, rel=1e-9)


def test_magnet_prefers_near_cluster_over_far_one_of_equal_size():
    df = planted(taker_share=0.75)
    # a second leverage puts an equal long cluster farther away (10x: 90.5)
    f = liquidation_features(
        df, **{**PLANT, "leverages": (25.0, 10.0), "leverage_weights": (0.5, 0.5)}
    )
    assert f["liq_magnet_price"].iloc[-1] == pytest.approx(centre(K_LONG))


def test_sweep_and_close_back_inside():
    df = planted()
    df.loc[47, ["low", "close"]] = [96.0, 99.0]  # wick through the longs at 96.5, close above
    f = liquidation_features(df, **PLANT)
    last, prev = f.iloc[-1], f.iloc[-2]
    assert last["liq_sweep_long"] == 1 and last["liq_sweep_long_through"] == 0
    assert last["liq_sweep_short"] == 0
    # the cohort of row 23 left the window at row 47: 23 cohorts were liquidated
    assert last["liq_sweep_long_notional"] == pytest.approx(23 * 0.05 * 10 * 100 * 0.75)
    assert last["liq_sweep_long_low"] == pytest.approx(prev["liq_long_cluster_low"])
    assert (f["liq_sweep_long"].iloc[25:-1] == 0).all()  # quiet candles never sweep
    # warm-up, and the first candle after it has no previous cluster to sweep
    assert f["liq_sweep_long"].iloc[:25].isna().all()


def test_sweep_and_continue():
    df = planted()
    df.loc[47, ["low", "close"]] = [95.0, 95.5]
    df.loc[47, "open"] = 100.0
    last = liquidation_features(df, **PLANT).iloc[-1]
    assert last["liq_sweep_long"] == 0 and last["liq_sweep_long_through"] == 1
    assert last["liq_sweep_long_notional"] > 0


def test_short_sweep_mirrored():
    df = planted(taker_share=0.25)
    df.loc[47, ["high", "close"]] = [104.0, 100.5]
    last = liquidation_features(df, **PLANT).iloc[-1]
    assert last["liq_sweep_short"] == 1 and last["liq_sweep_long"] == 0
    assert last["liq_sweep_short_through"] == 0
    assert last["liq_sweep_short_high"] == pytest.approx(math.exp((K_SHORT + 1) * LOGB))
    # 23 live hourly cohorts of shorts (75 % of each candle's opened notional) were liquidated
    assert last["liq_sweep_short_notional"] == pytest.approx(23 * 0.05 * 10 * 100 * 0.75)
    assert last["liq_short_liquidated"] == pytest.approx(last["liq_sweep_short_notional"])


def test_short_sweep_and_continue():
    df = planted(taker_share=0.25)
    df.loc[47, ["high", "close"]] = [105.0, 104.5]
    last = liquidation_features(df, **PLANT).iloc[-1]
    assert last["liq_sweep_short"] == 0 and last["liq_sweep_short_through"] == 1
    assert last["liq_sweep_short_notional"] > 0 and last["liq_sweep_long_notional"] == 0


def test_intensity_follows_cluster_size_history():
    up = planted(96)
    up["volume"] = np.linspace(5, 50, 96)
    up["taker_buy_volume"] = up["volume"] * 0.75
    f = liquidation_features(up, **PLANT, intensity_lookback=20)
    assert f["liq_intensity"].iloc[-1] == 1.0 and f["liq_intensity_bucket"].iloc[-1] == 3
    down = up.assign(volume=up["volume"].to_numpy()[::-1])
    down["taker_buy_volume"] = down["volume"] * 0.75
    g = liquidation_features(down, **PLANT, intensity_lookback=20)
    assert (
        g["liq_intensity"].iloc[-1] == pytest.approx(1 / 20)
        and g["liq_intensity_bucket"].iloc[-1] == 0
    )


def test_magnet_drift_tracks_a_moving_cluster():
    df = planted(72)
    df.loc[40:, ["open", "high", "low", "close"]] = [102.0, 102.2, 101.8, 102.0]
    df.loc[40, "open"] = 100.0
    df.loc[40, "low"] = 99.8
    f = liquidation_features(df, **PLANT, drift_lookback=12)
    mag = f["liq_magnet_price"]
    assert mag.iloc[-1] > mag.iloc[30]  # the magnet moved up with the price
    assert f["liq_magnet_drift"].iloc[-1] == pytest.approx((mag.iloc[-1] / mag.iloc[-13] - 1) * 100)
    assert f["liq_magnet_drift"].iloc[37] == pytest.approx(0.0)  # before the move: still
    assert f["liq_magnet_drift"].max() > 1.0


# ----------------------------------------------------------------------------- causality
frames = st.builds(
    lambda seed, n, gaps, fillers, oi: random_candles(
        seed, n, vol=0.02, gaps=gaps, fillers=fillers, open_interest=oi
    ),
    seed=st.integers(0, 10_000),
    n=st.integers(2, 150),
    gaps=st.booleans(),
    fillers=st.booleans(),
    oi=st.booleans(),
)
FEAT = {"window": "12h", "bin_bp": 20.0, "intensity_lookback": 30, "drift_lookback": 5}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=frames, data=st.data())
def test_every_feature_is_causal(df, data):
    n = data.draw(st.integers(1, len(df)))
    full = liquidation_features(df, **FEAT)
    head = liquidation_features(df.iloc[:n], **FEAT)
    np.testing.assert_array_equal(head.to_numpy(), full.iloc[:n].to_numpy())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=frames, data=st.data())
def test_stream_equals_batch(df, data):
    full = liquidation_features(df, **FEAT)
    stream = FeatureStream(**FEAT)
    cut = data.draw(st.integers(0, len(df)))
    parts = [stream.update_many(df.iloc[:cut])]
    rows = [stream.update(r) for r in df.iloc[cut:].to_dict("records")]
    parts.append(pd.DataFrame(rows, index=df.index[cut:], columns=list(COLUMNS)))
    got = pd.concat([p for p in parts if len(p)]).astype(float)
    np.testing.assert_array_equal(got.to_numpy(), full.to_numpy())


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=st.lists(st.sampled_from([1, 2, 3, 64, 65, 300]), min_size=1, max_size=25))
def test_stream_in_any_chunks_equals_batch_on_real_candles(chunks, real_candles):
    """Default lookbacks on real candles, fed in blocks of any size (per-candle and block paths
    of the engine, the intensity rank's loop and its vectorised form, across block edges)."""
    df = real_candles
    stream = FeatureStream(window="1d", symbol="BTC/USDT:USDT")
    first = 700  # past the 1d window (96 candles) and the 500-candle intensity lookback
    parts = [stream.update_many(df.iloc[:first])]
    at = first
    for size in chunks:
        parts.append(stream.update_many(df.iloc[at : at + size]))
        at += size
    got = pd.concat(parts)
    want = liquidation_features(df.iloc[:at], window="1d", symbol="BTC/USDT:USDT")
    np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())
    # the state it keeps is bounded by the lookbacks, not by the history
    assert all(len(v) <= stream.context for v in stream._tail.values())
    assert len(stream._near) == stream.intensity_lookback


def test_update_arrays_equals_update_many(real_candles):
    df = real_candles.iloc[:400]
    a = FeatureStream(window="1d")
    b = FeatureStream(window="1d")
    dates = df["date"].astype("datetime64[ns, UTC]").astype("int64").to_numpy()
    values = {c: df[c].to_numpy() for c in ("open", "high", "low", "close", "volume")}
    for lo, hi in ((0, 200), (200, 201), (201, 205), (205, 400)):
        want = a.update_many(df.iloc[lo:hi]).to_numpy()
        got = b.update_arrays(dates[lo:hi], {c: v[lo:hi] for c, v in values.items()})
        assert got.shape == (hi - lo, len(b.columns))
        np.testing.assert_array_equal(got, want)


def test_stream_rejects_bad_candles_with_a_clear_error(real_candles):
    stream = FeatureStream(window="1d")
    stream.update_many(real_candles.iloc[:10])
    bad = real_candles.iloc[10:11].assign(close=np.nan)
    with pytest.raises(ValueError, match="close"):
        stream.update_many(bad)
    # checked before the engine saw anything: the stream goes on
    assert stream.update_many(real_candles.iloc[10:11]).shape == (1, len(stream.columns))
    # arrays are checked candle by candle as the engine takes them: after a bad one the
    # stream says it is spent
    dates = real_candles["date"].astype("datetime64[ns, UTC]").astype("int64").to_numpy()
    values = {
        c: real_candles[c].to_numpy()[11:13].copy()
        for c in ("open", "high", "low", "close", "volume")
    }
    values["close"][1] = np.nan
    with pytest.raises(ValueError, match="close"):
        stream.update_arrays(dates[11:13], values)
    with pytest.raises(RuntimeError, match="build a new one"):
        stream.update_many(real_candles.iloc[13:14])
    fresh = FeatureStream(window="1d")
    fresh.update_many(real_candles.iloc[:10])
    with pytest.raises(ValueError, match="not newer"):
        fresh.update_many(real_candles.iloc[5:6])


def test_no_backfill_in_warm_up():
    f = liquidation_features(random_candles(5, 100), window="1d")
    assert f.iloc[:24].isna().all().all()


# ----------------------------------------------------------------------------- multi-timeframe
def test_merge_informative_matches_freqtrade():
    from freqtrade.strategy import merge_informative_pair

    base = random_candles(4, 4 * 96, freq="15min")
    hourly = (
        base.set_index("date")
        .resample("1h", label="left", closed="left")
        .agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
        .reset_index()
    )
    feats = liquidation_features(hourly, window="12h")
    inf = pd.concat([hourly[["date"]], feats], axis=1)
    ours = merge_informative(base, inf, "15m", "1h")
    theirs = merge_informative_pair(base.copy(), inf.copy(), "15m", "1h", ffill=True)
    assert list(ours.columns) == list(theirs.columns)
    pd.testing.assert_frame_equal(
        ours.reset_index(drop=True), theirs.reset_index(drop=True), check_dtype=False
    )
    # the 10:00 hourly candle closes at 11:00: first visible on the 10:45 15m candle
    row = ours[ours["date"] == pd.Timestamp("2024-01-02 10:45", tz="UTC")].iloc[0]
    assert row["date_1h"] == pd.Timestamp("2024-01-02 10:00", tz="UTC")
    row = ours[ours["date"] == pd.Timestamp("2024-01-02 10:30", tz="UTC")].iloc[0]
    assert row["date_1h"] == pd.Timestamp("2024-01-02 09:00", tz="UTC")


def test_timeframes():
    assert timeframe_to_timedelta("15m") == pd.Timedelta(minutes=15)
    assert timeframe_to_timedelta("4h") == pd.Timedelta(hours=4)
    for bad in ("1M", "x", "0h", "15"):
        with pytest.raises(ValueError):
            timeframe_to_timedelta(bad)


# ----------------------------------------------------------------------------- real data
@pytest.mark.parametrize("pair", ["BTC/USDT:USDT", "ETH/USDT:USDT"])
def test_real_data_plausibility(pair):
    from liqsignals import sample

    df = sample.load_candles(pair, "15m")
    f = liquidation_features(df, symbol=pair)
    ok = f["liq_long_total"].notna()
    assert ok.sum() > 30_000
    close = df["close"][ok]
    f = f[ok]
    # clusters on the correct side of price
    lc = f["liq_long_cluster_price"].dropna()
    sc = f["liq_short_cluster_price"].dropna()
    assert (lc < close[lc.index]).mean() > 0.99
    assert (sc > close[sc.index]).mean() > 0.99
    # sweeps are rare but present (measured about 0.1 % of 15m candles per side)
    for side in ("long", "short"):
        rate = f[f"liq_sweep_{side}"].mean()
        assert 0.0002 < rate < 0.02, (side, rate)
    # imbalance moves, within [-1, 1]
    imb = f["liq_imbalance"].dropna()
    assert imb.std() > 0.05 and imb.between(-1, 1).all()
    # all four intensity buckets occur
    assert set(f["liq_intensity_bucket"].dropna().unique()) == {0.0, 1.0, 2.0, 3.0}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"atr_period": 0},
        {"intensity_lookback": "500"},
        {"drift_lookback": True},
        {"atr_period": 2.5},
    ],
)
def test_lookbacks_must_be_positive_ints(kwargs):
    df = random_candles(3, 60)
    with pytest.raises(ValueError, match="must be a positive int"):
        liquidation_features(df, window="12h", **kwargs)
    with pytest.raises(ValueError, match="must be a positive int"):
        FeatureStream(window="12h", **kwargs)
