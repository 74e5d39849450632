"""How ``liquidation_features`` builds its frame: the engine's column-major rows read in place by
the derive kernel (a column after another) and held beside the derived block, against
``derive_features`` over ``liquidation_levels`` (the kernel reading row-major rows, one block
copied), bit for bit; and the intensity rank's ordering of values (ties, signed zeros,
infinities, NaN) against plain counting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from synthetic import random_candles

from liqsignals import COLUMNS, _derive, liquidation_levels
from liqsignals.features import derive_features, liquidation_features
from liqsignals.sample import load_candles

KW = {"window": "1d", "symbol": "BTC/USDT:USDT", "intensity_lookback": 60}


def _bits(frame: pd.DataFrame) -> np.ndarray:
    return np.ascontiguousarray(frame.to_numpy(dtype=np.float64)).view(np.int64)


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    df = load_candles("BTC/USDT:USDT", "15m").iloc[:1_400].reset_index(drop=True)
    rng = np.random.default_rng(11)
    oi = 40_000.0 * np.exp(np.cumsum(0.003 * rng.standard_normal(len(df))))
    oi[rng.random(len(df)) < 0.1] = np.nan
    df["open_interest"] = oi
    return df


def test_features_equal_derive_features_over_levels_bit_for_bit(candles):
    got = liquidation_features(candles, **KW)
    model_kw = {k: v for k, v in KW.items() if k != "intensity_lookback"}
    want = derive_features(candles, liquidation_levels(candles, **model_kw), intensity_lookback=60)
    assert list(got.columns) == list(COLUMNS) == list(want.columns)
    assert got.index.equals(candles.index)
    assert (got.dtypes == np.float64).all()
    warm = got["liq_long_total"].isna()
    assert warm.any() and (~warm).any()  # warm-up and defined rows both compared
    np.testing.assert_array_equal(_bits(got), _bits(want))


@pytest.mark.parametrize("n", [0, 1, 2, 3, 17, 129, 300])
def test_short_frames_equal_the_head_of_a_long_one(candles, n):
    head = candles.iloc[:n]
    got = liquidation_features(head, **KW)
    assert got.shape == (n, len(COLUMNS))
    assert got.index.equals(head.index)
    whole = liquidation_features(candles.iloc[:400], **KW).iloc[:n]
    np.testing.assert_array_equal(_bits(got), _bits(whole))


def test_index_labels_kept_duplicates_too():
    df = random_candles(4, 500)
    df.index = pd.Index(np.repeat(np.arange(250), 2) * 7)  # every label twice
    got = liquidation_features(df, window="1d")
    assert got.index.equals(df.index)
    plain = liquidation_features(df.reset_index(drop=True), window="1d")
    np.testing.assert_array_equal(_bits(got), _bits(plain))


def test_the_frame_can_be_written_without_touching_another_call():
    df = random_candles(5, 600)
    first = liquidation_features(df, window="1d")
    before = _bits(first).copy()
    first.iloc[:, 0] = 1.0  # an engine column
    first["liq_atr"] = -1.0  # a derived one
    first.loc[first.index[-1], "liq_intensity"] = 7.0
    assert (first["liq_long_liquidated"] == 1.0).all() and (first["liq_atr"] == -1.0).all()
    np.testing.assert_array_equal(_bits(liquidation_features(df, window="1d")), before)


def _rank_by_counting(x: np.ndarray, start: int, lookback: int) -> np.ndarray:
    minp = max(2, lookback // 4)
    out = np.full(x.shape[0] - start, np.nan)
    for i in range(start, x.shape[0]):
        window = x[max(0, i - lookback + 1) : i + 1]
        valid = window[~np.isnan(window)]
        if not np.isnan(x[i]) and valid.shape[0] >= minp:
            out[i - start] = np.count_nonzero(valid <= x[i]) / valid.shape[0]
    return out


@pytest.mark.parametrize("seed", range(6))
def test_rank_orders_ties_signed_zeros_and_infinities_as_comparisons_do(seed):
    rng = np.random.default_rng(seed)
    n = 700
    x = np.round(rng.lognormal(0.0, 1.0, n) * rng.choice([-1.0, 1.0], n), 1)
    x[rng.random(n) < 0.15] = 0.0
    x[rng.random(n) < 0.15] = -0.0
    x[rng.random(n) < 0.05] = np.inf
    x[rng.random(n) < 0.05] = -np.inf
    x[rng.random(n) < 0.2] = np.nan
    assert np.any(np.signbit(x) & (x == 0.0)) and np.any(~np.signbit(x) & (x == 0.0))
    lookback = (3, 9, 40, 250, 1000, 64)[seed]
    start = (0, 20, 100, 400, 0, 683)[seed]  # many rows: the sorted ranks and the tree
    out = np.full((3, n - start), -1.0)
    _derive.rank_max(x, start, lookback, out, 2)
    np.testing.assert_array_equal(out[2], _rank_by_counting(x, start, lookback))
    assert np.all(out[:2] == -1.0)


@pytest.mark.parametrize(("lookback", "start"), [(5, 0), (500, 0), (500, 2_999), (3_000, 1_000)])
def test_rank_over_many_chunks_equals_counting(lookback, start):
    """Long series: the rank works through chunks of rows (each with its own ranking of the
    values its windows hold); windows across chunk boundaries, NaN runs across them too."""
    rng = np.random.default_rng(lookback + start)
    n = 14_000
    x = np.round(rng.lognormal(0.0, 1.0, n), 2)
    x[rng.random(n) < 0.1] = np.nan
    x[2_040:2_060] = np.nan  # around the first chunk boundaries
    x[4_090:4_200] = np.nan
    x[8_000:8_100] = x[7_000]  # a run of ties
    out = np.full((1, n - start), -1.0)
    _derive.rank_max(x, start, lookback, out, 0)
    np.testing.assert_array_equal(out[0], _rank_by_counting(x, start, lookback))
