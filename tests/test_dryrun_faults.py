"""Paper trading on a misbehaving exchange: the dry-run bot under HTTP 500/502, 429 with
Retry-After, timeouts, malformed JSON, then also missing and duplicated candles, and a restart.

Request faults start once the bot is up (``_dryrun_support.REQUEST_FAULTS``); once it holds a
trade, candle faults join them (``CANDLE_FAULTS``) and the bot is stopped with SIGTERM and
started again on the same database while the faults go on. The bot must keep running and
answering its REST API, never hold two open trades on a pair or two trades from one candle, lose
no trade over the restart, and resume its open trade from the database.
"""

from __future__ import annotations

import collections

import pandas as pd
import pytest
from _dryrun_support import TF_MS, PaperRun, paper_runs

pytestmark = pytest.mark.slow

#: columns of a trade row that a restart must leave untouched
KEPT = ("id", "pair", "is_short", "open_date", "open_rate", "amount", "stake_amount", "leverage")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> PaperRun:
    result = paper_runs(tmp_path_factory.getbasetemp() / "paper-runs")["faults"]
    assert result.error is None, result.error
    return result


def test_faults_were_played(run: PaperRun) -> None:
    counts = run.fault_counts
    request_faults = sum(
        counts.get(k, 0)
        for k in ("server_error", "bad_gateway", "rate_limit", "timeout", "malformed")
    )
    assert request_faults >= 3, counts
    assert counts.get("missing_candle", 0) >= 1 and counts.get("duplicate_candle", 0) >= 1, counts
    # the restarted bot loaded its history through the candle faults: freqtrade filled the holes
    assert "Missing data fillup" in run.logs[1]


def test_bot_keeps_running_and_answering(run: PaperRun) -> None:
    for key in ("polls_before_restart", "polls_after_restart"):
        polls = run.snapshots[key]
        assert len(polls) >= 10, key
        assert all(p["alive"] for p in polls), key
        answered = sum(p["answered"] for p in polls)
        assert answered >= 0.8 * len(polls), (key, answered, len(polls))


def test_no_duplicate_trades(run: PaperRun) -> None:
    polls = run.snapshots["polls_before_restart"] + run.snapshots["polls_after_restart"]
    for poll in polls:
        pairs = [pair for _, pair in poll["open"]]
        assert len(pairs) == len(set(pairs)), poll
    rows = run.snapshots["db_final"]
    assert rows
    open_per_pair = collections.Counter(r["pair"] for r in rows if r["is_open"])
    assert max(open_per_pair.values(), default=0) <= 1, open_per_pair
    candles = collections.Counter(
        (r["pair"], pd.Timestamp(r["open_date"], tz="UTC").floor(f"{TF_MS // 60_000}min"))
        for r in rows
    )
    assert max(candles.values()) == 1, candles


def test_restart_loses_no_trade_and_resumes_open_ones(run: PaperRun) -> None:
    before = {r["id"]: r for r in run.snapshots["db_before_restart"]}
    after = {r["id"]: r for r in run.snapshots["db_final"]}
    assert before, "no trade before the restart"
    assert set(before) <= set(after)
    for trade_id, row in before.items():
        assert {k: after[trade_id][k] for k in KEPT} == {k: row[k] for k in KEPT}
    open_before = {t["trade_id"] for t in run.snapshots["status_before_stop"]}
    open_after = {t["trade_id"] for t in run.snapshots["status_after_restart"]}
    assert open_before and open_after == open_before
    assert {r["id"] for r in run.snapshots["db_before_restart"] if r["is_open"]} == open_before
    # the resumed trade is the one opened on the replayed signal
    (trade,) = [t for t in run.snapshots["status_after_restart"] if t["pair"] == run.signal.pair]
    assert trade["is_short"] == (run.signal.side == "short")


def test_restart_rebuilds_the_engines(run: PaperRun) -> None:
    """Each bot process builds each pair's engine once from its own first frame: one first
    build per pair and process, and every later analysis of a process builds on it."""
    for pair in {r["pair"] for r in run.signal_log}:
        stats = [r["stats"] for r in run.signal_log if r["pair"] == pair]
        first_builds = [s for s in stats if s["last_mode"] == "rebuild" and s["rebuilds"] == 1]
        assert len(first_builds) == 2, (pair, stats)
        assert stats[0] == first_builds[0]


def test_both_stops_are_clean(run: PaperRun) -> None:
    assert len(run.exit_codes) == 2
    for rc, log in zip(run.exit_codes, run.logs, strict=True):
        assert rc in (0, 130), log[-3000:]
        assert "worker found ... calling exit" in log and "Cleaning up modules" in log
        assert "Traceback" not in log, log[log.find("Traceback") - 500 :][:4000]
