"""Mark-price triggers: positions liquidate on the mark price's range where the candles carry it.

A planted book (one leverage, flat candles at 100) puts every long at 100 * (1 - 1/10 + 0.005)
= 90.5 and every short at 100 * (1 + 1/10 - 0.005) = 109.5 (give or take the 0.1 % candle range);
a later candle whose last-price low stops at 92 but whose mark low reaches 90 liquidates them
with ``trigger="mark"`` and not with ``trigger="last"``, and the other way round.
"""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from synthetic import random_candles

from liqsignals import LiquidationEngine, LiquidationModel, liquidation_levels
from liqsignals.columns import LEVEL_COLUMNS
from liqsignals.features import FeatureStream, liquidation_features
from liqsignals.inputs import prepare_inputs, single_values
from liqsignals.multi import combine_exchanges

PLANT = {
    "window": "1w",
    "leverages": (10.0,),
    "leverage_weights": (1.0,),
    "maintenance_margin_rate": 0.005,
    "close_half_life": None,
    "entry_samples": 3,
    "participation": 0.05,
}
N_FLAT = 30
# per flat candle: participation * volume * typical = 0.05 * 10 * 100 = 50 quote, half of it long
# (close == open: no tilt), so the book holds 30 * 25 = 750 quote per side before the planted candle
PER_SIDE = N_FLAT * 25.0


def planted(low: float, high: float, mark_low: float, mark_high: float) -> pd.DataFrame:
    """Thirty flat 1h candles at 100, then one candle with the given last and mark ranges."""
    dates = pd.date_range("2024-01-01", periods=N_FLAT + 1, freq="1h", tz="UTC")
    df = pd.DataFrame(
        {
            "date": dates,
            "open": 100.0,
            "high": 100.1,
            "low": 99.9,
            "close": 100.0,
            "volume": 10.0,
            "mark_high": 100.1,
            "mark_low": 99.9,
        }
    )
    last = df.index[-1]
    df.loc[last, ["low", "high", "mark_low", "mark_high"]] = [low, high, mark_low, mark_high]
    return df


def liquidated(df: pd.DataFrame, **changes: object) -> dict[str, float]:
    eng = LiquidationEngine(LiquidationModel(**{**PLANT, **changes}))
    eng.update_many(df)
    t = eng.totals()
    return {"long": t["liquidated_long"], "short": t["liquidated_short"]}


def test_the_mark_low_liquidates_longs_the_last_low_misses():
    df = planted(low=92.0, high=100.1, mark_low=90.0, mark_high=100.1)
    assert liquidated(df) == pytest.approx({"long": PER_SIDE, "short": 0.0}, rel=1e-9)
    assert liquidated(df, trigger="last") == {"long": 0.0, "short": 0.0}


def test_the_mark_high_liquidates_shorts_the_last_high_misses():
    df = planted(low=99.9, high=108.0, mark_low=99.9, mark_high=110.0)
    assert liquidated(df) == pytest.approx({"long": 0.0, "short": PER_SIDE}, rel=1e-9)
    assert liquidated(df, trigger="last") == {"long": 0.0, "short": 0.0}


def test_a_last_price_wick_the_mark_does_not_follow_liquidates_nothing():
    df = planted(low=90.0, high=110.0, mark_low=92.0, mark_high=108.0)
    assert liquidated(df) == {"long": 0.0, "short": 0.0}
    assert liquidated(df, trigger="last") == pytest.approx(
        {"long": PER_SIDE, "short": PER_SIDE}, rel=1e-9
    )


def test_a_mark_range_far_outside_the_book_liquidates_the_whole_side():
    # the mark low (10) lies far below every bin the engine holds (it sizes the book from the
    # last-price range): every long goes, and the engine carries on, batch == update
    df = planted(low=99.0, high=100.1, mark_low=10.0, mark_high=100.1)
    more = planted(low=99.9, high=100.1, mark_low=99.9, mark_high=100.1).iloc[:5]
    more["date"] = df["date"].iloc[-1] + pd.to_timedelta(np.arange(1, 6), unit="h")
    full = pd.concat([df, more], ignore_index=True)
    assert liquidated(df) == pytest.approx({"long": PER_SIDE, "short": 0.0}, rel=1e-9)
    model = LiquidationModel(**{**PLANT, "window": "12h"})  # outputs after warm-up too
    batch_eng = LiquidationEngine(model)
    batch = batch_eng.update_many(full)
    eng = LiquidationEngine(model)
    rows = [eng.update(r) for r in full.to_dict("records")]
    got = pd.DataFrame(rows, columns=list(LEVEL_COLUMNS)).to_numpy()
    np.testing.assert_array_equal(got, batch.to_numpy())
    assert eng.totals() == batch_eng.totals()
    assert np.isfinite(batch["liq_long_total"].iloc[-1])


