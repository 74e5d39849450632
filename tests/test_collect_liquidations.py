"""Realised liquidations end to end: the replay exchange's websocket serves recorded events
(Binance ``forceOrder`` JSON, with dropped connections and reconnect requests), the collector
stores each exactly once, survives SIGKILL and a restart, and ``evaluate realised`` reads its
file.

The recorded events are the BTC and ETH rows of a real forceOrder capture (tests/fixtures),
moved back by whole weeks into the bundled candles' span and imported with ``liqsignals import
liquidation-events``. What the collector must hold is read from the capture directly here (time,
side, accumulated quantity, average price), not through the code under test.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _replay_support import make_datadir

from liqsignals.cli import main
from liqsignals.data.datadir import read_frame
from liqsignals.data.liquidations import (
    LONG,
    SHORT,
    collect_liquidations,
    coverage_path,
    events_path,
    load_coverage,
    load_liquidation_events,
)
from liqsignals.replay import FaultConfig, LiveClock, ReplayExchange
from liqsignals.replay.clock import MINUTE_MS, WEEK_MS

ROOT = Path(__file__).resolve().parent.parent
CAPTURE = (
    ROOT / "tests" / "fixtures" / "liquidation_events" / "binance_force_orders_all_2025-06.csv"
)
PAIRS = ("BTC/USDT:USDT", "ETH/USDT:USDT")
#: the capture (2025-06-23) moved back 10 weeks: 2025-04-14, inside the bundled candles
SHIFT_MS = 10 * WEEK_MS


def _recorded() -> list[tuple[int, str, str, float, float]]:
    """(time ms, symbol, side, price, amount) of the capture's BTC and ETH rows, shifted."""
    out = set()
    with CAPTURE.open() as fh:
        for row in csv.reader(fh):
            if row[0] not in ("BTC", "ETH"):
                continue
            avg = float(row[6]) if row[6] not in ("", "None") and float(row[6]) > 0 else None
            price = avg if avg is not None else float(row[5])
            side = LONG if row[1] == "SELL" else SHORT
            out.add((int(row[10]) - SHIFT_MS, f"{row[0]}/USDT:USDT", side, price, float(row[9])))
    return sorted(out)


RECORDED = _recorded()
FIRST_MS = RECORDED[0][0]
LAST_MS = RECORDED[-1][0]


def _stored(datadir: Path) -> list[tuple[int, str, str, float, float]]:
    rows = []
    for pair in PAIRS:
        ev = load_liquidation_events(datadir, pair, missing_ok=True)
        ms = ev["date"].dt.as_unit("ms").astype("int64")
        rows += list(zip(ms, ev["symbol"], ev["side"], ev["price"], ev["amount"], strict=True))
    return sorted((int(a), str(b), str(c), float(d), float(e)) for a, b, c, d, e in rows)


def _served(rows: list[tuple[int, str, str, float, float]], offset: int) -> list[tuple]:
    return sorted((t + offset, *rest) for t, *rest in rows)


