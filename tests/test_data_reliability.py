"""Downloads that never leave holes or lose rows, and data files written safely.

Each test is named after a failure seen before: an interrupted back-fill that a rerun never
repaired, two runs into one file losing rows, temporary files left behind, a file's mode changed
from 644 to 600, and spans Binance no longer serves being retried (or silently skipped) on every
run. The exchange is a real ccxt object whose HTTP layer answers from a script.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import ccxt
import numpy as np
import pandas as pd
import pytest

from liqsignals.data import datadir
from liqsignals.data import download as dl
from liqsignals.data.datadir import (
    append_frame,
    data_path,
    load_open_interest,
    read_frame,
    save_series,
)

PAIR = "BTC/USDT:USDT"
HOUR = 3_600_000
FIVE = 300_000
NOW = pd.Timestamp("2025-05-31 12:00", tz="UTC")
NOW_MS = int(NOW.value // 10**6)
KEPT_MS = 30 * 24 * HOUR  # Binance serves the last 30 days
ROOT = Path(__file__).resolve().parents[1]


def _market() -> dict[str, Any]:
    return {
        "id": "BTCUSDT",
        "symbol": PAIR,
        "base": "BTC",
        "quote": "USDT",
        "settle": "USDT",
        "baseId": "BTC",
        "quoteId": "USDT",
        "settleId": "USDT",
        "type": "swap",
        "spot": False,
        "margin": False,
        "swap": True,
        "future": False,
        "option": False,
        "contract": True,
        "linear": True,
        "inverse": False,
        "contractSize": 1.0,
        "active": True,
        "precision": {"amount": 0.001, "price": 0.1},
        "limits": {"amount": {}, "price": {}, "cost": {}, "leverage": {}},
        "info": {"pair": "BTCUSDT"},
    }


def _oi(t: int) -> float:
    return float(1000 + t // FIVE % 997)


class Binance:
    """Answers ``openInterestHist`` with one row per period up to NOW, for the last 30 days.

    ``failures`` maps a request number (1-based) to the exception it raises; no rows are served
    inside ``outage`` (a ``(start_ms, stop_ms)`` span).
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.failures: dict[int, Exception] = {}
        self.outage: tuple[int, int] | None = None
        self.lock = threading.Lock()

    def __call__(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        parsed = urlparse(url)
        q = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        assert parsed.path.endswith("openInterestHist"), url
        with self.lock:
            self.requests.append(q)
            n = len(self.requests)
        if n in self.failures:
            raise self.failures[n]
        period = HOUR if q["period"] == "1h" else FIVE
        start = max(int(q["startTime"]), NOW_MS - KEPT_MS)
        end = min(int(q["endTime"]), NOW_MS)
        first = -(-start // period) * period
        stamps = list(range(first, end + 1, period))
        if self.outage is not None:
            stamps = [t for t in stamps if not self.outage[0] <= t <= self.outage[1]]
        return [
            {
                "symbol": "BTCUSDT",
                "sumOpenInterest": str(_oi(t)),
                "sumOpenInterestValue": str(_oi(t) * 50000),
                "timestamp": t,
            }
            for t in stamps[: int(q["limit"])]
        ]

    def starts(self, since: int = 0) -> list[int]:
        return [int(q["startTime"]) for q in self.requests[since:]]


def _exchange(server: Binance) -> Any:
    exchange = dl.make_exchange("binance")
    exchange.set_markets([_market()])
    exchange.fetch = server
    return exchange


def _run(server: Binance, root: Path, tf: str = "5m", **kwargs: Any) -> dl.DownloadResult:
    kwargs = {"progress": False, "now": lambda: NOW, "sleep": lambda s: None, **kwargs}
    return dl.download_open_interest(_exchange(server), PAIR, tf, root, **kwargs)


def _grid(start: str, stop: pd.Timestamp = NOW, tf: str = "5min") -> pd.DatetimeIndex:
    return pd.date_range(pd.Timestamp(start, tz="UTC"), stop, freq=tf)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".tmp", ".lock")))


def _stored(root: Path, tf: str = "5m") -> pd.DataFrame:
    return load_open_interest(root, PAIR, tf)


# ------------------------------------------------------------------ interrupted back-fill


