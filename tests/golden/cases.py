"""The golden cases: every ``liq_*`` column on the bundled BTC and ETH candles.

Used by ``tests/test_golden.py`` and by ``python tests/golden/make_golden.py``, which writes
``liq_hashes.json`` from a checkout (the commit before a change). Only long-standing public
names are used here (``liquidation_features``, ``liqsignals.multi``, ``liqsignals.sample``), so
the same file runs on the old and on the new code.

Cases: BTC and ETH x 15m and 1h x windows 1d, 1w and 1M, each plain (candles only) and with
extra inputs (open interest, taker buy volume and long/short ratio, synthesised from the
candles with a fixed seed: the bundled data has none); plus a two-venue book (the second venue
is the same candles with prices 0.01 % higher and 60 % of the volume) per pair and timeframe
with the 1w window.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd

PAIRS = {"BTC": "BTC/USDT:USDT", "ETH": "ETH/USDT:USDT"}
TIMEFRAMES = ("15m", "1h")
WINDOWS = ("1d", "1w", "1M")


def column_hash(values: pd.Series) -> str:
    """SHA-256 of a column's float64 bytes, NaN made canonical (one bit pattern)."""
    arr = np.ascontiguousarray(values.to_numpy(dtype=np.float64, na_value=np.nan))
    arr = np.where(np.isnan(arr), np.float64("nan"), arr)
    return hashlib.sha256(arr.tobytes()).hexdigest()


def with_inputs(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The candles plus deterministic open interest, taker buy volume and long/short ratio."""
    rng = np.random.default_rng(seed)
    n = len(df)
    i = np.arange(n)
    out = df.copy()
    base = 50_000.0 * (1.0 + 0.3 * np.sin(i / 700.0))
    out["open_interest"] = base * np.exp(np.cumsum(0.002 * rng.standard_normal(n)) * 0.1)
    share = np.clip(0.5 + 0.08 * rng.standard_normal(n), 0.05, 0.95)
    out["taker_buy_volume"] = out["volume"].to_numpy() * share
    out["long_short_ratio"] = np.exp(0.25 * rng.standard_normal(n))
    return out


def second_venue(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for col in ("open", "high", "low", "close"):
        out[col] = out[col] * 1.0001
    out["volume"] = out["volume"] * 0.6
    return out


def cases() -> Iterator[tuple[str, Callable[[], pd.DataFrame]]]:
    import liqsignals
    from liqsignals import sample

    for short, pair in PAIRS.items():
        for tf in TIMEFRAMES:
            candles = sample.load_candles(pair, tf)
            seed = 7 + 10 * list(PAIRS).index(short) + TIMEFRAMES.index(tf)
            rich = with_inputs(candles, seed)
            for window in WINDOWS:
                yield (
                    f"{short}-{tf}-{window}-candles",
                    lambda c=candles, w=window, p=pair: liqsignals.liquidation_features(
                        c, window=w, symbol=p
                    ),
                )
                yield (
                    f"{short}-{tf}-{window}-inputs",
                    lambda c=rich, w=window, p=pair: liqsignals.liquidation_features(
                        c, window=w, symbol=p
                    ),
                )

            def multi(c: pd.DataFrame = candles, p: str = pair) -> pd.DataFrame:
                from liqsignals.multi import liquidation_features_multi

                return liquidation_features_multi(
                    {"binance": c, "bybit": second_venue(c)}, window="1w", symbol=p
                )

            yield f"{short}-{tf}-1w-multi", multi


def hashes(frame: pd.DataFrame) -> dict[str, str]:
    return {c: column_hash(frame[c]) for c in frame.columns if c.startswith("liq_")}
