"""The web view: a Starlette app serving the heatmap, the liquidation map and the read-outs.

Every request is a GET on a fixed set of routes; the datadirs, the backtest results file and the
live exchange are chosen when the server starts. A request names an exchange, pair, timeframe,
window, preset and mode only from the lists ``/api/meta`` returns (anything else is a 400), so
no text from a request becomes a file path.

The heatmap travels as one JSON document whose matrix is a base64 string of ``uint8`` intensities
(``round(255 * sqrt(min(v / vmax, 1)))``, price rows top = highest) at the resolution of the
canvas, plus one candle per column: a year of 15m candles at 1,400 x 600 is about 1.2 MB
(:mod:`liqsignals.web.payload`). Zooming asks for the zoomed time range again at screen
resolution. Hovering asks ``/api/cell`` for the exact float32 notional of the hovered cell, read
from the matrix the server computed for that heatmap (kept with the cached payload).

Computed heatmaps and maps are cached per request and per modification time of the data files,
so a datadir that another process keeps current (``liqsignals download``, the live poller) is
picked up at the next request.
"""

from __future__ import annotations

import hmac
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liqsignals.data.datadir import data_path, list_data, load_candles
from liqsignals.extras import ensure
from liqsignals.heatmap import MODES
from liqsignals.model import LEVERAGE_PRESETS, WINDOWS, LiquidationModel, timeframe_to_timedelta
from liqsignals.web.export import trades_payload
from liqsignals.web.payload import compute_heatmap, heatmap_payload, map_payload

# the web view needs the web extra (starlette, uvicorn): an ImportError naming it
ensure("starlette", "the web view")
ensure("uvicorn", "the web view")

from starlette.applications import Starlette  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import FileResponse, JSONResponse, Response  # noqa: E402
from starlette.routing import Mount, Route  # noqa: E402
from starlette.staticfiles import StaticFiles  # noqa: E402
from starlette.types import ASGIApp, Receive, Scope, Send  # noqa: E402

__all__ = [
    "COLORS",
    "PRESETS",
    "SPANS",
    "TOKEN_COOKIE",
    "WebConfig",
    "create_app",
    "heatmap_payload",
    "map_payload",
]

STATIC = Path(__file__).resolve().parent / "static"
#: shown time ranges (ending at the last candle); "all" is the whole file
SPANS: dict[str, pd.Timedelta | None] = {
    **{name: WINDOWS[name] for name in ("1d", "3d", "1w", "1M", "3M", "6M", "1y")},
    "all": None,
}
#: model presets: the default model, the leverage mixes and the calibrated presets
PRESETS: tuple[str, ...] = (
    "default",
    *LEVERAGE_PRESETS,
    *sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "presets").glob("*.json")),
)
#: colour scales; cividis, viridis and magma are colour-blind safe
COLORS: tuple[str, ...] = ("default", "cividis", "viridis", "magma")
TOKEN_COOKIE = "liqsignals_token"
_MAX_W, _MAX_H = 4000, 2000
_CACHE = 16


@dataclass
class WebConfig:
    """What the server shows.

    datadirs : exchange name -> freqtrade datadir (read only, except by the live poller)
    token : when set, every request needs it (``?token=``, ``Authorization: Bearer`` or cookie)
    trades : a freqtrade backtest result (file or ``backtest_results`` folder) to overlay
    poll_s : how often the page asks whether new candles arrived (seconds)
    """

    datadirs: dict[str, Path]
    token: str | None = None
    trades: Path | None = None
    poll_s: float = 30.0
    live: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class BadRequest(ValueError):
    """A request parameter outside the allowed values (answered with 400)."""