@pytest.mark.parametrize("rerun_range", ["20250510-", None], ids=["same-range", "no-range"])
def test_interrupted_backfill_is_repaired_on_rerun(tmp_path: Path, rerun_range: str | None):
    server = Binance()
    recent = _run(server, tmp_path, timerange="20250525-")
    assert recent.added == len(_grid("2025-05-25"))  # 6.5 days of 5m rows
    # the back-fill to May 10 stops at its third request: two pages of 500 rows are stored
    server.failures = {len(server.requests) + 3: ccxt.ExchangeError("connection dropped")}
    with pytest.raises(ccxt.ExchangeError):
        _run(server, tmp_path, timerange="20250510-")
    assert len(_stored(tmp_path)) == recent.added + 1000
    hole = len(_grid("2025-05-10", pd.Timestamp("2025-05-25", tz="UTC"))) - 1 - 1000
    assert hole == 3320  # 15 days x 288 rows, less the two stored pages

    before = len(server.requests)
    again = _run(server, tmp_path, timerange=rerun_range)
    assert again.added == hole  # the rerun reports what it added, not "0 new rows"
    got = _stored(tmp_path)
    expected = _grid("2025-05-10")
    assert got["date"].tolist() == expected.tolist()
    assert got["open_interest_amount"].tolist() == [_oi(int(t.value // 10**6)) for t in expected]
    # only the hole was asked for: its first bar, then pages through it
    assert server.starts(before)[0] == int(pd.Timestamp("2025-05-10", tz="UTC").value // 10**6) + (
        1000 * FIVE
    )
    assert len(server.requests) - before == -(-hole // 500)
    assert _run(server, tmp_path, timerange=rerun_range).added == 0  # nothing left to fetch


# ------------------------------------------------------------- two runs into one file


def test_two_runs_with_different_ranges_into_one_file_keep_the_union(tmp_path, monkeypatch):
    path = data_path(tmp_path, PAIR, "5m", "open_interest")
    seed = pd.DataFrame(
        {
            "date": [pd.Timestamp("2025-05-05", tz="UTC")],
            "open_interest_amount": [1.0],
            "open_interest_value": [2.0],
        }
    )
    save_series(seed, tmp_path, PAIR, "5m", "open_interest")
    # make the two runs meet inside their first merge: each waits (up to 2 s) after reading the
    # file until the other has read it too. Without a lock both then write what they read plus
    # their own page, and one page is lost; with the lock the second cannot read until the first
    # has written, the wait times out and the merges happen one after the other.
    meet = threading.Barrier(2, timeout=2.0)
    real_read = datadir.read_frame

    def read_then_meet(p: Any) -> pd.DataFrame:
        frame = real_read(p)
        try:
            meet.wait()
        except threading.BrokenBarrierError:
            pass
        return frame

    monkeypatch.setattr(datadir, "read_frame", read_then_meet)
    server = Binance()
    results: dict[str, dl.DownloadResult] = {}
    errors: list[BaseException] = []

    def run(name: str, timerange: str) -> None:
        try:
            results[name] = _run(server, tmp_path, timerange=timerange)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=("a", "20250510-20250520")),
        threading.Thread(target=run, args=("b", "20250515-")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    got = read_frame(path)
    expected = [seed["date"].iloc[0], *_grid("2025-05-10")]
    assert got["date"].tolist() == expected
    # every row was counted once, by the run whose merge stored it first
    assert results["a"].added + results["b"].added == len(expected) - 1
    assert not _leftovers(path.parent)


_WRITER = """
import sys
import pandas as pd
from liqsignals.data.datadir import append_frame
path, offset = sys.argv[1], int(sys.argv[2])
for i in range(40):
    start = pd.Timestamp("2025-01-01", tz="UTC") + pd.Timedelta(hours=offset + 100 * i)
    dates = pd.date_range(start, periods=5, freq="1h")
    append_frame(pd.DataFrame({"date": dates, "x": [float(offset)] * 5}), path)
"""


def test_concurrent_runs_on_one_file_from_two_processes_lose_nothing(tmp_path: Path):
    path = tmp_path / "futures" / "BTC_USDT_USDT-1h-open_interest.feather"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(off)], env=env)
        for off in (0, 50)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    got = read_frame(path)
    hours = sorted(off + 100 * i + k for off in (0, 50) for i in range(40) for k in range(5))
    expected = [pd.Timestamp("2025-01-01", tz="UTC") + pd.Timedelta(hours=h) for h in hours]
    assert got["date"].tolist() == expected  # 400 rows: both writers' 40 merges each
    assert not _leftovers(path.parent)


# ------------------------------------------------------------------------ leftovers


_KILLED_WRITER = """
import os
import sys
import pandas as pd
from liqsignals.data.datadir import append_frame

def die_midway(self, path, **kwargs):
    with open(path, "wb") as fh:
        fh.write(b"ARROW1 half a file")
    os._exit(9)  # killed mid-write: no cleanup runs

pd.DataFrame.to_feather = die_midway
append_frame(pd.DataFrame({"date": [pd.Timestamp("2025-05-31", tz="UTC")],
                           "open_interest_amount": [1.0], "open_interest_value": [1.0]}),
             sys.argv[1])
"""


def test_no_temporary_files_left_after_success_or_an_injected_failure(tmp_path, monkeypatch):
    server = Binance()
    result = _run(server, tmp_path, timerange="20250530-")
    folder = result.path.parent
    assert result.added == len(_grid("2025-05-30"))
    assert _leftovers(folder) == []
    intact = folder.joinpath(result.path.name).read_bytes()

    # a write that fails in this process: the error propagates, nothing is left, file intact
    def fail_midway(self: pd.DataFrame, path: Any, **kwargs: Any) -> None:
        Path(path).write_bytes(b"ARROW1 half a file")
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(pd.DataFrame, "to_feather", fail_midway)
        with pytest.raises(OSError, match="No space left"):
            _run(server, tmp_path, timerange="20250529-")
    assert _leftovers(folder) == []
    assert result.path.read_bytes() == intact

    # a writer killed mid-write leaves its temporary file; the next write removes it
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, str(result.path)], env=env, timeout=120
    )
    assert done.returncode == 9
    assert any(name.endswith(".tmp") for name in _leftovers(folder))  # the crash's debris
    assert result.path.read_bytes() == intact
    again = _run(server, tmp_path, timerange="20250529-")
    assert again.added == 288
    assert _leftovers(folder) == []


