"""The replay exchange's HTTP server: stdlib ``ThreadingHTTPServer`` on loopback.

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

import json
import logging
import os
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from liqsignals.replay import config as _config
from liqsignals.replay.api import ReplayAPI, Response, error_response
from liqsignals.replay.clock import Clock, HistoricalClock
from liqsignals.replay.faults import Fault, FaultConfig, FaultInjector
from liqsignals.replay.store import DataStore, MarketSpec

logger = logging.getLogger(__name__)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api: ReplayAPI
    stopping: threading.Event


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "liqsignals-replay"

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
        if length > 0:
            self.rfile.read(length)  # keep the connection usable; bodies are not read
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        api = self.server.api
        fault = api.faults.draw(path)
        if fault is Fault.TIMEOUT:
            self.server.stopping.wait(api.faults.config.timeout_s)
            self.close_connection = True  # drop the connection without an answer
            return
        if fault is not None:
            self._send(_fault_response(fault, api.faults.config))
            return
        self._send(api.handle(self.command, path, url.query, dict(self.headers.items())))

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


class ReplayExchange:
    """A Binance USDT-M compatible exchange on loopback, serving a freqtrade datadir.

    Use it as a context manager (``with ReplayExchange(datadir) as ex: ...``) or call
    :meth:`start` and :meth:`stop`. ``port=0`` (the default) picks a free port.

    Parameters
    ----------
    datadir:
        Exchange folder of a freqtrade datadir (holding ``futures/``).
    host, port:
        Where to listen; only loopback addresses make sense.
    clock:
        What "now" is (default: a :class:`~liqsignals.replay.clock.HistoricalClock` at the end
        of the data, so all stored history is served).
    faults:
        Fault injection (default: none). Can be switched later with :meth:`set_faults`.
    specs:
        Exchange filters per symbol id, overriding the built-in table.
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
    ) -> None:
        self.store = DataStore(datadir, specs=specs)
        self.clock = clock or HistoricalClock(self.store.last_close_ms())
        self.api = ReplayAPI(self.store, self.clock, FaultInjector(faults))
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ReplayExchange:
        """Bind and serve in a background thread. Returns ``self``."""
        if self._server is not None:
            return self
        server = _Server((self._host, self._port), _Handler)
        server.api = self.api
        server.stopping = threading.Event()
        self._server = server
        self._port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"replay-exchange:{self._port}",
            daemon=True,
        )
        self._thread.start()
        logger.info("replay exchange serving %s on %s", self.store.datadir, self.url)
        return self

    def stop(self) -> None:
        """Stop serving and release the port (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ReplayExchange:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

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
        return _config.base_url(self._port, self._host)

    def ccxt_config(self, **extra: Any) -> dict[str, Any]:
        """Settings for ``ccxt.binanceusdm(...)``/``ccxt.binance(...)`` to use this server."""
        cfg = _config.ccxt_config(self._port, self._host)
        cfg.update(extra)
        return cfg

    def freqtrade_overlay(self) -> dict[str, Any]:
        """The freqtrade config overlay for this server (see :mod:`.config`)."""
        return _config.freqtrade_overlay(self._port, self._host)

    def set_faults(self, faults: FaultConfig | None) -> None:
        """Switch fault injection on, off (``None``) or to other rates."""
        self.api.faults.configure(faults or FaultConfig())
