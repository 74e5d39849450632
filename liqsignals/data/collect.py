"""``liqsignals collect``: keep every market-data series current, in one long-running process.

Binance serves open interest, long/short ratios and taker volume for about the last 30 days
only, and realised liquidations only live on a websocket: history of these series exists only
where someone collected it while it was current. :func:`run_collect` does that for the
configured pairs and venues:

* every ``interval`` seconds a *round* brings the REST series up to date through
  :func:`liqsignals.data.download.download` (one file per pair, timeframe and series; the same
  gap fill, file locks and ``unavailable`` sidecars as ``liqsignals download``). The first
  round after a restart fills everything missing since the last stored row, as far back as the
  exchange still serves it, so downtime shorter than the retention leaves no gap;
* all the time, realised liquidations stream into the event files through
  :func:`liqsignals.data.liquidations.collect_liquidations` (flushed every ``flush_seconds``;
  the time it listened is recorded beside each file);
* one status line per round on stderr (or the ``status`` callback): per series the newest
  stored row, rows added, and the liquidation events stored so far;
* SIGTERM or SIGINT (``stop``) ends it cleanly: the round in progress finishes its current
  file, buffered liquidations are flushed, the exit status is 0.

A series the venue does not have (e.g. long/short ratios on OKX) is reported once and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["REST_SERIES", "SERIES", "CollectStatus", "VenueSpec", "run_collect"]

logger = logging.getLogger(__name__)

#: REST series kept current (``--series`` names -> stored kind)
REST_SERIES: dict[str, str] = {
    "open-interest": "open_interest",
    "long-short": "long_short_ratio",
    "taker-volume": "taker_volume",
    "funding": "funding_rate",
}
#: every ``--series`` name
SERIES: tuple[str, ...] = (*REST_SERIES, "liquidations")


@dataclass(frozen=True)
class VenueSpec:
    """One venue to collect from: ccxt id, its datadir, pairs and the freqtrade config (for
    ``ccxt_config`` overrides such as the replay exchange's URLs)."""

    exchange: str
    datadir: Path
    pairs: tuple[str, ...]
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class CollectStatus:
    """What a collector has done so far (the status line prints it)."""

    rounds: int = 0
    #: (venue, pair, timeframe, kind) -> newest stored row
    last: dict[tuple[str, str, str, str], pd.Timestamp | None] = field(default_factory=dict)
    #: (venue, pair, timeframe, kind) -> rows added since the start
    added: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    #: venue -> liquidation events stored since the start
    events: dict[str, int] = field(default_factory=dict)
    #: problems of the last round, by series
    errors: dict[tuple[str, str, str, str], str] = field(default_factory=dict)

    def line(self) -> str:
        parts = [f"round {self.rounds}"]
        for key, last in sorted(self.last.items(), key=lambda kv: kv[0]):
            venue, pair, tf, kind = key
            stamp = "-" if last is None else pd.Timestamp(last).strftime("%m-%d %H:%M")
            parts.append(f"{venue} {pair} {kind} {tf} {stamp} (+{self.added.get(key, 0)})")
        for venue, n in sorted(self.events.items()):
            parts.append(f"{venue} liquidations +{n}")
        if self.errors:
            parts.append(f"{len(self.errors)} failing")
        return " | ".join(parts)


def _rest_jobs(
    venue: VenueSpec, series: Sequence[str], timeframes: Sequence[str]
) -> list[tuple[str, str, str]]:
    jobs = []
    for name in series:
        kind = REST_SERIES.get(name)
        if kind is None:
            continue
        for pair in venue.pairs:
            for tf in ["1h"] if kind == "funding_rate" else timeframes:
                jobs.append((pair, tf, kind))
    return jobs


def _rest_round(
    exchange: Any,
    venue: VenueSpec,
    jobs: Sequence[tuple[str, str, str]],
    status: CollectStatus,
    stopping: Callable[[], bool],
    skipped: set[tuple[str, str, str, str]],
) -> None:
    """Bring every REST series of ``venue`` up to date (runs in a worker thread)."""
    import ccxt

    from liqsignals.data.download import download

    served = _exchange_now(exchange)
    for pair, tf, kind in jobs:
        key = (venue.exchange, pair, tf, kind)
        if stopping() or key in skipped:
            continue
        try:
            result = download(
                exchange, pair, tf, venue.datadir, kind, progress=False, now=lambda: served
            )
        except (ccxt.NotSupported, NotImplementedError) as exc:
            skipped.add(key)
            logger.warning("%s %s %s: not served (%s); skipped from now on", *key[:2], kind, exc)
            continue
        except (ccxt.BaseError, OSError, ValueError) as exc:  # retried next round
            status.errors[key] = str(exc)
            logger.warning("%s %s %s %s: %s; retrying next round", *key, exc)
            continue
        status.errors.pop(key, None)
        status.last[key] = result.last
        status.added[key] = status.added.get(key, 0) + result.added


def _exchange_now(exchange: Any) -> pd.Timestamp:
    """The exchange's clock (``fetch_time``), else the local one: a round fetches up to the
    exchange's now, so a skewed local clock (or a replay running faster) leaves no gap."""
    try:
        return pd.Timestamp(int(exchange.fetch_time()), unit="ms", tz="UTC")
    except Exception as exc:
        logger.debug("%s: fetch_time failed (%s); using the local clock", exchange.id, exc)
        return pd.Timestamp.now(tz="UTC")


async def run_collect(
    venues: Sequence[VenueSpec],
    *,
    series: Sequence[str] = SERIES,
    timeframes: Sequence[str] = ("5m",),
    interval: float = 60.0,
    flush_seconds: float = 30.0,
    rounds: int | None = None,
    stop: asyncio.Event | None = None,
    status: Callable[[CollectStatus], None] | None = None,
) -> CollectStatus:
    """Keep the series of every venue current until ``stop`` is set (or ``rounds`` rounds ran).

    See the module docstring. ``series`` picks from :data:`SERIES`; ``timeframes`` apply to
    open interest, long/short and taker volume (funding is stored per event in the 1h file).
    Returns the final :class:`CollectStatus`.
    """
    from liqsignals.data.download import make_exchange
    from liqsignals.data.liquidations import collect_liquidations

    bad = [s for s in series if s not in SERIES]
    if bad:
        raise ValueError(f"unknown series {bad}; choose from {list(SERIES)}")
    if not interval > 0:
        raise ValueError(f"interval must be positive, got {interval!r}")
    if not venues:
        raise ValueError("no venue to collect from")
    stop = stop or asyncio.Event()
    state = CollectStatus()
    show = status or (lambda s: print(f"collect: {s.line()}", file=sys.stderr, flush=True))
    watchers: list[asyncio.Task[int]] = []
    if "liquidations" in series:
        for venue in venues:
            pro = make_exchange(venue.exchange, venue.config, pro=True)
            state.events[venue.exchange] = 0

            def counted(event: dict[str, Any], name: str = venue.exchange) -> None:
                state.events[name] = state.events.get(name, 0) + 1

            watchers.append(
                asyncio.ensure_future(
                    collect_liquidations(
                        pro,
                        list(venue.pairs),
                        venue.datadir,
                        flush_seconds=flush_seconds,
                        stop=stop,
                        on_event=counted,
                    )
                )
            )
    rest = [
        (v, make_exchange(v.exchange, v.config), _rest_jobs(v, series, timeframes)) for v in venues
    ]
    skipped: set[tuple[str, str, str, str]] = set()
    try:
        while not stop.is_set():
            began = time.monotonic()
            for venue, exchange, jobs in rest:
                if jobs:
                    await asyncio.to_thread(
                        _rest_round, exchange, venue, jobs, state, stop.is_set, skipped
                    )
            for task in watchers:
                if task.done() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            state.rounds += 1
            show(state)
            if rounds is not None and state.rounds >= rounds:
                break
            wait = max(0.0, interval - (time.monotonic() - began))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)
    finally:
        stop.set()
        if watchers:
            await asyncio.gather(*watchers, return_exceptions=True)
    return state


def venue_datadir(exchange: str, config: Mapping[str, Any], flag: os.PathLike[str] | None) -> Path:
    """``--datadir``, else the config's ``datadir``, else ``<user_data_dir>/data/<exchange>``."""
    if flag is not None:
        return Path(flag)
    if config.get("datadir"):
        return Path(str(config["datadir"]))
    return Path(str(config.get("user_data_dir", "user_data"))) / "data" / exchange
