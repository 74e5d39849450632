"""liqsignals: causal liquidation-level estimates for crypto futures, as freqtrade columns.

The public API is re-exported here and loaded lazily, so ``import liqsignals`` stays fast and
never imports freqtrade, ccxt, numba or a plotting library.

Example
-------
>>> import liqsignals
>>> df = liqsignals.sample.load_candles("BTC/USDT:USDT", "1h")      # doctest: +SKIP
>>> feats = liqsignals.liquidation_features(df, window="1w")         # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "LiquidationModel": "liqsignals.model",
    "LEVERAGE_PRESETS": "liqsignals.model",
    "WINDOWS": "liqsignals.model",
    "LiquidationEngine": "liqsignals.engine",
    "liquidation_levels": "liqsignals.engine",
    "liquidation_heatmap": "liqsignals.heatmap",
    "liquidation_map": "liqsignals.heatmap",
    "Heatmap": "liqsignals.heatmap",
    "LiquidationMap": "liqsignals.heatmap",
    "liquidation_features": "liqsignals.features",
    "merge_informative": "liqsignals.features",
    "COLUMNS": "liqsignals.columns",
}


def _submodules() -> set[str]:
    """Every public module and subpackage of liqsignals (imported on first attribute access)."""
    import pkgutil

    return {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}


__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if not name.startswith("_") and name in _submodules():
        module = importlib.import_module(f"liqsignals.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'liqsignals' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(__all__) | _submodules())
