"""The cohort engine: maths, reference agreement, causality, incremental == batch, bad input."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_engine import reference_levels
from synthetic import random_candles

from liqsignals import LiquidationEngine, LiquidationModel, liquidation_levels
from liqsignals.columns import LEVEL_COLUMNS
from liqsignals.engine import LeverageMix, Snapshots
from liqsignals.inputs import prepare_inputs
from liqsignals.model import liquidation_price, load_margin_tiers

SMALL = {"window": "1d", "bin_bp": 20.0, "entry_samples": 3}


def assert_frames_identical(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())  # NaN == NaN, exact bits


# ----------------------------------------------------------------------------- liquidation maths
# Binance USDT-M BTCUSDT brackets (public documentation): floor, cap, MMR, max leverage, cum
BTC_BRACKETS = [
    (0, 300_000, 0.004, 150, 0.0),
    (300_000, 800_000, 0.005, 100, 300.0),
    (800_000, 3_000_000, 0.0065, 75, 1_500.0),
    (3_000_000, 12_000_000, 0.01, 50, 12_000.0),
    (12_000_000, 70_000_000, 0.02, 25, 132_000.0),
    (70_000_000, 100_000_000, 0.025, 20, 482_000.0),
    (100_000_000, 230_000_000, 0.05, 10, 2_982_000.0),
    (230_000_000, 480_000_000, 0.10, 5, 14_482_000.0),
    (480_000_000, 600_000_000, 0.125, 4, 26_482_000.0),
    (600_000_000, 800_000_000, 0.15, 3, 41_482_000.0),
    (800_000_000, 1_200_000_000, 0.25, 2, 121_482_000.0),
]


@pytest.mark.parametrize("floor,cap,mmr,max_lev,cum", BTC_BRACKETS)
def test_liquidation_price_each_tier_by_hand(floor, cap, mmr, max_lev, cum):
    entry = 50_000.0
    notional = (floor + cap) / 2  # a position in the middle of the bracket
    qty = notional / entry
    lev = max_lev
    # Binance isolated formula written out: wallet balance = initial margin = notional / L
    wb = notional / lev
    long_by_hand = (wb + cum - qty * entry) / (qty * mmr - qty)
    short_by_hand = (wb + cum + qty * entry) / (qty * mmr + qty)
    got_long = liquidation_price(
        entry, lev, "long", maintenance_margin_rate=mmr, maintenance_amount=cum, notional=notional
    )
    got_short = liquidation_price(
        entry, lev, "short", maintenance_margin_rate=mmr, maintenance_amount=cum, notional=notional
    )
    assert got_long == pytest.approx(long_by_hand, rel=1e-12)
    assert got_short == pytest.approx(short_by_hand, rel=1e-12)
    assert got_long < entry < got_short


def test_liquidation_price_hand_values():
    # 10x long at 100 with MMR 0.4 %: 100 * 0.9 / 0.996
    assert liquidation_price(100.0, 10, "long", maintenance_margin_rate=0.004) == pytest.approx(
        90.36144578313, rel=1e-10
    )
    # 20x short at 100 with MMR 0.5 %: 100 * 1.05 / 1.005
    assert liquidation_price(100.0, 20, "short", maintenance_margin_rate=0.005) == pytest.approx(
        104.47761194, rel=1e-8
    )
    # the known bug (MMR divided by leverage) would give 100*(1-0.1+0.0004) = 90.04: not us
    assert abs(liquidation_price(100.0, 10, "long", maintenance_margin_rate=0.004) - 90.04) > 0.3


def test_tiers_come_from_position_notional_not_market_oi():
    m = LiquidationModel(symbol="BTC/USDT:USDT", position_notional=10_000)
    f_long, f_short, _ = m.liquidation_factors()
    # every leverage of the default mix sits in the first bracket (MMR 0.4 %, cum 0)
    for lev, fl, fs in zip(m.leverages, f_long, f_short, strict=True):
        assert fl == pytest.approx((1 - 1 / lev) / (1 - 0.004), rel=1e-12)
        assert fs == pytest.approx((1 + 1 / lev) / (1 + 0.004), rel=1e-12)
    big = LiquidationModel(
        symbol="BTC/USDT:USDT",
        position_notional=5_000_000,
        leverages=(10.0,),
        leverage_weights=(1.0,),
    )
    fl = big.liquidation_factors()[0][0]
    assert fl == pytest.approx((1 - 0.1 - 12_000 / 5_000_000) / (1 - 0.01), rel=1e-12)


def test_margin_tiers_available_for_btc_and_eth():
    for sym in ("BTC/USDT:USDT", "ETH/USDT:USDT"):
        tiers = load_margin_tiers(sym)
        assert tiers and tiers[0].min_notional == 0 and tiers[0].maintenance_margin_rate > 0
    assert load_margin_tiers("NOPE/USDT:USDT") is None


def test_approximation_without_tiers():
    m = LiquidationModel(
        leverages=(10.0, 50.0), leverage_weights=(0.5, 0.5), maintenance_margin_rate=0.005
    )
    f_long, f_short, w = m.liquidation_factors()
    np.testing.assert_allclose(f_long, [1 - 0.1 + 0.005, 1 - 0.02 + 0.005])
    np.testing.assert_allclose(f_short, [1 + 0.1 - 0.005, 1 + 0.02 - 0.005])
    np.testing.assert_allclose(w, [0.5, 0.5])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"window": "5y"}, "window"),
        ({"leverage": "crazy"}, "leverage preset"),
        ({"leverages": (1.0, 10.0), "leverage_weights": (0.5, 0.5)}, "> 1"),
        ({"leverages": (5.0,), "leverage_weights": (0.5, 0.5)}, "equally long"),
        ({"bin_bp": 0}, "bin_bp"),
        ({"participation": -1.0}, "participation"),
        ({"entry_samples": 0}, "entry_samples"),
        ({"symbol": "BTC/USDT:USDT", "leverages": (200.0,), "leverage_weights": (1.0,)}, "exceeds"),
    ],
)
def test_model_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LiquidationModel(**kwargs)


def test_presets():
    assert LiquidationModel.preset("high").leverages == (25.0, 50.0, 100.0)
    assert LiquidationModel().leverages == (5.0, 10.0, 25.0, 50.0, 100.0)
    assert sum(LiquidationModel().leverage_weights) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown preset"):
        LiquidationModel.preset("nope")


def test_model_json_round_trip(tmp_path):
    m = LiquidationModel(window="3d", leverage="high", participation=0.1, symbol="ETH/USDT:USDT")
    path = tmp_path / "m.json"
    import json

    path.write_text(json.dumps({"params": m.to_dict()}))
    assert LiquidationModel.from_json(path) == m


# ----------------------------------------------------------------------------- reference agreement
@pytest.mark.parametrize(
    "seed,opts",
    [
        (1, {}),
        (2, {"gaps": True, "fillers": True}),
        (3, {"open_interest": True}),
        (4, {"taker": True, "ls_ratio": True, "nan_share": 0.3}),
        (5, {"open_interest": True, "nan_share": 0.2, "fillers": True}),
        (6, {"ls_ratio": True}),
    ],
)
def test_kernel_matches_reference(seed, opts):
    df = random_candles(seed, 140, **opts)
    model = LiquidationModel(**SMALL, close_half_life="12h", cluster_min_share=0.02)
    fast = liquidation_levels(df, model)
    ref = reference_levels(df, model)[list(LEVEL_COLUMNS)]
    assert fast.notna().to_numpy().sum() > 100  # past warm-up, values exist
    np.testing.assert_allclose(fast.to_numpy(), ref.to_numpy(), rtol=1e-9, atol=1e-6)


def test_kernel_matches_reference_with_tiers_and_no_decay():
    df = random_candles(11, 120, vol=0.02, taker=True)
    model = LiquidationModel(
        window="12h", symbol="BTC/USDT:USDT", close_half_life=None, bin_bp=15.0
    )
    np.testing.assert_allclose(
        liquidation_levels(df, model).to_numpy(),
        reference_levels(df, model)[list(LEVEL_COLUMNS)].to_numpy(),
        rtol=1e-9,
        atol=1e-6,
    )


# ----------------------------------------------------------------------------- mass conservation
@pytest.mark.parametrize("opts", [{}, {"open_interest": True}, {"fillers": True, "gaps": True}])
def test_mass_is_conserved(opts):
    df = random_candles(21, 600, vol=0.02, **opts)
    eng = LiquidationEngine(LiquidationModel(window="1d"))
    eng.update_many(df)
    t = eng.totals()
    for side in ("long", "short"):
        accounted = (
            t[f"surviving_{side}"]
            + t[f"liquidated_{side}"]
            + t[f"closed_{side}"]
            + t[f"expired_{side}"]
        )
        assert t[f"opened_{side}"] > 0
        assert accounted == pytest.approx(t[f"opened_{side}"], rel=1e-9)
        assert t[f"liquidated_{side}"] > 0 and t[f"expired_{side}"] > 0 and t[f"closed_{side}"] > 0


# ----------------------------------------------------------------------------- causality
frames = st.builds(
    lambda seed, n, gaps, fillers, oi, taker: random_candles(
        seed,
        n,
        gaps=gaps,
        fillers=fillers,
        open_interest=oi,
        taker=taker,
        nan_share=0.1 if oi else 0,
    ),
    seed=st.integers(0, 10_000),
    n=st.integers(2, 160),
    gaps=st.booleans(),
    fillers=st.booleans(),
    oi=st.booleans(),
    taker=st.booleans(),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=frames, data=st.data())
def test_prefix_causality(df, data):
    n = data.draw(st.integers(1, len(df)))
    full = liquidation_levels(df, **SMALL)
    head = liquidation_levels(df.iloc[:n], **SMALL)
    assert_frames_identical(head, full.iloc[:n])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=frames, data=st.data())
def test_incremental_equals_batch_bit_for_bit(df, data):
    batch = liquidation_levels(df, **SMALL)
    eng = LiquidationEngine(**SMALL)
    cut = data.draw(st.integers(0, len(df)))
    first = eng.update_many(df.iloc[:cut])
    rows = [eng.update(r) for r in df.iloc[cut:].to_dict("records")]
    rest = pd.DataFrame(rows, index=df.index[cut:], columns=list(LEVEL_COLUMNS))
    assert_frames_identical(pd.concat([first, rest]).astype(float), batch)


def test_future_candles_do_not_change_the_past():
    df = random_candles(7, 300)
    base = liquidation_levels(df, **SMALL)
    shocked = df.copy()
    shocked.loc[200:, ["open", "high", "low", "close"]] *= 1.5  # a wild future
    after = liquidation_levels(shocked, **SMALL)
    assert_frames_identical(after.iloc[:200], base.iloc[:200])
    assert not after.iloc[200:].equals(base.iloc[200:])


def test_deterministic():
    df = random_candles(8, 400, open_interest=True)
    assert_frames_identical(liquidation_levels(df), liquidation_levels(df))


def test_finite_memory_after_one_window():
    """State at t depends only on the last window: starting later gives the same values once
    a window has passed (up to the rounding of the survival factor)."""
    df = random_candles(9, 400)
    model = LiquidationModel(window="1d")
    full = liquidation_levels(df, model)
    late = liquidation_levels(df.iloc[100:].reset_index(drop=True), model)
    # candle 100 + 25 onward: more than one window (24 candles) after the late start
    np.testing.assert_allclose(
        late.iloc[26:].to_numpy(), full.iloc[126:].to_numpy(), rtol=1e-9, atol=1e-6
    )


def test_state_save_and_restore(tmp_path):
    df = random_candles(10, 300, open_interest=True)
    batch = liquidation_levels(df, **SMALL)
    eng = LiquidationEngine(**SMALL)
    eng.update_many(df.iloc[:170])
    eng.save(tmp_path / "state.npz")
    restored = LiquidationEngine.load(tmp_path / "state.npz")
    assert restored.last_date == pd.Timestamp(df["date"].iloc[169])
    assert_frames_identical(restored.update_many(df.iloc[170:]), batch.iloc[170:])


def test_snapshot_sides():
    df = random_candles(12, 200)
    eng = LiquidationEngine(**SMALL)
    eng.update_many(df)
    snap = eng.snapshot()
    price = float(df["close"].iloc[-1])
    assert snap.long.sum() > 0 and snap.short.sum() > 0
    # longs below price, shorts above (except mass opened by the last candle's range)
    last_low, last_high = float(df["low"].iloc[-1]), float(df["high"].iloc[-1])
    assert snap.long[snap.prices > last_high].sum() == 0
    assert snap.short[snap.prices < last_low].sum() == 0
    assert snap.long[snap.prices < price].sum() > 0.95 * snap.long.sum()


# ----------------------------------------------------------------------------- model behaviour
def _flat(n: int, price: float = 100.0, freq: str = "1h", **cols) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=n, freq=freq, tz="UTC"),
            "open": price,
            "high": price,
            "low": price,
            "close": price,
            "volume": 10.0,
        }
    )
    for k, v in cols.items():
        df[k] = v
    return df


ONE_LEV = {"leverages": (10.0,), "leverage_weights": (1.0,), "entry_samples": 1, "window": "1d"}


def test_open_interest_rise_opens_its_notional():
    df = _flat(30, open_interest=np.arange(30) * 2.0 + 100.0)  # +2 coins per candle
    out = liquidation_levels(df, **ONE_LEV, close_half_life=None)
    opened = out["liq_long_opened"] + out["liq_short_opened"]
    assert opened.dropna().to_numpy() == pytest.approx(2.0 * 100.0)  # dOI * price


def test_open_interest_value_is_converted_to_coins():
    coins = np.linspace(100, 160, 30)
    a = liquidation_levels(_flat(30, open_interest=coins), **ONE_LEV)
    b = liquidation_levels(_flat(30, open_interest_value=coins * 100.0), **ONE_LEV)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-12)


def test_open_interest_drop_closes_in_proportion():
    oi = np.r_[np.linspace(100, 200, 59), [150.0]]  # last candle: -25 %
    out = liquidation_levels(_flat(60, open_interest=oi), **ONE_LEV, close_half_life=None)
    before, after = out["liq_long_total"].iloc[-2], out["liq_long_total"].iloc[-1]
    expired = out["liq_long_opened"].iloc[-25]  # the cohort that leaves the 1d window
    assert after == pytest.approx((before - expired) * 0.75, rel=1e-12)


def test_open_interest_changes_estimate_vs_candles_only():
    """Rising OI in a quiet market: more positions opened than the volume rule assumes."""
    df = _flat(60)
    with_oi = liquidation_levels(df.assign(open_interest=np.linspace(1_000, 2_000, 60)), **ONE_LEV)
    without = liquidation_levels(df, **ONE_LEV)
    # volume rule: 5 % of 10 coins * 100 = 50 per candle; OI rule: ~16.9 coins * 100 per candle
    assert with_oi["liq_long_total"].iloc[-1] > 10 * without["liq_long_total"].iloc[-1]


def test_side_split_rules():
    base = _flat(40)
    base["high"], base["low"] = 101.0, 99.0
    taker = liquidation_levels(base.assign(taker_buy_volume=7.0), **ONE_LEV)
    assert (
        taker["liq_long_opened"] / (taker["liq_long_opened"] + taker["liq_short_opened"])
    ).dropna().to_numpy() == pytest.approx(0.7)
    lsr = liquidation_levels(base.assign(long_short_ratio=3.0), **ONE_LEV)
    assert (lsr["liq_long_opened"] / lsr["liq_short_opened"]).dropna().to_numpy() == pytest.approx(
        3.0
    )
    up = base.assign(open=99.5, close=100.5)  # bullish candles, tilt 0.5 -> share 0.5+0.25*0.5
    out = liquidation_levels(up, **ONE_LEV)
    share = (out["liq_long_opened"] / (out["liq_long_opened"] + out["liq_short_opened"])).dropna()
    assert share.to_numpy() == pytest.approx(0.5 + 0.5 * 0.5 * 1.0 / 2.0)
    # taker share wins over the long/short ratio when both are present
    both = liquidation_levels(base.assign(taker_buy_volume=7.0, long_short_ratio=3.0), **ONE_LEV)
    assert (
        both["liq_long_opened"] / (both["liq_long_opened"] + both["liq_short_opened"])
    ).dropna().to_numpy() == pytest.approx(0.7)


def test_planted_positions_are_liquidated_when_price_reaches_them():
    """10x longs opened at 100 liquidate at 100*(1-0.1+0.005)=90.5; a wick to 90 takes them."""
    df = _flat(30)
    df.loc[29, ["low", "open"]] = [90.0, 100.0]
    out = liquidation_levels(df, **ONE_LEV, close_half_life=None)
    per_candle_long = 0.05 * 10 * 100 * 0.5  # participation * volume * price * long share
    # rows 6..28 are alive at row 29 (row 5 leaves the 1d window first): 23 cohorts
    assert out["liq_long_liquidated"].iloc[-1] == pytest.approx(per_candle_long * 23, rel=1e-12)
    assert out["liq_short_liquidated"].iloc[-1] == 0.0
    df.loc[29, "low"] = 91.0  # above 90.5: nothing happens
    out = liquidation_levels(df, **ONE_LEV, close_half_life=None)
    assert out["liq_long_liquidated"].iloc[-1] == 0.0


def test_window_expiry():
    out = liquidation_levels(_flat(60), **ONE_LEV, close_half_life=None)
    per_candle = 0.05 * 10 * 100
    # a 1d window on 1h candles holds exactly 24 cohorts once full
    assert (out["liq_long_total"] + out["liq_short_total"]).dropna().to_numpy() == pytest.approx(
        24 * per_candle
    )


def test_decay_is_time_based_across_gaps():
    df = _flat(60)
    df = df.drop(index=range(40, 45)).reset_index(drop=True)  # 6h between rows 39 and 40
    eng = LiquidationEngine(**ONE_LEV, close_half_life="6h")
    eng.update_many(df.iloc[:40])
    t0 = eng.totals()
    eng.update(df.iloc[40].to_dict())
    t1 = eng.totals()
    expired = t1["expired_long"] - t0["expired_long"]
    closed = t1["closed_long"] - t0["closed_long"]
    assert expired > 0  # the gap also ages cohorts out of the window
    # half of what survived expiry is closed: 0.5 ** (6h / 6h)
    assert closed == pytest.approx(0.5 * (t0["surviving_long"] - expired), rel=1e-9)


def test_zero_volume_fillers_are_no_trading():
    df = _flat(40)
    df.loc[35, "volume"] = 0.0
    df.loc[35, "low"] = 50.0  # a filler never liquidates, whatever its prices say
    df.loc[35, "open"] = df.loc[35, "close"] = 60.0
    out = liquidation_levels(df, **ONE_LEV, close_half_life=None)
    assert out["liq_long_liquidated"].iloc[35] == 0.0
    assert out["liq_long_opened"].iloc[35] == 0.0


def test_warm_up_is_nan_for_one_window():
    out = liquidation_levels(_flat(48), **ONE_LEV)
    assert out.iloc[:24].isna().all().all()
    assert out.iloc[24:][["liq_long_total", "liq_long_liquidated"]].notna().all().all()


# ----------------------------------------------------------------------------- bad input
def _good() -> pd.DataFrame:
    return random_candles(3, 30)


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda d: d.drop(columns=["volume"]), "missing column"),
        (lambda d: d.drop(columns=["date"]), "date"),
        (lambda d: d.assign(close=d["close"].where(d.index != 5)), "'close' has NaN/inf at row 5"),
        (lambda d: d.assign(high=d["low"] * 0.99), "high < low|outside"),
        (lambda d: d.iloc[::-1].reset_index(drop=True), "not sorted"),
        (lambda d: pd.concat([d.iloc[:10], d.iloc[9:]]).reset_index(drop=True), "duplicate date"),
        (lambda d: d.assign(volume=-d["volume"]), "volume' is negative"),
        (lambda d: d.assign(open_interest=-1.0), "open interest is negative"),
        (lambda d: d.assign(low=0.0), "non-positive"),
        (lambda d: d.assign(close="x"), "not numeric"),
        (lambda d: d.assign(taker_buy_volume=d["volume"] * 2), "exceeds volume"),
    ],
)
def test_bad_input_raises_clear_error(mutate, match):
    with pytest.raises(ValueError, match=match):
        liquidation_levels(mutate(_good()))


def test_engine_rejects_old_candles():
    df = _good()
    eng = LiquidationEngine(**SMALL)
    eng.update_many(df)
    with pytest.raises(ValueError, match="not newer"):
        eng.update(df.iloc[-1].to_dict())


def test_datetime_index_input_is_accepted():
    df = _good()
    by_index = df.set_index("date")
    assert_frames_identical(
        liquidation_levels(by_index, **SMALL).reset_index(drop=True),
        liquidation_levels(df, **SMALL),
    )


# ----------------------------------------------------------------------------- import hygiene
def test_import_is_light():
    code = (
        "import sys, liqsignals; liqsignals.LiquidationModel(); "
        "bad = [m for m in ('freqtrade', 'ccxt', 'numba', 'matplotlib', 'plotly') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_kernel_column_order_matches_table():
    from liqsignals import _kernels as k

    names = {
        k.O_LONG_LIQ: "liq_long_liquidated",
        k.O_SHORT_TOTAL: "liq_short_total",
        k.O_LONG_BAND: "liq_long_band",
        k.O_LC_PRICE: "liq_long_cluster_price",
        k.O_SC_SIZE: "liq_short_cluster_size",
        k.O_MAG_SCORE: "liq_magnet_score",
        k.O_GAP_BELOW: "liq_gap_below_pct",
    }
    for pos, name in names.items():
        assert LEVEL_COLUMNS[pos] == name
    assert len(LEVEL_COLUMNS) == k.N_OUT


# ----------------------------------------------------------------------------- real data
def test_real_btc_liquidations_follow_sharp_moves():
    """On the bundled BTC 15m slice, estimated long liquidations concentrate in sharply falling
    candles and short liquidations in sharply rising ones."""
    from liqsignals import sample

    df = sample.load_candles("BTC/USDT:USDT", "15m")
    out = liquidation_levels(df, symbol="BTC/USDT:USDT")
    ret = df["close"] / df["open"] - 1
    ok = out["liq_long_liquidated"].notna()
    ret, out = ret[ok], out[ok]
    sharp_down = ret < ret.quantile(0.01)
    sharp_up = ret > ret.quantile(0.99)
    long_share = out.loc[sharp_down, "liq_long_liquidated"].sum() / out["liq_long_liquidated"].sum()
    short_share = (
        out.loc[sharp_up, "liq_short_liquidated"].sum() / out["liq_short_liquidated"].sum()
    )
    # 1 % of the candles carry far more than 1 % of the liquidations (measured: see the note)
    assert long_share > 0.10, long_share
    assert short_share > 0.10, short_share
    # and on the wrong side almost nothing
    assert (
        out.loc[sharp_down, "liq_short_liquidated"].sum()
        < 0.2 * out.loc[sharp_down, "liq_long_liquidated"].sum()
    )
    assert (
        out.loc[sharp_up, "liq_long_liquidated"].sum()
        < 0.2 * out.loc[sharp_up, "liq_short_liquidated"].sum()
    )
    assert math.isfinite(long_share)


# ----------------------------------------------------------------------------- public run API
def test_run_result_matches_update_many_and_names_its_columns():
    df = random_candles(31, 150, open_interest=True)
    frame = LiquidationEngine(**SMALL).update_many(df)
    res = LiquidationEngine(**SMALL).run(prepare_inputs(df))
    assert res.columns == LEVEL_COLUMNS
    assert res.values.shape == (150, len(LEVEL_COLUMNS))
    assert res.snap_long.shape == (0, 0) and res.snap_short.shape == (0, 0)
    assert_frames_identical(res.to_frame(df.index), frame)
    core = LiquidationEngine(**SMALL, summaries=False)
    assert core.columns == LEVEL_COLUMNS[:6]
    assert core.run(prepare_inputs(df)).values.shape == (150, 6)
    with pytest.raises(ValueError, match="index has 3 entries"):
        res.to_frame(df.index[:3])


def test_update_row_is_update_in_column_order():
    df = random_candles(32, 80)
    a = LiquidationEngine(**SMALL, summaries=False)
    b = LiquidationEngine(**SMALL, summaries=False)
    for rec in df.to_dict("records"):
        row = a.update_row(rec).copy()
        want = b.update(rec)
        assert row.shape == (6,)
        np.testing.assert_array_equal(row, np.array([want[c] for c in a.columns]))


def test_snapshots_copy_the_book_at_the_given_candles():
    df = random_candles(33, 120)
    model = LiquidationModel(**SMALL)
    probe = LiquidationEngine(model)
    probe.update_many(df.iloc[:61])
    book = probe.snapshot()  # the book after candle 60
    k_lo = int(np.floor(np.log(book.prices[0]) / model.bin_log_width()))
    width = len(book.prices) + 4
    res = LiquidationEngine(model).run(
        prepare_inputs(df), snapshots=Snapshots(np.array([60, 60, 100]), k_lo - 2, width)
    )
    assert res.snap_long.shape == (3, width) and res.snap_long.dtype == np.float32
    np.testing.assert_allclose(res.snap_long[0, 2 : 2 + len(book.prices)], book.long, rtol=1e-6)
    np.testing.assert_allclose(res.snap_short[1, 2 : 2 + len(book.prices)], book.short, rtol=1e-6)
    assert res.snap_long[0, :2].sum() == 0 and res.snap_long[0, -2:].sum() == 0
    with pytest.raises(ValueError, match="sorted"):
        Snapshots(np.array([5, 3]), 0, 10)
    with pytest.raises(ValueError, match="must lie in"):
        LiquidationEngine(model).run(prepare_inputs(df), snapshots=Snapshots(np.array([120]), 0, 4))


def test_leverage_mix_of_model_and_custom_mix():
    model = LiquidationModel(**SMALL)
    mix = LeverageMix.of(model)
    fl, fs, w = model.liquidation_factors()
    np.testing.assert_array_equal(mix.long_factors, fl)
    np.testing.assert_array_equal(mix.weights, w)
    df = random_candles(34, 100)
    # the model's own mix passed explicitly gives the same numbers
    assert_frames_identical(
        LiquidationEngine(model, mix=mix).update_many(df), LiquidationEngine(model).update_many(df)
    )
    # all weight on the highest leverage: a different book
    heavy = np.zeros_like(w)
    heavy[np.argmax(fl)] = 1.0
    other = LiquidationEngine(model, mix=LeverageMix(fl, fs, heavy)).update_many(df)
    assert not np.allclose(
        other["liq_long_band"].fillna(0),
        LiquidationEngine(model).update_many(df)["liq_long_band"].fillna(0),
    )
    with pytest.raises(ValueError, match="one non-zero length"):
        LeverageMix(fl, fs[:-1], w)
    with pytest.raises(ValueError, match="weights must be finite"):
        LeverageMix(fl, fs, -w)


def test_per_candle_weights_shape_is_checked():
    df = random_candles(35, 40)
    eng = LiquidationEngine(**SMALL)
    n_lev = len(eng.mix)
    with pytest.raises(ValueError, match="weights must have shape"):
        eng.run(prepare_inputs(df), weights=np.ones((39, n_lev)))


def test_state_nbytes_counts_the_state_arrays():
    eng = LiquidationEngine(**SMALL)
    empty = eng.state_nbytes
    eng.update_many(random_candles(36, 60))
    assert eng.state_nbytes > empty
    state = eng.state_dict()
    arrays = sum(v.nbytes for k, v in state.items() if isinstance(v, np.ndarray) and k != "factors")
    assert eng.state_nbytes == arrays


# ----------------------------------------------------------------------------- dust floor
def _with_filler_gap(hours: int = 48) -> pd.DataFrame:
    """Three days of 1h candles, then a two-day zero-volume filler gap (freqtrade's layout)."""
    df = random_candles(41, 72, vol=0.01)
    last = float(df["close"].iloc[-1])
    gap = pd.DataFrame(
        {
            "date": df["date"].iloc[-1] + pd.to_timedelta(np.arange(1, hours + 1), unit="h"),
            "open": last,
            "high": last,
            "low": last,
            "close": last,
            "volume": 0.0,
        }
    )
    return pd.concat([df, gap], ignore_index=True)


def test_emptied_book_after_zero_volume_gap_shows_no_cluster_magnet_or_imbalance():
    from liqsignals import liquidation_features

    df = _with_filler_gap()
    model = LiquidationModel(window="12h", bin_bp=20.0, entry_samples=3)
    lv = liquidation_levels(df, model)
    feats = liquidation_features(df, model)
    empty = slice(72 + 13, None)  # more than one window into the gap: every cohort expired
    assert lv["liq_long_total"].iloc[empty].max() < 1e-6  # only rounding dust is left
    for col in ("liq_long_cluster_price", "liq_short_cluster_price", "liq_magnet_price",
                "liq_magnet_score", "liq_gap_above_pct", "liq_gap_below_pct"):  # fmt: skip
        assert lv[col].iloc[empty].isna().all(), col
    assert (lv[["liq_long_band", "liq_short_band"]].iloc[empty] == 0).all().all()
    assert feats["liq_imbalance"].iloc[empty].isna().all()
    # before the gap the same book had real clusters and an imbalance
    assert lv["liq_magnet_price"].iloc[30:72].notna().any()
    assert feats["liq_imbalance"].iloc[30:72].notna().all()


def test_cluster_min_mass_is_validated():
    with pytest.raises(ValueError, match="cluster_min_mass"):
        LiquidationModel(cluster_min_mass=-1.0)
    with pytest.raises(ValueError, match="cluster_min_mass"):
        LiquidationModel(cluster_min_mass=float("nan"))


def test_column_major_run_gives_the_same_values_and_frames_wrap_it() -> None:
    df = random_candles(21, 300)
    inp = prepare_inputs(df)
    c = LiquidationEngine(**SMALL).run(inp).values
    f = LiquidationEngine(**SMALL).run(inp, order="F").values
    assert c.flags.c_contiguous and not c.flags.f_contiguous
    assert f.flags.f_contiguous and not f.flags.c_contiguous
    np.testing.assert_array_equal(f, c)  # NaN == NaN, exact bits
    frame = LiquidationEngine(**SMALL).update_many(df)
    np.testing.assert_array_equal(frame.to_numpy(), c)
    assert list(frame.columns) == list(LEVEL_COLUMNS) and frame.index.equals(df.index)
    with pytest.raises(ValueError, match="order must be 'C' or 'F'"):
        LiquidationEngine(**SMALL).run(inp, order="K")


def _root(a: np.ndarray) -> np.ndarray:
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


@pytest.mark.parametrize("n", [1, 2, 150])
def test_update_many_frames_hold_only_their_own_rows_and_columns(n) -> None:
    df = random_candles(22, n)
    full = LiquidationEngine(**SMALL).update_many(df)
    core = LiquidationEngine(**SMALL, summaries=False).update_many(df)
    assert list(core.columns) == list(LEVEL_COLUMNS[:6])
    np.testing.assert_array_equal(core.to_numpy(), full.to_numpy()[:, :6])
    # no 55-column (or two-row) kernel buffer kept alive behind the frame's six columns
    assert _root(core.to_numpy()).nbytes == n * 6 * 8
    assert _root(full.to_numpy()).nbytes == n * len(LEVEL_COLUMNS) * 8


POISON = 7.77e300  # no output of the engine is ever this


@pytest.mark.parametrize(
    "opts",
    [{}, {"gaps": True, "fillers": True}, {"open_interest": True, "nan_share": 0.2},
     {"taker": True, "ls_ratio": True, "nan_share": 0.3, "fillers": True}],
)  # fmt: skip
def test_every_output_cell_is_written_by_the_kernel(monkeypatch, opts):
    """The output buffer starts uninitialised for long runs: every cell handed out must come
    from the kernel (or the warm-up). With the buffer filled by a value no output takes, the
    results are those of a NaN-filled buffer and hold no trace of that value, in batch, in
    blocks of every size, one candle at a time and without summaries."""
    import liqsignals.engine as engine_mod

    df = random_candles(11, 180, **opts)
    model = LiquidationModel(**SMALL, close_half_life="12h", cluster_min_share=0.02)

    def runs() -> list[pd.DataFrame]:
        out = [liquidation_levels(df, model)]
        for summaries in (True, False):
            eng = LiquidationEngine(model, summaries=summaries)
            parts = [eng.update_many(df.iloc[a:b]) for a, b in ((0, 1), (1, 3), (3, 60), (60, 62))]
            rows = [eng.update(r) for r in df.iloc[62:70].to_dict("records")]
            parts.append(pd.DataFrame([dict(r) for r in rows], index=df.index[62:70]))
            parts.append(eng.update_many(df.iloc[70:]))
            out.append(pd.concat(parts))
        return out

    clean = runs()

    def poisoned(n: int, n_out: int, order: str) -> np.ndarray:
        return np.full((n, n_out), POISON, order=order)  # type: ignore[call-overload]

    monkeypatch.setattr(engine_mod, "new_output", poisoned)
    dirty = runs()
    assert clean[0].notna().to_numpy().sum() > 1000  # past the warm-up, values exist
    for a, b in zip(clean, dirty, strict=True):
        assert not (b.to_numpy() == POISON).any()
        assert_frames_identical(a, b)


def test_pickled_and_deep_copied_engines_are_independent_and_resume_exactly():
    """An engine pickles (for process pools and Ray) and deep-copies into an engine of its
    own: the copy and the original, fed the same later candles one at a time and in a block,
    each give the batch values, and feeding one leaves the other where it was."""
    import copy
    import pickle

    df = random_candles(8, 260, open_interest=True)
    model = LiquidationModel(**SMALL, close_half_life="12h")
    want = liquidation_levels(df, model).iloc[150:]
    eng = LiquidationEngine(model)
    eng.update_many(df.iloc[:149])
    eng.update(df.iloc[149:150].to_dict("records")[0])  # the one-candle path's table exists
    copies = [pickle.loads(pickle.dumps(eng)), copy.deepcopy(eng)]
    rows = [c.update(r) for c in copies[:1] for r in df.iloc[150:].to_dict("records")]
    np.testing.assert_array_equal(np.array([r.to_array() for r in rows]), want.to_numpy())
    assert copies[1].candles_processed == eng.candles_processed == 150  # untouched by the first
    assert_frames_identical(copies[1].update_many(df.iloc[150:]), want)
    assert_frames_identical(eng.update_many(df.iloc[150:]), want)


def test_a_pickled_feature_stream_resumes_exactly():
    """A FeatureStream (its engine pickled through state_dict) resumes bit for bit."""
    import pickle

    from liqsignals import liquidation_features
    from liqsignals.features import FeatureStream

    df = random_candles(3, 260)
    model = LiquidationModel(**SMALL)
    stream = FeatureStream(model)
    stream.update_many(df.iloc[:150])
    stream.update(df.iloc[150:151].to_dict("records")[0])
    copy_ = pickle.loads(pickle.dumps(stream))
    want = liquidation_features(df, model).iloc[151:]
    for s in (copy_, stream):
        rows = [s.update(r) for r in df.iloc[151:].to_dict("records")]
        got = np.array([[r[c] for c in want.columns] for r in rows])
        np.testing.assert_array_equal(got, want.to_numpy(dtype=np.float64))


def test_inputs_of_strided_arrays_run_as_contiguous_ones():
    """Inputs built by hand from a matrix's columns (strided arrays) run as their contiguous
    copies do; a run that fails leaves an engine that never saw a candle as it was."""
    import dataclasses

    df = random_candles(4, 200)
    model = LiquidationModel(**SMALL)
    inp = prepare_inputs(df)
    matrix = np.stack([inp.open, inp.high, inp.low, inp.close, inp.volume], axis=1)
    strided = dataclasses.replace(
        inp, open=matrix[:, 0], high=matrix[:, 1], low=matrix[:, 2], close=matrix[:, 3],
        volume=matrix[:, 4],
    )  # fmt: skip
    assert not strided.close.flags.c_contiguous
    np.testing.assert_array_equal(
        LiquidationEngine(model).run(strided).values, LiquidationEngine(model).run(inp).values
    )
    eng = LiquidationEngine(model)
    real = eng._call

    def failing(*args):
        raise RuntimeError("the kernel failed")

    eng._call = failing  # a kernel call that raises (nothing was processed)
    with pytest.raises(RuntimeError, match="failed"):
        eng.run(inp)
    eng._call = real
    assert eng.last_date is None and eng.candles_processed == 0
    # the warm-up still counts from the first candle processed, not from the failed block
    assert_frames_identical(
        eng.update_many(df.iloc[100:]), liquidation_levels(df.iloc[100:], model)
    )
