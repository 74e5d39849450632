"""What a strategy's class settings imply: the model, the lookbacks, the startup candles."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from liqsignals.features import (
    DEFAULT_ATR_PERIOD,
    DEFAULT_DRIFT_LOOKBACK,
    DEFAULT_INTENSITY_LOOKBACK,
    timeframe_to_timedelta,
)
from liqsignals.model import LiquidationModel, load_margin_tiers, parse_duration

__all__ = [
    "LIVE_STARTUP_CAP",
    "feature_kwargs",
    "live_startup",
    "live_state_on",
    "config_model",
    "pair_model",
    "startup_candles",
    "strategy_startup",
    "tiers_files",
]


def startup_candles(
    window: str,
    timeframe: str,
    *,
    intensity_lookback: int = DEFAULT_INTENSITY_LOOKBACK,
    margin: int = 10,
) -> int:
    """Candles a strategy needs before its first valid ``liq_*`` value.

    One model window (the engine's warm-up and memory) plus the longest derived lookback (the
    intensity percentile) plus a small margin. With this many startup candles freqtrade's
    ``recursive-analysis`` finds no difference, because the engine forgets everything older than
    its window.

    >>> startup_candles("1w", "15m", intensity_lookback=500)
    1182
    """
    per_window = parse_duration(window, "window") / timeframe_to_timedelta(timeframe)
    return int(math.ceil(per_window)) + int(intensity_lookback) + int(margin)


def strategy_startup(strategy: Any, timeframe: str) -> int:
    """:func:`startup_candles` for a strategy (class or instance) with ``liq_window`` and
    ``liq_intensity_lookback`` attributes, at ``timeframe``."""
    return startup_candles(
        strategy.liq_window, timeframe, intensity_lookback=strategy.liq_intensity_lookback
    )


def pair_model(
    pair: str,
    window: str,
    leverage: str,
    params: Mapping[str, Any],
    *,
    venue: str = "binance",
    tiers_file: str | Path | None = None,
) -> LiquidationModel:
    """The model for ``pair``: the strategy's window, leverage preset and other model fields,
    with ``venue``'s margin tiers for the pair (:func:`liqsignals.tiers.load_tiers`: Binance's
    own table, another venue's documented approximation, or ``tiers_file``, a ccxt
    ``fetch_leverage_tiers`` JSON file); the generic ones when none is known."""
    from liqsignals.tiers import venue_model

    symbol = pair if (load_margin_tiers(pair) or tiers_file is not None) else None
    model = LiquidationModel(window=window, leverage=leverage, symbol=symbol, **params)
    return venue_model(model, venue, tiers_file)


def venue_of(config: Mapping[str, Any]) -> str:
    """The venue of a freqtrade config: ``exchange.name`` in lower case (``"binance"`` when the
    config names none, as for a strategy built outside a bot)."""
    name = (config.get("exchange") or {}).get("name") or "binance"
    return str(name).lower()


def config_model(
    pair: str, window: str, leverage: str, params: Mapping[str, Any], config: Mapping[str, Any]
) -> LiquidationModel:
    """:func:`pair_model` with the venue of ``config`` and that venue's ``tiers_file``, if any:
    a bot on Bybit gets Bybit's tiers (a user file) or the documented approximation, flagged."""
    venue = venue_of(config)
    return pair_model(
        pair, window, leverage, params, venue=venue, tiers_file=tiers_files(config).get(venue)
    )


def tiers_files(config: Mapping[str, Any]) -> dict[str, Path]:
    """The config's ``"liqsignals": {"tiers_file": {venue: path}}``: per venue, a ccxt
    ``fetch_leverage_tiers`` JSON file whose margin tiers replace that venue's table or
    approximation (:mod:`liqsignals.tiers`); a relative path is read from the working
    directory, as freqtrade reads its own paths."""
    given = (config.get("liqsignals") or {}).get("tiers_file")
    if given is None:
        return {}
    if not isinstance(given, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str | Path) and str(v) for k, v in given.items()
    ):
        raise ValueError(
            f'"liqsignals": {{"tiers_file": ...}} must map venue -> JSON path, got {given!r}'
        )
    return {str(k): Path(v) for k, v in given.items()}


def feature_kwargs(intensity_lookback: int) -> dict[str, Any]:
    """Lookbacks of the derived columns (``liquidation_features`` / ``FeatureStream``)."""
    return {
        "atr_period": DEFAULT_ATR_PERIOD,
        "intensity_lookback": int(intensity_lookback),
        "drift_lookback": DEFAULT_DRIFT_LOOKBACK,
    }


#: live startup candles above this turn the pair state on (``"live_state": "auto"``): freqtrade
#: refuses a live ``startup_candle_count`` beyond about five exchange calls (2,495 on Binance)
LIVE_STARTUP_CAP = 2000


def live_state_on(config: Mapping[str, Any], strategy: Any, timeframe: str) -> bool:
    """Whether a running bot keeps its pairs' engine state on disk
    (:mod:`liqsignals.strategy.live_state`): the config's ``"liqsignals": {"live_state": true |
    false | "auto"}``; ``"auto"`` (the default) turns it on when the window needs more startup
    candles than :data:`LIVE_STARTUP_CAP`."""
    mode = (config.get("liqsignals") or {}).get("live_state", "auto")
    if mode == "auto":
        return strategy_startup(strategy, timeframe) > LIVE_STARTUP_CAP
    if isinstance(mode, bool):
        return mode
    raise ValueError(f'"liqsignals": {{"live_state": {mode!r}}} must be true, false or "auto"')


def live_startup(intensity_lookback: int, margin: int = 40) -> int:
    """Startup candles of a bot with the pair state on: the derived columns' lookbacks only (the
    engine's window comes from the saved state or the datadir history)."""
    return int(intensity_lookback) + DEFAULT_ATR_PERIOD + DEFAULT_DRIFT_LOOKBACK + int(margin)
