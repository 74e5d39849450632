"""Realised liquidations: parse exchange events, collect them live, import files, make bars.

Every source is normalised to one event table, stored per pair in
``<datadir>/futures/liqsignals/<PAIR>-liquidation_events.feather``:

=========  ===================================================================================
date       event time (UTC, ms)
exchange   ccxt exchange id (``binance``, ``bybit``, ``okx``)
symbol     ccxt symbol, e.g. ``BTC/USDT:USDT``
side       ``"long liquidated"`` (a forced sell) or ``"short liquidated"`` (a forced buy)
price      fill price (average fill price where reported, else the order / bankruptcy price)
amount     base currency (contracts x contract size)
value      quote currency, ``price * amount``
=========  ===================================================================================

Side conventions differ by exchange and are the easiest thing to get wrong:

* Binance ``forceOrder``: ``S`` is the side of the liquidation *order*; ``SELL`` closes a long, so
  ``SELL`` = long liquidated.
* Bybit ``allLiquidation`` / ``liquidation``: ``S`` / ``side`` is the side of the liquidated
  *position*; ``Buy`` = long liquidated.
* OKX ``liquidation-orders``: ``side`` is the order side (``sell`` = long liquidated); ``posSide``
  (``long`` / ``short``) names the position directly and wins when present.

Recorded websocket payloads go through ccxt.pro's own parsers (``parse_ws_liquidation``), so
symbols and contract sizes are resolved the way ccxt does it; only the side, the amount and the
value are decided here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liqsignals._time import to_utc_datetime, utc_timestamp
from liqsignals.data.datadir import (
    append_frame,
    data_path,
    pair_to_filename,
    read_frame,
    save_series,
    timeframe_to_timedelta,
)
from liqsignals.fileio import atomic_write_text

__all__ = [
    "EVENT_COLUMNS",
    "LONG",
    "SHORT",
    "collect_liquidations",
    "coverage_path",
    "covered",
    "load_coverage",
    "read_realised_events",
    "realised_frame",
    "recorded_bars",
    "record_coverage",
    "events_frame",
    "events_path",
    "events_to_bars",
    "load_liquidation_events",
    "normalise_liquidation",
    "parse_liquidation_message",
    "read_liquidation_events_csv",
    "read_liquidation_totals_csv",
    "save_liquidation_events",
]

logger = logging.getLogger(__name__)

LONG = "long liquidated"
SHORT = "short liquidated"
EVENT_COLUMNS: tuple[str, ...] = ("date", "exchange", "symbol", "side", "price", "amount", "value")
# rows equal on these are the same event (used across reconnects and re-imports)
_EVENT_KEY: list[str] = ["date", "exchange", "symbol", "side", "price", "amount"]

# columns of the collectors' CSV captures of Binance forceOrder events (no header)
FORCE_ORDER_CSV_COLUMNS: tuple[str, ...] = (
    "symbol",
    "side",
    "order_type",
    "time_in_force",
    "original_quantity",
    "price",
    "average_price",
    "order_status",
    "last_filled_qty",
    "accumulated_qty",
    "trade_time_ms",
    "usd_size",
)


# ------------------------------------------------------------------------------ normalising


def _side(exchange_id: str, raw_side: str | None, pos_side: str | None = None) -> str:
    side = (raw_side or "").strip().lower()
    pos = (pos_side or "").strip().lower()
    if exchange_id.startswith("okx") and pos in ("long", "short"):
        return LONG if pos == "long" else SHORT
    if exchange_id.startswith("bybit"):
        mapping = {"buy": LONG, "sell": SHORT}  # side of the liquidated position
    else:
        mapping = {"sell": LONG, "buy": SHORT}  # side of the liquidation order
    if side not in mapping:
        raise ValueError(f"{exchange_id}: unknown liquidation side {raw_side!r}")
    return mapping[side]


def _num(value: Any) -> float:
    if value is None or value == "" or str(value).lower() == "none":
        return float("nan")
    return float(value)


def normalise_liquidation(
    liquidation: Mapping[str, Any], exchange_id: str, contract_size: float | None = None
) -> dict[str, Any]:
    """One ccxt liquidation structure (from ``watch_liquidations`` or ``parse_ws_liquidation``)
    as a row of ``EVENT_COLUMNS``.

    ``contract_size`` converts contracts to coins; it defaults to the structure's
    ``contractSize`` (which ccxt often leaves empty), then to 1 except on OKX, where it is
    required. Binance events use the accumulated filled quantity ``z`` (ccxt's ``contracts`` is
    the last fill ``l``) and the average price ``ap`` (the order price ``p`` when ``ap`` is 0).
    """
    info = liquidation.get("info") or {}
    exchange_id = exchange_id.lower()
    price = _num(liquidation.get("price"))
    size = _num(contract_size if contract_size is not None else liquidation.get("contractSize"))
    if np.isnan(size):
        if exchange_id.startswith("okx"):
            raise ValueError(
                f"okx: contract size of {liquidation.get('symbol')} unknown; load the markets"
            )
        size = 1.0
    amount = _num(liquidation.get("contracts")) * size
    pos_side = None
    if exchange_id.startswith("binance"):
        if "z" in info:
            amount = _num(info["z"]) * size
        if not price > 0:
            price = _num(info.get("p"))
    elif exchange_id.startswith("okx"):
        details = info.get("details") or [{}]
        pos_side = details[0].get("posSide")
    if not (price > 0 and amount > 0):
        raise ValueError(f"{exchange_id}: liquidation without price or amount: {dict(info)}")
    timestamp = liquidation.get("timestamp")
    if timestamp is None:
        raise ValueError(f"{exchange_id}: liquidation without a timestamp: {dict(info)}")
    return {
        "date": pd.Timestamp(int(timestamp), unit="ms", tz="UTC"),
        "exchange": exchange_id,
        "symbol": str(liquidation.get("symbol")),
        "side": _side(exchange_id, liquidation.get("side"), pos_side),
        "price": price,
        "amount": amount,
        "value": price * amount,
    }


def parse_liquidation_message(exchange: Any, message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Normalised events of one raw websocket message, parsed with ccxt.pro's parser.

    ``exchange`` is a ccxt.pro exchange (markets loaded or set for symbol and contract-size
    resolution; OKX amounts need the contract size). Handles Binance ``forceOrder`` messages
    (``{"e": "forceOrder", "o": {...}}``), Bybit ``allLiquidation`` / ``liquidation`` messages
    (``{"topic": ..., "data": [...]}``) and OKX ``liquidation-orders`` messages (``{"arg": ...,
    "data": [{"instId": ..., "details": [...]}]}``, every detail becomes one event).
    """
    exchange_id = str(exchange.id).lower()
    raw: list[Mapping[str, Any]] = []
    if exchange_id.startswith("binance"):
        raw = [message.get("o", message)]
    elif exchange_id.startswith("bybit"):
        data = message.get("data", message)
        raw = list(data) if isinstance(data, list) else [data]
    elif exchange_id.startswith("okx"):
        for item in message.get("data", [message]):
            for detail in item.get("details", []):
                raw.append({**item, "details": [detail]})
    else:
        raise ValueError(f"no liquidation message format known for {exchange_id!r}")
    events = []
    for item in raw:
        parsed = exchange.parse_ws_liquidation(dict(item))
        size = _contract_size_of(exchange, parsed.get("symbol"))
        events.append(normalise_liquidation(parsed, exchange_id, size))
    return events


