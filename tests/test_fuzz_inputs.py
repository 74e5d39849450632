"""Fuzz: candle frames with NaN/inf/huge/tiny/zero values in every column (the optional inputs
included). ``liquidation_features`` either raises a ValueError naming the column, or returns
values that are finite or NaN (never inf), NaN only where the column's ``nan_when`` allows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liqsignals import liquidation_features
from liqsignals.columns import COLUMNS
from liqsignals.inputs import CHECKED_COLUMNS
from tests.synthetic import random_candles

N = 48
WINDOW = pd.Timedelta("12h")
PARAMS = {"window": "12h", "bin_bp": 20.0, "entry_samples": 3}
COLS = ["open", "high", "low", "close", "volume", "open_interest", "open_interest_value",
        "taker_buy_volume", "long_short_ratio"]  # fmt: skip
VALUES = [np.nan, np.inf, -np.inf, 1e300, 1e15, 1e12, 1e-12, 1e-300, 0.0, -1.0, 5e-324]

cell = st.tuples(st.integers(0, N - 1), st.sampled_from(COLS), st.sampled_from(VALUES))
scale = st.tuples(st.integers(0, N - 1), st.sampled_from([1e-9, 1e-6, 1e6, 1e9, 1e300]))


def _frame(seed: int, oi_value: bool, cells: list, scales: list) -> pd.DataFrame:
    df = random_candles(seed, N, open_interest=True, taker=True, ls_ratio=True, fillers=True)
    if oi_value:
        df["open_interest_value"] = df.pop("open_interest") * df["close"]
    for row, factor in scales:  # a whole candle at another magnitude (consistent OHLC)
        df.loc[row, ["open", "high", "low", "close"]] *= factor
    for row, col, value in cells:
        if col in ("open_interest", "open_interest_value") and col not in df.columns:
            col = "open_interest_value" if oi_value else "open_interest"
        df.loc[row, col] = value
    return df


@settings(
    max_examples=60,
    deadline=5000,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 10_000),
    oi_value=st.booleans(),
    cells=st.lists(cell, max_size=3),
    scales=st.lists(scale, max_size=2),
)
def test_features_are_finite_or_allowed_nan_or_a_named_valueerror(seed, oi_value, cells, scales):
    df = _frame(seed, oi_value, cells, scales)
    try:
        out = liquidation_features(df, **PARAMS)
    except ValueError as exc:
        msg = str(exc)
        assert any(f"column {c!r}" in msg for c in CHECKED_COLUMNS), msg
        return
    values = out.to_numpy(dtype=np.float64)
    assert not np.isinf(values).any(), out.columns[np.isinf(values).any(axis=0)].tolist()
    dates = pd.to_datetime(df["date"], utc=True)
    after = (dates >= dates.iloc[0] + WINDOW).to_numpy()
    after_prev = after & np.concatenate([[False], after[:-1]])
    for name, col in COLUMNS.items():
        nan = out[name].isna().to_numpy()
        if col.nan_when == "warmup":
            assert not nan[after].any(), (name, np.flatnonzero(nan & after))
        elif col.nan_when == "warmup_prev":
            assert not nan[after_prev].any(), (name, np.flatnonzero(nan & after_prev))
    for side in ("long", "short"):  # "no_cluster": one cluster's fields are NaN together
        price = out[f"liq_{side}_cluster_price"].isna().to_numpy()
        for x in ("low", "high", "size", "dist_pct"):
            np.testing.assert_array_equal(out[f"liq_{side}_cluster_{x}"].isna().to_numpy(), price)
    no_magnet = out["liq_long_cluster_price"].isna() & out["liq_short_cluster_price"].isna()
    for x in ("price", "side", "score"):  # "no_magnet": NaN exactly when neither side has one
        np.testing.assert_array_equal(out[f"liq_magnet_{x}"].isna().to_numpy(), no_magnet)


@pytest.mark.parametrize("value", [np.inf, 1e300])
@pytest.mark.parametrize("col", ["open_interest", "long_short_ratio", "taker_buy_volume"])
def test_fuzz_seed_cases_optional_inputs(col, value):
    df = _frame(1, False, [(20, col, value)], [])
    with pytest.raises(ValueError, match=f"column '{col}'"):
        liquidation_features(df, **PARAMS)
