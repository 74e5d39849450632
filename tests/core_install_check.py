"""Run by ``make core-check`` with the interpreter of a venv made by ``pip install .`` (no
extras): the indicator API works, and none of the optional stacks is installed or imported."""

from __future__ import annotations

import importlib.util
import sys

import liqsignals
from liqsignals import sample

absent = ("freqtrade", "ccxt", "matplotlib", "plotly", "sklearn", "ray")
installed = [m for m in absent if importlib.util.find_spec(m) is not None]
assert not installed, f"the core install pulled in {installed}"

df = sample.load_candles("BTC/USDT:USDT", "1h")
feats = liqsignals.liquidation_features(df, window="1w", symbol="BTC/USDT:USDT")
assert len(feats) == len(df) and feats["liq_imbalance"].notna().sum() > 1000
assert not [m for m in absent if m in sys.modules]

try:
    import liqsignals.plotting
except ImportError as exc:
    assert "liqsignals[plot]" in str(exc), exc
else:
    raise AssertionError("liqsignals.plotting imported without the plot extra")
print(f"core install: liquidation_features gave {feats.shape[1]} columns on {len(df)} candles")