def _contract_size_of(exchange: Any, symbol: Any) -> float | None:
    """The market's contract size, when the exchange object knows the market."""
    try:
        size = exchange.market(symbol).get("contractSize")
    except Exception:  # unknown market or not a ccxt exchange
        return None
    return None if size is None else float(size)


def events_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Liquidation events (mappings with ``EVENT_COLUMNS``) as a frame with the stored dtypes."""
    df = pd.DataFrame(list(rows), columns=list(EVENT_COLUMNS))
    df["date"] = to_utc_datetime(df["date"]).dt.as_unit("ms")
    for col in ("price", "amount", "value"):
        df[col] = df[col].astype("float64")
    for col in ("exchange", "symbol", "side"):
        df[col] = df[col].astype(str)
    return df


# ------------------------------------------------------------------------------- storage


def events_path(datadir: str | os.PathLike[str], pair: str) -> Path:
    """``<datadir>/futures/liqsignals/<PAIR>-liquidation_events.feather``."""
    folder = data_path(datadir, pair, "1h", "liquidations").parent
    return folder / f"{pair_to_filename(pair)}-liquidation_events.feather"


def save_liquidation_events(
    events: pd.DataFrame | Iterable[Mapping[str, Any]], datadir: str | os.PathLike[str], pair: str
) -> tuple[Path, int]:
    """Merge events into the pair's event file; duplicates (same key columns) are stored once.

    Returns the path and the number of events that were new.
    """
    frame = events if isinstance(events, pd.DataFrame) else events_frame(events)
    frame = events_frame(frame.to_dict("records")) if len(frame) else events_frame([])
    return append_frame(frame, events_path(datadir, pair), key=_EVENT_KEY)


def load_liquidation_events(
    datadir: str | os.PathLike[str], pair: str, *, missing_ok: bool = False
) -> pd.DataFrame:
    """The pair's stored events (``EVENT_COLUMNS``), sorted by date."""
    path = events_path(datadir, pair)
    if not path.exists():
        if missing_ok:
            return events_frame([])
        raise FileNotFoundError(
            f"no liquidation events for {pair}: {path} does not exist. Record them with:\n"
            f"    liqsignals collect-liquidations --exchange binance --pairs {pair} "
            f"--datadir {datadir}"
        )
    return read_frame(path).loc[:, list(EVENT_COLUMNS)]