@pytest.fixture(scope="module")
def replay_datadir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled candles (2025-03-20 .. 2025-05-01) plus the shifted capture, imported."""
    root = tmp_path_factory.mktemp("replay")
    datadir = make_datadir(root)
    shifted = root / "capture.csv"
    with CAPTURE.open() as src, shifted.open("w", newline="") as dst:
        writer = csv.writer(dst)
        for row in csv.reader(src):
            row[10] = str(int(row[10]) - SHIFT_MS)
            writer.writerow(row)
    args = ["import", "liquidation-events", str(shifted), "--exchange", "binance"]
    assert main([*args, "--datadir", str(datadir), "-p", *PAIRS]) == 0
    return datadir


def test_the_capture_is_what_the_replay_serves(replay_datadir: Path) -> None:
    assert len(RECORDED) == 59  # BTC and ETH prints of the capture, none twice
    assert _stored(replay_datadir) == RECORDED


@pytest.mark.slow
def test_websocket_with_drops_and_reconnects_gives_each_event_once(
    replay_datadir: Path, tmp_path: Path
) -> None:
    import ccxt.pro

    # 35 minutes of events in about 5 s; a new subscription first gets the last 30 minutes
    # again (a reconnect's duplicates), so drops lose nothing the backlog still covers
    clock = LiveClock(FIRST_MS - 5_000, speed=400, align_ms=MINUTE_MS)
    faults = FaultConfig(ws_drop=0.03, ws_reconnect=0.03, seed=11)
    out = tmp_path / "collected"
    with ReplayExchange(
        replay_datadir, clock=clock, faults=faults, ws_backlog_ms=1_800_000
    ) as server:

        async def run() -> int:
            api = ccxt.pro.binanceusdm(server.ccxt_config(websockets=True))
            return await collect_liquidations(
                api, list(PAIRS), out, flush_seconds=0.5, max_events=len(RECORDED),
                reconnect_delay=0.05,
            )  # fmt: skip

        stored = asyncio.run(asyncio.wait_for(run(), 60))
        counts = dict(server.api.faults.counts)
        connections = server.ws.connections
        sent = server.ws.sent
    assert stored == len(RECORDED)
    assert _stored(out) == _served(RECORDED, clock.offset_ms)
    # the faults happened, and the replay sent events more than once (the backlog)
    assert counts.get("ws_drop", 0) >= 1 and counts.get("ws_reconnect", 0) >= 1, counts
    assert connections >= 1 + counts["ws_drop"] + counts["ws_reconnect"]
    assert sent > len(RECORDED)
    spans = load_coverage(out, PAIRS[0])
    assert len(spans) >= 2  # the disconnects are holes in what was recorded


def test_flush_on_a_timer_without_further_events(tmp_path: Path) -> None:
    """One event, then silence: the event is on disk while the collector still runs."""

    class Quiet:
        id = "binance"
        has = {"watchLiquidationsForSymbols": True}

        def __init__(self) -> None:
            self.calls = 0

        async def watch_liquidations_for_symbols(self, symbols: list[str]) -> list[dict]:
            self.calls += 1
            if self.calls == 1:
                return [
                    {"symbol": "BTC/USDT:USDT", "timestamp": 1_744_000_000_000, "side": "sell",
                     "price": 80_000.0, "contracts": 0.5, "info": {}}
                ]  # fmt: skip
            await asyncio.sleep(3600)
            return []

    async def run() -> tuple[int, int, float]:
        stop = asyncio.Event()
        task = asyncio.ensure_future(
            collect_liquidations(Quiet(), ["BTC/USDT:USDT"], tmp_path, flush_seconds=0.2, stop=stop)
        )
        began = time.monotonic()
        path = events_path(tmp_path, "BTC/USDT:USDT")
        while not path.exists() and time.monotonic() - began < 5:
            await asyncio.sleep(0.02)
        waited = time.monotonic() - began
        on_disk = len(read_frame(path)) if path.exists() else 0
        running = int(not task.done())
        stop.set()
        await task
        return on_disk, running, waited

    on_disk, running, waited = asyncio.run(run())
    assert on_disk == 1 and running == 1
    assert waited < 2.0
    assert coverage_path(tmp_path, "BTC/USDT:USDT").exists()


def _collector(overlay: Path, out: Path, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "liqsignals", "collect-liquidations", "-c", str(overlay)]
    cmd += ["--exchange", "binance", "-p", *PAIRS, "--datadir", str(out)]
    cmd += ["--flush-seconds", "0.3", "--flush-every", "100000"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env)


def _wait_for(test: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_sigkill_and_restart_lose_nothing_flushed_and_double_nothing(
    replay_datadir: Path, tmp_path: Path
) -> None:
    # 35 minutes of events in about 20 s; every (re)subscription first gets the last six hours
    # again, so the restarted collector is offered every event, the flushed ones included
    clock = LiveClock(FIRST_MS - 1_000, speed=100, align_ms=MINUTE_MS)
    out = tmp_path / "collected"
    log = tmp_path / "collector.log"
    with ReplayExchange(replay_datadir, clock=clock, ws_backlog_ms=6 * 3_600_000) as server:
        overlay = tmp_path / "overlay.json"
        overlay.write_text(json.dumps(server.freqtrade_overlay()))
        first = _collector(overlay, out, log)
        try:
            _wait_for(lambda: len(_stored(out)) >= 10, 40, "ten flushed events")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        before_kill = _stored(out)  # the file a kill leaves: complete, readable
        assert first.returncode == -signal.SIGKILL
        assert 10 <= len(before_kill) < len(RECORDED)
        second = _collector(overlay, out, log)
        try:
            _wait_for(lambda: len(_stored(out)) >= len(RECORDED), 60, "every event")
            time.sleep(0.5)  # a late duplicate would show up now
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(20)
        assert second.returncode == 0, log.read_text()[-2000:]
        offset = clock.offset_ms
    final = _stored(out)
    assert set(before_kill) <= set(final)
    assert final == _served(RECORDED, offset)  # each once: nothing lost, nothing doubled
    assert "new events stored" in log.read_text()


@pytest.mark.slow
def test_evaluate_realised_reads_the_collector_file(
    replay_datadir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import ccxt.pro

    clock = LiveClock(FIRST_MS - 300_000, speed=400, align_ms=MINUTE_MS)
    out = tmp_path / "collected"
    # a slow start (a loaded machine) must not miss the first prints: the subscription first
    # gets the hour before it; only the bars after it count as recorded (the coverage file)
    with ReplayExchange(replay_datadir, clock=clock, ws_backlog_ms=3_600_000) as server:

        async def run() -> int:
            api = ccxt.pro.binanceusdm(server.ccxt_config(websockets=True))
            return await collect_liquidations(
                api, list(PAIRS), out, flush_seconds=0.5, max_events=len(RECORDED)
            )

        assert asyncio.run(asyncio.wait_for(run(), 60)) == len(RECORDED)
    offset = clock.offset_ms
    # the collector records served time: the candles are the stored ones moved by the offset
    candles = tmp_path / "candles" / "futures"
    candles.mkdir(parents=True)
    df = pd.read_feather(replay_datadir / "futures" / "BTC_USDT_USDT-5m-futures.feather")
    df["date"] = df["date"] + pd.Timedelta(milliseconds=offset)
    df.to_feather(candles / "BTC_USDT_USDT-5m-futures.feather")
    file = events_path(out, "BTC/USDT:USDT")
    capsys.readouterr()
    rc = main(
        ["evaluate", "realised", "--datadir", str(candles.parent), "-p", "BTC/USDT:USDT",
         "-t", "5m", "--realised", f"{file}@5m", "--json"]
    )  # fmt: skip
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    # every 5-minute bar the collector listened to from start to end is compared, and no other
    ((start, end),) = json.loads(coverage_path(out, "BTC/USDT:USDT").read_text())["spans"]
    bar = 300_000
    first = -(-start // bar) * bar
    bars = (end - first) // bar
    assert bars >= 1  # 5 on an idle machine; a slow start leaves fewer
    assert result["n_bars"] == bars
    assert pd.Timestamp(result["first_bar"]) == pd.Timestamp(first, unit="ms", tz="UTC")
