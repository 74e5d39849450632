"""The replay exchange's liquidation websocket, spoken to with a plain websocket client."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from _replay_support import make_datadir
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from liqsignals.data.liquidations import LONG, SHORT, save_liquidation_events
from liqsignals.replay import HistoricalClock, ReplayExchange
from liqsignals.replay.config import freqtrade_overlay

pytestmark = pytest.mark.slow

T0 = pd.Timestamp("2025-04-10 12:00", tz="UTC")
T0_MS = int(T0.value // 1_000_000)


@pytest.fixture(scope="module")
def datadir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_datadir(tmp_path_factory.mktemp("ws"))
    rows = [
        ("BTC/USDT:USDT", 1_000, LONG, 81_234.5, 0.013),
        ("ETH/USDT:USDT", 2_000, SHORT, 1_601.25, 3.5),
        ("BTC/USDT:USDT", 3_000, SHORT, 81_300.0, 0.5),
    ]
    for pair, dt, side, price, amount in rows:
        save_liquidation_events(
            [{"date": T0 + pd.Timedelta(milliseconds=dt), "exchange": "binance", "symbol": pair,
              "side": side, "price": price, "amount": amount, "value": price * amount}],
            root, pair,
        )  # fmt: skip
    return root


def _recv(ws, n: int) -> list[dict]:
    return [json.loads(ws.recv(timeout=5)) for _ in range(n)]


def _subscribed(ws) -> None:
    """Wait until the server has taken the streams named in the URL (it answers a request
    only after that), so moving the clock afterwards cannot skip an event."""
    ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 99}))
    assert json.loads(ws.recv(timeout=10))["id"] == 99


def test_symbol_stream_in_binance_json(datadir: Path) -> None:
    clock = HistoricalClock(T0_MS)
    with (
        ReplayExchange(datadir, clock=clock) as ex,
        connect(f"{ex.ws_url}/ws/btcusdt@forceOrder") as ws,
    ):
        _subscribed(ws)
        clock.set(T0_MS + 5_000)  # both BTC events are due now, ETH's is not subscribed
        first, second = _recv(ws, 2)
        assert first == {
            "e": "forceOrder", "E": T0_MS + 1_000,
            "o": {"s": "BTCUSDT", "S": "SELL", "o": "LIMIT", "f": "IOC", "q": "0.013",
                  "p": "81234.5", "ap": "81234.5", "X": "FILLED", "l": "0.013", "z": "0.013",
                  "T": T0_MS + 1_000},
        }  # fmt: skip
        assert second["o"]["S"] == "BUY" and second["o"]["z"] == "0.5"
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.3)  # nothing else: the ETH event is on another stream


def test_subscribe_all_markets_and_combined_stream(datadir: Path) -> None:
    clock = HistoricalClock(T0_MS)
    with ReplayExchange(datadir, clock=clock) as ex:
        with connect(f"{ex.ws_url}/market/ws/0") as ws:
            ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["!forceOrder@arr"], "id": 7}))
            assert json.loads(ws.recv(timeout=5)) == {"result": None, "id": 7}
            ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 8}))
            assert json.loads(ws.recv(timeout=5)) == {"result": ["!forceOrder@arr"], "id": 8}
            clock.set(T0_MS + 5_000)
            got = _recv(ws, 3)
            assert [m["o"]["s"] for m in got] == ["BTCUSDT", "ETHUSDT", "BTCUSDT"]
        clock.set(T0_MS)
        with connect(f"{ex.ws_url}/stream?streams=ethusdt@forceOrder") as ws:
            _subscribed(ws)
            clock.set(T0_MS + 5_000)
            (msg,) = _recv(ws, 1)
            assert msg["stream"] == "ethusdt@forceOrder" and msg["data"]["o"]["s"] == "ETHUSDT"


def test_backlog_and_unknown_streams(datadir: Path) -> None:
    clock = HistoricalClock(T0_MS + 5_000)
    with ReplayExchange(datadir, clock=clock, ws_backlog_ms=2_500) as ex:
        with connect(f"{ex.ws_url}/ws/btcusdt@forceOrder") as ws:
            (msg,) = _recv(ws, 1)  # 2.5 s back: the event at +3 s, not the one at +1 s
            assert msg["o"]["T"] == T0_MS + 3_000
        with connect(f"{ex.ws_url}/ws/dogeusdt@forceOrder") as ws:
            with pytest.raises(ConnectionClosed) as err:
                ws.recv(timeout=5)
            assert err.value.rcvd is not None and err.value.rcvd.code == 1008


def test_overlay_points_ccxt_pro_at_the_same_port() -> None:
    ws = freqtrade_overlay(8701)["exchange"]["ccxt_async_config"]["urls"]["api"]["ws"]
    assert ws["linear"] == "ws://127.0.0.1:8701/ws"
    repo = Path(__file__).resolve().parent.parent / "config" / "replay.json"
    assert json.loads(repo.read_text()) == freqtrade_overlay(8701)
