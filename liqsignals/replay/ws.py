"""The replay exchange's websocket: Binance USDT-M liquidation streams from recorded events.

Streams (Binance's names and JSON): ``<symbol>@forceOrder`` (one market, e.g.
``btcusdt@forceOrder``) and ``!forceOrder@arr`` (every market the datadir serves). Each recorded
event of ``<datadir>/futures/liqsignals/<PAIR>-liquidation_events.feather`` (what
``liqsignals import liquidation-events`` and ``liqsignals collect-liquidations`` write) is sent
once its time has come on the replay clock, as Binance sends it::

    {"e": "forceOrder", "E": 1698871323061,
     "o": {"s": "BTCUSDT", "S": "SELL", "o": "LIMIT", "f": "IOC", "q": "1.437",
           "p": "35100.81", "ap": "35100.81", "X": "FILLED", "l": "1.437", "z": "1.437",
           "T": 1698871323061}}

``S`` is the side of the liquidation order (``SELL``: a long was liquidated); the quantities are
the stored amount and both prices the stored price (the order's bankruptcy price is not stored).
Timestamps are served time (stored time plus the clock's shift).

Endpoints, on the REST server's own port (``ws://127.0.0.1:<port>/...``):

* ``/ws``, ``/market/ws``, ``/public/ws`` (ccxt adds a stream index: ``/market/ws/0``): raw
  payloads; streams named in the path (``/ws/btcusdt@forceOrder``) or subscribed with
  ``{"method": "SUBSCRIBE", "params": [...], "id": 1}`` (answer ``{"result": null, "id": 1}``;
  ``UNSUBSCRIBE`` and ``LIST_SUBSCRIPTIONS`` work too).
* ``/stream?streams=a/b`` (also under ``/market``): combined payloads,
  ``{"stream": "btcusdt@forceOrder", "data": {...}}``.

A subscription starts at the clock's current time: like Binance, the stream has no history,
except that ``backlog_ms`` (``--ws-backlog``) re-sends the events of that much stored time before
the subscription, which is how a replay models events a reconnect delivers twice. Historical
clocks stand still, so a historical replay sends nothing unless the clock is moved.

Faults (``FaultConfig``): ``ws_drop`` cuts the connection without a close frame in place of
sending a message, ``ws_reconnect`` sends a close frame (code 1001, "reconnect") instead; both
drawn per message. The message is not sent on that connection.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import numpy as np

from liqsignals.replay.clock import Clock
from liqsignals.replay.faults import FaultInjector
from liqsignals.replay.store import DataStore

logger = logging.getLogger(__name__)

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: path prefixes served as raw streams, and as combined streams
RAW_PATHS = ("/ws", "/market/ws", "/public/ws")
COMBINED_PATHS = ("/stream", "/market/stream", "/public/stream")
ALL_MARKETS = "!forceorder@arr"
#: how often a connection checks for events that came due (wall seconds)
TICK_S = 0.05
#: seconds between the server's pings
PING_S = 20.0


def is_ws_path(path: str) -> bool:
    """Whether a request path is one of the websocket endpoints."""
    return any(path == p or path.startswith(p + "/") for p in RAW_PATHS + COMBINED_PATHS)


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key`` (RFC 6455)."""
    return base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()


@dataclass
class _Events:
    """One market's recorded events in Binance's fields, sorted by stored time."""

    ms: np.ndarray
    rows: list[dict[str, Any]]
    mtime: float = 0.0


@dataclass
class _Sub:
    """A subscribed stream: the stored time up to which it has sent events."""

    name: str
    symbols: list[str]
    cursor: int
    sent: dict[str, int] = field(default_factory=dict)


def _fmt(value: float) -> str:
    return repr(float(value))


