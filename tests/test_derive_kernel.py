"""The derive kernel (liqsignals._derive): its pieces against plain references (pandas' rolling
rank, numpy's window sum), and a stream through the one-candle kernel equal to the batch
function on candles with filler runs and gaps in the optional inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from liqsignals import _derive
from liqsignals.features import FeatureStream, liquidation_features
from liqsignals.sample import load_candles


@pytest.mark.parametrize("lookback", [4, 37, 500])
@pytest.mark.parametrize("start", [0, 5, 900, 1190])
def test_rank_equals_pandas_rolling_rank(lookback, start):
    rng = np.random.default_rng(lookback + start)
    x = np.round(rng.lognormal(0.0, 1.0, 1200), 1)  # many ties
    x[rng.random(x.shape[0]) < 0.3] = np.nan
    x[300:420] = np.nan  # a long gap: too few valid values for a while
    want = (
        pd.Series(x)
        .rolling(lookback, min_periods=max(2, lookback // 4))
        .rank(pct=True, method="max")
        .to_numpy(copy=True)
    )
    want[np.isnan(x)] = np.nan
    out = np.full((2, x.shape[0] - start), -1.0)
    _derive.rank_max(x, start, lookback, out, 1)
    np.testing.assert_array_equal(out[1], want[start:])
    assert np.all(out[0] == -1.0)  # only the given output row is written


@pytest.mark.parametrize("period", [1, 7, 8, 14, 21, 130, 300])
def test_window_sum_in_numpys_order(period):
    rng = np.random.default_rng(period)
    a = rng.lognormal(0.0, 1.0, 700) * 10.0 ** rng.uniform(-4, 4, 700)
    want = np.lib.stride_tricks.sliding_window_view(a, period).sum(axis=1)
    got = np.array([_derive.pairwise_sum(a, i, period) for i in range(a.shape[0] - period + 1)])
    np.testing.assert_array_equal(got, want)  # bit for bit, not within a tolerance


def _with_fillers_and_gaps(n: int) -> pd.DataFrame:
    df = load_candles("BTC/USDT:USDT", "15m").iloc[:n].reset_index(drop=True)
    rng = np.random.default_rng(3)
    for a in (250, 640, 900, 1010):  # filler runs: flat candles at the previous close, no volume
        c = df.loc[a - 1, "close"]
        df.loc[a : a + 11, ["open", "high", "low", "close"]] = c
        df.loc[a : a + 11, "volume"] = 0.0
    oi = 40_000.0 * np.exp(np.cumsum(0.003 * rng.standard_normal(n)))
    oi[rng.random(n) < 0.1] = np.nan  # unknown open interest here and there
    oi[500:560] = np.nan
    df["open_interest"] = oi
    return df


def test_stream_on_fillers_and_gaps_equals_batch():
    df = _with_fillers_and_gaps(1_150)
    kw = {"window": "1d", "symbol": "BTC/USDT:USDT", "intensity_lookback": 200}
    want = liquidation_features(df, **kw).to_numpy()
    assert np.isnan(want).any() and (~np.isnan(want)).any()
    stream = FeatureStream(**kw)
    got = [stream.update_many(df.iloc[:300]).to_numpy()]
    dates = df["date"].astype("datetime64[ns, UTC]").astype("int64").to_numpy()
    cols = ("open", "high", "low", "close", "volume", "open_interest")
    at, k = 300, 0
    while at < len(df):
        size = (1, 1, 3, 1, 70)[k % 5]  # update, update_arrays of 1 and 3, block path
        part = df.iloc[at : at + size]
        if k % 5 == 0:
            got.append(pd.DataFrame([stream.update(r) for r in part.to_dict("records")]).to_numpy())
        elif size < 70:
            vals = {c: part[c].to_numpy() for c in cols}
            got.append(stream.update_arrays(dates[at : at + size], vals))
        else:
            got.append(stream.update_many(part).to_numpy())
        at += len(part)
        k += 1
    np.testing.assert_array_equal(np.concatenate(got), want)
    # the state is bounded by the lookbacks
    assert all(v.shape[0] <= stream.context for v in stream._tail.values())
    assert stream._near.shape[0] == stream.intensity_lookback
