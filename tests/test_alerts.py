"""Alerts of a running bot (liqsignals.strategy.alerts): near a cluster, on a sweep, on a magnet
side switch; once per candle, rate-limited, off by default; and end to end, a sweep on the replay
reaches a local webhook receiver exactly once."""

from __future__ import annotations

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from liqsignals.strategy.alerts import AlertBook, AlertSettings, alert_settings

PAIR = "BTC/USDT:USDT"
NAN = math.nan


def row(date: str, **values: float) -> dict[str, Any]:
    base = {
        "date": pd.Timestamp(date, tz="UTC"),
        "close": 100.0,
        "liq_sweep_long": 0.0,
        "liq_sweep_long_through": 0.0,
        "liq_sweep_short": 0.0,
        "liq_sweep_short_through": 0.0,
        "liq_long_cluster_dist_pct": 5.0,
        "liq_short_cluster_dist_pct": 5.0,
        "liq_long_cluster_price": 95.0,
        "liq_short_cluster_price": 105.0,
        "liq_magnet_dist_pct": 5.0,
        "liq_magnet_price": 105.0,
        "liq_sweep_long_low": NAN,
        "liq_sweep_long_notional": 0.0,
        "liq_sweep_short_high": NAN,
        "liq_sweep_short_notional": 0.0,
    }
    base.update(values)
    return base


