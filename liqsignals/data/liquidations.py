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
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liqsignals.data.datadir import (
    append_frame,
    data_path,
    pair_to_filename,
    read_frame,
    save_series,
    timeframe_to_timedelta,
)

__all__ = [
    "EVENT_COLUMNS",
    "LONG",
    "SHORT",
    "collect_liquidations",
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
    df["date"] = pd.to_datetime(df["date"], utc=True).dt.as_unit("ms")
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
            "date": pd.to_datetime(raw["trade_time_ms"].astype("int64"), unit="ms", utc=True),
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
    out["date"] = pd.to_datetime(out["date"], utc=True)
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
    dates = pd.to_datetime(events["date"], utc=True)
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

    Events are buffered and merged into ``<pair>-liquidation_events.feather`` every
    ``flush_every`` events or ``flush_seconds``, and always when the collector stops (also on
    cancellation or an error). A dedupe key (date, exchange, symbol, side, price, amount) keeps
    events that a reconnect delivers twice, or that are already on disk, from being stored twice.
    Network errors are retried after ``reconnect_delay`` seconds (doubling, at most 60 s).

    Runs until ``stop`` is set, ``max_events`` new events were stored, or it is cancelled.
    Returns the number of new events stored. ``exchange`` only needs ``id`` and
    ``watch_liquidations_for_symbols`` (or ``watch_liquidations``), so tests can pass a fake.
    """
    import ccxt

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

    def flush() -> None:
        nonlocal stored, last_flush, pending
        for pair, rows in buffer.items():
            if rows:
                _, added = save_liquidation_events(rows, datadir, pair)
                stored += added
                rows.clear()
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
        """Liquidations from whichever watch returns first, and the error one raised, if any."""
        if multi:
            if "*" not in tasks:
                tasks["*"] = asyncio.ensure_future(
                    exchange.watch_liquidations_for_symbols(list(pairs))
                )
        else:
            for pair in pairs:
                if pair not in tasks:
                    tasks[pair] = asyncio.ensure_future(exchange.watch_liquidations(pair))
        done, _ = await asyncio.wait(
            [*tasks.values(), stopper], return_when=asyncio.FIRST_COMPLETED
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
    delay = reconnect_delay
    try:
        while not stop.is_set():
            batch, error = await next_batch()
            if isinstance(error, ccxt.NetworkError):
                logger.warning("%s: %s; reconnecting in %.1fs", exchange_id, error, delay)
            elif error is not None:
                raise error
            else:
                delay = reconnect_delay
            for liq in batch:
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
                flush()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
    finally:
        for task in [*tasks.values(), stopper]:
            task.cancel()
        flush()
        closer = getattr(exchange, "close", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                result = closer()
                if asyncio.iscoroutine(result):
                    await result
    return stored


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
