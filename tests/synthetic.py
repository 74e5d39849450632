"""Deterministic synthetic candle frames for property tests (seeded, never wall-clock)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def random_candles(
    seed: int,
    n: int,
    *,
    freq: str = "1h",
    start: str = "2024-01-01",
    price: float = 100.0,
    vol: float = 0.01,
    gaps: bool = False,
    fillers: bool = False,
    open_interest: bool = False,
    taker: bool = False,
    ls_ratio: bool = False,
    nan_share: float = 0.0,
) -> pd.DataFrame:
    """A random-walk candle frame in freqtrade's layout, with optional extra inputs.

    ``gaps`` drops some rows (time gaps); ``fillers`` turns some rows into zero-volume filler
    candles (O=H=L=C=previous close); ``nan_share`` blanks that share of the optional inputs.
    """
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, vol, n)
    close = price * np.exp(np.cumsum(steps))
    open_ = np.concatenate([[price], close[:-1]])
    wick = np.abs(rng.normal(0.0, vol * 0.7, (2, n)))
    high = np.maximum(open_, close) * (1 + wick[0])
    low = np.minimum(open_, close) * (1 - wick[1])
    volume = rng.lognormal(6.0, 0.8, n)
    dates = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    df = pd.DataFrame(
        {"date": dates, "open": open_, "high": high, "low": low, "close": close, "volume": volume}
    )
    if fillers and n > 3:
        idx = rng.choice(np.arange(1, n), size=max(1, n // 15), replace=False)
        for i in sorted(idx):
            p = df.loc[i - 1, "close"]
            df.loc[i, ["open", "high", "low", "close", "volume"]] = [p, p, p, p, 0.0]
    if open_interest:
        oi = 1e4 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
        df["open_interest"] = oi
    if taker:
        df["taker_buy_volume"] = df["volume"] * rng.uniform(0.2, 0.8, n)
    if ls_ratio:
        df["long_short_ratio"] = rng.uniform(0.5, 2.5, n)
    if nan_share > 0:
        for col in ("open_interest", "taker_buy_volume", "long_short_ratio"):
            if col in df.columns:
                mask = rng.random(n) < nan_share
                df.loc[mask, col] = np.nan
    if gaps and n > 10:
        drop = rng.choice(np.arange(1, n), size=n // 10, replace=False)
        df = df.drop(index=drop).reset_index(drop=True)
    return df
