"""The replay exchange's HTTP server: a bounded, loopback-only HTTP/1.1 server (stdlib only).

One thread watches every connection with a selector and reads request headers without blocking;
a request whose headers are complete goes to a fixed pool of worker threads, which answer it and
hand the connection back (keep-alive). So slow or idle clients hold a file descriptor, never a
thread, and :class:`ServerLimits` bounds everything else: the worker count, the open connections
(the oldest waiting one is dropped to admit a new client), the listen queue, the time a request
may take to arrive (``header_timeout``) and the time an idle keep-alive connection is kept
(``idle_timeout``). A client that disconnects mid-answer is logged at DEBUG, not on stderr.

Example
-------
>>> from liqsignals import sample
>>> from liqsignals.replay import ReplayExchange
>>> with ReplayExchange(sample.datadir()) as ex:                      # doctest: +SKIP
...     import ccxt
...     api = ccxt.binanceusdm(ex.ccxt_config())
...     candles = api.fetch_ohlcv("BTC/USDT:USDT", "1h", limit=3)
"""

from __future__ import annotations

import io
import ipaddress
import json
import logging
import os
import queue
import selectors
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from liqsignals.replay import config as _config
from liqsignals.replay.api import ReplayAPI, Response, error_response
from liqsignals.replay.clock import Clock, HistoricalClock
from liqsignals.replay.faults import Fault, FaultConfig, FaultInjector
from liqsignals.replay.store import DataStore, MarketSpec
from liqsignals.replay.ws import WebsocketHub, accept_key, is_ws_path

logger = logging.getLogger(__name__)

#: the stdlib parser's limit for one request or header line
_MAX_LINE = 65536
#: request heads longer than this go to the parser unfinished (it answers 414/431)
_MAX_HEAD = 2 * _MAX_LINE
#: request bodies up to this size are read and discarded; larger ones close the connection
_MAX_BODY = _MAX_LINE