class LiquidationFeed:
    """Recorded events per market, reloaded when the event file changes."""

    def __init__(self, store: DataStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._cache: dict[str, _Events] = {}

    def path(self, symbol: str) -> Path:
        from liqsignals.data.liquidations import events_path

        return events_path(self.store.datadir, self.store.markets[symbol].pair)

    def events(self, symbol: str) -> _Events:
        """The market's events (empty when there is no event file)."""
        path = self.path(symbol)
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return _Events(np.zeros(0, dtype="int64"), [])
        with self._lock:
            cached = self._cache.get(symbol)
            if cached is not None and cached.mtime == mtime:
                return cached
        from liqsignals.data.liquidations import LONG, load_liquidation_events

        df = load_liquidation_events(self.store.datadir, self.store.markets[symbol].pair)
        df = df.sort_values("date", kind="stable").reset_index(drop=True)
        ms = df["date"].dt.as_unit("ms").astype("int64").to_numpy()
        rows = [
            {
                "s": symbol,
                "S": "SELL" if side == LONG else "BUY",
                "q": _fmt(amount),
                "p": _fmt(price),
                "ap": _fmt(price),
                "z": _fmt(amount),
            }
            for side, price, amount in zip(df["side"], df["price"], df["amount"], strict=True)
        ]
        events = _Events(np.asarray(ms, dtype="int64"), rows, mtime)
        with self._lock:
            self._cache[symbol] = events
        return events

    def message(self, symbol: str, index: int, offset_ms: int) -> dict[str, Any]:
        events = self.events(symbol)
        row = events.rows[index]
        served = int(events.ms[index]) + offset_ms
        return {
            "e": "forceOrder",
            "E": served,
            "o": {
                "s": row["s"],
                "S": row["S"],
                "o": "LIMIT",
                "f": "IOC",
                "q": row["q"],
                "p": row["p"],
                "ap": row["ap"],
                "X": "FILLED",
                "l": row["z"],
                "z": row["z"],
                "T": served,
            },
        }


class WebsocketHub:
    """The websocket connections of one replay exchange, on one asyncio loop in its own thread.

    :meth:`adopt` takes over a socket whose upgrade request the HTTP server has answered.
    """

    def __init__(
        self, store: DataStore, clock: Clock, faults: FaultInjector, *, backlog_ms: int = 0
    ) -> None:
        if backlog_ms < 0:
            raise ValueError(f"websocket backlog must not be negative, got {backlog_ms}")
        self.feed = LiquidationFeed(store)
        self.store = store
        self.clock = clock
        self.faults = faults
        self.backlog_ms = int(backlog_ms)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready = threading.Event()
        #: messages sent over all connections, and connections served
        self.sent = 0
        self.connections = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="replay-websocket", daemon=True)
        self._thread.start()
        self._ready.wait(5.0)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    def stop(self, timeout: float = 5.0) -> None:
        loop, thread = self.loop, self._thread
        if loop is None or thread is None:
            return

        async def close_all() -> None:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close_all(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._thread = None
        self.loop = None

    @property
    def open_connections(self) -> int:
        return len(self._tasks)

    def adopt(self, sock: socket.socket, path: str, query: str, buffered: bytes) -> None:
        """Serve the websocket on ``sock`` (handshake already answered)."""
        loop = self.loop
        if loop is None:
            sock.close()
            return

        def begin() -> None:
            task = loop.create_task(self._serve(sock, path, query, buffered))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        loop.call_soon_threadsafe(begin)

    # ------------------------------------------------------------------ one connection

    def _symbols(self, stream: str) -> list[str] | None:
        name = stream.lower()
        if name == ALL_MARKETS:
            return sorted(self.store.markets)
        base, _, kind = name.partition("@")
        symbol = base.upper()
        if kind == "forceorder" and symbol in self.store.markets:
            return [symbol]
        return None

    def _subscribe(self, subs: dict[str, _Sub], streams: list[str]) -> str | None:
        """Add streams; an error text for a stream the replay does not serve."""
        now = self.clock.data_now_ms()
        for stream in streams:
            symbols = self._symbols(str(stream))
            if symbols is None:
                return (
                    f"stream {stream!r} is not served (only <symbol>@forceOrder, !forceOrder@arr)"
                )
            if stream not in subs:
                sub = _Sub(str(stream), symbols, now - self.backlog_ms)
                subs[str(stream)] = sub
                logger.debug("replay websocket: %s subscribed at %d", stream, now)
        return None

    async def _serve(self, sock: socket.socket, path: str, query: str, buffered: bytes) -> None:
        from websockets.frames import Frame, Opcode
        from websockets.protocol import Protocol, Side, State

        self.connections += 1
        proto = Protocol(Side.SERVER, state=State.OPEN, max_size=2**20)
        sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=sock)
        combined = any(path == p or path.startswith(p + "/") for p in COMBINED_PATHS)
        subs: dict[str, _Sub] = {}
        if combined:
            streams = [s for v in parse_qs(query).get("streams", []) for s in v.split("/") if s]
        else:
            rest = path.split("/ws", 1)[1].strip("/")
            streams = [s for s in rest.split("/") if "@" in s]
        error = self._subscribe(subs, streams)

        async def flush() -> None:
            for chunk in proto.data_to_send():
                if chunk:
                    writer.write(chunk)
            await writer.drain()

        def reply(payload: Any) -> None:
            proto.send_text(json.dumps(payload, separators=(",", ":")).encode())

        def handle(text: bytes) -> None:
            try:
                msg = json.loads(text)
                method = str(msg.get("method", "")).upper()
                req_id = msg.get("id")
                params = msg.get("params") or []
            except (ValueError, AttributeError):
                reply({"error": {"code": 3, "msg": "Invalid JSON"}})
                return
            if method == "SUBSCRIBE":
                err = self._subscribe(subs, [str(p) for p in params])
                reply({"result": None, "id": req_id} if err is None else _err(err, req_id))
            elif method == "UNSUBSCRIBE":
                for p in params:
                    subs.pop(str(p), None)
                reply({"result": None, "id": req_id})
            elif method == "LIST_SUBSCRIPTIONS":
                reply({"result": list(subs), "id": req_id})
            else:
                reply(_err(f"unknown method {method!r}", req_id))

        if error is not None:
            proto.send_close(1008, error[:120])
            await flush()
            writer.close()
            return
        if buffered:
            proto.receive_data(buffered)
        loop = asyncio.get_running_loop()
        next_ping = loop.time() + PING_S
        read = asyncio.ensure_future(reader.read(65536))
        try:
            while proto.state is State.OPEN:
                for event in proto.events_received():
                    if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                        handle(bytes(event.data))
                await flush()
                if proto.state is not State.OPEN:
                    break
                if await self._push(proto, subs, combined, writer):
                    return  # dropped or asked to reconnect
                await flush()
                if loop.time() >= next_ping:
                    proto.send_ping(b"")
                    next_ping = loop.time() + PING_S
                done, _ = await asyncio.wait([read], timeout=TICK_S)
                if done:
                    data = read.result()
                    if not data:
                        proto.receive_eof()
                        break
                    proto.receive_data(data)
                    read = asyncio.ensure_future(reader.read(65536))
            await flush()
        except (ConnectionError, OSError) as exc:
            logger.debug("replay websocket %s ended: %r", path, exc)
        finally:
            read.cancel()
            with contextlib.suppress(Exception):
                writer.close()

    async def _push(
        self, proto: Any, subs: dict[str, _Sub], combined: bool, writer: asyncio.StreamWriter
    ) -> bool:
        """Send every subscribed event that came due; ``True`` when a fault ended the
        connection."""
        if not subs:
            return False
        now = self.clock.data_now_ms()
        offset = self.clock.offset_ms
        due: list[tuple[int, str, int, str]] = []  # stored ms, symbol, index, stream
        for sub in subs.values():
            for symbol in sub.symbols:
                events = self.feed.events(symbol)
                lo = int(np.searchsorted(events.ms, sub.cursor, side="right"))
                hi = int(np.searchsorted(events.ms, now, side="right"))
                due.extend((int(events.ms[i]), symbol, i, sub.name) for i in range(lo, hi))
        due.sort()
        for ms, symbol, index, stream in due:
            fault = self.faults.draw_ws()
            if fault is not None:
                logger.debug("replay websocket: %s before the event at %d", fault, ms)
            if fault == "ws_drop":
                writer.transport.abort()
                return True
            if fault == "ws_reconnect":
                proto.send_close(1001, "reconnect")
                for chunk in proto.data_to_send():
                    if chunk:
                        writer.write(chunk)
                await writer.drain()
                writer.close()
                return True
            payload = self.feed.message(symbol, index, offset)
            if combined:
                payload = {"stream": stream, "data": payload}
            proto.send_text(json.dumps(payload, separators=(",", ":")).encode())
            self.sent += 1
            subs[stream].cursor = ms
        for sub in subs.values():
            sub.cursor = max(sub.cursor, now)
        return False


def _err(text: str, req_id: Any) -> dict[str, Any]:
    return {"error": {"code": 2, "msg": text}, "id": req_id}