def test_a_nan_mark_row_falls_back_to_last_price():
    df = planted(low=90.0, high=100.1, mark_low=np.nan, mark_high=np.nan)
    assert liquidated(df) == pytest.approx({"long": PER_SIDE, "short": 0.0}, rel=1e-9)
    # and the whole frame equals the same candles without any mark column, bit for bit
    df = random_candles(4, 300, vol=0.03, open_interest=True)
    with_nan = df.assign(mark_high=np.nan, mark_low=np.nan)
    np.testing.assert_array_equal(
        liquidation_levels(with_nan, window="1d").to_numpy(),
        liquidation_levels(df, window="1d").to_numpy(),
    )


def with_mark(df: pd.DataFrame, seed: int, nan_share: float = 0.0) -> pd.DataFrame:
    """The candles with a mark range that differs from the last-price range by up to 1.5 %."""
    rng = np.random.default_rng(seed)
    n = len(df)
    mid = df["close"].to_numpy() * np.exp(rng.normal(0.0, 0.002, n))
    out = df.copy()
    out["mark_high"] = np.maximum(mid, df["high"].to_numpy() * (1 + rng.normal(0, 0.008, n)))
    out["mark_low"] = np.minimum(mid, df["low"].to_numpy() * (1 + rng.normal(0, 0.008, n)))
    if nan_share:
        blank = rng.random(n) < nan_share
        out.loc[blank, ["mark_high", "mark_low"]] = np.nan
    return out


def test_last_ignores_the_mark_columns_and_mark_changes_the_values():
    df = random_candles(11, 400, vol=0.02, open_interest=True, taker=True)
    marked = with_mark(df, 11, nan_share=0.1)
    plain = liquidation_levels(df, window="1d")
    np.testing.assert_array_equal(
        liquidation_levels(marked, window="1d", trigger="last").to_numpy(), plain.to_numpy()
    )
    by_mark = liquidation_levels(marked, window="1d")
    assert not np.array_equal(by_mark["liq_long_liquidated"], plain["liq_long_liquidated"])


def test_the_trigger_setting_is_validated_and_round_trips(tmp_path):
    assert LiquidationModel().trigger == "mark"
    with pytest.raises(ValueError, match="trigger must be one of"):
        LiquidationModel(trigger="index")
    m = LiquidationModel(trigger="last", window="2d")
    assert m.to_dict()["trigger"] == "last"
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"params": m.to_dict()}))
    assert LiquidationModel.from_json(path) == m
    for name in ("binance_btc", "binance_eth"):
        p = LiquidationModel.preset(name)
        assert p.trigger == "mark"
        assert LiquidationModel(**{**p.to_dict(), "leverages": tuple(p.leverages or ())}) == p


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mark_low": -1.0}, "column 'mark_low' has a non-positive price"),
        ({"mark_high": np.inf}, "column 'mark_high' has inf (NaN means unknown; inf is not a value)"),
        ({"mark_high": 99.0, "mark_low": 99.5}, "column 'mark_high' is below 'mark_low' (mark_high < mark_low)"),
        ({"mark_low": np.nan}, "column 'mark_low' is NaN where 'mark_high' is not (both or neither unknown)"),
        ({"mark_high": np.nan}, "column 'mark_high' is NaN where 'mark_low' is not (both or neither unknown)"),
        ({"mark_high": "x"}, "column 'mark_high' is not numeric"),
    ],
)  # fmt: skip
def test_bad_mark_values_are_refused_naming_the_column(changes, message):
    df = with_mark(random_candles(2, 6), 2)
    df["mark_high"] = df["mark_high"].astype(object)
    for col, v in changes.items():
        df.loc[3, col] = v
    with pytest.raises(ValueError, match=f"^{re.escape(message)} at row 3$"):
        prepare_inputs(df)
    candle = {**df.iloc[3].to_dict(), "date": df["date"].iloc[3]}
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        single_values(candle)


def test_one_mark_column_alone_is_refused():
    df = with_mark(random_candles(2, 6), 2)
    with pytest.raises(ValueError, match="column 'mark_high' is given without 'mark_low'"):
        prepare_inputs(df.drop(columns="mark_low"))
    with pytest.raises(ValueError, match="column 'mark_low' is given without 'mark_high'"):
        LiquidationEngine().update(df.drop(columns="mark_high").iloc[0].to_dict())


