"""Several venues in one strategy: the combined book of the bot's exchange and other venues.

freqtrade's DataProvider serves one exchange. The other venues' candles come from freqtrade
datadirs that ``liqsignals poll`` keeps current (:mod:`liqsignals.live.poller`). A strategy
opts in with a class setting (or the config's ``"liqsignals": {"venues": {...}}``) and
:func:`venue_populate` in place of ``liq_populate``::

    from liqsignals.strategy.venues import venue_populate

    class MyStrategy(LiqSweepReversal):
        liq_venues = {"bybit": "user_data/data/bybit"}   # venue -> its datadir

        def liq_populate(self, dataframe, metadata):
            return venue_populate(self, dataframe, metadata)

* backtests: :func:`liqsignals.multi.liquidation_features_multi` over the frame and the other
  venues' stored candles of the same dates;
* dry-run / live: one :class:`liqsignals.multi.MultiFeatureStream` per pair, advanced by the
  bot's new closed candles; each new candle is combined with the other venues' candles **of
  the same date** read from their datadirs (never a later one: causal). A venue with no candle
  of that date yet (the poller behind, the file missing) counts as not trading for that candle,
  exactly as the batch path treats a missing candle, and the stream does not revisit it. So
  keep the poller's ``--interval`` well below the timeframe; the bot also waits up to
  ``liq_venue_wait`` seconds (config ``"liqsignals": {"venue_wait": ...}``, default 10) for a
  venue whose file exists but lacks the newest candle yet.

Margin tiers: every venue keeps its own (:mod:`liqsignals.tiers`: Binance's table, else the
documented approximation, logged), or the file the config names in ``"liqsignals":
{"tiers_file": {venue: "path.json"}}`` (ccxt ``fetch_leverage_tiers`` JSON); the bot's own
exchange is the venue named by the config's ``exchange.name``.

The prices are the bot's exchange's (the reference); the engine runs on candles (open interest
and the other market-data inputs are not combined here). Alerts and the realised-liquidation
columns work as with ``LiqStrategy.liq_populate``; the saved pair state does not apply. Rows of the frame older than the
stream's first candle (after a restart, say) keep the stream's values when it has them, else NaN.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liqsignals.multi import MultiFeatureStream, liquidation_features_multi
from liqsignals.strategy import market_data as md
from liqsignals.strategy.settings import tiers_files
from liqsignals.strategy.signals import join_columns

__all__ = ["VenueStreams", "venue_candles", "venue_datadirs", "venue_populate"]

logger = logging.getLogger(__name__)


def venue_datadirs(strategy: Any) -> dict[str, Path]:
    """The other venues and their datadirs: the config's ``"liqsignals": {"venues": {name:
    datadir}}`` if given, else the strategy's ``liq_venues``; an empty datadir means
    ``<user_data_dir>/data/<name>``."""
    config = getattr(strategy, "config", {}) or {}
    given = (config.get("liqsignals") or {}).get("venues")
    venues = given if given is not None else getattr(strategy, "liq_venues", {}) or {}
    if not isinstance(venues, Mapping):
        raise ValueError(f"liqsignals venues must map venue -> datadir, got {venues!r}")
    root = Path(str(config.get("user_data_dir", "user_data"))) / "data"
    return {str(k): Path(str(v)) if v else root / str(k) for k, v in venues.items()}


def venue_candles(datadir: Path, pair: str, timeframe: str, until: pd.Timestamp) -> pd.DataFrame:
    """A venue's stored candles of ``pair`` up to ``until`` (a candle open time, inclusive);
    empty when the venue has no file for the pair."""
    from liqsignals.data.datadir import load_candles

    try:
        df = load_candles(datadir, pair, timeframe)
    except FileNotFoundError:
        return pd.DataFrame(columns=list(md.CANDLE_COLUMNS))
    return df.loc[pd.to_datetime(df["date"], utc=True) <= until].reset_index(drop=True)


def _wait_seconds(strategy: Any) -> float:
    given = ((getattr(strategy, "config", {}) or {}).get("liqsignals") or {}).get("venue_wait")
    value = float(given if given is not None else getattr(strategy, "liq_venue_wait", 10.0))
    if not value >= 0:
        raise ValueError(f"liqsignals venue_wait must be >= 0 seconds, got {given!r}")
    return value


def _live_candles(
    datadir: Path, pair: str, timeframe: str, until: pd.Timestamp, wait: float
) -> pd.DataFrame:
    """:func:`venue_candles`, waiting up to ``wait`` seconds for the candle of ``until`` when
    the venue's file exists (its poller is running) but does not have it yet."""
    deadline = time.monotonic() + wait
    while True:
        df = venue_candles(datadir, pair, timeframe, until)
        have = len(df) and pd.to_datetime(df["date"], utc=True).iloc[-1] == until
        if have or not len(df) or time.monotonic() >= deadline:
            if len(df) and not have:
                logger.warning(
                    "%s: %s has no %s candle yet; it counts as not trading there",
                    pair,
                    datadir,
                    until,
                )
            return df
        time.sleep(0.5)


