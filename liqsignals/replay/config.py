"""freqtrade and ccxt settings that point Binance clients at the replay exchange.

ccxt's Binance classes know a few dozen base URLs (spot, margin, USDT-M, COIN-M, options,
portfolio margin, data endpoints, testnet and demo variants, websockets). Every one of them is
redirected to the replay server, keeping its path (``https://fapi.binance.com/fapi/v1`` becomes
``http://127.0.0.1:<port>/fapi/v1``), so a request meant for a market the replay exchange does
not serve ends in a clear 404 on loopback instead of leaving the machine.

Example
-------
>>> overlay = freqtrade_overlay(8701)
>>> overlay["exchange"]["ccxt_config"]["urls"]["api"]["fapiPublic"]
'http://127.0.0.1:8701/fapi/v1'
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

#: the replay exchange's default port (``config/replay.json`` uses it)
DEFAULT_PORT = 8701
DEFAULT_HOST = "127.0.0.1"

#: ccxt ``urls["api"]`` keys of Binance -> the path each one's base URL ends with
REST_PATHS: dict[str, str] = {
    "sapi": "/sapi/v1",
    "sapiV2": "/sapi/v2",
    "sapiV3": "/sapi/v3",
    "sapiV4": "/sapi/v4",
    "dapiPublic": "/dapi/v1",
    "dapiPrivate": "/dapi/v1",
    "dapiPrivateV2": "/dapi/v2",
    "dapiData": "/futures/data",
    "eapiPublic": "/eapi/v1",
    "eapiPrivate": "/eapi/v1",
    "fapiPublic": "/fapi/v1",
    "fapiPublicV2": "/fapi/v2",
    "fapiPublicV3": "/fapi/v3",
    "fapiPrivate": "/fapi/v1",
    "fapiPrivateV2": "/fapi/v2",
    "fapiPrivateV3": "/fapi/v3",
    "fapiData": "/futures/data",
    "public": "/api/v3",
    "private": "/api/v3",
    "v1": "/api/v1",
    "papi": "/papi/v1",
    "papiV2": "/papi/v2",
}
#: ccxt.pro ``urls["api"]["ws"]`` keys. The replay exchange serves Binance's liquidation streams
#: on its own port (ccxt.pro's ``watch_liquidations`` connects to ``<ws>/market/ws/<n>``, see
#: :mod:`liqsignals.replay.ws`); other streams are refused, so freqtrade runs with
#: ``enable_ws: false`` and these keep every stray connection local
WS_KEYS: tuple[str, ...] = (
    "spot",
    "margin",
    "linear",
    "inverse",
    "stock",
    "option",
    "optionMarket",
    "optionPrivate",
    "papi",
)
WS_API_KEYS: tuple[str, ...] = ("spot", "linear", "inverse")


def base_url(port: int, host: str = DEFAULT_HOST) -> str:
    return f"http://{host}:{port}"


def ws_base_url(port: int, host: str = DEFAULT_HOST) -> str:
    return f"ws://{host}:{port}"


def ccxt_urls(port: int, host: str = DEFAULT_HOST, *, websockets: bool = False) -> dict[str, Any]:
    """ccxt ``urls`` for Binance with the live, testnet and demo endpoints all on the server."""
    root = base_url(port, host)
    rest = {key: root + path for key, path in REST_PATHS.items()}
    api: dict[str, Any] = dict(rest)
    if websockets:
        ws_root = ws_base_url(port, host)
        ws: dict[str, Any] = {key: f"{ws_root}/ws" for key in WS_KEYS}
        ws["ws-api"] = {key: f"{ws_root}/ws-api" for key in WS_API_KEYS}
        api["ws"] = ws
    return {"api": api, "test": dict(api), "demo": dict(api)}


def ccxt_config(port: int, host: str = DEFAULT_HOST, *, websockets: bool = False) -> dict[str, Any]:
    """Constructor settings for ``ccxt.binance``/``ccxt.binanceusdm`` talking to the server."""
    return {
        "options": {"fetchMarkets": {"types": ["linear"]}},
        "urls": ccxt_urls(port, host, websockets=websockets),
    }


def freqtrade_overlay(port: int = DEFAULT_PORT, host: str = DEFAULT_HOST) -> dict[str, Any]:
    """The freqtrade config overlay (second ``-c``) that runs a Binance config offline.

    Besides the URLs it sets ``enable_ws: false`` (the server's websocket has liquidation
    streams only; freqtrade's candle streams come over REST) and
    ``only_from_ccxt: true`` (freqtrade would otherwise download Binance candles from the public
    archive site, which bypasses ccxt).
    """
    return {
        "$schema": "https://schema.freqtrade.io/schema.json",
        "exchange": {
            "name": "binance",
            "enable_ws": False,
            "only_from_ccxt": True,
            "ccxt_config": ccxt_config(port, host),
            "ccxt_async_config": ccxt_config(port, host, websockets=True),
        },
    }


def write_overlay(
    path: str | os.PathLike[str], port: int = DEFAULT_PORT, host: str = DEFAULT_HOST
) -> Path:
    """Write :func:`freqtrade_overlay` as JSON to ``path`` and return the path."""
    path = Path(path)
    path.write_text(json.dumps(freqtrade_overlay(port, host), indent=2) + "\n")
    return path