def test_no_mark_input_is_logged_once(caplog):
    df = random_candles(3, 60)
    with caplog.at_level(logging.INFO, logger="liqsignals.engine"):
        eng = LiquidationEngine(window="1d")
        eng.update_many(df.iloc[:30])
        for r in df.iloc[30:].to_dict("records"):
            eng.update(r)
    notes = [r for r in caplog.records if "no mark price" in r.getMessage()]
    assert len(notes) == 1
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="liqsignals.engine"):
        liquidation_levels(with_mark(df, 3), window="1d")
        liquidation_levels(df, window="1d", trigger="last")
    assert not [r for r in caplog.records if "no mark price" in r.getMessage()]


def test_the_combined_book_takes_the_reference_mark():
    df = with_mark(random_candles(5, 200, vol=0.02), 5)
    other = random_candles(6, 200, vol=0.02)
    comb = combine_exchanges({"binance": df, "bybit": other}, window="1d")
    np.testing.assert_array_equal(comb.frame["mark_low"].to_numpy(), df["mark_low"].to_numpy())
    np.testing.assert_array_equal(comb.frame["mark_high"].to_numpy(), df["mark_high"].to_numpy())
    comb = combine_exchanges({"bybit": other, "binance": df}, window="1d")
    assert "mark_low" not in comb.frame.columns  # the reference has none


# ----------------------------------------------------------------------------- causality
SMALL = {"window": "1d", "bin_bp": 20.0, "entry_samples": 3}
FEAT = {"window": "12h", "bin_bp": 20.0, "intensity_lookback": 30, "drift_lookback": 5}
every_input = st.builds(
    lambda seed, n, gaps, fillers, nan: with_mark(
        random_candles(
            seed,
            n,
            vol=0.02,
            gaps=gaps,
            fillers=fillers,
            open_interest=True,
            taker=True,
            ls_ratio=True,
            nan_share=nan,
        ),
        seed,
        nan_share=nan,
    ),
    seed=st.integers(0, 10_000),
    n=st.integers(2, 150),
    gaps=st.booleans(),
    fillers=st.booleans(),
    nan=st.sampled_from([0.0, 0.1]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=every_input, data=st.data())
def test_prefix_causality_with_every_input(df, data):
    n = data.draw(st.integers(1, len(df)))
    full = liquidation_levels(df, **SMALL)
    head = liquidation_levels(df.iloc[:n], **SMALL)
    np.testing.assert_array_equal(head.to_numpy(), full.iloc[:n].to_numpy())
    f_full = liquidation_features(df, **FEAT)
    f_head = liquidation_features(df.iloc[:n], **FEAT)
    np.testing.assert_array_equal(f_head.to_numpy(), f_full.iloc[:n].to_numpy())


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=every_input, data=st.data())
def test_engine_update_equals_batch_with_every_input(df, data):
    batch = liquidation_levels(df, **SMALL)
    eng = LiquidationEngine(**SMALL)
    cut = data.draw(st.integers(0, len(df)))
    first = eng.update_many(df.iloc[:cut])
    rows = [eng.update(r) for r in df.iloc[cut:].to_dict("records")]
    rest = pd.DataFrame(rows, index=df.index[cut:], columns=list(LEVEL_COLUMNS))
    got = pd.concat([first, rest]).astype(float)
    np.testing.assert_array_equal(got.to_numpy(), batch.to_numpy())


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=every_input, data=st.data())
def test_feature_stream_equals_batch_with_every_input(df, data):
    full = liquidation_features(df, **FEAT)
    stream = FeatureStream(**FEAT)
    cut = data.draw(st.integers(0, len(df)))
    parts = [stream.update_many(df.iloc[:cut])]
    rows = [stream.update(r) for r in df.iloc[cut:].to_dict("records")]
    parts.append(pd.DataFrame(rows, index=df.index[cut:], columns=list(full.columns)))
    got = pd.concat([p for p in parts if len(p)]).astype(float)
    np.testing.assert_array_equal(got.to_numpy(), full.to_numpy())


def test_the_mark_inputs_survive_a_saved_state(tmp_path):
    df = with_mark(random_candles(9, 300, vol=0.02, open_interest=True), 9)
    batch = liquidation_levels(df, **SMALL)
    eng = LiquidationEngine(**SMALL)
    eng.update_many(df.iloc[:150])
    eng.save(tmp_path / "s.npz")
    eng = LiquidationEngine.load(tmp_path / "s.npz", LiquidationModel(**SMALL))
    rows = [eng.update(r) for r in df.iloc[150:].to_dict("records")]
    got = pd.DataFrame(rows, columns=list(LEVEL_COLUMNS)).to_numpy()
    np.testing.assert_array_equal(got, batch.iloc[150:].to_numpy())
