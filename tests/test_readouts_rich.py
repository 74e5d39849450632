"""Richer book read-outs: tracked clusters (age, fresh flag, continuity, drift on the same
cluster), with planted books whose answers follow from the construction."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from liqsignals import liquidation_features
from liqsignals.columns import COLUMNS
from liqsignals.features import FeatureStream
from liqsignals.readout import ReadoutParams

LOGB = math.log1p(10 / 10_000)  # default 10 bp bins
# one 25x leverage, one entry per candle, no decay: every candle plants the same two bins
PLANT = {
    "leverages": (25.0,),
    "leverage_weights": (1.0,),
    "entry_samples": 1,
    "window": "1d",
    "close_half_life": None,
}
TRACKED = [
    "liq_long_cluster_age",
    "liq_long_cluster_fresh",
    "liq_long_cluster_same",
    "liq_long_cluster_drift_pct",
    "liq_short_cluster_age",
    "liq_short_cluster_fresh",
    "liq_short_cluster_same",
    "liq_short_cluster_drift_pct",
    "liq_magnet_age",
    "liq_magnet_tracked_drift",
]


def centre(k: int) -> float:
    return math.exp((k + 0.5) * LOGB)


def bin_of(price: float) -> int:
    return math.floor(math.log(price) / LOGB)


def planted(n: int, taker_share: float | list[float] = 0.75) -> pd.DataFrame:
    """Quiet hourly candles around 100 (range 99.8-100.2): 25x longs pile up in the bin of
    96.5, shorts in the bin of 103.5; ``taker_share`` sets the long share per candle."""
    return pd.DataFrame(
        {
            "date": pd.date_range("2024-03-01", periods=n, freq="1h", tz="UTC"),
            "open": 100.0,
            "high": 100.2,
            "low": 99.8,
            "close": 100.0,
            "volume": 10.0,
            "taker_buy_volume": 10.0 * np.asarray(taker_share, dtype=float),
        }
    )


@pytest.fixture(scope="module")
def real_candles() -> pd.DataFrame:
    from liqsignals import sample

    return sample.load_candles("BTC/USDT:USDT", "15m").iloc[:1500].reset_index(drop=True)


def test_new_columns_are_in_the_table_with_units():
    for name in TRACKED:
        assert name in COLUMNS, name
    assert COLUMNS["liq_long_cluster_age"].unit == "candles"
    assert COLUMNS["liq_magnet_tracked_drift"].unit == "%"
    assert "untracked" in COLUMNS["liq_long_cluster_drift_pct"].nan_when


def test_an_aging_cluster_counts_candles_and_turns_old():
    df = planted(60)
    f = liquidation_features(df, **PLANT, readout=ReadoutParams(age_cap=30, fresh_age=4))
    price = f["liq_long_cluster_price"].to_numpy()
    t0 = int(np.flatnonzero(~np.isnan(price))[0])  # the first candle with a significant cluster
    assert price[t0] == pytest.approx(centre(bin_of(96.5)), rel=1e-12)
    age = f["liq_long_cluster_age"].to_numpy()
    assert np.isnan(age[:t0]).all()
    want = np.minimum(np.arange(60 - t0), 30).astype(float)  # one candle older per candle, capped
    np.testing.assert_array_equal(age[t0:], want)
    fresh = f["liq_long_cluster_fresh"].to_numpy()
    np.testing.assert_array_equal(fresh[t0:], (want < 4).astype(float))
    same = f["liq_long_cluster_same"].to_numpy()
    assert same[t0] == 0.0 and (same[t0 + 1 :] == 1.0).all()
    # the planted bin does not move: its drift is 0 once it is drift_lookback candles old
    drift = f["liq_long_cluster_drift_pct"].to_numpy()
    assert np.isnan(drift[: t0 + 12]).all() and (drift[t0 + 12 :] == 0.0).all()


def test_a_new_cluster_after_a_jump_starts_at_age_zero():
    df = planted(90)
    # the price jumps to 104 at candle 50: the old long cluster (96.5) is far below, new longs
    # pile up at 104 * 0.965 = 100.4; the nearest long cluster is then the new one
    df.loc[50:, ["open", "high", "low", "close"]] = [104.0, 104.2, 103.8, 104.0]
    df.loc[50, ["open", "low"]] = [100.0, 99.8]
    f = liquidation_features(df, **PLANT)
    near = f["liq_long_cluster_price"].to_numpy()
    switch = [t for t in range(51, 90) if near[t] > 99.0 and near[t - 1] < 99.0]
    assert len(switch) == 1, "the nearest long cluster switches to the new one once"
    t1 = switch[0]
    age = f["liq_long_cluster_age"].to_numpy()
    assert age[t1] < age[t1 - 1]  # another cluster: younger than the old one
    assert f["liq_long_cluster_same"].iloc[t1] == 0.0
    assert f["liq_long_cluster_fresh"].iloc[t1] == 1.0


def test_tracked_drift_through_a_side_switch_of_the_magnet():
    # longs dominate for 40 candles (magnet: the long cluster below), then shorts (the short
    # cluster above grows past it and the magnet switches side)
    shares = [0.75] * 40 + [0.02] * 50
    df = planted(90, shares)
    f = liquidation_features(df, **PLANT, drift_lookback=6)
    side = f["liq_magnet_side"].to_numpy()
    flips = [t for t in range(1, 90) if side[t - 1] == -1 and side[t] == 1]
    assert len(flips) == 1
    t = flips[0]
    k_long, k_short = bin_of(96.5), bin_of(103.5)
    # the existing drift compares the short cluster now with the long one 6 candles ago: a jump
    want_jump = (centre(k_short) / centre(k_long) - 1) * 100
    assert f["liq_magnet_drift"].iloc[t] == pytest.approx(want_jump, rel=1e-9)
    # measured on the magnet's own cluster: the short cluster has not moved
    assert f["liq_magnet_tracked_drift"].iloc[t] == 0.0
    # and the magnet's age is the short cluster's age, not reset by the switch
    assert f["liq_magnet_age"].iloc[t] == f["liq_short_cluster_age"].iloc[t]
    assert f["liq_magnet_age"].iloc[t] > 6
    assert f["liq_magnet_age"].iloc[t - 1] == f["liq_long_cluster_age"].iloc[t - 1]


def test_tracked_drift_of_a_slowly_moving_cluster():
    # the price creeps up by a fifth of a bin per candle: the long cluster grows upward bin by
    # bin, always overlapping itself, so it stays one tracked cluster whose centre drifts
    n = 120
    close = 100.0 * np.exp(np.arange(n) * LOGB / 5)
    df = planted(n)
    df["open"] = close
    df["close"] = close
    df["high"] = close * 1.002
    df["low"] = close * 0.998
    f = liquidation_features(df, **PLANT, drift_lookback=10)
    near = f["liq_long_cluster_price"].to_numpy()
    same = f["liq_long_cluster_same"].to_numpy()
    drift = f["liq_long_cluster_drift_pct"].to_numpy()
    checked = 0
    for t in range(40, n):
        if np.all(same[t - 9 : t + 1] == 1.0):  # the same cluster for the last 10 candles
            assert drift[t] == pytest.approx((near[t] / near[t - 10] - 1) * 100, rel=1e-12)
            checked += 1
    assert checked > 20
    assert np.nanmax(drift) > 0.05  # it did move


def _stream(df: pd.DataFrame, readout: ReadoutParams, chunks: list[int], **kw) -> pd.DataFrame:
    stream = FeatureStream(readout=readout, **kw)
    parts, at = [], 0
    for size in chunks:
        parts.append(stream.update_many(df.iloc[at : at + size]))
        at += size
    rows = [stream.update(r) for r in df.iloc[at:].to_dict("records")]
    parts.append(pd.DataFrame(rows, index=df.index[at:], columns=stream.columns))
    return pd.concat([p for p in parts if len(p)]).astype(float)


def test_tracked_columns_stream_equals_batch_and_are_causal(real_candles):
    df = real_candles
    r = ReadoutParams(age_cap=40, fresh_age=5, drift_lookback=6, intensity_lookback=60)
    kw = {"window": "1d", "symbol": "BTC/USDT:USDT"}
    full = liquidation_features(df, readout=r, **kw)
    assert full["liq_long_cluster_age"].max() == 40  # the cap is reached
    assert (full["liq_long_cluster_same"] == 0).sum() > 3  # and clusters change
    assert np.isfinite(full["liq_magnet_tracked_drift"]).sum() > 100
    got = _stream(df.iloc[:700], r, [150, 1, 65, 64, 3, 300], **kw)
    np.testing.assert_array_equal(got[TRACKED].to_numpy(), full[TRACKED].iloc[:700].to_numpy())
    for n in (130, 131, 577, 1111):  # prefix equality
        head = liquidation_features(df.iloc[:n], readout=r, **kw)
        np.testing.assert_array_equal(head[TRACKED].to_numpy(), full[TRACKED].iloc[:n].to_numpy())


def test_tracked_columns_look_back_a_bounded_number_of_candles(real_candles):
    """A run that starts later (from the same engine rows) gives the same tracked values once
    it is age_cap candles in: what the live pair state, which recomputes over a tail, needs."""
    from liqsignals.engine import liquidation_levels
    from liqsignals.features import derive_features

    df = real_candles
    r = ReadoutParams(age_cap=40, drift_lookback=6, intensity_lookback=60)
    levels = liquidation_levels(df, window="1d", symbol="BTC/USDT:USDT")
    full = derive_features(df, levels, r)
    start = 500
    late = derive_features(df.iloc[start:], levels.iloc[start:], r)
    np.testing.assert_array_equal(
        late[TRACKED].iloc[41:].to_numpy(), full[TRACKED].iloc[start + 41 :].to_numpy()
    )


# ----------------------------------------------------------------------------- kernel read-outs
def lev_price(lev: float, side: str, at: float = 100.0) -> float:
    """Liquidation price of a position opened at ``at`` (maintenance margin 0.5 %)."""
    return at * (1 - 1 / lev + 0.005) if side == "long" else at * (1 + 1 / lev - 0.005)


def mix(levs: tuple[float, ...], weights: tuple[float, ...]) -> dict:
    return {**PLANT, "leverages": levs, "leverage_weights": weights}


LONG_MASS = 24 * 0.05 * 10 * 100 * 0.75  # 24 live hourly cohorts in a 1d window, 75 % longs
SHORT_MASS = 24 * 0.05 * 10 * 100 * 0.25


def test_second_and_third_clusters_per_side():
    levs, w = (25.0, 15.0, 12.0), (0.5, 0.3, 0.2)
    f = liquidation_features(planted(48), **mix(levs, w)).iloc[-1]
    for side, mass in (("long", LONG_MASS), ("short", SHORT_MASS)):
        for slot, lev, share in zip(("cluster", "cluster2", "cluster3"), levs, w, strict=True):
            k = bin_of(lev_price(lev, side))
            assert f[f"liq_{side}_{slot}_price"] == pytest.approx(centre(k), rel=1e-12)
            assert f[f"liq_{side}_{slot}_low"] == pytest.approx(math.exp(k * LOGB), rel=1e-12)
            assert f[f"liq_{side}_{slot}_high"] == pytest.approx(
                math.exp((k + 1) * LOGB), rel=1e-12
            )
            assert f[f"liq_{side}_{slot}_size"] == pytest.approx(mass * share, rel=1e-12)
        sign = 1 if side == "long" else -1
        k2 = bin_of(lev_price(15.0, side))
        assert f[f"liq_{side}_cluster2_dist_pct"] == pytest.approx(
            sign * (100 - centre(k2)), rel=1e-9
        )
        assert f[f"liq_{side}_cluster2_dist_atr"] == pytest.approx(
            sign * (100 - centre(k2)) / 0.4, rel=1e-9
        )
    # two clusters only: the third is NaN
    g = liquidation_features(planted(48), **mix((25.0, 15.0), (0.5, 0.5))).iloc[-1]
    assert not math.isnan(g["liq_long_cluster2_price"]) and math.isnan(g["liq_long_cluster3_price"])
    assert math.isnan(g["liq_short_cluster3_size"]) and math.isnan(g["liq_long_cluster3_dist_pct"])


def test_a_wall_behind_the_nearest_cluster_within_the_band():
    # 25x (96.5, small) nearest; 20x (95.5, 4.5 % away: in the 5 % band) larger; 12x (92.2,
    # outside the band) largest of all: the wall is the 20x cluster
    levs, w = (25.0, 20.0, 12.0), (0.2, 0.3, 0.5)
    f = liquidation_features(planted(48), **mix(levs, w)).iloc[-1]
    k_near, k_wall = bin_of(lev_price(25.0, "long")), bin_of(lev_price(20.0, "long"))
    assert f["liq_long_cluster_price"] == pytest.approx(centre(k_near), rel=1e-12)
    assert f["liq_long_wall_price"] == pytest.approx(centre(k_wall), rel=1e-12)
    assert f["liq_long_wall_low"] == pytest.approx(math.exp(k_wall * LOGB), rel=1e-12)
    assert f["liq_long_wall_high"] == pytest.approx(math.exp((k_wall + 1) * LOGB), rel=1e-12)
    assert f["liq_long_wall_size"] == pytest.approx(LONG_MASS * 0.3, rel=1e-12)
    assert f["liq_long_wall_dist_pct"] == pytest.approx(100 - centre(k_wall), rel=1e-9)
    assert f["liq_short_wall_price"] == pytest.approx(centre(bin_of(lev_price(20.0, "short"))))
    # the wall is tracked like the nearest cluster: as old as it
    assert f["liq_long_wall_age"] == f["liq_long_cluster_age"] > 10
    # a narrower band holds only the nearest cluster: the wall is the nearest one
    g = liquidation_features(planted(48), **mix(levs, w), band_pct=4.0).iloc[-1]
    assert g["liq_long_wall_price"] == g["liq_long_cluster_price"]
    h = liquidation_features(planted(48), **mix(levs, w), band_pct=1.0).iloc[-1]
    assert math.isnan(h["liq_long_wall_price"]) and math.isnan(h["liq_long_wall_age"])


def test_the_magnet_over_all_clusters():
    levs, w = (25.0, 15.0), (0.6, 0.4)
    f = liquidation_features(planted(48), **mix(levs, w)).iloc[-1]
    both = LONG_MASS + SHORT_MASS
    cands = []  # (score, centre, sign) from the construction
    for side, mass, sign in (("long", LONG_MASS, -1), ("short", SHORT_MASS, 1)):
        for lev, share in zip(levs, w, strict=True):
            c = centre(bin_of(lev_price(lev, side)))
            cands.append(((mass * share / both) / (abs(c / 100 - 1) * 100), c, sign))
    total = sum(s for s, _, _ in cands)
    want_price = sum(s * c for s, c, _ in cands) / total
    assert f["liq_magnet_mean_price"] == pytest.approx(want_price, rel=1e-9)
    assert f["liq_magnet_pull"] == pytest.approx(sum(s * g for s, _, g in cands) / total, rel=1e-9)
    assert f["liq_magnet_mean_dist_pct"] == pytest.approx(want_price - 100, rel=1e-9)
    # the existing magnet is unchanged: the single best cluster
    assert f["liq_magnet_price"] == pytest.approx(max(cands)[1])
    # shorts only: the pull is +1
    g = liquidation_features(planted(48, 0.0), **mix(levs, w)).iloc[-1]
    assert g["liq_magnet_pull"] == 1.0


def test_gap_widths():
    levs, w = (25.0, 20.0), (0.5, 0.5)
    df = planted(48)
    f = liquidation_features(df, **mix(levs, w)).iloc[-1]
    k_short = bin_of(lev_price(25.0, "short"))
    # thin bins between the close and the first mass: the width is that distance
    assert f["liq_gap_above_width_pct"] == pytest.approx(math.exp(k_short * LOGB) - 100, rel=1e-9)
    assert f["liq_gap_above_width_pct"] == pytest.approx(f["liq_gap_above_pct"], rel=1e-12)
    # a gap-filler candle (no trading) closes in the bin just above the 25x long cluster: that
    # mass touches the close, and the gap below is the empty run behind it down to the 20x one
    k1, k2 = bin_of(lev_price(25.0, "long")), bin_of(lev_price(20.0, "long"))
    px = centre(k1 + 1)
    extra = pd.DataFrame(
        {"date": [df["date"].iloc[-1] + pd.Timedelta("1h")], "open": [px], "high": [px],
         "low": [px], "close": [px], "volume": [0.0], "taker_buy_volume": [0.0]}
    )  # fmt: skip
    g = liquidation_features(pd.concat([df, extra], ignore_index=True), **mix(levs, w)).iloc[-1]
    assert g["liq_long_cluster_price"] == pytest.approx(centre(k1))  # nothing was consumed
    want = (math.exp(k1 * LOGB) - math.exp((k2 + 1) * LOGB)) / px * 100
    assert g["liq_gap_below_width_pct"] == pytest.approx(want, rel=1e-9)
    assert g["liq_gap_below_pct"] == pytest.approx((1 - math.exp((k1 + 1) * LOGB) / px) * 100)
    assert g["liq_gap_below_width_pct"] > 10 * g["liq_gap_below_pct"]


def test_identity_survives_a_sweep_of_the_nearest_cluster():
    # 25x and 20x long clusters; candle 40 dips into the 25x bin (consuming it) but not to the
    # 20x one and closes back at 100: the 20x cluster, second before, is the nearest now and
    # keeps its age (another cluster than the previous nearest, but not a new one)
    df = planted(60)
    k1, k2 = bin_of(lev_price(25.0, "long")), bin_of(lev_price(20.0, "long"))
    df.loc[40, "low"] = math.exp((k1 - 0.2) * LOGB)
    f = liquidation_features(df, **mix((25.0, 20.0), (0.5, 0.5)))
    near = f["liq_long_cluster_price"].to_numpy()
    assert near[39] == pytest.approx(centre(k1)) and f["liq_long_cluster2_price"].iloc[
        39
    ] == pytest.approx(centre(k2))
    assert near[40] == pytest.approx(centre(k2))  # the 25x bin was liquidated
    assert f["liq_long_liquidated"].iloc[40] > 0
    assert f["liq_long_cluster_same"].iloc[40] == 0.0
    assert f["liq_long_cluster_age"].iloc[40] == f["liq_long_cluster_age"].iloc[39] + 1
    assert f["liq_long_cluster_fresh"].iloc[40] == 0.0


# ----------------------------------------------------------------------------- the map
def _map():
    from liqsignals.engine import LiquidationMap

    prices = np.array([90.0, 95.0, 97.0, 98.0, 99.0, 101.0, 102.0, 104.0, 108.0])
    long = np.array([50.0, 10.0, 20.0, 30.0, 10.0, 0.0, 0.0, 0.0, 0.0])
    short = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 40.0, 0.0, 60.0, 99.0])
    return LiquidationMap(None, 100.0, prices, long, short, 10.0)


def test_cumulative_levels_of_a_planted_map():
    from liqsignals.heatmap import cumulative_levels

    lv = cumulative_levels(_map(), band_pct=5.0).set_index(["side", "share"])
    # longs in the band (95..100), from the price down: 99 (10), 98 (40), 97 (60), 95 (70)
    assert (lv.loc["long", "band_total"] == 70.0).all()
    assert lv.loc[("long", 0.25), "price"] == 98.0  # 40 >= 17.5
    assert lv.loc[("long", 0.5), "price"] == 98.0  # 40 >= 35
    assert lv.loc[("long", 0.75), "price"] == 97.0  # 60 >= 52.5
    assert lv.loc[("long", 0.75), "cum"] == 60.0
    # shorts in the band (100..105): 101 (40), 104 (100); 108 is outside
    assert lv.loc[("short", 0.25), "price"] == 101.0
    assert lv.loc[("short", 0.5), "price"] == 104.0
    assert (lv.loc["short", "band_total"] == 100.0).all()
    empty = cumulative_levels(_map(), band_pct=0.5)
    assert empty["price"].isna().all() and (empty["band_total"] == 0).all()
    with pytest.raises(ValueError, match="band_pct"):
        cumulative_levels(_map(), band_pct=0)


def test_the_map_picture_marks_the_levels():
    from liqsignals import plotting

    fig = plotting.plot_map(_map(), range_pct=10.0, top=0, width=800, height=450)
    gids = {t.get_gid() for t in fig.axes[0].texts if t.get_gid()}
    assert gids == {f"level-{s}-{q:g}" for s in ("long", "short") for q in (0.25, 0.5, 0.75)}
    marks = sorted(round(line.get_xdata()[0], 6) for line in fig.axes[0].lines
                   if line.get_linestyle() == ":")  # fmt: skip
    assert marks == [97.0, 98.0, 98.0, 101.0, 104.0, 104.0]


def test_the_interactive_map_marks_the_levels():
    from liqsignals import plotting

    fig = plotting.map_figure(_map(), range_pct=10.0, top=0)
    names = sorted(sh.name for sh in fig.layout.shapes if sh.name and sh.name.startswith("level-"))
    assert names == sorted(f"level-{s}-{q:g}" for s in ("long", "short") for q in (0.25, 0.5, 0.75))
    xs = sorted(sh.x0 for sh in fig.layout.shapes if sh.name and sh.name.startswith("level-"))
    assert xs == [97.0, 98.0, 98.0, 101.0, 104.0, 104.0]