# ------------------------------------------------------------------------------- importers


def read_liquidation_events_csv(
    path: str | os.PathLike[str], *, quote: str = "USDT", exchange: str = "binance"
) -> pd.DataFrame:
    """Import a headerless CSV capture of Binance ``forceOrder`` events (``FORCE_ORDER_CSV_COLUMNS``).

    ``symbol`` holds the base asset (``BTC``, ``1000PEPE``) and becomes ``BASE/QUOTE:QUOTE``;
    ``SELL`` = long liquidated. The amount is the accumulated filled quantity and the price the
    average fill price (the order price where the average is missing, e.g. ``None``).
    """
    raw = pd.read_csv(
        path, header=None, names=list(FORCE_ORDER_CSV_COLUMNS), dtype=str, keep_default_na=False
    )
    if raw.empty:
        return events_frame([])
    bad = raw["trade_time_ms"].str.fullmatch(r"\d{10,16}") == False  # noqa: E712
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(
            f"{path}: row {row + 1} is not a forceOrder capture "
            f"(trade time {raw['trade_time_ms'].iloc[row]!r}; expected milliseconds)"
        )
    average = pd.to_numeric(raw["average_price"].replace({"None": ""}), errors="coerce")
    order_price = pd.to_numeric(raw["price"], errors="coerce")
    price = average.where(average > 0, order_price)
    amount = pd.to_numeric(raw["accumulated_qty"], errors="coerce")
    sides = raw["side"].str.upper().map({"SELL": LONG, "BUY": SHORT})
    if sides.isna().any():
        row = int(np.flatnonzero(sides.isna().to_numpy())[0])
        raise ValueError(f"{path}: row {row + 1} has side {raw['side'].iloc[row]!r}")
    base = raw["symbol"].str.upper()
    symbol = np.where(base.str.contains("/"), base, base + f"/{quote}:{quote}")
    out = pd.DataFrame(
        {
            "date": to_utc_datetime(raw["trade_time_ms"].astype("int64"), unit="ms"),
            "exchange": exchange,
            "symbol": symbol,
            "side": sides,
            "price": price,
            "amount": amount,
            "value": price * amount,
        }
    )
    out = out.dropna(subset=["price", "amount"])
    return (
        events_frame(out.to_dict("records"))
        .sort_values("date", kind="stable")
        .reset_index(drop=True)
    )


