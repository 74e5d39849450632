"""Band totals per leverage bucket (``liq_*_band_low/_mid/_high``) and the per-bucket books."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from reference_engine import reference_levels
from synthetic import random_candles

from liqsignals import LiquidationEngine, LiquidationModel, liquidation_levels
from liqsignals.columns import COLUMNS, LEVEL_COLUMNS
from liqsignals.features import FeatureStream, liquidation_features

BUCKETS = ("low", "mid", "high")
NEW = [f"liq_{side}_band_{b}" for side in ("long", "short") for b in BUCKETS]
W = (0.5, 0.3, 0.2)  # weights of 5x, 20x, 50x
MODEL = dict(
    window="1d", leverages=(5.0, 20.0, 50.0), leverage_weights=W, band_pct=25.0,
    cluster_range_pct=30.0, close_half_life=None, bin_bp=10.0, cluster_min_mass=0.0,
)  # fmt: skip
H = pd.Timedelta("1h")
T0 = pd.Timestamp("2025-01-01", tz="UTC")
C = 100.0


def candle(date, low=C, high=C, oi=1000.0, volume=1.0):
    return {
        "date": date, "open": C, "high": high, "low": low, "close": C, "volume": volume,
        "open_interest": oi,
    }  # fmt: skip


def planted() -> pd.DataFrame:
    """Flat candles at 100: the first (expired before the read-outs) sets the open interest;
    +40 coins half a day in, +60 an hour later; a dip to 97.5 a day in (the 50x longs at
    ~98.5 go, the 20x at ~95.5 stay); the first deposit expires a day after it was made."""
    rows = [
        candle(T0),
        candle(T0 + 12 * H, oi=1040.0),
        candle(T0 + 13 * H, oi=1100.0),
        candle(T0 + 24 * H, oi=1100.0),
        candle(T0 + 25 * H, low=97.5, oi=1100.0),
        candle(T0 + 36 * H, oi=1100.0),
    ]
    return pd.DataFrame(rows)


def test_columns_in_the_table():
    for name in NEW:
        col = COLUMNS[name]
        assert col.unit == "quote" and col.source == "levels" and name in LEVEL_COLUMNS


def test_planted_book_bucket_totals_by_hand():
    out = liquidation_levels(planted(), LiquidationModel(**MODEL))
    assert out.iloc[:3].isna().all().all()  # warm-up
    # by hand: opened = OI rise * 100, half long (flat candle), spread by the weights
    both = 0.5 * (40 + 60) * C
    later = 0.5 * 60 * C
    want = {
        3: (both * 0.5, both * 0.3, both * 0.2),  # everything in the 25 % band
        4: (both * 0.5, both * 0.3, 0.0),  # the dip liquidated the 50x longs only
        5: (later * 0.5, later * 0.3, 0.0),  # the +40 cohort expired; the wiped 50x stays 0
    }
    for i, (low, mid, high) in want.items():
        row = out.iloc[i]
        got = [row[f"liq_long_band_{b}"] for b in BUCKETS]
        np.testing.assert_allclose(got, [low, mid, high], rtol=1e-12, atol=1e-9)
        # shorts (at 119.5, 104.5, 101.5) untouched by the dip
        shorts = both if i < 5 else later
        got = [row[f"liq_short_band_{b}"] for b in BUCKETS]
        np.testing.assert_allclose(got, [shorts * w for w in W], rtol=1e-12)
    assert out["liq_long_liquidated"].iloc[4] == pytest.approx(both * 0.2, rel=1e-12)
    # the book split by bucket in the snapshot
    eng = LiquidationEngine(LiquidationModel(**MODEL))
    eng.update_many(planted())
    snap = eng.snapshot()
    assert snap.long_buckets is not None and snap.short_buckets is not None
    np.testing.assert_allclose(snap.long_buckets.sum(axis=0), snap.long, rtol=1e-12)
    np.testing.assert_allclose(snap.long_buckets.sum(axis=1), [later * 0.5, later * 0.3, 0.0])
    np.testing.assert_allclose(snap.short_buckets.sum(axis=1), [later * w for w in W])


CASES = [(1, {}), (3, {"open_interest": True, "fillers": True}), (4, {"taker": True, "gaps": True})]


@pytest.mark.parametrize(("seed", "opts"), CASES)
def test_buckets_sum_to_the_band_and_match_the_reference(seed, opts):
    df = random_candles(seed, 160, **opts)
    model = LiquidationModel(**{**MODEL, "band_pct": 22.0, "close_half_life": "12h"})
    out = liquidation_levels(df, model)
    for side in ("long", "short"):
        band = out[f"liq_{side}_band"].to_numpy()
        parts = out[[f"liq_{side}_band_{b}" for b in BUCKETS]].to_numpy()
        ok = np.isfinite(band)
        assert ok.sum() > 100 and (band[ok] > 0).sum() > 50
        # each bucket is floored like the band (cluster_min_mass): the sum is the band within
        # three floors
        floor = model.cluster_min_mass
        assert (np.abs(parts[ok].sum(axis=1) - band[ok]) <= 3 * floor + 1e-9 * band[ok]).all()
        assert ((parts[ok] == 0) | (parts[ok] >= floor)).all()
        assert (parts[ok] >= 0).all() and (parts[ok] > 0).any(axis=0).all()
    ref = reference_levels(df, model)[NEW]
    np.testing.assert_allclose(out[NEW].to_numpy(), ref.to_numpy(), rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize(("seed", "opts"), CASES)
def test_prefix_causality_and_incremental_equals_batch(seed, opts):
    df = random_candles(seed, 160, **opts)
    model = LiquidationModel(**MODEL)
    full = liquidation_levels(df, model)[NEW]
    cut = 120
    np.testing.assert_array_equal(
        liquidation_levels(df.iloc[:cut], model)[NEW].to_numpy(), full.iloc[:cut].to_numpy()
    )
    eng = LiquidationEngine(model)
    head = eng.update_many(df.iloc[:70])[NEW]
    rows = [eng.update(r) for r in df.iloc[70:].to_dict("records")]
    tail = pd.DataFrame(rows, index=df.index[70:])[NEW]
    np.testing.assert_array_equal(pd.concat([head, tail]).to_numpy(), full.to_numpy())


def test_feature_stream_equals_batch():
    df = random_candles(5, 200, open_interest=True)
    params = dict(MODEL)
    full = liquidation_features(df, **params)[NEW]
    stream = FeatureStream(**params)
    head = stream.update_many(df.iloc[:90])
    rows = [stream.update(r) for r in df.iloc[90:].to_dict("records")]
    tail = pd.DataFrame(rows, index=df.index[90:], columns=list(head.columns))
    got = pd.concat([head, tail])[NEW].astype(float)
    np.testing.assert_array_equal(got.to_numpy(), full.to_numpy())


def test_state_round_trip_keeps_the_bucket_books(tmp_path):
    df = random_candles(2, 160)
    model = LiquidationModel(**MODEL)
    full = liquidation_levels(df, model)[NEW]
    eng = LiquidationEngine(model)
    eng.update_many(df.iloc[:100])
    eng.save(tmp_path / "s.npz")
    back = LiquidationEngine.load(tmp_path / "s.npz")
    np.testing.assert_array_equal(back.update_many(df.iloc[100:])[NEW], full.iloc[100:])


def test_map_bars_stacked_by_leverage_bucket():
    from liqsignals.heatmap import combine_maps, liquidation_map, map_buckets
    from liqsignals.plotting import map_figure, plot_map

    df = random_candles(3, 300)
    lmap = liquidation_map(df, LiquidationModel(window="1d"))
    b = map_buckets(lmap, 0.3)
    for side in ("long", "short"):
        parts = b[[f"{side}_{name}" for name in BUCKETS]].to_numpy()
        np.testing.assert_allclose(parts.sum(axis=1), b[side].to_numpy(), rtol=1e-9, atol=1e-9)
        assert (parts.sum(axis=0) > 0).sum() >= 2  # the default mix fills several buckets
    both = combine_maps([lmap, lmap])
    np.testing.assert_allclose(both.long_buckets, 2 * lmap.long_buckets)
    fig = plot_map(lmap, range_pct=12, width=900, height=500)
    bars = {c.get_label(): c for c in fig.axes[0].containers}
    total = np.array([p.get_height() for p in bars["long"]])
    stack = np.zeros_like(total)
    for name in BUCKETS:  # each segment starts where the one below ends
        seg = bars[f"long {name}"]
        np.testing.assert_allclose([p.get_y() for p in seg], stack, atol=1e-9)
        stack += np.array([p.get_height() for p in seg])
    np.testing.assert_allclose(stack, total, rtol=1e-9)
    assert total.max() > 0
    html = map_figure(lmap, range_pct=12)
    rects = [s for s in html.layout.shapes if s.type == "rect"]
    names = {s.name.split("-")[1] for s in rects}
    assert names == set(BUCKETS)
    tallest = max(s.y1 for s in rects if s.name.startswith("long"))
    assert tallest == pytest.approx(float(np.max(html.data[0].y)), rel=1e-9)