# ------------------------------------------------------------------------ file mode


@pytest.mark.parametrize("mode", [0o644, 0o640])
def test_file_mode_is_kept(tmp_path: Path, mode: int):
    server = Binance()
    first = _run(server, tmp_path, timerange="20250530-")
    os.chmod(first.path, mode)
    later = NOW + pd.Timedelta(hours=1)
    result = _run(server, tmp_path, timerange="20250529-", now=lambda: later)
    assert result.added == 288
    assert stat.S_IMODE(os.stat(first.path).st_mode) == mode
    # a new file gets the process's default, as open() would give (not mkstemp's 600)
    umask = os.umask(0o022)
    try:
        fresh = _run(Binance(), tmp_path / "other", timerange="20250530-")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(fresh.path).st_mode) == 0o644


# ------------------------------------------------------------- unreachable old gaps


def _hourly(start: str, stop: str) -> pd.DataFrame:
    dates = pd.date_range(pd.Timestamp(start, tz="UTC"), pd.Timestamp(stop, tz="UTC"), freq="1h")
    ms = dates.asi8 // 10**6
    return pd.DataFrame(
        {
            "date": dates,
            "open_interest_amount": [_oi(int(t)) for t in ms],
            "open_interest_value": np.zeros(len(ms)),
        }
    )