def read_liquidation_totals_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Import a CSV of realised liquidation totals per bar.

    Needs a header with ``date`` (bar open time; parsed as UTC), ``long_liquidation_usd`` and
    ``short_liquidation_usd``; other columns are ignored.
    """
    raw = pd.read_csv(path)
    need = ["date", "long_liquidation_usd", "short_liquidation_usd"]
    missing = [c for c in need if c not in raw.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing} (found {list(raw.columns)})")
    out = raw.loc[:, need].copy()
    out["date"] = to_utc_datetime(out["date"])
    for col in need[1:]:
        out[col] = pd.to_numeric(out[col], errors="raise").astype("float64")
        if (out[col] < 0).any():
            raise ValueError(f"{path}: negative {col} at {out.loc[out[col] < 0, 'date'].iloc[0]}")
    return out.sort_values("date", kind="stable").reset_index(drop=True)


def infer_timeframe(dates: pd.Series) -> str:
    """The most common spacing of ``dates`` as a timeframe string (``"4h"``, ``"5m"``, ...)."""
    step = pd.to_datetime(dates).sort_values().diff().dropna()
    if step.empty:
        raise ValueError("need at least two rows to infer the timeframe")
    delta = step.mode().iloc[0]
    for unit, length in (("d", pd.Timedelta(days=1)), ("h", pd.Timedelta(hours=1))):
        if delta >= length and delta % length == pd.Timedelta(0):
            return f"{delta // length}{unit}"
    if delta % pd.Timedelta(minutes=1) == pd.Timedelta(0):
        return f"{delta // pd.Timedelta(minutes=1)}m"
    raise ValueError(f"cannot express a spacing of {delta} as a timeframe")


def import_liquidation_totals(
    path: str | os.PathLike[str],
    datadir: str | os.PathLike[str],
    pair: str,
    timeframe: str | None = None,
) -> Path:
    """Store a totals CSV as the pair's ``liquidations`` series (timeframe inferred if omitted)."""
    totals = read_liquidation_totals_csv(path)
    timeframe = timeframe or infer_timeframe(totals["date"])
    return save_series(totals, datadir, pair, timeframe, "liquidations")


# ---------------------------------------------------------------------------- aggregation


def events_to_bars(
    events: pd.DataFrame,
    timeframe: str,
    *,
    start: pd.Timestamp | str | None = None,
    stop: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """Sum event values per bar and side.

    Bars run from ``start`` (default: the first event's bar) to ``stop`` (default: the last
    event's bar); bars without events are 0, so pass the span the events cover.

    Returns
    -------
    DataFrame
        ``date`` (UTC, bar open time), ``long_liquidation_usd`` and ``short_liquidation_usd``
        (quote currency liquidated during the bar).
    """
    tf = timeframe_to_timedelta(timeframe)
    columns = ["date", "long_liquidation_usd", "short_liquidation_usd"]
    if events.empty and (start is None or stop is None):
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in columns}).astype(
            {"date": "datetime64[ms, UTC]"}
        )
    dates = to_utc_datetime(events["date"])
    first = pd.Timestamp(start).tz_convert("UTC") if start is not None else dates.min()
    last = pd.Timestamp(stop).tz_convert("UTC") if stop is not None else dates.max()
    grid = pd.date_range(first.floor(tf), last.floor(tf), freq=tf)
    bar = dates.dt.floor(tf)
    out = pd.DataFrame({"date": grid})
    for side, col in ((LONG, "long_liquidation_usd"), (SHORT, "short_liquidation_usd")):
        mask = (events["side"] == side).to_numpy()
        sums = events.loc[mask, "value"].groupby(bar[mask].to_numpy()).sum()
        sums.index = pd.DatetimeIndex(sums.index).tz_convert("UTC") if len(sums) else sums.index
        out[col] = sums.reindex(grid, fill_value=0.0).to_numpy(dtype="float64")
    out["date"] = out["date"].dt.as_unit("ms")
    return out