class VenueStreams:
    """One :class:`MultiFeatureStream` per pair with the feature rows it produced (as many as
    the bot's frame holds, twice over), for the dry-run / live path."""

    def __init__(self) -> None:
        self._streams: dict[str, MultiFeatureStream] = {}
        self._rows: dict[str, pd.DataFrame] = {}

    def stream(self, pair: str) -> MultiFeatureStream | None:
        return self._streams.get(pair)

    def features(
        self,
        pair: str,
        candles: pd.DataFrame,
        others: Mapping[str, pd.DataFrame],
        build: Any,
        reference: str,
    ) -> pd.DataFrame:
        """Feature rows for every row of ``candles`` (the bot's frame, closed candles)."""
        dates = pd.to_datetime(candles["date"], utc=True)
        stream = self._streams.get(pair)
        last = None if stream is None else stream.last_date
        if stream is not None and (last is None or not (dates == last).any()):
            if last is not None and dates.iloc[-1] <= last:
                pass  # nothing new (an older frame): keep the stream
            else:
                logger.warning(
                    "%s: the frame does not reach back to the multi-venue stream's last candle "
                    "%s; rebuilding the stream from this frame",
                    pair,
                    last,
                )
                stream = None
        if stream is None:
            stream = build()
            self._streams[pair] = stream
            self._rows[pair] = pd.DataFrame(columns=stream.columns, dtype=float)
            new = candles
        else:
            new = candles.loc[(dates > stream.last_date).to_numpy()]
        if len(new):
            rows = stream.update_many({reference: new.reset_index(drop=True), **others})
            rows.index = pd.DatetimeIndex(pd.to_datetime(new["date"], utc=True))
            kept = self._rows[pair]
            joined = rows if kept.empty else pd.concat([kept, rows])
            self._rows[pair] = joined.iloc[-2 * max(len(candles), 1) :]
        out = self._rows[pair].reindex(pd.DatetimeIndex(dates))
        out.index = candles.index
        return out


def venue_populate(
    strategy: Any, dataframe: pd.DataFrame, metadata: dict[str, Any]
) -> pd.DataFrame:
    """``liq_populate`` for a combined book of the bot's exchange and the venues of
    :func:`venue_datadirs` (see the module docstring); without venues, the strategy's own
    single-venue ``LiqStrategy.liq_populate``."""
    from liqsignals.strategy.base import LiqStrategy

    venues = venue_datadirs(strategy)
    if not venues:
        return LiqStrategy.liq_populate(strategy, dataframe, metadata)
    pair, timeframe = metadata["pair"], strategy.timeframe
    reference = str((strategy.config.get("exchange") or {}).get("name") or "reference")
    if reference in venues:
        raise ValueError(f"venue {reference!r} is the bot's own exchange; list only other venues")
    candles = md.candle_inputs(dataframe)
    if candles.empty:
        return join_columns(dataframe, [], np.zeros((0, 0)))
    until = pd.to_datetime(candles["date"], utc=True).iloc[-1]
    live = strategy.liq_live()
    wait = _wait_seconds(strategy) if live else 0.0
    others = {
        name: _live_candles(path, pair, timeframe, until, wait) for name, path in venues.items()
    }
    model, kwargs = strategy.liq_model(pair), strategy.liq_feature_kwargs()
    # each venue's own margin tiers (liqsignals.tiers), or the config's tiers files
    kwargs = {**kwargs, "tiers_files": tiers_files(strategy.config)}
    exchanges = [reference, *others]
    if live:
        book = strategy.__dict__.setdefault("liq_venue_streams", VenueStreams())
        feats = book.features(
            pair,
            candles,
            others,
            lambda: MultiFeatureStream(model, exchanges=exchanges, **kwargs),
            reference,
        )
    else:
        frames = {reference: candles, **others}
        feats = liquidation_features_multi(frames, model, exchanges=exchanges, **kwargs)
    out = join_columns(dataframe, list(feats.columns), feats.to_numpy(dtype=np.float64))
    book_alerts = getattr(strategy, "liq_alerts", None)
    if live and book_alerts is not None and book_alerts.settings.enabled:
        for message in book_alerts.check(pair, out):  # the same alerts as the single venue
            strategy.dp.send_msg(message, always_send=True)
    if getattr(strategy, "liq_use_market_data", False):
        out = md.attach_realised(out, strategy.config, pair, timeframe)  # liq_realised_*
    return out