def frame(*rows: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def test_off_by_default_and_settings_are_checked() -> None:
    assert alert_settings({}).enabled is False
    assert alert_settings({"liqsignals": {"alerts": {"enabled": True}}}).enabled is True
    book = AlertBook(alert_settings({}))
    assert book.check(PAIR, frame(row("2024-01-01 00:00", liq_sweep_long=1.0))) == []
    with pytest.raises(ValueError, match="unknown"):
        alert_settings({"liqsignals": {"alerts": {"enabeld": True}}})
    with pytest.raises(ValueError, match="cooldown_minutes"):
        alert_settings({"liqsignals": {"alerts": {"cooldown_minutes": -1}}})
    with pytest.raises(ValueError, match="sweep"):
        alert_settings({"liqsignals": {"alerts": {"sweep": "yes"}}})


def test_sweep_once_per_candle_and_rate_limited() -> None:
    book = AlertBook(AlertSettings(enabled=True, cooldown_minutes=60))
    sweep = {"liq_sweep_long": 1.0, "liq_sweep_long_low": 97.5, "liq_sweep_long_notional": 1e6}
    f1 = frame(row("2024-01-01 00:00"), row("2024-01-01 00:15", **sweep))
    (msg,) = book.check(PAIR, f1)
    assert msg.startswith(f"liqsignals {PAIR} 2024-01-01 00:15 UTC: long liquidation cluster swept")
    assert "97.5" in msg and "1,000,000" in msg
    assert book.check(PAIR, f1) == []  # the same candle analysed again
    f2 = frame(row("2024-01-01 00:15"), row("2024-01-01 00:30", **sweep))
    assert book.check(PAIR, f2) == []  # 15 minutes later: within the cooldown
    f3 = frame(row("2024-01-01 01:00"), row("2024-01-01 01:15", **sweep))
    assert len(book.check(PAIR, f3)) == 1  # an hour after the first one
    # another pair has its own cooldown
    assert len(book.check("ETH/USDT:USDT", f2)) == 1


def test_near_cluster_and_magnet_switch() -> None:
    book = AlertBook(AlertSettings(enabled=True, cluster_distance_pct=0.5, sweep=False))
    near = frame(row("2024-01-01 00:00"), row("2024-01-01 00:15", liq_short_cluster_dist_pct=0.3))
    (msg,) = book.check(PAIR, near)
    assert "within 0.30% of the short liquidation cluster at 105 (above)" in msg
    far = frame(row("2024-01-01 00:15"), row("2024-01-01 00:30", liq_short_cluster_dist_pct=0.8))
    assert book.check(PAIR, far) == []
    switch = frame(
        row("2024-01-01 00:30", liq_magnet_dist_pct=2.0),
        row("2024-01-01 00:45", liq_magnet_dist_pct=-1.0, liq_magnet_price=99.0),
    )
    (msg,) = book.check(PAIR, switch)
    assert "magnet switched from above to below price (magnet 99" in msg
    quiet = AlertBook(AlertSettings(enabled=True, magnet=False, cluster=False))
    assert quiet.check(PAIR, switch) == []


def test_strategy_sends_a_sweep_alert_through_the_dataprovider() -> None:
    """The dry-run strategy on a frame that ends on a real sweep of the bundled data sends one
    message with ``dp.send_msg``; the same frame analysed again sends nothing."""
    from _dryrun_support import load_strategy

    from liqsignals import sample

    candles = sample.load_candles(PAIR, "15m").iloc[:3000].reset_index(drop=True)
    batch = load_strategy().populate_indicators(candles.copy(), {"pair": PAIR})
    hits = batch.index[(batch["liq_sweep_long"] == 1) | (batch["liq_sweep_short"] == 1)]
    end = int(hits[hits > 1500][0]) + 1
    strat = load_strategy(live=True)
    strat.liq_alerts = AlertBook(AlertSettings(enabled=True, cluster=False, magnet=False))
    sent: list[tuple[str, bool]] = []
    strat.dp.send_msg = lambda message, always_send=False: sent.append((message, always_send))
    strat.populate_indicators(candles.iloc[end - 1400 : end].copy(), {"pair": PAIR})
    date = candles["date"].iloc[end - 1]
    assert len(sent) == 1, sent
    assert f"{PAIR} {date:%Y-%m-%d %H:%M} UTC" in sent[0][0] and "swept" in sent[0][0]
    strat.populate_indicators(candles.iloc[end - 1400 : end].copy(), {"pair": PAIR})
    assert len(sent) == 1


# ----------------------------------------------------------------------------- dry-run + webhook


class _Receiver:
    """A webhook receiver on 127.0.0.1 that keeps every JSON body it is sent."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    bodies.append(json.loads(self.rfile.read(length) or b"{}"))
                except ValueError:
                    bodies.append({"raw": True})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> _Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.slow
def test_a_sweep_on_the_replay_reaches_a_webhook_exactly_once(tmp_path: Path) -> None:
    from _dryrun_support import Bot, pick_signal, write_strategy

    from liqsignals import sample
    from liqsignals.replay import ReplayExchange
    from liqsignals.replay.clock import HOUR_MS, LiveClock

    sig = pick_signal(pairs=(PAIR,))  # a LiqSweepReversal entry: a sweep candle closing now
    clock = LiveClock(sig.start_ms, align_ms=HOUR_MS)
    served = sig.date + pd.Timedelta(milliseconds=clock.offset_ms)
    exchange = ReplayExchange(sample.datadir(), clock=clock)
    with _Receiver() as hook:
        config = {
            "liqsignals": {"alerts": {"enabled": True, "cluster": False, "magnet": False}},
            "webhook": {
                "enabled": True,
                "url": hook.url,
                "format": "json",
                "allow_custom_messages": True,  # freqtrade drops strategy messages without it
                "strategy_msg": {"text": "{msg}"},
            },
        }
        bot = Bot(tmp_path, exchange, write_strategy(tmp_path / "strategies"), config=config)
        stamp = f"liqsignals {sig.pair} {served:%Y-%m-%d %H:%M} UTC: {sig.side} liquidation"

        def ours() -> list[str]:
            return [b.get("text", "") for b in hook.bodies if stamp in b.get("text", "")]

        try:
            exchange.start()
            bot.start()
            bot.wait_ready(timeout=240)
            bot.wait_for("the sweep alert at the webhook", ours, 300)
            time.sleep(20)  # several more analyses: no repeat
            # freqtrade cleans up on SIGTERM; 130 when the signal lands in its throttle sleep
            assert bot.stop() in (0, 130)
            assert "Cleaning up modules" in bot.log() and "Traceback" not in bot.log()
        finally:
            if bot.proc is not None:
                bot.stop()
            exchange.stop()
    assert len(ours()) == 1, [b.get("text") for b in hook.bodies]
    assert "cluster swept" in ours()[0]