# ------------------------------------------------------------------------------ collector


async def collect_liquidations(
    exchange: Any,
    pairs: Sequence[str],
    datadir: str | os.PathLike[str],
    *,
    flush_every: int = 100,
    flush_seconds: float = 30.0,
    max_events: int | None = None,
    stop: asyncio.Event | None = None,
    reconnect_delay: float = 1.0,
    on_event: Callable[[dict[str, Any]], Awaitable[None] | None] | None = None,
) -> int:
    """Record live liquidations from ccxt.pro ``watch_liquidations`` into the event files.

    All ``pairs`` share one subscription (``watch_liquidations_for_symbols`` where the exchange
    has it, else one ``watch_liquidations`` per pair). Events are buffered and merged into
    ``<pair>-liquidation_events.feather`` every ``flush_every`` events and every
    ``flush_seconds`` (on a timer, also when no event arrives), and always when the collector
    stops (also on cancellation or an error). Every write replaces the file atomically, so a
    kill leaves the last flushed file intact: **a SIGKILL loses at most the events received
    since the last flush** (``flush_seconds``, default 30 s); a restart reads the stored events
    back and carries on.

    Events are identified by (time in ms, exchange, symbol, side, price, amount): an event that
    a reconnect delivers twice, or that is already on disk, is stored once. (Binance sends at
    most one print per symbol and second, so two real events never share that identity.)
    Network errors are retried after ``reconnect_delay`` seconds (doubling, at most 60 s).

    With every flush the time the collector was listening is recorded beside each event file
    (:func:`coverage_path`), so a bar without events can be told from a bar nobody recorded
    (:func:`realised_frame`). A listening span starts when a (re)subscription is made, in
    exchange time (local clock plus the lead measured with ``fetch_time``), and ends at the
    flush, or at the newest event received when that is later (a replay running faster than
    real time); a disconnect ends it.

    Runs until ``stop`` is set, ``max_events`` new events were stored, or it is cancelled.
    Returns the number of new events stored. ``exchange`` only needs ``id`` and
    ``watch_liquidations_for_symbols`` (or ``watch_liquidations``), so tests can pass a fake.
    """
    import ccxt

    if not pairs:
        raise ValueError("collect_liquidations needs at least one pair")
    if not flush_seconds > 0:
        raise ValueError(f"flush_seconds must be positive, got {flush_seconds!r}")
    stop = stop or asyncio.Event()
    wanted = set(pairs)
    exchange_id = str(exchange.id).lower()
    seen: set[tuple[Any, ...]] = set()
    for pair in pairs:  # what is already stored does not count as new
        for row in load_liquidation_events(datadir, pair, missing_ok=True).itertuples(index=False):
            seen.add(_key(row._asdict()))
    buffer: dict[str, list[dict[str, Any]]] = {p: [] for p in pairs}
    stored = 0
    loop = asyncio.get_running_loop()
    last_flush = loop.time()
    pending = 0
    # the span being listened to: start (exchange ms), newest event time; and the exchange
    # clock's lead over the local clock (measured with fetch_time when a session starts)
    session: list[int | None] = [None, None]
    lead = [0]

    def flush(*, session_ends: bool = False) -> None:
        nonlocal stored, last_flush, pending
        now = max(_wall_ms() + lead[0], session[1] or 0)
        for pair, rows in buffer.items():
            if rows:
                _, added = save_liquidation_events(rows, datadir, pair)
                stored += added
                rows.clear()
            if session[0] is not None:
                record_coverage(datadir, pair, session[0], now)
        if session_ends:
            session[0] = session[1] = None
        pending = 0
        last_flush = loop.time()

    has = getattr(exchange, "has", None)
    multi = (
        bool(has.get("watchLiquidationsForSymbols"))
        if isinstance(has, dict)
        else hasattr(exchange, "watch_liquidations_for_symbols")
    )
    tasks: dict[str, asyncio.Future[Any]] = {}
    stopper = asyncio.ensure_future(stop.wait())

    async def next_batch() -> tuple[list[Any], BaseException | None]:
        """Liquidations from whichever watch returns first (or none when the flush timer
        runs out first), and the error one raised, if any."""
        if session[0] is None:
            lead[0] = await _clock_lead(exchange, lead[0])
            session[0] = _wall_ms() + lead[0]
        if multi:
            if "*" not in tasks:
                tasks["*"] = asyncio.ensure_future(
                    exchange.watch_liquidations_for_symbols(list(pairs))
                )
        else:
            for pair in pairs:
                if pair not in tasks:
                    tasks[pair] = asyncio.ensure_future(exchange.watch_liquidations(pair))
        timeout = max(0.0, last_flush + flush_seconds - loop.time())
        done, _ = await asyncio.wait(
            [*tasks.values(), stopper], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        batch: list[Any] = []
        error: BaseException | None = None
        for name, task in list(tasks.items()):
            if task in done:
                del tasks[name]
                if task.exception() is not None:
                    error = error or task.exception()
                else:
                    batch.extend(task.result() or [])
        return batch, error

    sizes: dict[Any, float | None] = {}
    raw_seen: set[tuple[Any, ...]] = set()
    delay = reconnect_delay
    try:
        while not stop.is_set():
            batch, error = await next_batch()
            if isinstance(error, ccxt.NetworkError):
                logger.warning("%s: %s; reconnecting in %.1fs", exchange_id, error, delay)
            elif error is not None:
                raise error
            elif batch:
                delay = reconnect_delay
            for liq in _with_cached(exchange, batch, raw_seen):
                try:
                    size = sizes.get(liq.get("symbol"))
                    if size is None and liq.get("symbol") not in sizes:
                        size = sizes.setdefault(
                            liq.get("symbol"), _contract_size_of(exchange, liq.get("symbol"))
                        )
                    event = normalise_liquidation(liq, exchange_id, size)
                except ValueError as exc:
                    logger.warning("skipping liquidation: %s", exc)
                    continue
                if event["symbol"] not in wanted:
                    continue
                key = _key(event)
                if key in seen:
                    continue
                seen.add(key)
                session[1] = max(session[1] or 0, key[0])
                buffer[event["symbol"]].append(event)
                pending += 1
                if on_event is not None:
                    result = on_event(event)
                    if asyncio.iscoroutine(result):
                        await result
            if pending >= flush_every or loop.time() - last_flush >= flush_seconds:
                flush()
            if max_events is not None and stored + pending >= max_events:
                break
            if isinstance(error, ccxt.NetworkError):
                flush(session_ends=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
    finally:
        for task in [*tasks.values(), stopper]:
            task.cancel()
        flush(session_ends=True)
        closer = getattr(exchange, "close", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                result = closer()
                if asyncio.iscoroutine(result):
                    await result
    return stored


def _raw_key(liq: Mapping[str, Any]) -> tuple[Any, ...]:
    info = liq.get("info")
    z = str(info.get("z")) if isinstance(info, Mapping) else None
    return (
        liq.get("timestamp"), liq.get("symbol"), liq.get("side"), liq.get("price"),
        liq.get("contracts"), z,
    )  # fmt: skip


def _with_cached(exchange: Any, batch: list[Any], raw_seen: set[tuple[Any, ...]]) -> list[Any]:
    """``batch`` plus the liquidations in ccxt.pro's cache (``exchange.liquidations``) not
    looked at before.

    ccxt.pro's ``watch_liquidations*`` returns only the message that resolved the wait; messages
    that arrive before the next call (a burst within one read) only reach the cache. Reading the
    cache keeps them.
    """
    cached = getattr(exchange, "liquidations", None)
    items = list(batch) + (list(cached) if isinstance(cached, list) else [])
    out = []
    for liq in items:
        if not isinstance(liq, Mapping):
            continue
        raw = _raw_key(liq)
        if raw not in raw_seen:
            raw_seen.add(raw)
            out.append(liq)
    if len(raw_seen) > 100_000:  # the cache holds the latest 1000: forget what it dropped
        raw_seen.clear()
        raw_seen.update(_raw_key(liq) for liq in items if isinstance(liq, Mapping))
    return out


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


async def _clock_lead(exchange: Any, previous: int) -> int:
    """Exchange time minus local time (ms) from ``fetch_time``; ``previous`` when the exchange
    cannot tell (a fake in tests, or the request failed)."""
    fetch = getattr(exchange, "fetch_time", None)
    if fetch is None:
        return previous
    try:
        before = _wall_ms()
        served = fetch()
        if asyncio.iscoroutine(served):
            served = await served
        after = _wall_ms()
        return int(served) - (before + after) // 2
    except Exception as exc:
        logger.debug("fetch_time failed (%s); coverage uses the last known clock lead", exc)
        return previous


# ------------------------------------------------------------------------------ coverage


def coverage_path(datadir: str | os.PathLike[str], pair: str) -> Path:
    """``<pair>-liquidation_events.coverage.json`` beside the event file: the spans (UTC ms,
    ``[[start, end], ...]``) the collector was listening."""
    return events_path(datadir, pair).with_suffix(".coverage.json")


def load_coverage(datadir: str | os.PathLike[str], pair: str) -> list[tuple[int, int]]:
    """The recorded listening spans of ``pair``, merged and sorted (empty without a file)."""
    path = coverage_path(datadir, pair)
    if not path.exists():
        return []
    try:
        raw = json.loads(path.read_text())
        spans = [(int(a), int(b)) for a, b in raw["spans"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a coverage file ({exc})") from None
    return _merge(spans)


def _merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def record_coverage(datadir: str | os.PathLike[str], pair: str, start_ms: int, end_ms: int) -> None:
    """Add the span ``[start_ms, end_ms]`` to the pair's coverage file (atomically)."""
    path = coverage_path(datadir, pair)
    spans = _merge([*load_coverage(datadir, pair), (int(start_ms), int(end_ms))])
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"spans": [list(s) for s in spans]}) + "\n")


#: bar length of the realised series read from an event file by ``evaluate realised`` and
#: ``calibrate`` (:func:`read_realised_events`)
REALISED_EVENT_BAR = "1h"


def recorded_bars(
    events: pd.DataFrame,
    spans: Sequence[tuple[int, int]],
    timeframe: str,
    *,
    start: pd.Timestamp | str | None = None,
    stop: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """:func:`events_to_bars` over the bars that lie entirely inside the listening ``spans``
    (ms; none given: from the first to the last event), within ``[start, stop]`` (bar opens)."""
    if not spans and len(events):
        ms = events["date"].dt.as_unit("ms").astype("int64")
        spans = [(int(ms.min()), int(ms.max()))]
    empty = events_to_bars(events.iloc[:0], timeframe)
    if not spans:
        return empty
    step = timeframe_to_timedelta(timeframe)
    step_ms = int(step / pd.Timedelta(milliseconds=1))
    lo = pd.Timestamp(spans[0][0], unit="ms", tz="UTC").floor(step)
    hi = pd.Timestamp(spans[-1][1], unit="ms", tz="UTC").floor(step)
    if start is not None:
        lo = max(lo, utc_timestamp(start))
    if stop is not None:
        hi = min(hi, utc_timestamp(stop))
    if lo > hi:
        return empty
    bars = events_to_bars(events, timeframe, start=lo, stop=hi)
    opens = bars["date"].dt.as_unit("ms").astype("int64").to_numpy()
    keep = covered(opens, opens + step_ms, spans)
    return bars.loc[keep].reset_index(drop=True)


def realised_frame(
    datadir: str | os.PathLike[str],
    pair: str,
    timeframe: str,
    *,
    start: pd.Timestamp | str | None = None,
    stop: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """Realised liquidations per bar from the pair's event file, recorded bars only.

    A bar counts when the collector was listening for all of it (the coverage file; a file
    without one, e.g. from ``liqsignals import liquidation-events``, counts from its first to its
    last event). Bars nobody recorded are left out, so a bar in the result with 0 really had
    no liquidation. Columns as :func:`events_to_bars` (``date``, ``long_liquidation_usd``,
    ``short_liquidation_usd``).
    """
    events = load_liquidation_events(datadir, pair)
    return recorded_bars(events, load_coverage(datadir, pair), timeframe, start=start, stop=stop)


def read_realised_events(
    path: str | os.PathLike[str], timeframe: str | None = None
) -> pd.DataFrame:
    """A collector's event file (``<PAIR>-liquidation_events.feather``, its coverage file beside
    it) as a realised series: :func:`recorded_bars` per ``timeframe`` bar.

    ``path`` may end in ``@<bar>`` (``BTC_USDT_USDT-liquidation_events.feather@5m``) to choose
    the bar; default :data:`REALISED_EVENT_BAR` (1h). This is how ``liqsignals evaluate
    realised --realised FILE`` and ``liqsignals calibrate`` read a collector's output.
    """
    text = os.fspath(path)
    name, sep, bar = text.rpartition("@")
    if sep and name.endswith(".feather"):
        text = name
        timeframe = timeframe or bar
    timeframe = timeframe or REALISED_EVENT_BAR
    timeframe_to_timedelta(timeframe)  # a bad bar fails here, with the timeframe's message
    path = Path(text)
    if not path.is_file():
        raise FileNotFoundError(f"liquidation event file {path} does not exist")
    events = read_frame(path)
    missing = [c for c in EVENT_COLUMNS if c not in events.columns]
    if missing:
        raise ValueError(f"{path}: not a liquidation event file (missing column(s) {missing})")
    spans: list[tuple[int, int]] = []
    cov = path.with_suffix(".coverage.json")
    if cov.exists():
        try:
            spans = _merge((int(a), int(b)) for a, b in json.loads(cov.read_text())["spans"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{cov}: not a coverage file ({exc})") from None
    out = recorded_bars(events.loc[:, list(EVENT_COLUMNS)], spans, timeframe)
    if out.empty:
        raise ValueError(f"{path}: no recorded bar of {timeframe} (too few events or too short)")
    return out


def covered(starts: np.ndarray, ends: np.ndarray, spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """Whether each ``[start, end]`` (ms) lies inside one of the merged ``spans``."""
    if not spans:
        return np.zeros(len(starts), dtype=bool)
    lo = np.array([a for a, _ in spans], dtype="int64")
    hi = np.array([b for _, b in spans], dtype="int64")
    idx = np.searchsorted(lo, np.asarray(starts, dtype="int64"), side="right") - 1
    ok = idx >= 0
    safe = np.clip(idx, 0, None)
    return ok & (np.asarray(ends, dtype="int64") <= hi[safe])


def _key(event: Mapping[str, Any]) -> tuple[Any, ...]:
    date = pd.Timestamp(event["date"])
    return (
        int(date.value // 10**6),
        str(event["exchange"]),
        str(event["symbol"]),
        str(event["side"]),
        float(event["price"]),
        float(event["amount"]),
    )