@dataclass(frozen=True)
class ServerLimits:
    """How much the replay exchange's HTTP server takes on.

    Attributes
    ----------
    workers:
        Threads answering requests (requests beyond that wait in a queue).
    max_connections:
        Open connections at most. A new client beyond that displaces the connection that has
        waited longest without a request in progress; when every connection is busy, new ones
        wait in the listen queue.
    backlog:
        Listen queue length (capped by the kernel's ``somaxconn``).
    header_timeout:
        Seconds from a request's first byte until its headers (and body) must have arrived,
        also the time allowed for writing one answer. Slower connections are closed.
    idle_timeout:
        Seconds a connection may stay open without a request (keep-alive, or connected and
        silent) before the server closes it.
    """

    workers: int = 16
    max_connections: int = 512
    backlog: int = 1024
    header_timeout: float = 10.0
    idle_timeout: float = 60.0

    def __post_init__(self) -> None:
        for name in ("workers", "max_connections", "backlog"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ServerLimits.{name} must be a positive integer, got {value!r}")
        for name in ("header_timeout", "idle_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"ServerLimits.{name} must be a positive number, got {value!r}")


def check_port(port: object) -> int:
    """``port`` as an int in 0..65535 (0: any free port), else a ``ValueError``."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port {port!r}: expected an integer from 0 to 65535 (0: a free port)")
    return port


class NotLoopbackError(ValueError):
    """A host to listen on that is not (or does not resolve only to) loopback addresses."""


def _is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def resolve_bind_address(
    host: str, port: int = 0, *, allow_remote: bool = False
) -> tuple[socket.AddressFamily, tuple[Any, ...]]:
    """The ``(family, sockaddr)`` the replay exchange binds for ``host``.

    ``host`` is resolved (names through the system resolver); unless ``allow_remote`` is true,
    every address it resolves to must be a loopback address, otherwise
    :class:`NotLoopbackError` (a ``ValueError``) says so; a bad port or a name that does not
    resolve is a ``ValueError`` too. An IPv4 address is preferred when the name has both.
    """
    check_port(port)
    if allow_remote and host == "":
        host = "0.0.0.0"  # every interface, as asked for
    if not isinstance(host, str) or not host.strip():
        raise NotLoopbackError(
            f"host {host!r}: an empty host means every interface; the replay exchange "
            "serves loopback only (e.g. 127.0.0.1)"
        )
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ValueError(f"host {host!r} does not resolve to an address ({exc})") from None
    remote = sorted({str(info[4][0]) for info in infos if not _is_loopback(str(info[4][0]))})
    if remote and not allow_remote:
        raise NotLoopbackError(
            f"host {host!r} resolves to {', '.join(remote)}, not a loopback address: the "
            "replay exchange serves loopback only"
        )
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    family, _, _, _, sockaddr = infos[0]
    return family, tuple(sockaddr)


# ---------------------------------------------------------------------------- connections


class _Connection:
    """One client connection; owned by the selector thread unless ``busy`` (then by a worker)."""

    __slots__ = ("addr", "buf", "busy", "deadline", "scan", "since", "sock")

    def __init__(self, sock: socket.socket, addr: Any, now: float, idle_timeout: float) -> None:
        self.sock = sock
        self.addr = addr
        self.buf = bytearray()
        self.scan = 0  # where to resume looking for the end of the head
        self.busy = False
        self.since = now  # last activity: the connection waiting longest is displaced first
        self.deadline = now + idle_timeout

    def head_complete(self) -> bool:
        """Whether the buffer holds what the parser needs to answer without waiting."""
        buf = self.buf
        eol = buf.find(b"\n")
        if eol < 0:
            return len(buf) > _MAX_LINE
        if len(buf[:eol].split()) not in (2, 3):  # garbage or an empty line: answered at once
            return True
        start = max(eol, self.scan - 2)
        if buf.find(b"\n\r\n", start) >= 0 or buf.find(b"\n\n", start) >= 0:
            return True
        self.scan = len(buf)
        return len(buf) > _MAX_HEAD


class _Reader(io.BufferedIOBase):
    """The request stream: the bytes the selector already read, then the socket, against one
    deadline for the whole request."""

    def __init__(self, sock: socket.socket, buf: bytearray, deadline: float) -> None:
        super().__init__()
        self.sock = sock
        self.buf = buf
        self.deadline = deadline

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("request not received in time")
        self.sock.settimeout(remaining)
        chunk = self.sock.recv(65536)
        self.buf += chunk
        return bool(chunk)

    def readline(self, size: int | None = -1) -> bytes:
        limit = -1 if size is None else size
        start = 0
        while True:
            eol = self.buf.find(b"\n", start)
            if eol >= 0:
                end = eol + 1
                break
            if 0 <= limit <= len(self.buf):
                end = limit
                break
            start = len(self.buf)
            if not self._fill():
                end = len(self.buf)
                break
        if limit >= 0:
            end = min(end, limit)
        out = bytes(self.buf[:end])
        del self.buf[:end]
        return out

    def read(self, size: int | None = -1) -> bytes:
        while (size is None or size < 0 or len(self.buf) < size) and self._fill():
            pass
        end = len(self.buf) if size is None or size < 0 else min(size, len(self.buf))
        out = bytes(self.buf[:end])
        del self.buf[:end]
        return out


class _Writer(io.BufferedIOBase):
    """Unbuffered writes to the socket, each within ``timeout`` seconds."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        super().__init__()
        self.sock = sock
        self.timeout = timeout

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)
        return len(data)


# ---------------------------------------------------------------------------- HTTP handling


class _Handler(BaseHTTPRequestHandler):
    """Answers one request on a connection whose head is already buffered."""

    protocol_version = "HTTP/1.1"
    server_version = "liqsignals-replay"

    def __init__(  # the socketserver constructor would run the whole connection; not used
        self,
        conn: _Connection,
        api: ReplayAPI,
        stopping: threading.Event,
        limits: ServerLimits,
        hub: WebsocketHub | None = None,
    ) -> None:
        self.request = self.connection = conn.sock
        self.client_address = conn.addr
        self.api = api
        self.hub = hub
        #: the connection became a websocket and belongs to the hub now
        self.detached = False
        self.buffered = conn.buf
        self.stopping = stopping
        self.rfile = _Reader(conn.sock, conn.buf, time.monotonic() + limits.header_timeout)
        self.wfile = _Writer(conn.sock, limits.header_timeout)

    def answer(self) -> bool:
        """Answer one request; whether the connection stays open for the next."""
        self.close_connection = True
        self.handle_one_request()
        return not self.close_connection

    # every method goes through the API, which answers unknown paths and methods itself
    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if length > _MAX_BODY:
            self.close_connection = True  # bodies are not used: do not wait for a large one
        elif length > 0:
            self.rfile.read(length)  # keep the connection usable; bodies are not read
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        api = self.api
        if self.hub is not None and is_ws_path(path) and self.command == "GET":
            self._upgrade(path, url.query)
            return
        fault = api.faults.draw(path)
        if fault is Fault.TIMEOUT:
            self.stopping.wait(api.faults.config.timeout_s)
            self.close_connection = True  # drop the connection without an answer
            return
        if fault is not None:
            self._send(_fault_response(fault, api.faults.config))
            return
        self._send(api.handle(self.command, path, url.query, dict(self.headers.items())))

    def _upgrade(self, path: str, query: str) -> None:
        """Answer a websocket upgrade and hand the connection to the hub."""
        key = self.headers.get("Sec-WebSocket-Key")
        if "websocket" not in (self.headers.get("Upgrade") or "").lower() or not key:
            self._send(error_response(-1000, "websocket endpoint: send an Upgrade request", 426))
            return
        try:
            from liqsignals.extras import ensure

            ensure("websockets", "the replay exchange's liquidation websocket")
        except ImportError as exc:
            logger.warning("replay exchange: %s", exc)
            self._send(error_response(-1000, str(exc), 501))
            return
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept_key(key))
        self.end_headers()
        self.detached = True
        self.close_connection = True
        self.path_only, self.query = path, query

    def _send(self, response: Response) -> None:
        payload = response.payload()
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors the stdlib raises itself (bad request line, unknown method): JSON too."""
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        body = json.dumps({"code": -1000, "msg": message or phrase}).encode()
        self.close_connection = True
        # a request line too broken to parse leaves HTTP/0.9, which would drop the status line
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.1"
        self.send_response(code, message)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if getattr(self, "command", None) != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)


def _fault_response(fault: Fault, cfg: FaultConfig) -> Response:
    if fault is Fault.SERVER_ERROR:
        return error_response(
            -1001, "Internal error; unable to process your request. Please try again.", 500
        )
    if fault is Fault.BAD_GATEWAY:
        return error_response(-1001, "Bad gateway; the upstream service did not answer.", 502)
    if fault is Fault.RATE_LIMIT:
        resp = error_response(
            -1003,
            "Too many requests; current limit of IP(127.0.0.1) is 2400 requests per minute. "
            "Please use the websocket for live updates to avoid polling the API.",
            429,
        )
        resp.headers["Retry-After"] = str(cfg.retry_after_s)
        return resp
    # MALFORMED: a 200 whose JSON breaks off halfway
    return Response(200, b'{"code":0,"msg":"truncat')


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


class _Server:
    """The selector thread, the worker pool and the connection table of one listening socket."""

    def __init__(
        self,
        listener: socket.socket,
        api: ReplayAPI,
        limits: ServerLimits,
        hub: WebsocketHub | None = None,
    ) -> None:
        self.listener = listener
        self.api = api
        self.limits = limits
        self.hub = hub
        self.stopping = threading.Event()
        #: open connections by ``id``; changed by the selector thread only
        self.connections: dict[int, _Connection] = {}
        self.jobs: queue.SimpleQueue[_Connection | None] = queue.SimpleQueue()
        #: connections the workers are done with: keep open, close, or ``None``: a websocket
        #: that the hub owns now (forgotten here without closing)
        self.returned: deque[tuple[_Connection, bool | None]] = deque()
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        self.accepting = False
        self.threads: list[threading.Thread] = []

    # -------------------------------------------------------------- lifecycle

    def start(self, name: str) -> None:
        self.listener.setblocking(False)
        self.selector.register(self.wake_r, selectors.EVENT_READ, "wake")
        self._accepting(True)
        self.threads = [threading.Thread(target=self._loop, name=name, daemon=True)]
        self.threads += [
            threading.Thread(target=self._work, name=f"{name}-worker-{i}", daemon=True)
            for i in range(self.limits.workers)
        ]
        for thread in self.threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        self._wake()
        for _ in range(self.limits.workers):
            self.jobs.put(None)
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self.threads = []
        _close(self.wake_w)  # a worker still finishing meets a closed socket: ignored

    def _wake(self) -> None:
        try:
            self.wake_w.send(b"x")
        except OSError:  # full (a wake-up is pending anyway) or closed
            pass

    # -------------------------------------------------------------- the selector thread

    def _accepting(self, on: bool) -> None:
        if on and not self.accepting:
            self.selector.register(self.listener, selectors.EVENT_READ, "listen")
        elif not on and self.accepting:
            self.selector.unregister(self.listener)
        self.accepting = on

    def _loop(self) -> None:
        try:
            while not self.stopping.is_set():
                timeout = self._expire()
                for key, _ in self.selector.select(timeout):
                    if key.data == "listen":
                        self._accept()
                    elif key.data == "wake":
                        self._drain_wake()
                    else:
                        self._read(key.data)
                self._take_back()
        except Exception:  # pragma: no cover - a bug here must not pass silently
            logger.exception("replay exchange: the connection loop failed")
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        self._accepting(False)
        _close(self.listener)
        while self.returned:
            conn, _ = self.returned.popleft()
            conn.busy = False
        for conn in list(self.connections.values()):
            if not conn.busy:
                self._drop(conn)
        self.selector.close()
        _close(self.wake_r)

    def _drain_wake(self) -> None:
        try:
            while self.wake_r.recv(4096):
                pass
        except OSError:
            pass

    def _accept(self) -> None:
        while True:
            full = len(self.connections) >= self.limits.max_connections
            if full and all(c.busy for c in self.connections.values()):
                self._accepting(False)  # everything is busy: new clients wait in the backlog
                return
            try:
                sock, addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. out of file descriptors: retry on the next round
                logger.warning("replay exchange: accept failed: %s", exc)
                return
            if full:
                self._displace()
            sock.setblocking(False)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            conn = _Connection(sock, addr, time.monotonic(), self.limits.idle_timeout)
            self.connections[id(conn)] = conn
            self.selector.register(sock, selectors.EVENT_READ, conn)

    def _displace(self) -> None:
        waiting = [c for c in self.connections.values() if not c.busy]
        if waiting:
            oldest = min(waiting, key=lambda c: c.since)
            logger.debug("replay exchange: connection limit reached, closing %s", oldest.addr)
            self._drop(oldest)

    def _drop(self, conn: _Connection) -> None:
        if not conn.busy:
            try:
                self.selector.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
        self.connections.pop(id(conn), None)
        _close(conn.sock)
        if not self.accepting and not self.stopping.is_set():
            self._accepting(True)

    def _read(self, conn: _Connection) -> None:
        try:
            chunk = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._drop(conn)
            return
        now = time.monotonic()
        if not conn.buf:  # the first byte of a request: it has header_timeout to arrive
            conn.deadline = now + self.limits.header_timeout
        conn.buf += chunk
        conn.since = now
        if conn.head_complete():
            self._dispatch(conn)

    def _dispatch(self, conn: _Connection) -> None:
        self.selector.unregister(conn.sock)
        conn.busy = True
        conn.scan = 0
        self.jobs.put(conn)

    def _take_back(self) -> None:
        while self.returned:
            conn, keep = self.returned.popleft()
            conn.busy = False
            if keep is None:
                self.connections.pop(id(conn), None)
                if not self.accepting and not self.stopping.is_set():
                    self._accepting(True)
                continue
            if not keep:
                self._drop(conn)
                continue
            now = time.monotonic()
            conn.since = now
            conn.deadline = now + (
                self.limits.header_timeout if conn.buf else self.limits.idle_timeout
            )
            try:
                conn.sock.setblocking(False)
                self.selector.register(conn.sock, selectors.EVENT_READ, conn)
            except (OSError, ValueError):
                self._drop(conn)
                continue
            if not self.accepting and not self.stopping.is_set():
                self._accepting(True)  # a connection is waiting again: one can be displaced
            if conn.buf and conn.head_complete():  # a pipelined request
                self._dispatch(conn)

    def _expire(self) -> float:
        """Close connections past their deadline; seconds until the next deadline (<= 1)."""
        now = time.monotonic()
        nearest = now + 1.0
        for conn in list(self.connections.values()):
            if conn.busy:
                continue
            if conn.deadline <= now:
                logger.debug("replay exchange: closing %s (timed out)", conn.addr)
                self._drop(conn)
            else:
                nearest = min(nearest, conn.deadline)
        return max(0.0, nearest - now)

    # -------------------------------------------------------------- the workers

    def _work(self) -> None:
        while True:
            conn = self.jobs.get()
            if conn is None:
                return
            keep: bool | None = False
            try:
                conn.sock.setblocking(True)
                handler = _Handler(conn, self.api, self.stopping, self.limits, self.hub)
                keep = handler.answer() and not self.stopping.is_set()
                if handler.detached and self.hub is not None and not self.stopping.is_set():
                    self.hub.adopt(conn.sock, handler.path_only, handler.query, bytes(conn.buf))
                    keep = None
            except OSError as exc:  # the client went away or was too slow: nothing to report
                logger.debug("replay exchange: connection %s ended: %r", conn.addr, exc)
            except Exception:
                logger.exception("replay exchange: error on connection %s", conn.addr)
            if self.stopping.is_set() and keep is not None:
                _close(conn.sock)
            self.returned.append((conn, keep))
            self._wake()


class ReplayExchange:
    """A Binance USDT-M compatible exchange on loopback, serving a freqtrade datadir.

    Use it as a context manager (``with ReplayExchange(datadir) as ex: ...``) or call
    :meth:`start` and :meth:`stop`. ``port=0`` (the default) picks a free port.

    Parameters
    ----------
    datadir:
        Exchange folder of a freqtrade datadir (holding ``futures/``).
    host, port:
        Where to listen. ``host`` is resolved at once; a host that resolves to anything but
        loopback addresses (``0.0.0.0``, ``""``, a public name) raises ``ValueError`` unless
        ``allow_remote=True``. ``port`` must be 0..65535.
    clock:
        What "now" is (default: a :class:`~liqsignals.replay.clock.HistoricalClock` at the end
        of the data, so all stored history is served).
    faults:
        Fault injection (default: none). Can be switched later with :meth:`set_faults`.
    specs:
        Exchange filters per symbol id, overriding the built-in table.
    limits:
        Worker threads, connection cap, listen queue and timeouts (:class:`ServerLimits`).
    allow_remote:
        Bind a non-loopback address anyway: the server has no authentication, so this exposes
        it to every host that can reach the address.
    ws_backlog_ms:
        Websocket liquidation streams (:mod:`.ws`, same port): a new subscription first gets
        the recorded events of this much stored time before it (default 0, as on Binance).
    """

    def __init__(
        self,
        datadir: str | os.PathLike[str],
        *,
        host: str = _config.DEFAULT_HOST,
        port: int = 0,
        clock: Clock | None = None,
        faults: FaultConfig | None = None,
        specs: dict[str, MarketSpec] | None = None,
        limits: ServerLimits | None = None,
        allow_remote: bool = False,
        ws_backlog_ms: int = 0,
    ) -> None:
        try:
            self._family, self._sockaddr = resolve_bind_address(
                host, port, allow_remote=allow_remote
            )
        except NotLoopbackError as exc:
            raise NotLoopbackError(
                f"{exc} (allow_remote=True binds it anyway, unauthenticated)"
            ) from None
        self.limits = limits or ServerLimits()
        self.store = DataStore(datadir, specs=specs)
        self.clock = clock or HistoricalClock(self.store.last_close_ms())
        self.api = ReplayAPI(self.store, self.clock, FaultInjector(faults))
        self.ws = WebsocketHub(self.store, self.clock, self.api.faults, backlog_ms=ws_backlog_ms)
        self._host = host
        self._url_host = f"[{host}]" if ":" in host else host  # an IPv6 literal in URLs
        self._port = port
        self._server: _Server | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ReplayExchange:
        """Bind and serve in background threads. Returns ``self``."""
        if self._server is not None:
            return self
        listener = socket.socket(self._family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(self._sockaddr)
            listener.listen(self.limits.backlog)
        except BaseException:
            listener.close()
            raise
        self._port = listener.getsockname()[1]
        self.ws.start()
        server = _Server(listener, self.api, self.limits, self.ws)
        server.start(f"replay-exchange:{self._port}")
        self._server = server
        logger.info("replay exchange serving %s on %s", self.store.datadir, self.url)
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and release the port (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()
            self.ws.stop()

    def __enter__(self) -> ReplayExchange:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def open_connections(self) -> int:
        """Client connections open right now (0 when stopped)."""
        server = self._server
        return 0 if server is None else len(server.connections)

    # ------------------------------------------------------------------ addresses and configs

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        """The bound port (the requested one until :meth:`start` binds a free one)."""
        return self._port

    @property
    def url(self) -> str:
        return _config.base_url(self._port, self._url_host)

    @property
    def ws_url(self) -> str:
        """Base of the websocket endpoints (``<ws_url>/ws``, ``<ws_url>/stream``)."""
        return _config.ws_base_url(self._port, self._url_host)

    def ccxt_config(self, *, websockets: bool = False, **extra: Any) -> dict[str, Any]:
        """Settings for ``ccxt.binanceusdm(...)``/``ccxt.binance(...)`` to use this server;
        ``websockets=True`` adds ccxt.pro's websocket URLs (``ccxt.pro.binanceusdm``)."""
        cfg = _config.ccxt_config(self._port, self._url_host, websockets=websockets)
        cfg.update(extra)
        return cfg

    def freqtrade_overlay(self) -> dict[str, Any]:
        """The freqtrade config overlay for this server (see :mod:`.config`)."""
        return _config.freqtrade_overlay(self._port, self._url_host)

    def set_faults(self, faults: FaultConfig | None) -> None:
        """Switch fault injection on, off (``None``) or to other rates."""
        self.api.faults.configure(faults or FaultConfig())
