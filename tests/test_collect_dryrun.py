"""Realised liquidations in a dry-run bot's frame: ``freqtrade trade --dry-run`` on the live
replay, with a collector's event file in the bot's datadir, shows ``liq_realised_long`` /
``liq_realised_short`` per candle: the sum of the recorded events inside each candle, NaN for
candles nobody recorded.

The event file holds the BTC prints of a real capture (tests/fixtures) at the replay's served
times, and a coverage span from one hour before the first print to the clock's start, as a
collector that had been running would leave them. The expected sums are computed here from
the capture's rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from _dryrun_support import Bot
from _replay_support import make_datadir
from test_collect_liquidations import FIRST_MS, LAST_MS, RECORDED

from liqsignals.data.liquidations import record_coverage, save_liquidation_events
from liqsignals.replay import LiveClock, ReplayExchange
from liqsignals.replay.clock import HOUR_MS

pytestmark = pytest.mark.slow

PAIR = "BTC/USDT:USDT"
TF_MS = 900_000
LOG_ENV = "LIQSIGNALS_TEST_REALISED_LOG"

STRATEGY = '''
"""LiqSweepReversal plus a JSONL line per analysis with the last candles' realised columns."""

import json
import math
import os

from LiqSweepReversal import LiqSweepReversal


class LiqSweepReversalRealised(LiqSweepReversal):
    def populate_indicators(self, dataframe, metadata):
        dataframe = super().populate_indicators(dataframe, metadata)
        path = os.environ.get("__ENV__")
        if path and self.liq_live():
            tail = dataframe.tail(16)

            def num(value):
                value = float(value)
                return value if math.isfinite(value) else None

            row = {
                "pair": metadata["pair"],
                "columns": [c for c in dataframe.columns if c.startswith("liq_realised")],
                "rows": [
                    [d.isoformat(), num(a), num(b)]
                    for d, a, b in zip(
                        tail["date"],
                        tail.get("liq_realised_long", [float("nan")] * len(tail)),
                        tail.get("liq_realised_short", [float("nan")] * len(tail)),
                    )
                ],
            }
            with open(path, "a") as fh:
                fh.write(json.dumps(row) + "\\n")
        return dataframe
'''.replace("__ENV__", LOG_ENV)


def test_realised_columns_appear_in_a_dry_run_bots_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    replay_dir = make_datadir(tmp_path / "replay")
    # "now" is 20 minutes after the capture's last print: its candles have closed
    clock = LiveClock(LAST_MS + 20 * 60_000, speed=1, align_ms=HOUR_MS)
    offset = clock.offset_ms
    btc = [r for r in RECORDED if r[1] == PAIR]
    workdir = tmp_path / "bot"
    botdata = workdir / "user_data" / "data" / "binance"  # the bot's datadir (freqtrade default)
    save_liquidation_events(
        [
            {"date": pd.Timestamp(t + offset, unit="ms", tz="UTC"), "exchange": "binance",
             "symbol": PAIR, "side": side, "price": price, "amount": amount,
             "value": price * amount}
            for t, _, side, price, amount in btc
        ],
        botdata,
        PAIR,
    )  # fmt: skip
    covered_from = FIRST_MS - HOUR_MS + offset
    covered_to = clock.now_ms()
    record_coverage(botdata, PAIR, covered_from, covered_to)
    # expected per served 15m candle open: (long, short) sums of the capture's rows
    expected: dict[int, list[float]] = {}
    for t, _, side, price, amount in btc:
        open_ms = (t + offset) // TF_MS * TF_MS
        sums = expected.setdefault(open_ms, [0.0, 0.0])
        sums[0 if side == "long liquidated" else 1] += price * amount

    strategies = tmp_path / "strategies"
    strategies.mkdir()
    (strategies / "LiqSweepReversalRealised.py").write_text(STRATEGY)
    log = tmp_path / "realised.jsonl"
    monkeypatch.setenv(LOG_ENV, str(log))
    with ReplayExchange(replay_dir, clock=clock) as server:
        bot = Bot(workdir, server, strategies, strategy="LiqSweepReversalRealised")
        bot.start()
        try:
            bot.wait_for(
                "an analysis of BTC",
                lambda: log.exists() and any(json.loads(x)["pair"] == PAIR for x in log.read_text().splitlines()),
                150,
            )  # fmt: skip
        finally:
            bot.stop()
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    row = next(r for r in lines if r["pair"] == PAIR)
    assert row["columns"] == ["liq_realised_long", "liq_realised_short"]
    seen = 0
    for date, long_v, short_v in row["rows"]:
        open_ms = int(pd.Timestamp(date).value // 1_000_000)
        if open_ms < covered_from or open_ms + TF_MS > covered_to:
            assert long_v is None and short_v is None, date  # not recorded as a whole
            continue
        want = expected.get(open_ms, [0.0, 0.0])
        assert long_v == pytest.approx(want[0]) and short_v == pytest.approx(want[1]), date
        seen += 1 if (want[0] or want[1]) else 0
    assert seen >= 2  # candles with liquidations were compared, not only empty ones
    # ETH has no event file: no realised columns
    eth = [r for r in lines if r["pair"] == "ETH/USDT:USDT"]
    assert all(r["columns"] == [] for r in eth)
