"""liqsignals.indicators against the libraries whose values they reproduce (ta, pandas)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import ta
from hypothesis import given, settings
from hypothesis import strategies as st

from liqsignals import sample
from liqsignals.indicators import rolling_mean, rsi


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    return sample.load_candles("BTC/USDT:USDT", "15m")


def ta_rsi(close: pd.Series, window: int) -> np.ndarray:
    return ta.momentum.RSIIndicator(close=close, window=window).rsi().to_numpy()


@pytest.mark.parametrize("window", [2, 14, 30])
def test_rsi_equals_ta_bit_for_bit_on_real_candles(real: pd.DataFrame, window: int) -> None:
    close = real["close"]
    ours = rsi(close, window)
    assert isinstance(ours, pd.Series) and ours.index.equals(close.index)
    np.testing.assert_array_equal(ours.to_numpy(), ta_rsi(close, window))
    assert np.isnan(ours.iloc[: window - 1]).all() and not np.isnan(ours.iloc[window - 1 :]).any()


prices = st.lists(
    st.one_of(
        st.floats(1.0, 1000.0, allow_nan=False),
        st.just(float("nan")),  # a missing close
        st.just(100.0),  # flat stretches: no lower close, RSI 100
    ),
    min_size=1,
    max_size=120,
)


@settings(max_examples=200, deadline=None)
@given(values=prices, window=st.integers(1, 20))
def test_rsi_matches_ta_on_any_series(values: list[float], window: int) -> None:
    close = pd.Series(values, dtype=float)
    np.testing.assert_allclose(
        rsi(close, window).to_numpy(), ta_rsi(close, window), rtol=1e-12, atol=1e-9
    )


def test_rsi_is_100_without_a_lower_close_and_takes_arrays() -> None:
    close = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    out = rsi(close, 3)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, [np.nan, np.nan, 100.0, 100.0, 100.0])
    falling = rsi(close[::-1].copy(), 3)
    np.testing.assert_array_equal(falling[2:], [0.0, 0.0, 0.0])


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.floats(0.0, 1e6, allow_nan=False), st.just(float("nan"))),
        min_size=0,
        max_size=150,
    ),
    window=st.integers(1, 30),
)
def test_rolling_mean_matches_pandas(values: list[float], window: int) -> None:
    s = pd.Series(values, dtype=float)
    theirs = s.rolling(window, min_periods=window).mean().to_numpy()
    ours = rolling_mean(s, window).to_numpy()
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


@settings(max_examples=50, deadline=None)
@given(start=st.integers(0, 2000), window=st.sampled_from([3, 48, 200]))
def test_rolling_mean_does_not_depend_on_earlier_history(start: int, window: int) -> None:
    """The value at a candle is the same on the whole series and on any tail that holds its
    window (a live bot's frame against the backtest's), to the last bit."""
    volume = sample.load_candles("BTC/USDT:USDT", "15m")["volume"].to_numpy()[:3000]
    whole = rolling_mean(volume, window)
    tail = rolling_mean(volume[start:], window)
    np.testing.assert_array_equal(tail[window - 1 :], whole[start + window - 1 :])


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "14"])
def test_window_must_be_a_positive_int(bad: object) -> None:
    with pytest.raises(ValueError, match="window must be a positive int"):
        rsi(np.ones(5), bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="window must be a positive int"):
        rolling_mean(np.ones(5), bad)  # type: ignore[arg-type]
