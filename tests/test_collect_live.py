"""``liqsignals collect`` against the live replay exchange: the series stay current over several
candles; killed and restarted later, the first round fills the gap; SIGTERM stops it cleanly.

The replay runs 60 times faster than the wall clock (a 5-minute candle every 5 s); the
collector fetches up to the exchange's own clock (``fetch_time``), as it would against Binance.
What it must hold is the replay's stored series moved by the clock's shift, read here from the
replay's files directly.
"""

from __future__ import annotations

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
from _replay_support import add_metric_files, make_datadir
from test_collect_liquidations import CAPTURE, FIRST_MS, SHIFT_MS

from liqsignals.cli import main
from liqsignals.data.datadir import data_path, read_frame
from liqsignals.data.liquidations import events_path, load_coverage
from liqsignals.replay import LiveClock, ReplayExchange
from liqsignals.replay.clock import HOUR_MS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PAIR = "BTC/USDT:USDT"
FIVE_MIN = pd.Timedelta(minutes=5)


@pytest.fixture(scope="module")
def replay_datadir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import csv

    root = tmp_path_factory.mktemp("replay-live")
    datadir = make_datadir(root)
    add_metric_files(datadir)
    shifted = root / "capture.csv"
    with CAPTURE.open() as src, shifted.open("w", newline="") as dst:
        writer = csv.writer(dst)
        for row in csv.reader(src):
            row[10] = str(int(row[10]) - SHIFT_MS)
            writer.writerow(row)
    args = ["import", "liquidation-events", str(shifted), "--exchange", "binance"]
    assert main([*args, "--datadir", str(datadir), "-p", PAIR]) == 0
    return datadir


def _start(overlay: Path, out: Path, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "liqsignals", "collect", "-c", str(overlay), "-p", PAIR]
    cmd += ["--datadir", str(out), "-t", "5m", "1h", "--interval", "1", "--flush-seconds", "0.5"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env)


def _wait_for(test: Any, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        if time.monotonic() > deadline:
            tail = log.read_text()[-3000:] if log.exists() else ""
            raise AssertionError(f"timed out waiting for {what}\n{tail}")
        time.sleep(0.1)


def _dates(out: Path, tf: str, kind: str) -> pd.Series:
    path = data_path(out, PAIR, tf, kind)
    if not path.exists():
        return pd.Series(dtype="datetime64[ms, UTC]")
    return read_frame(path)["date"]


def _rounds(log: Path) -> int:
    return sum(1 for line in log.read_text().splitlines() if line.startswith("collect: round"))


def test_collect_keeps_series_current_and_fills_the_gap_after_a_restart(
    replay_datadir: Path, tmp_path: Path
) -> None:
    clock = LiveClock(FIRST_MS - 60_000, speed=60, align_ms=HOUR_MS)
    out = tmp_path / "collected"
    log = tmp_path / "collect.log"
    offset = pd.Timedelta(milliseconds=clock.offset_ms)
    stored_oi = read_frame(data_path(replay_datadir, PAIR, "5m", "open_interest"))
    # the capture's events are re-sent to a websocket that subscribes up to 3 h (3 real minutes)
    # after them, so a collector that starts late on a busy machine still receives them
    with ReplayExchange(replay_datadir, clock=clock, ws_backlog_ms=3 * HOUR_MS) as server:
        overlay = tmp_path / "overlay.json"
        overlay.write_text(
            json.dumps({"exchange": {"name": "binance", **server.freqtrade_overlay()["exchange"]}})
        )

        def served_now() -> pd.Timestamp:
            return pd.Timestamp(clock.now_ms(), unit="ms", tz="UTC")

        def current() -> bool:  # the newest closed 5m period is stored
            dates = _dates(out, "5m", "open_interest")
            return len(dates) > 0 and dates.max() >= served_now().floor("5min") - 2 * FIVE_MIN

        first = _start(overlay, out, log)
        try:
            _wait_for(current, 60, "current open interest", log)
            seen = _dates(out, "5m", "open_interest").max()
            # several candles later it is still current, without being restarted
            _wait_for(lambda: _dates(out, "5m", "open_interest").max() >= seen + 3 * FIVE_MIN,
                      40, "three more candles", log)  # fmt: skip
            assert current()
            assert _rounds(log) >= 3
            # the capture's liquidations stream in over the websocket while it runs
            _wait_for(lambda: events_path(out, PAIR).exists(), 60, "liquidation events", log)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        killed_at = served_now()
        last_before = _dates(out, "5m", "open_interest").max()
        time.sleep(12)  # 12 minutes of exchange time pass with nobody collecting
        rounds_before = _rounds(log)
        second = _start(overlay, out, log)
        try:
            _wait_for(lambda: _rounds(log) > rounds_before, 60, "a round after the restart", log)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(20)
        assert second.returncode == 0
    text = log.read_text()
    assert "collect: stopped after" in text

    got = read_frame(data_path(out, PAIR, "5m", "open_interest"))
    assert got["date"].max() >= killed_at.floor("5min") + FIVE_MIN  # past the downtime
    assert last_before < killed_at.floor("5min") + 2 * FIVE_MIN
    # every 5-minute row from the first stored one to the last: nothing missing, nothing twice
    want = stored_oi.assign(date=stored_oi["date"] + offset)
    want = want.loc[(want["date"] >= got["date"].min()) & (want["date"] <= got["date"].max())]
    assert got["date"].is_unique
    assert list(got["date"]) == list(want["date"])
    assert got["open_interest_amount"].to_numpy() == pytest.approx(
        want["open_interest_amount"].to_numpy()
    )
    # the whole stored history (it starts less than Binance's 30 days before the clock)
    assert got["date"].min() == stored_oi["date"].min() + offset
    # the other series are current too
    for tf, kind, step in (("5m", "taker_volume", FIVE_MIN), ("1h", "long_short_ratio", pd.Timedelta(hours=1)),
                           ("1h", "funding_rate", pd.Timedelta(hours=8))):  # fmt: skip
        dates = _dates(out, tf, kind)
        assert len(dates) and dates.max() >= killed_at - 2 * step, (kind, dates.max(), killed_at)
    # and the liquidations of the capture came in over the websocket
    events = read_frame(events_path(out, PAIR))
    assert (
        len(events) > 0
        and events["date"].min() >= pd.Timestamp(FIRST_MS, unit="ms", tz="UTC") + offset
    )
    assert load_coverage(out, PAIR)