# ----------------------------------------------------------------------------- data access
class _Store:
    """Candles per (exchange, pair, timeframe), re-read when the file changes; results cached."""

    def __init__(self, cfg: WebConfig) -> None:
        self.cfg = cfg
        self._lock = threading.Lock()
        self._frames: dict[tuple[str, str, str], tuple[float, pd.DataFrame]] = {}
        self._results: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

    def catalogue(self) -> dict[str, dict[str, list[str]]]:
        """exchange -> pair -> timeframes (futures candles), shortest timeframe first."""
        out: dict[str, dict[str, list[str]]] = {}
        for name, root in self.cfg.datadirs.items():
            pairs: dict[str, list[str]] = {}
            for pair, tf, kind in list_data(root):
                if kind == "futures":
                    pairs.setdefault(pair, []).append(tf)
            out[name] = {p: sorted(t, key=timeframe_to_timedelta) for p, t in sorted(pairs.items())}
        return out

    def path(self, exchange: str, pair: str, timeframe: str) -> Path:
        cat = self.catalogue()
        if exchange not in cat:
            raise BadRequest(f"exchange must be one of {sorted(cat)}, got {exchange!r}")
        if pair not in cat[exchange]:
            raise BadRequest(f"no pair {pair!r} on {exchange}; available: {sorted(cat[exchange])}")
        if timeframe not in cat[exchange][pair]:
            raise BadRequest(
                f"no timeframe {timeframe!r} for {pair} on {exchange}; "
                f"available: {cat[exchange][pair]}"
            )
        return data_path(self.cfg.datadirs[exchange], pair, timeframe)

    def mtime(self, exchange: str, pair: str, timeframe: str) -> float:
        return self.path(exchange, pair, timeframe).stat().st_mtime

    def candles(self, exchange: str, pair: str, timeframe: str) -> pd.DataFrame:
        path = self.path(exchange, pair, timeframe)
        key = (exchange, pair, timeframe)
        mtime = path.stat().st_mtime
        with self._lock:
            hit = self._frames.get(key)
            if hit is not None and hit[0] == mtime:
                return hit[1]
        df = load_candles(self.cfg.datadirs[exchange], pair, timeframe)
        with self._lock:
            self._frames[key] = (mtime, df)
        return df

    def cached(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._results:
                self._results.move_to_end(key)
                return self._results[key]
        value = compute()
        with self._lock:
            self._results[key] = value
            while len(self._results) > _CACHE:
                self._results.popitem(last=False)
        return value


# ----------------------------------------------------------------------------- request parsing
@dataclass(frozen=True)
class _Query:
    exchanges: tuple[str, ...]
    pair: str
    timeframe: str
    preset: str
    window: str | None
    mode: str


def _choice(q: Mapping[str, str], name: str, allowed: Any, default: str | None) -> str | None:
    value = q.get(name, default)
    if value in (None, "") and default is None:
        return None
    if value not in allowed:
        raise BadRequest(f"{name} must be one of {list(allowed)}, got {value!r}")
    return value


def _int(q: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    text = q.get(name)
    if text in (None, ""):
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {text!r}") from None
    if not lo <= value <= hi:
        raise BadRequest(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _ms(q: Mapping[str, str], name: str) -> pd.Timestamp | None:
    text = q.get(name)
    if text in (None, ""):
        return None
    try:
        return pd.Timestamp(int(text), unit="ms", tz="UTC")
    except (ValueError, OverflowError):
        raise BadRequest(f"{name} must be milliseconds since 1970, got {text!r}") from None


def _query(store: _Store, q: Mapping[str, str]) -> _Query:
    names = [x for x in (q.get("exchange") or next(iter(store.cfg.datadirs))).split(",") if x]
    exchanges = tuple(dict.fromkeys(names))
    if not exchanges:
        raise BadRequest("exchange is empty")
    pair, tf = q.get("pair", ""), q.get("timeframe", "")
    for ex in exchanges:
        store.path(ex, pair, tf)  # validates exchange, pair and timeframe against the datadirs
    preset = _choice(q, "preset", PRESETS, "default")
    window = _choice(q, "window", WINDOWS, None)
    mode = _choice(q, "mode", MODES, "combined")
    assert preset is not None and mode is not None
    return _Query(exchanges, pair, tf, preset, window, mode)


def _model(qq: _Query) -> LiquidationModel:
    changes: dict[str, Any] = {} if qq.window is None else {"window": qq.window}
    if qq.preset == "default":
        return LiquidationModel(**changes)
    return LiquidationModel.preset(qq.preset, **changes)


# ----------------------------------------------------------------------------- security
class TokenMiddleware:
    """401 for every request without the token; a request carrying ``?token=`` gets a cookie.

    Only GET and HEAD are served (405 otherwise): the app is read-only.
    """

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    def _ok(self, request: Request) -> tuple[bool, bool]:
        if self.token is None:
            return True, False
        want = self.token.encode()
        query = request.query_params.get("token")
        if query is not None and hmac.compare_digest(query.encode(), want):
            return True, True
        auth = request.headers.get("authorization", "")
        if auth.startswith("Bearer ") and hmac.compare_digest(auth[7:].encode(), want):
            return True, False
        cookie = request.cookies.get(TOKEN_COOKIE)
        return cookie is not None and hmac.compare_digest(cookie.encode(), want), False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if request.method not in ("GET", "HEAD"):
            await Response("read-only: GET only\n", 405, headers={"Allow": "GET, HEAD"})(
                scope, receive, send
            )
            return
        ok, set_cookie = self._ok(request)
        if not ok:
            await Response(
                "401 Unauthorized: this server needs its token (?token=...)\n",
                401,
                headers={"WWW-Authenticate": "Bearer"},
            )(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (
                        b"content-security-policy",
                        b"default-src 'self'; img-src 'self' data: blob:; object-src 'none'",
                    ),
                ]
                if set_cookie and self.token is not None:
                    headers.append(
                        (
                            b"set-cookie",
                            f"{TOKEN_COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict".encode(),
                        )
                    )
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


# ----------------------------------------------------------------------------- the app
def create_app(cfg: WebConfig) -> Starlette:
    """The Starlette application for ``cfg`` (serve it with uvicorn, or test it with TestClient)."""
    if not cfg.datadirs:
        raise ValueError("no datadir to serve")
    for name, root in cfg.datadirs.items():
        if not Path(root).is_dir():
            raise ValueError(f"datadir of {name} does not exist: {root}")
    store = _Store(cfg)
    trades_cache: dict[str, pd.DataFrame] = {}

    def guarded(fn: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            import anyio.to_thread

            try:
                body = await anyio.to_thread.run_sync(fn, request)
            except BadRequest as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            except (ValueError, FileNotFoundError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=422)
            return JSONResponse(body, headers={"Cache-Control": "no-store"})

        return endpoint

    def meta(request: Request) -> dict[str, Any]:
        return {
            "catalogue": store.catalogue(),
            "presets": list(PRESETS),
            "windows": list(WINDOWS),
            "spans": list(SPANS),
            "modes": list(MODES),
            "colors": list(COLORS),
            "trades": cfg.trades is not None,
            "poll_s": cfg.poll_s,
            "live": cfg.live,
        }

    def frames(qq: _Query) -> list[pd.DataFrame]:
        return [store.candles(ex, qq.pair, qq.timeframe) for ex in qq.exchanges]

    def stamp(qq: _Query) -> tuple[float, ...]:
        return tuple(store.mtime(ex, qq.pair, qq.timeframe) for ex in qq.exchanges)

    def view_of(q: Mapping[str, str], qq: _Query, dfs: list[pd.DataFrame]) -> dict[str, Any]:
        """start/end resolved to candle dates (so a cell query names the same matrix) and size."""
        span = _choice(q, "span", SPANS, "3M")
        width = _int(q, "w", 1200, 16, _MAX_W)
        height = _int(q, "h", 600, 16, _MAX_H)
        start, end = _ms(q, "start"), _ms(q, "end")
        first = pd.Timestamp(dfs[0]["date"].iloc[0])
        last = pd.Timestamp(dfs[0]["date"].iloc[-1])
        end = last if end is None else min(end, last)
        if start is None and span is not None and SPANS[span] is not None:
            start = max(end - SPANS[span], first)
        return {"start": start, "end": end, "width": width, "height": height}

    def computed(q: Mapping[str, str]) -> tuple[dict[str, Any], np.ndarray]:
        qq = _query(store, q)
        dfs = frames(qq)
        view = view_of(q, qq, dfs)
        key = ("hm", qq, view["start"], view["end"], view["width"], view["height"], stamp(qq))
        payload, values = store.cached(key, lambda: compute_heatmap(dfs, _model(qq), qq.mode, view))
        ms = {
            k: None if view[k] is None else int(view[k].value // 1_000_000)
            for k in ("start", "end")
        }
        extra = {
            "pair": qq.pair,
            "timeframe": qq.timeframe,
            "exchanges": list(qq.exchanges),
            "preset": qq.preset,
            "window": qq.window,
        }
        return {**payload, **extra, "view": ms}, values

    def heatmap(request: Request) -> dict[str, Any]:
        return computed(request.query_params)[0]

    def cell(request: Request) -> dict[str, Any]:
        """The exact notional of one cell of the heatmap the same parameters return."""
        q = request.query_params
        payload, values = computed(q)
        col = _int(q, "col", -1, 0, payload["cols"] - 1)
        row = _int(q, "row", -1, 0, payload["rows"] - 1)
        if col < 0 or row < 0:
            raise BadRequest("col and row are required")
        lo, hi = math.log(payload["edges_lo"]), math.log(payload["edges_hi"])
        step = (hi - lo) / payload["rows"]
        return {
            "col": col,
            "row": row,
            "time": payload["times"][col],
            "price_lo": math.exp(hi - (row + 1) * step),
            "price_hi": math.exp(hi - row * step),
            "notional": float(values[row, col]),
            "mode": payload["mode"],
        }

    def lmap(request: Request) -> dict[str, Any]:
        q = request.query_params
        qq = _query(store, q)
        at = _ms(q, "at")
        key = ("map", qq.exchanges, qq.pair, qq.timeframe, qq.preset, qq.window, at, stamp(qq))

        def compute() -> dict[str, Any]:
            try:
                return map_payload(frames(qq), _model(qq), at)
            except ValueError as exc:
                raise BadRequest(str(exc)) from None

        return store.cached(key, compute)

    def status(request: Request) -> dict[str, Any]:
        qq = _query(store, request.query_params)
        df = store.candles(qq.exchanges[0], qq.pair, qq.timeframe)
        return {"last": int(pd.Timestamp(df["date"].iloc[-1]).value // 1_000_000), "n": len(df)}

    def trades(request: Request) -> dict[str, Any]:
        q = request.query_params
        qq = _query(store, q)
        if cfg.trades is None:
            return {"trades": []}
        if "all" not in trades_cache:
            from liqsignals.plotting import load_trades

            trades_cache["all"] = load_trades(cfg.trades)
        tr = trades_cache["all"]
        tr = tr.loc[tr["pair"] == qq.pair]
        return {"trades": trades_payload(tr)}

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "time": time.time()})

    routes = [
        Route("/", index),
        Route("/healthz", health),
        Route("/api/meta", guarded(meta)),
        Route("/api/heatmap", guarded(heatmap)),
        Route("/api/cell", guarded(cell)),
        Route("/api/map", guarded(lmap)),
        Route("/api/status", guarded(status)),
        Route("/api/trades", guarded(trades)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(TokenMiddleware, token=cfg.token)])
