"""Liquidation-price maths, margin tiers and the parameters of the cohort model.

Liquidation price of an isolated-margin position (Binance USDT-M, one-way mode), entry price
``E``, leverage ``L``, quantity ``q`` (coins), maintenance margin rate ``MMR`` and maintenance
amount ``cum`` of the margin tier that contains the position's notional ``E*q``::

    long:  (E * (1 - 1/L) - cum/q) / (1 - MMR)
    short: (E * (1 + 1/L) + cum/q) / (1 + MMR)

(Binance, "How to calculate liquidation price of USDⓈ-M contracts"; the wallet balance of an
isolated position is its initial margin ``E*q/L``.) When no tier table is known the documented
approximation ``E * (1 - 1/L + MMR)`` (long) and ``E * (1 + 1/L - MMR)`` (short) is used.

Two bugs seen in public implementations are avoided on purpose: the MMR is a fraction of the
position's notional, never divided by the leverage; and the tier is chosen from the position's own
notional (``position_notional``), never from the market's total open interest.

Because ``cum/q = cum * E / notional``, the liquidation price is ``E`` times a factor that depends
on leverage and tier only, so every leverage tier maps to a fixed offset on the log price grid.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# parse_duration and timeframe_to_timedelta live in liqsignals._time (re-exported here)
from liqsignals._time import NAMED_DURATIONS, parse_duration, timeframe_to_timedelta
from liqsignals.grid import PriceGrid

__all__ = [
    "LEVERAGE_PRESETS",
    "TRIGGERS",
    "WINDOWS",
    "LiquidationModel",
    "MarginTier",
    "PriceGrid",
    "liquidation_price",
    "load_margin_tiers",
    "parse_duration",
    "resolve_model",
    "timeframe_to_timedelta",
]

#: Window presets, as in the commercial heatmaps (1M = 30 days, 1y = 365 days): the one table of
#: named durations, :data:`liqsignals._time.NAMED_DURATIONS`.
WINDOWS: dict[str, pd.Timedelta] = NAMED_DURATIONS

#: The prices that may trigger liquidations (:attr:`LiquidationModel.trigger`).
TRIGGERS = ("mark", "last")

#: Named leverage mixes: (leverages, weights). "all" spreads opened notional over the usual
#: retail leverages; "high" keeps only the high-leverage crowd (the "high leverage" variant of
#: commercial heatmaps); "low" is the cautious end of the market.
LEVERAGE_PRESETS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "all": ((5.0, 10.0, 25.0, 50.0, 100.0), (0.15, 0.30, 0.25, 0.20, 0.10)),
    "high": ((25.0, 50.0, 100.0), (0.40, 0.35, 0.25)),
    "low": ((2.0, 3.0, 5.0, 10.0), (0.20, 0.30, 0.30, 0.20)),
}


@dataclass(frozen=True)
class MarginTier:
    """One maintenance-margin bracket of an exchange (notional in quote currency)."""

    min_notional: float
    max_notional: float
    maintenance_margin_rate: float
    max_leverage: float
    maintenance_amount: float


def _freqtrade_tier_file() -> Path | None:
    # find_spec locates the package without importing it (import liqsignals stays light)
    spec = importlib.util.find_spec("freqtrade")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "exchange" / "binance_leverage_tiers.json"
        if path.is_file():
            return path
    return None


@lru_cache(maxsize=4)
def _tier_tables(source: str) -> dict[str, list[MarginTier]]:
    tables: dict[str, list[MarginTier]] = {}
    if source == "freqtrade":
        path = _freqtrade_tier_file()
        if path is None:
            return tables
        raw = json.loads(path.read_text())
        for symbol, rows in raw.items():
            tables[symbol] = [
                MarginTier(
                    float(r["minNotional"]),
                    float(r["maxNotional"]),
                    float(r["maintenanceMarginRate"]),
                    float(r["maxLeverage"]),
                    float((r.get("info") or {}).get("cum", 0.0) or 0.0),
                )
                for r in rows
            ]
    else:
        path = Path(__file__).with_name("tiers") / "binance_usdm.json"
        raw = json.loads(path.read_text())
        for symbol, rows in raw["tiers"].items():
            tables[symbol] = [MarginTier(*map(float, r)) for r in rows]
    return tables


def load_margin_tiers(symbol: str) -> list[MarginTier] | None:
    """Binance USDT-M margin tiers for ``symbol`` (ccxt form, e.g. ``"BTC/USDT:USDT"``).

    Reads freqtrade's shipped ``binance_leverage_tiers.json`` when freqtrade is installed (without
    importing freqtrade), else the table bundled with liqsignals (BTC and ETH). Returns ``None``
    when the symbol is in neither.
    """
    for source in ("freqtrade", "bundled"):
        table = _tier_tables(source).get(symbol)
        if table:
            return sorted(table, key=lambda t: t.min_notional)
    return None


def _tier_for(tiers: Sequence[MarginTier], notional: float, leverage: float) -> MarginTier:
    """The tier of a position of ``notional`` at ``leverage``.

    A position can only be as large as the highest tier that still allows its leverage; a larger
    configured notional is capped there (a 100x position cannot sit in a 20x tier).
    """
    allowed = [t for t in tiers if t.max_leverage >= leverage]
    if not allowed:
        raise ValueError(
            f"leverage {leverage:g}x exceeds every tier's maximum leverage "
            f"(max {max(t.max_leverage for t in tiers):g}x)"
        )
    cap = max(t.max_notional for t in allowed)
    n = min(notional, cap * (1 - 1e-12))
    for t in allowed:
        if t.min_notional <= n < t.max_notional:
            return t
    return allowed[-1]


def liquidation_price(
    entry: float | np.ndarray,
    leverage: float,
    side: str,
    *,
    maintenance_margin_rate: float | None = None,
    maintenance_amount: float = 0.0,
    notional: float | None = None,
) -> float | np.ndarray:
    """Isolated-margin liquidation price of a position.

    Parameters
    ----------
    entry : entry price(s) ``E``
    leverage : ``L`` (e.g. 10 for 10x)
    side : ``"long"`` or ``"short"``
    maintenance_margin_rate : ``MMR`` of the position's tier
    maintenance_amount : ``cum`` of the tier, in quote currency (needs ``notional``)
    notional : the position's notional ``E*q`` in quote currency

    With ``maintenance_amount=0`` the tier formula reduces to ``E*(1-1/L)/(1-MMR)`` (long); the
    simple approximation ``E*(1-1/L+MMR)`` differs from it by O(MMR/L) and is what
    :class:`LiquidationModel` uses when no tier table is known.

    >>> round(liquidation_price(100.0, 10, "long", maintenance_margin_rate=0.004), 4)
    90.3614
    """
    if leverage <= 1.0 and side == "long":
        raise ValueError("a long with leverage <= 1 is never liquidated")
    if maintenance_margin_rate is None:
        raise ValueError("maintenance_margin_rate is required")
    cum_over_n = 0.0
    if maintenance_amount:
        if not notional:
            raise ValueError("maintenance_amount needs the position's notional")
        cum_over_n = maintenance_amount / notional
    mmr = maintenance_margin_rate
    if side == "long":
        return entry * (1.0 - 1.0 / leverage - cum_over_n) / (1.0 - mmr)
    if side == "short":
        return entry * (1.0 + 1.0 / leverage + cum_over_n) / (1.0 + mmr)
    raise ValueError(f"side must be 'long' or 'short', got {side!r}")


def _check_positive(name: str, value: float, allow_zero: bool = False) -> None:
    if not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


@dataclass(frozen=True)
class LiquidationModel:
    """Parameters of the cohort model of where leveraged positions get liquidated.

    Every parameter is validated on construction; ``LiquidationModel.preset(name)`` and
    ``model.replace(**changes)`` make variants.

    Parameters
    ----------
    window : positions older than this expire: ``12h, 1d, 3d, 1w, 2w, 1M, 3M, 6M, 1y`` or any
        duration (``"36h"``). Also the warm-up: outputs are NaN until one window has passed.
    leverage : preset name from :data:`LEVERAGE_PRESETS` (``"all"``, ``"high"``, ``"low"``)
    leverages, leverage_weights : explicit leverage mix (overrides ``leverage``); weights are
        normalised to sum to 1.
    symbol : ccxt symbol whose Binance margin tiers to use (``"BTC/USDT:USDT"``); ``None`` uses
        the approximation ``E*(1-1/L+MMR)`` with ``maintenance_margin_rate``.
    maintenance_margin_rate : MMR for the approximation when no tier table is used.
    position_notional : assumed notional (quote) of one position, which picks its margin tier.
    bin_bp : width of a price bin in basis points of price (log-spaced grid anchored at price 1,
        so bins do not depend on the data).
    participation : without open interest, the share of each candle's quote volume assumed to open
        new leveraged positions.
    close_half_life : without open interest, surviving positions are closed by their owners at
        this half-life (``None`` disables the decay).
    decay_with_open_interest : also apply the half-life decay when open interest is given.
    entry_samples : entry prices per candle, drawn at equal-probability strata of a triangular
        distribution over ``[low, high]`` with its mode at the typical price ``(h+l+c)/3``.
    direction_tilt : candles-only side split; long share ``0.5 + 0.5*tilt*(close-open)/(high-low)``.
    band_pct : the band (in % of price) for ``liq_long_band`` / ``liq_short_band``.
    cluster_range_pct : how far from price (in %) clusters, magnets and gaps are searched.
    cluster_dense_factor : a bin is dense when its mass is at least this multiple of the side's
        mean bin mass within the search range.
    cluster_max_gap_bins : a cluster may bridge this many non-dense bins.
    cluster_min_share : a cluster is significant when it holds at least this share of its side's
        mass within the search range.
    gap_factor : a bin is "meaningful mass" for the liquidity-gap columns when its combined mass is
        at least this multiple of the mean bin mass within the search range.
    magnet_distance_power : magnet score = cluster share / distance_pct ** power.
    cluster_min_mass : absolute floor, in quote currency, below which mass is not significant: a
        cluster, a band total or a liquidity-gap bin needs at least this much (rounding dust left
        in an emptied book is not a level). 0 disables it.
    trigger : which price liquidates positions: ``"mark"`` (default; exchanges liquidate on the
        mark price) uses each candle's ``mark_high`` / ``mark_low`` inputs where they are known
        and its last-price high/low elsewhere (no mark columns: exactly the last-price model);
        ``"last"`` always uses the last-price high/low. Only liquidation reads the mark.
    """

    window: str | pd.Timedelta = "1w"
    leverage: str = "all"
    leverages: tuple[float, ...] | None = None
    leverage_weights: tuple[float, ...] | None = None
    symbol: str | None = None
    maintenance_margin_rate: float = 0.005
    position_notional: float = 10_000.0
    bin_bp: float = 10.0
    participation: float = 0.05
    close_half_life: str | pd.Timedelta | None = "2d"
    decay_with_open_interest: bool = False
    entry_samples: int = 5
    direction_tilt: float = 0.5
    band_pct: float = 5.0
    cluster_range_pct: float = 10.0
    cluster_dense_factor: float = 2.0
    cluster_max_gap_bins: int = 1
    cluster_min_share: float = 0.05
    gap_factor: float = 1.0
    magnet_distance_power: float = 1.0
    cluster_min_mass: float = 1.0
    trigger: str = "mark"
    _tiers: tuple[MarginTier, ...] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        window_td = parse_duration(self.window, "window")
        if self.close_half_life is not None:
            parse_duration(self.close_half_life, "close_half_life")
        if self.leverages is None:
            if self.leverage not in LEVERAGE_PRESETS:
                raise ValueError(
                    f"leverage preset {self.leverage!r} unknown; choose one of "
                    f"{sorted(LEVERAGE_PRESETS)} or pass leverages=... and leverage_weights=..."
                )
            levs, weights = LEVERAGE_PRESETS[self.leverage]
        else:
            levs = tuple(float(x) for x in self.leverages)
            weights = tuple(
                float(x) for x in (self.leverage_weights or (1.0 / len(levs),) * len(levs))
            )
        if not levs or len(levs) != len(weights):
            raise ValueError("leverages and leverage_weights must be non-empty and equally long")
        if any(lv <= 1.0 for lv in levs):
            raise ValueError(f"every leverage must be > 1 (a 1x long is never liquidated): {levs}")
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"leverage_weights must be >= 0 with a positive sum: {weights}")
        object.__setattr__(self, "leverages", levs)
        # stored as given (normalised where used), so a saved model reloads bit for bit
        object.__setattr__(self, "leverage_weights", weights)
        object.__setattr__(self, "window", window_td)
        _check_positive("bin_bp", self.bin_bp)
        if self.bin_bp > 500:
            raise ValueError(f"bin_bp must be <= 500 (5%), got {self.bin_bp}")
        _check_positive("participation", self.participation)
        _check_positive("position_notional", self.position_notional)
        if not 0 <= self.maintenance_margin_rate < 0.5:
            raise ValueError("maintenance_margin_rate must be in [0, 0.5)")
        if not isinstance(self.entry_samples, int) or not 1 <= self.entry_samples <= 64:
            raise ValueError(f"entry_samples must be an int in [1, 64], got {self.entry_samples!r}")
        if not 0 <= self.direction_tilt <= 1:
            raise ValueError(f"direction_tilt must be in [0, 1], got {self.direction_tilt}")
        _check_positive("band_pct", self.band_pct)
        _check_positive("cluster_range_pct", self.cluster_range_pct)
        if self.band_pct >= 100 or self.cluster_range_pct >= 100:
            raise ValueError("band_pct and cluster_range_pct must be below 100")
        _check_positive("cluster_dense_factor", self.cluster_dense_factor, allow_zero=True)
        if not isinstance(self.cluster_max_gap_bins, int) or self.cluster_max_gap_bins < 0:
            raise ValueError("cluster_max_gap_bins must be an int >= 0")
        if not 0 <= self.cluster_min_share <= 1:
            raise ValueError("cluster_min_share must be in [0, 1]")
        _check_positive("gap_factor", self.gap_factor, allow_zero=True)
        _check_positive("magnet_distance_power", self.magnet_distance_power, allow_zero=True)
        _check_positive("cluster_min_mass", self.cluster_min_mass, allow_zero=True)
        if self.trigger not in TRIGGERS:
            raise ValueError(f"trigger must be one of {TRIGGERS}, got {self.trigger!r}")
        tiers: tuple[MarginTier, ...] | None = None
        if self._tiers is not None:
            tiers = tuple(self._tiers)
        elif self.symbol is not None:
            found = load_margin_tiers(self.symbol)
            tiers = tuple(found) if found else None
        if tiers is not None:
            for lv in levs:
                _tier_for(tiers, self.position_notional, lv)  # raises for impossible leverage
        object.__setattr__(self, "_tiers", tiers)
        _ = window_td

    # ------------------------------------------------------------------ constructors
    @classmethod
    def preset(cls, name: str, **changes: Any) -> LiquidationModel:
        """A named preset: a leverage preset (``"all"``, ``"high"``, ``"low"``) or a calibrated
        preset shipped in ``liqsignals/presets/<name>.json``."""
        if name in LEVERAGE_PRESETS:
            return cls(leverage=name, **changes)
        path = Path(__file__).with_name("presets") / f"{name}.json"
        if not path.is_file():
            raise ValueError(
                f"unknown preset {name!r}; leverage presets: {sorted(LEVERAGE_PRESETS)}, "
                f"calibrated presets: {sorted(p.stem for p in path.parent.glob('*.json'))}"
            )
        return cls.from_json(path, **changes)

    @classmethod
    def from_json(cls, path: str | Path, **changes: Any) -> LiquidationModel:
        """Load parameters from a JSON file (the ``params`` object, or the top level)."""
        raw = json.loads(Path(path).read_text())
        params = dict(raw.get("params", raw))
        for key in ("leverages", "leverage_weights"):
            if params.get(key) is not None:
                params[key] = tuple(params[key])
        params.update(changes)
        return cls(**params)

    def replace(self, **changes: Any) -> LiquidationModel:
        """A copy with some parameters changed (validated again)."""
        if not changes:
            return self
        if "leverage" in changes and "leverages" not in changes:
            changes = {**changes, "leverages": None, "leverage_weights": None}
        if "symbol" in changes and "_tiers" not in changes:
            changes = {**changes, "_tiers": None}
        return dataclasses.replace(self, **changes)

    def with_tiers(self, tiers: Sequence[MarginTier] | None) -> LiquidationModel:
        """A copy that uses ``tiers`` (a venue's table: :func:`liqsignals.tiers.load_tiers`) in
        place of the Binance table ``symbol`` selects; ``None``: the flat
        ``maintenance_margin_rate``. The tiers are not part of :meth:`to_dict` (a saved engine
        keeps the liquidation factors it used)."""
        if tiers is None:
            return dataclasses.replace(self, symbol=None, _tiers=None)
        return dataclasses.replace(self, _tiers=tuple(tiers))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly parameters (round-trips through :meth:`from_json`)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name.startswith("_"):
                continue
            v = getattr(self, f.name)
            if isinstance(v, pd.Timedelta):
                v = _format_duration(v)
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    # ------------------------------------------------------------------ derived values
    @property
    def window_td(self) -> pd.Timedelta:
        return pd.Timedelta(self.window)

    @property
    def half_life_td(self) -> pd.Timedelta | None:
        if self.close_half_life is None:
            return None
        return parse_duration(self.close_half_life, "close_half_life")

    @property
    def tiers(self) -> tuple[MarginTier, ...] | None:
        return self._tiers

    def liquidation_factors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per leverage: (long factor, short factor, weight), liquidation price = entry * factor."""
        levs = self.leverages or ()
        f_long = np.empty(len(levs))
        f_short = np.empty(len(levs))
        for i, lv in enumerate(levs):
            if self._tiers is not None:
                tier = _tier_for(self._tiers, self.position_notional, lv)
                notional = min(self.position_notional, tier.max_notional)
                f_long[i] = liquidation_price(
                    1.0,
                    lv,
                    "long",
                    maintenance_margin_rate=tier.maintenance_margin_rate,
                    maintenance_amount=tier.maintenance_amount,
                    notional=notional,
                )
                f_short[i] = liquidation_price(
                    1.0,
                    lv,
                    "short",
                    maintenance_margin_rate=tier.maintenance_margin_rate,
                    maintenance_amount=tier.maintenance_amount,
                    notional=notional,
                )
            else:
                mmr = self.maintenance_margin_rate
                f_long[i] = 1.0 - 1.0 / lv + mmr
                f_short[i] = 1.0 + 1.0 / lv - mmr
        if np.any(f_long <= 0):
            raise ValueError("a leverage/margin combination gives a non-positive liquidation price")
        w = np.asarray(self.leverage_weights, dtype=np.float64)
        return f_long, f_short, w / w.sum()

    @property
    def grid(self) -> PriceGrid:
        """The model's log price grid (:class:`liqsignals.grid.PriceGrid` of ``bin_bp``)."""
        return PriceGrid(self.bin_bp)

    def bin_log_width(self) -> float:
        """Natural log of the ratio between neighbouring bin edges (``grid.log_base``)."""
        return self.grid.log_base

    def price_to_bin(self, price: float | np.ndarray) -> np.ndarray:
        """Absolute bin index of a price: bin ``k`` covers ``[B**k, B**(k+1))``."""
        return self.grid.price_to_bin(price)

    def bin_to_price(self, k: np.ndarray | int, where: float = 0.5) -> np.ndarray:
        """Price of bin ``k`` (``where=0``: lower edge, ``0.5``: geometric centre, ``1``: upper)."""
        return self.grid.bin_to_price(k, where)


def _format_duration(td: pd.Timedelta) -> str:
    for name, value in WINDOWS.items():
        if value == td:
            return name
    hours = td / pd.Timedelta(hours=1)
    return f"{hours:g}h"


def resolve_model(model: LiquidationModel | None, params: Mapping[str, Any]) -> LiquidationModel:
    """The model a function was asked for: ``model`` (default: a default model) with ``params``
    overriding its fields. A ``model`` that is not a :class:`LiquidationModel` is a ValueError."""
    if model is None:
        return LiquidationModel(**params)
    if not isinstance(model, LiquidationModel):
        raise ValueError(f"model must be a LiquidationModel, got {type(model).__name__}")
    return model.replace(**params) if params else model