def test_old_unreachable_gaps_are_recorded_and_reported_once(tmp_path: Path, caplog):
    # rows imported from dumps: April 1-10 and May 20-25; Binance serves only since May 1 12:00
    stored = pd.concat([_hourly("2025-04-01", "2025-04-10"), _hourly("2025-05-20", "2025-05-25")])
    save_series(stored, tmp_path, PAIR, "1h", "open_interest")
    server = Binance()
    cutoff = NOW - pd.Timedelta(days=30)
    with caplog.at_level(logging.WARNING, logger="liqsignals.data.download"):
        first = _run(server, tmp_path, tf="1h")
    expected_old = dl.Unavailable(
        pd.Timestamp("2025-04-10 01:00", tz="UTC"),
        cutoff - pd.Timedelta(milliseconds=1),
        "retention",
    )
    assert first.unavailable == (expected_old,)
    warned = [r for r in caplog.records if "cannot be fetched" in r.getMessage()]
    assert len(warned) == 1 and "2025-04-10 01:00" in warned[0].getMessage()
    assert min(server.starts()) >= int(cutoff.value // 10**6)  # nothing older was asked for
    got = load_open_interest(tmp_path, PAIR, "1h")
    fetched = (len(_grid("2025-05-01 12:00", pd.Timestamp("2025-05-19 23:00", tz="UTC"), "1h"))
               + len(_grid("2025-05-25 01:00", NOW, "1h")))  # fmt: skip
    assert first.added == fetched and len(got) == len(stored) + fetched
    assert dl.load_unavailable(first.path) == [expected_old]
    side = dl.unavailable_path(first.path)
    assert side.parent == first.path.parent and not _leftovers(side.parent)

    # the next run neither reports the old gap again nor asks the exchange for it
    caplog.clear()
    before = len(server.requests)
    with caplog.at_level(logging.WARNING, logger="liqsignals.data.download"):
        second = _run(server, tmp_path, tf="1h")
    assert second.unavailable == () and second.added == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(server.requests) == before


def test_spans_the_exchange_does_not_serve_are_recorded_and_not_retried(tmp_path, caplog):
    server = Binance()
    lo, hi = pd.Timestamp("2025-05-12", tz="UTC"), pd.Timestamp("2025-05-12 05:00", tz="UTC")
    server.outage = (int(lo.value // 10**6), int(hi.value // 10**6))
    with caplog.at_level(logging.WARNING, logger="liqsignals.data.download"):
        first = _run(server, tmp_path, tf="1h", timerange="20250510-")
    assert len(load_open_interest(tmp_path, PAIR, "1h")) == len(_grid("2025-05-10", tf="1h")) - 6
    assert first.unavailable == ()  # the hole was inside a page: worth one targeted retry
    before = len(server.requests)
    second = _run(server, tmp_path, tf="1h", timerange="20250510-")
    assert second.added == 0 and len(server.requests) == before + 1
    assert int(server.requests[-1]["startTime"]) == int(lo.value // 10**6)
    assert second.unavailable == (
        dl.Unavailable(lo, hi + pd.Timedelta(hours=1) - pd.Timedelta(milliseconds=1), "not served"),
    )
    third = _run(server, tmp_path, tf="1h", timerange="20250510-")
    assert third.unavailable == () and len(server.requests) == before + 1  # not retried


def test_append_frame_still_counts_new_rows_under_the_lock(tmp_path: Path):
    path = tmp_path / "x.feather"
    one = pd.DataFrame({"date": pd.date_range("2025-01-01", periods=3, freq="1h", tz="UTC")})
    assert append_frame(one.assign(v=1.0), path)[1] == 3
    assert append_frame(one.assign(v=2.0), path)[1] == 0  # re-fetched rows replace stored ones
    assert read_frame(path)["v"].tolist() == [2.0, 2.0, 2.0]


def _utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def test_missing_spans_follow_the_stored_grid_and_funding_intervals():
    # hourly bars on the half hour, 03:30 and 04:30 missing, range ends after the last row
    bars = pd.Series(pd.date_range("2025-01-01 00:30", periods=10, freq="1h", tz="UTC"))
    bars = bars.dt.as_unit("ms").drop([3, 4])
    got = dl.missing_spans(bars, _utc("2025-01-01"), _utc("2025-01-01 11:00"), "1h")
    ms = pd.Timedelta(milliseconds=1)
    assert got == [
        (_utc("2025-01-01 03:30"), _utc("2025-01-01 05:30") - ms),
        (_utc("2025-01-01 10:30"), _utc("2025-01-01 11:00")),
    ]
    # a new file: the epoch-aligned grid from the first whole bar in the range
    assert dl.missing_spans(None, _utc("2025-01-01 00:10"), _utc("2025-01-01 03:00"), "1h") == [
        (_utc("2025-01-01 01:00"), _utc("2025-01-01 03:00"))
    ]
    # funding every 8h (one stamped 4 ms late); the 16h step is a hole, the late stamp is not
    events = pd.Series(
        [_utc("2025-01-01 00:00:00.004"), _utc("2025-01-01 08:00"), _utc("2025-01-02 00:00")]
        + [_utc("2025-01-02 08:00")]
    ).dt.as_unit("ms")
    got = dl.missing_spans(
        events, _utc("2025-01-01"), _utc("2025-01-02 12:00"), "1h", "funding_rate"
    )
    assert got == [
        (_utc("2025-01-01 08:00") + ms, _utc("2025-01-02 00:00") - ms),
        (_utc("2025-01-02 08:00") + ms, _utc("2025-01-02 12:00")),
    ]


def test_a_writer_that_cannot_get_the_lock_is_refused_clearly(tmp_path, monkeypatch):
    path = tmp_path / "futures" / "BTC_USDT_USDT-1h-open_interest.feather"
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with datadir.file_lock(path):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(30)
    monkeypatch.setattr(datadir, "LOCK_TIMEOUT", 0.2)
    frame = pd.DataFrame({"date": [_utc("2025-05-01")], "x": [1.0]})
    try:
        with pytest.raises(datadir.FileBusyError, match="BTC_USDT_USDT-1h-open_interest.feather"):
            append_frame(frame, path)
        assert not path.exists()
    finally:
        release.set()
        holder.join(30)
    assert append_frame(frame, path)[1] == 1  # free again: the merge goes through
    assert not _leftovers(path.parent)
