"""Deprecated: the freqtrade glue moved to :mod:`liqsignals.strategy`.

``import liqsignals.freqtrade`` and ``from liqsignals.freqtrade import LiqStrategy`` (and the
other public names of the old module) keep working for one release and emit a
``DeprecationWarning`` naming the new path. This module goes away in the release after.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

_NEW = "liqsignals.strategy"
#: the old module's public names
_MOVED = (
    "LiqStrategy",
    "LiqStreamStats",
    "column_arrays",
    "liq_plot_config",
    "set_signals",
    "stake_factor",
    "startup_candles",
    "stop_beyond",
)
__all__ = list(_MOVED)


def _warn(what: str) -> None:
    warnings.warn(
        f"{what} is deprecated and will be removed in the next release; "
        f"import it from {_NEW} instead",
        DeprecationWarning,
        stacklevel=3,
    )


_warn("liqsignals.freqtrade")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        _warn(f"liqsignals.freqtrade.{name}")
        return getattr(importlib.import_module(_NEW), name)
    raise AttributeError(f"module 'liqsignals.freqtrade' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_MOVED])
