"""Position size near liquidation zones, and the leverage cap."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["capped_leverage", "row_stake_factor", "sized_stake", "stake_factor"]


def stake_factor(
    intensity_bucket: float,
    distance_atr: float,
    *,
    near_atr: float = 3.0,
    factors: Mapping[int, float] | None = None,
) -> float:
    """Size multiplier near liquidation zones: the usual advice of traders' guides is to trade
    smaller when a high-intensity cluster sits close to price (violent moves through it).

    ``factors`` maps intensity bucket (0 low .. 3 extreme) to a multiplier applied when the nearest
    cluster is within ``near_atr`` ATRs; far or unknown clusters give 1.0.

    >>> stake_factor(3, 1.5)
    0.5
    >>> stake_factor(3, 8.0)
    1.0
    """
    factors = {2: 0.75, 3: 0.5} if factors is None else factors
    if not (math.isfinite(intensity_bucket) and math.isfinite(distance_atr)):
        return 1.0
    if abs(distance_atr) > near_atr:
        return 1.0
    return float(factors.get(int(intensity_bucket), 1.0))


def row_stake_factor(
    row: Mapping[str, Any], side: str, near_atr: float, factors: Mapping[int, float]
) -> float:
    """:func:`stake_factor` for an analysed candle ``row`` and a trade ``side``: its intensity
    bucket and the distance to the adverse cluster (long liquidations below a long, short
    liquidations above a short); missing columns count as unknown (1.0)."""
    adverse = "long" if side == "long" else "short"
    return stake_factor(
        float(row.get("liq_intensity_bucket", math.nan)),
        float(row.get(f"liq_{adverse}_cluster_dist_atr", math.nan)),
        near_atr=near_atr,
        factors=dict(factors),
    )


def sized_stake(proposed: float, factor: float, min_stake: float | None, max_stake: float) -> float:
    """``proposed * factor``, raised to ``min_stake`` (when given) and capped at ``max_stake``."""
    stake = proposed * factor
    if min_stake is not None and stake < min_stake:
        stake = min_stake
    return float(min(stake, max_stake))


def capped_leverage(cap: float, max_leverage: float) -> float:
    """The configured cap, never above what the exchange allows for the pair."""
    return float(min(cap, max_leverage))
