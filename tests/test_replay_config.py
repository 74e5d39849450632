"""Config files, the overlay that keeps ccxt on loopback, the command line, import weight."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import ccxt
import ccxt.async_support
import ccxt.pro
import pytest
from _replay_support import json_get, make_datadir

from liqsignals.replay.config import DEFAULT_PORT, freqtrade_overlay

ROOT = Path(__file__).resolve().parent.parent


def _flat(obj: Any, prefix: str = "") -> dict[str, str]:
    """``{"a.b": url}`` for every string in nested dicts."""
    out: dict[str, str] = {}
    if isinstance(obj, dict):
        for key, value in obj.items():
            out.update(_flat(value, f"{prefix}.{key}" if prefix else key))
    elif isinstance(obj, str):
        out[prefix] = obj
    return out


@pytest.mark.parametrize(
    ("factory", "section"),
    [
        (ccxt.binance, "ccxt_config"),
        (ccxt.binanceusdm, "ccxt_config"),
        (ccxt.async_support.binance, "ccxt_async_config"),
        (ccxt.pro.binance, "ccxt_async_config"),
        (ccxt.pro.binanceusdm, "ccxt_async_config"),
    ],
)
def test_overlay_points_every_binance_url_at_loopback(factory: Any, section: str) -> None:
    """Every API base URL ccxt knows (live, testnet, demo, websockets) goes to the server."""
    stock = factory()
    overlay = freqtrade_overlay(8123)["exchange"][section]
    client = factory(overlay)
    try:
        before = _flat({k: stock.urls.get(k, {}) for k in ("api", "test", "demo")})
        after = _flat({k: client.urls.get(k, {}) for k in ("api", "test", "demo")})
        assert before and set(before) <= set(after)
        for key, url in after.items():
            parts = urlsplit(url)
            assert (parts.hostname, parts.port) == ("127.0.0.1", 8123), (key, url)
    finally:
        if hasattr(client, "close") and section == "ccxt_async_config":
            import asyncio

            asyncio.run(client.close())
            asyncio.run(stock.close())


def test_committed_overlay_is_the_default_port_overlay() -> None:
    committed = json.loads((ROOT / "config" / "replay.json").read_text())
    assert committed == freqtrade_overlay(DEFAULT_PORT)
    assert committed["exchange"]["enable_ws"] is False
    assert committed["exchange"]["only_from_ccxt"] is True
    assert committed["exchange"]["ccxt_config"]["options"] == {
        "fetchMarkets": {"types": ["linear"]}
    }


def test_futures_config_settings() -> None:
    cfg = json.loads((ROOT / "config" / "futures.json").read_text())
    assert cfg["$schema"] == "https://schema.freqtrade.io/schema.json"
    assert (cfg["trading_mode"], cfg["margin_mode"]) == ("futures", "isolated")
    assert cfg["dry_run"] is True and cfg["stake_currency"] == "USDT"
    assert cfg["entry_pricing"]["use_order_book"] is True
    assert cfg["exit_pricing"]["use_order_book"] is True
    ex = cfg["exchange"]
    assert ex["name"] == "binance" and ex["key"] == "" and ex["secret"] == ""
    assert ex["pair_whitelist"] == ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    assert cfg["pairlists"] == [{"method": "StaticPairList"}]


def test_layered_config_passes_freqtrade_validation() -> None:
    from freqtrade.configuration.config_validation import validate_config_schema
    from freqtrade.configuration.load_config import load_from_files

    files = [str(ROOT / "config" / "futures.json"), str(ROOT / "config" / "replay.json")]
    merged = load_from_files(files)
    validate_config_schema(merged)
    urls = merged["exchange"]["ccxt_config"]["urls"]["api"]
    assert urls["fapiPublic"] == f"http://127.0.0.1:{DEFAULT_PORT}/fapi/v1"
    assert merged["exchange"]["pair_whitelist"] == ["BTC/USDT:USDT", "ETH/USDT:USDT"]


def test_print_config_for_a_port() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "liqsignals", "replay", "--print-config", "--port", "9555"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out) == freqtrade_overlay(9555)


def test_import_liqsignals_stays_light() -> None:
    code = (
        "import sys, liqsignals, liqsignals.replay, liqsignals.replay.cli; "
        "heavy = [m for m in ('freqtrade', 'ccxt') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_replay_command_serves_until_sigterm(tmp_path: Path) -> None:
    datadir = make_datadir(tmp_path)
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "liqsignals",
            "replay",
            "--datadir",
            str(datadir),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in banner and "BTC/USDT:USDT" in banner
        status, body = json_get(f"http://127.0.0.1:{port}/fapi/v1/exchangeInfo")
        assert status == 200 and {s["symbol"] for s in body["symbols"]} == {"BTCUSDT", "ETHUSDT"}
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err


def test_replay_command_refuses_a_busy_port(tmp_path: Path) -> None:
    datadir = make_datadir(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = subprocess.run(
            [sys.executable, "-m", "liqsignals", "replay", "--datadir", str(datadir)]
            + ["--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert res.returncode == 2 and "cannot listen" in res.stderr and "Traceback" not in res.stderr
