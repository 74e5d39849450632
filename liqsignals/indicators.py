"""Fast classic indicators for strategies that run on every new candle of a live bot.

A dry-run / live bot recomputes a strategy's indicators over its whole candle frame (about 1,700
rows) on each new candle. The ``ta`` package builds several pandas objects per indicator, which
costs a few milliseconds per call; these are the same numbers from one compiled loop:

* :func:`rsi` equals ``ta.momentum.RSIIndicator(close, window).rsi()`` (Wilder's smoothing as
  pandas' ``ewm(alpha=1/window, adjust=False, min_periods=window)``, same update formula, so the
  values agree to the last bit in practice and are tested to 1e-12);
* :func:`rolling_mean` equals ``Series.rolling(window, min_periods=window).mean()`` up to
  floating-point rounding, and sums each window on its own, so a value does not depend on how
  much history precedes it (bit-identical on any tail of the series, which keeps a live bot's
  values equal to the backtest's).

numba is imported on first use, like the engine's kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["rolling_mean", "rsi"]


@cache
def _compiled() -> tuple[Callable[..., Any], Callable[..., Any]]:
    import numba

    @numba.njit(cache=True, nogil=True)
    def rsi_kernel(close: np.ndarray, window: int) -> np.ndarray:  # pragma: no cover - jitted
        n = close.shape[0]
        out = np.full(n, np.nan)
        if n == 0:
            return out
        alpha = 1.0 / window
        old_wt = 1.0 - alpha  # pandas' ewm(adjust=False): old weight (1 - alpha), new alpha
        # the first difference is NaN, which ta's ``where(diff > 0, 0.0)`` turns into 0
        up = 0.0
        down = 0.0
        for i in range(n):
            if i == 0:
                u = 0.0
                d = 0.0
            else:
                diff = close[i] - close[i - 1]
                u = diff if diff > 0.0 else 0.0
                d = -diff if diff < 0.0 else 0.0
            if i == 0:
                up = u
                down = d
            else:
                if up != u:
                    up = (old_wt * up + alpha * u) / (old_wt + alpha)
                if down != d:
                    down = (old_wt * down + alpha * d) / (old_wt + alpha)
            if i + 1 >= window:
                if down == 0.0:
                    out[i] = 100.0
                else:
                    out[i] = 100.0 - 100.0 / (1.0 + up / down)
        return out

    @numba.njit(cache=True, nogil=True)
    def mean_kernel(values: np.ndarray, window: int) -> np.ndarray:  # pragma: no cover - jitted
        n = values.shape[0]
        out = np.full(n, np.nan)
        for i in range(window - 1, n):
            total = 0.0
            for j in range(i - window + 1, i + 1):
                total += values[j]
            out[i] = total / window  # NaN in the window gives NaN, as min_periods=window does
        return out

    return rsi_kernel, mean_kernel


def _values(series: pd.Series | np.ndarray, name: str) -> np.ndarray:
    arr = series.to_numpy(dtype=np.float64) if isinstance(series, pd.Series) else series
    return np.ascontiguousarray(arr, dtype=np.float64)


def _window(window: int) -> int:
    if not isinstance(window, int | np.integer) or isinstance(window, bool) or window < 1:
        raise ValueError(f"window must be a positive int, got {window!r}")
    return int(window)


def _like(series: pd.Series | np.ndarray, values: np.ndarray, name: str) -> Any:
    if isinstance(series, pd.Series):
        return pd.Series(values, index=series.index, name=name)
    return values


def rsi(close: pd.Series | np.ndarray, window: int = 14) -> Any:
    """Relative strength index with Wilder's smoothing, the values of ``ta``'s
    ``RSIIndicator(close, window).rsi()``: NaN for the first ``window - 1`` candles, 100 while no
    candle has closed lower. A NaN close counts as no change (as in ``ta``). Returns a Series
    aligned to ``close`` (an array for an array)."""
    values = _values(close, "close")
    return _like(close, _compiled()[0](values, _window(window)), "rsi")


def rolling_mean(values: pd.Series | np.ndarray, window: int) -> Any:
    """Mean of the last ``window`` values, NaN until ``window`` values exist or when one of them
    is NaN (``rolling(window, min_periods=window).mean()``). Returns a Series aligned to
    ``values`` (an array for an array)."""
    arr = _values(values, "values")
    name = values.name if isinstance(values, pd.Series) else None
    return _like(values, _compiled()[1](arr, _window(window)), str(name) if name else "mean")
