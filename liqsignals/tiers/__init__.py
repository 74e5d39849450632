"""Maintenance-margin tiers per venue: where each exchange's tier table comes from.

:func:`load_tiers` answers "which tiers does ``venue`` use for ``symbol``" with a
:class:`VenueTiers` that says where the table came from and whether it is the venue's own:

* **binance** (also ``binanceusdm``): Binance USDT-M's own brackets, from freqtrade's shipped
  ``freqtrade/exchange/binance_leverage_tiers.json`` when freqtrade is installed (read without
  importing freqtrade), else the table bundled here (``binance_usdm.json``, BTC and ETH; see its
  ``source``). :func:`liqsignals.model.load_margin_tiers` is this path.
* **bybit, okx and any other venue**: no tier table of theirs ships with the project or any
  package it installs (ccxt ships none: its ``fetch_leverage_tiers`` asks the exchange's API,
  which these machines cannot reach; freqtrade ships Binance's only). Rather than invent one, such
  a venue uses the documented **approximation**: Binance's table for the same symbol (the venues'
  first tiers are close: a maintenance margin rate of a few tenths of a percent for BTC and ETH),
  or, for a symbol Binance's table lacks, the model's flat ``maintenance_margin_rate``. The result
  says ``approximate=True`` and the first use per venue and symbol is logged (logger
  ``liqsignals.tiers``, WARNING).
* **a user file** overrides either: the JSON that ccxt's ``fetch_leverage_tiers`` returns
  (``{symbol: [{"tier", "minNotional", "maxNotional", "maintenanceMarginRate",
  "maxLeverage", "info"}, ...]}``), saved from a machine that can reach the exchange. The
  maintenance amount of a tier is ``info["cum"]`` (Binance) or ``info["mmDeduction"]`` (Bybit)
  when given, else derived from the table itself as the exchanges define it (``cum_i = cum_{i-1}
  + minNotional_i * (MMR_i - MMR_{i-1})``, which keeps the maintenance margin continuous across
  tiers). A malformed file raises ``ValueError`` naming the file, symbol, tier and field; a
  well-formed file without the symbol falls back as above, with a warning.

:func:`venue_model` applies a venue's tiers to a model; :func:`venue_models` does it for the
venues of a combined book (:mod:`liqsignals.multi`).

Every table assumes **isolated margin**: the liquidation price of a position depends on its own
margin only (see :mod:`liqsignals.model`). A cross-margin position shares the account's whole
balance, so it is liquidated later (further from its entry) than the isolated price the model
places it at, by an amount that depends on the rest of the account, which nothing here knows.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liqsignals.model import LiquidationModel, MarginTier, load_margin_tiers

__all__ = [
    "OWN_TABLES",
    "VenueTiers",
    "load_tiers",
    "parse_ccxt_tiers",
    "venue_model",
    "venue_models",
]

logger = logging.getLogger(__name__)

#: venues whose own tier table the project has (aliases map to these names)
OWN_TABLES = ("binance",)
_ALIASES = {"binanceusdm": "binance", "okex": "okx", "okx5": "okx"}
_APPROXIMATION = "approximation: Binance USDT-M's table for the same symbol"
_FLAT = "approximation: the model's flat maintenance_margin_rate (no table for the symbol)"
_noted: set[tuple[str, str | None, str]] = set()


@dataclass(frozen=True)
class VenueTiers:
    """The margin tiers a venue uses for a symbol (:func:`load_tiers`).

    ``tiers``: the brackets by notional, or ``None`` (the model's flat
    ``maintenance_margin_rate``); ``source``: where they come from; ``approximate``: True when
    they are not the venue's own table.
    """

    venue: str
    symbol: str | None
    tiers: tuple[MarginTier, ...] | None
    source: str
    approximate: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "venue": self.venue,
            "symbol": self.symbol,
            "source": self.source,
            "approximate": self.approximate,
            "tiers": None
            if self.tiers is None
            else [
                {
                    "min_notional": t.min_notional,
                    "max_notional": t.max_notional,
                    "maintenance_margin_rate": t.maintenance_margin_rate,
                    "max_leverage": t.max_leverage,
                    "maintenance_amount": t.maintenance_amount,
                }
                for t in self.tiers
            ],
        }


def _venue_name(venue: str) -> str:
    if not isinstance(venue, str) or not venue.strip():
        raise ValueError(f"venue must be a non-empty name, got {venue!r}")
    name = venue.strip().lower()
    return _ALIASES.get(name, name)


def _field(path: str, symbol: str, i: int, row: Mapping[str, Any], key: str) -> float:
    where = f"{path}: {symbol!r} tier {i + 1}"
    if key not in row:
        raise ValueError(f"{where} has no {key!r}")
    v = row[key]
    if isinstance(v, bool) or v is None:
        raise ValueError(f"{where}: {key!r} must be a number, got {v!r}")
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {key!r} must be a number, got {v!r}") from None
    if key == "maxNotional" and math.isinf(x) and x > 0:
        return x  # the open-ended last tier
    if not math.isfinite(x):
        raise ValueError(f"{where}: {key!r} must be finite, got {v!r}")
    return x


def parse_ccxt_tiers(raw: Any, symbol: str, source: str = "tiers") -> tuple[MarginTier, ...] | None:
    """The tiers of ``symbol`` from ccxt's ``fetch_leverage_tiers`` JSON (``raw`` parsed),
    validated; ``None`` when the file has no entry for ``symbol``. ``source`` names the file in
    messages. Rules: a list of tier objects per symbol; ``minNotional >= 0``, ``maxNotional >
    minNotional``, each tier starting where the previous one ends (sorted by ``minNotional``);
    ``0 <= maintenanceMarginRate < 0.5``; ``maxLeverage >= 1``; a given maintenance amount
    (``info.cum`` / ``info.mmDeduction``) finite and ``>= 0``."""
    if not isinstance(raw, Mapping):
        raise ValueError(
            f"{source}: expected ccxt's fetch_leverage_tiers format, an object "
            f"{{symbol: [tier, ...]}}, got {type(raw).__name__}"
        )
    if symbol not in raw:
        return None
    rows = raw[symbol]
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"{source}: {symbol!r} must be a non-empty list of tiers")
    parsed = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ValueError(f"{source}: {symbol!r} tier {i + 1} is not an object")
        lo, hi, mmr, lev = (
            _field(source, symbol, i, row, k)
            for k in ("minNotional", "maxNotional", "maintenanceMarginRate", "maxLeverage")
        )
        where = f"{source}: {symbol!r} tier {i + 1}"
        if lo < 0 or not hi > lo:
            raise ValueError(f"{where}: needs 0 <= minNotional < maxNotional, got {lo:g}, {hi:g}")
        if not 0 <= mmr < 0.5:
            raise ValueError(f"{where}: maintenanceMarginRate must be in [0, 0.5), got {mmr:g}")
        if lev < 1:
            raise ValueError(f"{where}: maxLeverage must be >= 1, got {lev:g}")
        info = row.get("info") or {}
        if not isinstance(info, Mapping):
            raise ValueError(f"{where}: 'info' must be an object")
        cum = None
        for key in ("cum", "mmDeduction"):
            if info.get(key) not in (None, ""):
                cum = _field(source, symbol, i, info, key)
                if cum < 0:
                    raise ValueError(f"{where}: info {key!r} must be >= 0, got {cum:g}")
                break
        parsed.append((lo, hi, mmr, lev, cum))
    parsed.sort(key=lambda r: r[0])
    tiers = []
    prev_hi, prev_mmr, prev_cum = 0.0, 0.0, 0.0
    for i, (lo, hi, mmr, lev, cum) in enumerate(parsed):
        if i and not math.isclose(lo, prev_hi, rel_tol=1e-9, abs_tol=1e-9):
            raise ValueError(
                f"{source}: {symbol!r} tiers are not contiguous: a tier starts at {lo:g} but the "
                f"one before ends at {prev_hi:g}"
            )
        if cum is None:
            cum = prev_cum + (lo * mmr - lo * prev_mmr) if i else 0.0
        tiers.append(MarginTier(lo, hi, mmr, lev, cum))
        prev_hi, prev_mmr, prev_cum = hi, mmr, cum
    return tuple(tiers)


def _read_file(path: str | Path) -> Any:
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise ValueError(f"tiers file {str(p)!r} does not exist") from None
    except OSError as exc:
        raise ValueError(f"tiers file {str(p)!r} cannot be read: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"tiers file {str(p)!r} is not valid JSON: {exc}") from None


def _note(venue: str, symbol: str | None, source: str, level: int = logging.WARNING) -> None:
    key = (venue, symbol, source)
    if key not in _noted:
        _noted.add(key)
        logger.log(level, "margin tiers of %s for %s: %s", venue, symbol, source)


def load_tiers(venue: str, symbol: str | None, path: str | Path | None = None) -> VenueTiers:
    """The maintenance-margin tiers ``venue`` uses for ``symbol`` (ccxt form,
    ``"BTC/USDT:USDT"``): the user file ``path`` (ccxt ``fetch_leverage_tiers`` JSON) when given
    and it has the symbol, else the venue's own table, else the documented approximation (see
    the module docstring). ``symbol=None``: no table (the flat rate)."""
    name = _venue_name(venue)
    if path is not None:
        src = f"user file {Path(path).name}"
        found = parse_ccxt_tiers(_read_file(path), symbol, src) if symbol is not None else None
        if found is not None:
            return VenueTiers(name, symbol, found, src, approximate=False)
        logger.warning("tiers file %s has no tiers for %s; %s falls back", path, symbol, name)
    if symbol is None:
        return VenueTiers(name, None, None, "the model's flat maintenance_margin_rate", False)
    binance = load_margin_tiers(symbol)
    table = tuple(binance) if binance else None
    if name in OWN_TABLES:
        if table is None:
            _note(name, symbol, _FLAT)
            return VenueTiers(name, symbol, None, _FLAT, approximate=True)
        return VenueTiers(name, symbol, table, "Binance USDT-M brackets", approximate=False)
    source = _APPROXIMATION if table is not None else _FLAT
    _note(name, symbol, source)
    return VenueTiers(name, symbol, table, source, approximate=True)


def venue_model(
    model: LiquidationModel, venue: str, path: str | Path | None = None
) -> LiquidationModel:
    """``model`` with ``venue``'s tiers for ``model.symbol`` (:func:`load_tiers`); the model
    itself when they are the ones it already has."""
    found = load_tiers(venue, model.symbol, path)
    if found.tiers == model.tiers:
        return model
    return model.with_tiers(found.tiers)


def venue_models(
    model: LiquidationModel,
    venues: Iterable[str],
    files: Mapping[str, str | Path] | None = None,
    given: Mapping[str, LiquidationModel] | None = None,
) -> dict[str, LiquidationModel]:
    """Per venue of a combined book: ``given[venue]`` if there, else :func:`venue_model` with
    the venue's file from ``files`` (``{venue: path}``; files of other venues are not read)."""
    by_name = {_venue_name(k): v for k, v in (files or {}).items()}
    out: dict[str, LiquidationModel] = {}
    for v in venues:
        if given is not None and v in given:
            out[v] = given[v]
        else:
            out[v] = venue_model(model, v, by_name.get(_venue_name(v)))
    return out
