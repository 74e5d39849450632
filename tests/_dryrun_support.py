"""Shared pieces of the dry-run tests: ``freqtrade trade --dry-run`` on the replay exchange's live
clock, observed through freqtrade's REST API and its trade database.

* :func:`pick_signal`: a stored moment where the shipped ``LiqSweepReversal`` signals, and the
  :class:`~liqsignals.replay.LiveClock` start that makes that candle close just before (or just
  after) the test starts, so the bot sees it within its first analyses.
* :class:`Bot`: one ``freqtrade trade`` process (config overlay with the REST API on loopback,
  its own sqlite file, its log in a file), stopped with SIGTERM (then SIGKILL) in ``stop()``.
* ``PAPER_STRATEGY``: a test subclass of ``LiqSweepReversal`` that logs, per analysed candle, the
  last row's signals and the strategy's engine counters to a JSONL file (in dry-run only).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from liqsignals import sample
from liqsignals.replay import ReplayExchange
from liqsignals.replay.clock import HOUR_MS

ROOT = Path(__file__).resolve().parent.parent
PAIRS = ("BTC/USDT:USDT", "ETH/USDT:USDT")
TIMEFRAME = "15m"
TF_MS = 900_000
#: the bot's first frame in dry-run: freqtrade fetches 3 calls of 499 candles for the strategy's
#: startup (1,182 candles) and keeps at most 499 + 1,182 once new candles arrive
LIVE_FRAME = 3 * 499
API_USER = "liqsignals-test"
API_PASSWORD = "not-a-secret"
SIGNAL_LOG_ENV = "LIQSIGNALS_TEST_SIGNAL_LOG"
#: liq_* values logged (and compared) per analysed candle
LOGGED = (
    "liq_sweep_long",
    "liq_sweep_short",
    "liq_long_cluster_price",
    "liq_short_cluster_price",
    "liq_magnet_price",
    "liq_imbalance",
    "liq_atr",
    "rsi",
)

PAPER_STRATEGY = '''
"""LiqSweepReversal for the dry-run tests: unchanged signals, plus a JSONL line per analysis."""

import json
import math
import os

from LiqSweepReversal import LiqSweepReversal

LOGGED = __LOGGED__


class LiqSweepReversalPaper(LiqSweepReversal):
    def populate_entry_trend(self, dataframe, metadata):
        dataframe = super().populate_entry_trend(dataframe, metadata)
        path = os.environ.get("__ENV__")
        if path and self.liq_live() and len(dataframe):
            last = dataframe.iloc[-1]
            stats = self.liq_stream_stats(metadata["pair"])

            def num(value):
                value = float(value)
                return value if math.isfinite(value) else None

            row = {
                "pair": metadata["pair"],
                "date": last["date"].isoformat(),
                "rows": len(dataframe),
                "first": dataframe["date"].iloc[0].isoformat(),
                "enter_long": int(last.get("enter_long", 0) == 1),
                "enter_short": int(last.get("enter_short", 0) == 1),
                "values": {c: num(last[c]) for c in LOGGED},
                "stats": stats.as_dict() if stats is not None else None,
            }
            with open(path, "a") as fh:
                fh.write(json.dumps(row) + "\\n")
        return dataframe
'''.replace("__LOGGED__", repr(LOGGED)).replace("__ENV__", SIGNAL_LOG_ENV)


def write_strategy(folder: Path) -> Path:
    """Write ``LiqSweepReversalPaper.py`` into ``folder`` (it imports the shipped strategy)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "LiqSweepReversalPaper.py").write_text(PAPER_STRATEGY)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# ----------------------------------------------------------------------------- the signal


def load_strategy(
    name: str = "LiqSweepReversal", *, live: bool = False, datadir: Path | None = None
) -> Any:
    """A shipped strategy, loaded as the bot loads it (freqtrade's Configuration, then
    StrategyResolver); ``live=True`` puts it in dry-run mode (the strategy's incremental path).
    ``datadir`` defaults to the bundled sample."""
    from freqtrade.configuration import Configuration
    from freqtrade.data.dataprovider import DataProvider
    from freqtrade.enums import RunMode
    from freqtrade.resolvers import StrategyResolver

    global _USERDIR
    if _USERDIR is None:
        _USERDIR = tempfile.mkdtemp(prefix="liqsignals-dryrun-")
    args = {
        "config": [str(ROOT / "config" / "futures.json")],
        "user_data_dir": _USERDIR,
        "datadir": str(sample.datadir() if datadir is None else datadir),
        "strategy": name,
        "strategy_path": str(ROOT / "strategies"),
    }
    config = Configuration(args, RunMode.DRY_RUN if live else RunMode.BACKTEST).get_config()
    strategy = StrategyResolver.load_strategy(config)
    if live:
        # the bot's DataProvider: the strategy reads its run mode there (no exchange needed
        # while live open interest is off)
        strategy.dp = DataProvider(config, None)
        assert strategy.dp.runmode is RunMode.DRY_RUN
    return strategy


_USERDIR: str | None = None


def entry_signals(pair: str, candles: pd.DataFrame | None = None) -> pd.DataFrame:
    """``date, enter_long, enter_short`` rows where the shipped strategy wants in (batch)."""
    strategy = load_strategy()
    df = sample.load_candles(pair, TIMEFRAME) if candles is None else candles
    df = strategy.populate_indicators(df.copy(), {"pair": pair})
    df = strategy.populate_entry_trend(df, {"pair": pair})
    for col in ("enter_long", "enter_short"):
        if col not in df:
            df[col] = 0.0
    df[["enter_long", "enter_short"]] = df[["enter_long", "enter_short"]].fillna(0)
    hits = (df["enter_long"] == 1) | (df["enter_short"] == 1)
    return df.loc[hits, ["date", "enter_long", "enter_short"]].reset_index(drop=True)


@dataclass(frozen=True)
class Signal:
    pair: str
    date: pd.Timestamp  # open of the signal candle, stored time
    side: str  # "long" or "short"
    start_ms: int  # LiveClock start (stored moment that plays back as now)
    lead_ms: int  # now - signal close, in stored time, when the clock starts (< 0: still ahead)

    @property
    def close_ms(self) -> int:
        return int(self.date.value // 1_000_000) + TF_MS


def _signals_in_live_frame(pair: str, candles: pd.DataFrame, date: pd.Timestamp) -> bool:
    """Does the signal at ``date`` also fire on the frame a freshly started bot would hold?"""
    end = int(candles.index[candles["date"] == date][0]) + 1
    for rows in (LIVE_FRAME - 1, LIVE_FRAME, LIVE_FRAME - 20):
        frame = candles.iloc[max(0, end - rows) : end].reset_index(drop=True)
        strategy = load_strategy(live=True)
        out = strategy.populate_indicators(frame.copy(), {"pair": pair})
        out = strategy.populate_entry_trend(out, {"pair": pair})
        last = out.iloc[-1]
        if not (last.get("enter_long") == 1 or last.get("enter_short") == 1):
            return False
    return True


def pick_signal(
    *,
    at_ms: int | None = None,
    align_ms: int = HOUR_MS,
    lead_range_ms: tuple[int, int] = (-90_000, 810_000),
    pairs: tuple[str, ...] = PAIRS,
) -> Signal:
    """A signal candle of ``LiqSweepReversal`` and the live-clock start that puts it near now.

    History is shifted by a whole number of ``align_ms`` (one hour keeps every candle boundary
    up to 1h, and so freqtrade's 1h mark and funding candles), so "now" lands on the data at the
    wall clock's own minute of the hour and the position inside the current 15m candle is the
    wall clock's: only the candle can be chosen. ``lead_range_ms`` (one candle wide) says how long
    before "now" the signal candle may have closed: the 90 s before a candle boundary pick the
    candle closing next (the bot sees it a moment later, through an incremental update), the rest
    of the time the candle that closed last (the bot sees it in its first analysis). The most
    recent such signal that also fires on a bot-sized frame wins.
    """
    wall = now_ms() if at_ms is None else at_ms
    lo, hi = lead_range_ms
    candidates: list[tuple[int, Signal]] = []
    frames: dict[str, pd.DataFrame] = {}
    for pair in pairs:
        frames[pair] = sample.load_candles(pair, TIMEFRAME)
        dates = frames[pair]["date"]
        first_ms = int(dates.iloc[0].value // 1_000_000)
        end_ms = int(dates.iloc[-1].value // 1_000_000) + TF_MS
        for row in entry_signals(pair, frames[pair]).itertuples():
            date = pd.Timestamp(row.date)
            close = int(date.value // 1_000_000) + TF_MS
            lead = (wall - close - lo) % align_ms + lo
            # a full first frame before it, and an hour of data after it for the bot to run on
            if lead > hi or close - LIVE_FRAME * TF_MS < first_ms or close + HOUR_MS > end_ms:
                continue
            side = "long" if row.enter_long == 1 else "short"
            sig = Signal(pair, date, side, close + lead, lead)
            candidates.append((-date.value, sig))
    candidates.sort(key=lambda item: item[0])
    for _, sig in candidates[:12]:
        if _signals_in_live_frame(sig.pair, frames[sig.pair], sig.date):
            return sig
    raise RuntimeError(f"no usable LiqSweepReversal signal for wall time {wall}")


# ----------------------------------------------------------------------------- the bot

_T = TypeVar("_T")


def bot_overlay(api_port: int, db_dir: Path, **extra: Any) -> dict[str, Any]:
    """Config overlay of the tests: REST API on loopback, pricing that fills dry-run limit orders
    at once (the replay book moves only when a new candle closes), a short throttle."""
    overlay: dict[str, Any] = {
        "$schema": "https://schema.freqtrade.io/schema.json",
        "dry_run": True,
        "entry_pricing": {"price_side": "other", "use_order_book": True, "order_book_top": 1},
        "exit_pricing": {"price_side": "other", "use_order_book": True, "order_book_top": 1},
        "internals": {"process_throttle_secs": 2, "heartbeat_interval": 30},
        "api_server": {
            "enabled": True,
            "listen_ip_address": "127.0.0.1",
            "listen_port": api_port,
            "verbosity": "error",
            "enable_openapi": False,
            "jwt_secret_key": "liqsignals-test-jwt-secret-0123456789abcdef",
            "ws_token": "liqsignals-test-ws-token-0123456789abcdef",
            "CORS_origins": [],
            "username": API_USER,
            "password": API_PASSWORD,
        },
    }
    overlay.update(extra)
    return overlay


class BotError(AssertionError):
    pass


class Bot:
    """One ``freqtrade trade --dry-run`` process against a running :class:`ReplayExchange`."""

    def __init__(
        self,
        workdir: Path,
        exchange: ReplayExchange,
        strategy_dir: Path,
        *,
        strategy: str = "LiqSweepReversalPaper",
        config: dict[str, Any] | None = None,
        signal_log: Path | None = None,
        name: str = "bot",
    ) -> None:
        self.workdir = workdir
        self.exchange = exchange
        self.strategy_dir = strategy_dir
        self.strategy = strategy
        self.extra = config or {}
        self.signal_log = signal_log
        self.db = workdir / "tradesv3.dryrun.sqlite"
        self.userdir = workdir / "user_data"
        self.name = name
        self.runs = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.api_port = 0
        self.log_path = workdir / f"{name}.log"

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> Bot:
        assert self.proc is None, "already running"
        self.userdir.mkdir(parents=True, exist_ok=True)
        self.api_port = free_port()
        self.runs += 1
        self.log_path = self.workdir / f"{self.name}-{self.runs}.log"
        overlay = dict(self.exchange.freqtrade_overlay())
        overlay.update(bot_overlay(self.api_port, self.workdir, **self.extra))
        cfg = self.workdir / f"{self.name}-overlay.json"
        cfg.write_text(json.dumps(overlay, indent=2))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT / "strategies"), env.get("PYTHONPATH", "")) if p
        )
        env["PYTHONUNBUFFERED"] = "1"
        if self.signal_log is not None:
            env[SIGNAL_LOG_ENV] = str(self.signal_log)
        cmd = [
            sys.executable, "-m", "freqtrade", "trade",
            "-c", str(ROOT / "config" / "futures.json"), "-c", str(cfg),
            "--strategy-path", str(self.strategy_dir), "-s", self.strategy,
            "--dry-run", "--db-url", f"sqlite:///{self.db}", "--userdir", str(self.userdir),
        ]  # fmt: skip
        log = open(self.log_path, "wb")  # handed to the child
        try:
            self.proc = subprocess.Popen(
                cmd, cwd=self.workdir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        finally:
            log.close()
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 60.0) -> int | None:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL. Returns the exit code."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
        return proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-n:])

    # ---------------------------------------------------------------- REST API
    def api(self, path: str, *, method: str = "GET", body: Any = None, timeout: float = 10) -> Any:
        url = f"http://127.0.0.1:{self.api_port}/api/v1/{path.lstrip('/')}"
        data = None if body is None else json.dumps(body).encode()
        token = base64.b64encode(f"{API_USER}:{API_PASSWORD}".encode()).decode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", f"Basic {token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())

    def try_api(self, path: str, **kwargs: Any) -> Any:
        """``api()``, or ``None`` while the server is not up (yet)."""
        try:
            return self.api(path, **kwargs)
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return None

    def wait_for(
        self, what: str, probe: Callable[[], _T | None], timeout: float, every: float = 1.0
    ) -> _T:
        """Poll ``probe`` until it returns something truthy; fail with the log's tail."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive:
                raise BotError(f"bot exited while waiting for {what}:\n{self.tail()}")
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                raise BotError(
                    f"timed out after {timeout:.0f} s waiting for {what}:\n{self.tail()}"
                )
            time.sleep(every)

    def wait_ready(self, timeout: float = 180) -> None:
        self.wait_for("the REST API", lambda: self.try_api("ping"), timeout)

    def wait_analysed(self, pairs: tuple[str, ...], timeout: float = 180) -> None:
        """Until the strategy has built its engine for every pair, i.e. freqtrade has downloaded
        its first history and analysed it once (the API answers before that)."""

        def done() -> bool:
            text = self.log()
            return all(f"liqsignals: {p} engine built from" in text for p in pairs)

        self.wait_for("the first analysis of every pair", done, timeout)

    # ---------------------------------------------------------------- database
    def db_trades(self) -> list[dict[str, Any]]:
        """Every trade row of the bot's sqlite file (read-only connection)."""
        if not self.db.exists():
            return []
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute("SELECT * FROM trades ORDER BY id")]
        finally:
            con.close()


def read_signal_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def assert_clean_shutdown(rc: int | None, log: str) -> None:
    assert rc == 0, f"exit code {rc}\n{log[-3000:]}"
    lowered = log.lower()
    assert "shutdown" in lowered or "shutting down" in lowered, log[-3000:]
    assert "Traceback" not in log, log[log.find("Traceback") - 200 :][:4000]


# ----------------------------------------------------------------------------- scenarios


@dataclass
class PaperRun:
    """What one scenario saw: API and database snapshots, logs, exit codes, counters."""

    name: str
    workdir: Path
    signal: Signal
    offset_ms: int
    snapshots: dict[str, Any]
    exit_codes: list[int | None]
    logs: list[str]
    signal_log: list[dict[str, Any]]
    requests: dict[str, int]
    fault_counts: dict[str, int]
    timings: dict[str, float]
    error: str | None = None

    def served_to_data(self, served: pd.Timestamp) -> pd.Timestamp:
        """A date the bot saw (shifted history) on the stored data's time axis."""
        return served - pd.Timedelta(milliseconds=self.offset_ms)


def _open_trades(bot: Bot) -> list[dict[str, Any]] | None:
    status = bot.try_api("status")
    return status if status else None


def _closed_trades(bot: Bot) -> list[dict[str, Any]] | None:
    trades = bot.try_api("trades")
    closed = [t for t in (trades or {}).get("trades", []) if not t["is_open"]]
    return closed or None


def _pair_candles(bot: Bot, pair: str) -> dict[str, Any] | None:
    return bot.try_api(f"pair_candles?pair={pair}&timeframe={TIMEFRAME}", timeout=30)


def run_scenario(
    name: str,
    workdir: Path,
    signal: Signal,
    steps: Callable[[Bot, ReplayExchange, dict[str, Any], dict[str, float]], None],
    *,
    config: dict[str, Any] | None = None,
    faults: Any = None,
    datadir: Path | None = None,
    strategy: str = "LiqSweepReversalPaper",
) -> PaperRun:
    """Start the exchange (live clock on ``signal``, serving ``datadir``, by default the bundled
    sample) and a bot (``strategy``), run ``steps``, stop everything.

    ``steps(bot, exchange, snapshots, timings)`` drives the bot and fills ``snapshots``; it may
    stop and restart the bot. Whatever happens, the bot is stopped and the exchange closed;
    an exception ends up in ``PaperRun.error`` with the log's tail.
    """
    from liqsignals.replay.clock import LiveClock

    workdir.mkdir(parents=True, exist_ok=True)
    strategy_dir = write_strategy(workdir / "strategies")
    log_file = workdir / "signals.jsonl"
    clock = LiveClock(signal.start_ms, align_ms=HOUR_MS)
    snapshots: dict[str, Any] = {}
    timings: dict[str, float] = {}
    exit_codes: list[int | None] = []
    logs: list[str] = []
    error: str | None = None
    t0 = time.monotonic()
    exchange = ReplayExchange(
        sample.datadir() if datadir is None else datadir, clock=clock, faults=faults
    )
    bot = Bot(
        workdir, exchange, strategy_dir, strategy=strategy, config=config, signal_log=log_file,
        name=name,
    )  # fmt: skip
    original_stop = bot.stop

    def stop_and_record(grace: float = 60.0) -> int | None:
        log_before = bot.log_path
        rc = original_stop(grace)
        exit_codes.append(rc)
        logs.append(log_before.read_text(errors="replace") if log_before.exists() else "")
        return rc

    bot.stop = stop_and_record  # type: ignore[method-assign]
    try:
        exchange.start()
        bot.start()
        steps(bot, exchange, snapshots, timings)
    except Exception as exc:  # reported by the tests, with the log
        import traceback

        error = f"{traceback.format_exc()}\n--- bot log tail ---\n{bot.tail(80)}"
        del exc
    finally:
        if bot.proc is not None:
            bot.stop()
        exchange.stop()
    timings["total"] = time.monotonic() - t0
    return PaperRun(
        name=name,
        workdir=workdir,
        signal=signal,
        offset_ms=clock.offset_ms,
        snapshots=snapshots,
        exit_codes=exit_codes,
        logs=logs,
        signal_log=read_signal_log(log_file),
        requests=dict(exchange.api.requests),
        fault_counts=dict(exchange.api.faults.counts),
        timings=timings,
        error=error,
    )


#: e2e: trades close organically one minute after the entry (ROI step "1": -1), the rest of the
#: ROI table is the strategy's own
E2E_ROI = {"0": 0.12, "1": -1}
#: the fault mix of the faults scenario: request faults from the bot's first analysis on, candle
#: faults added once a trade is open (so the entry signal itself is not blurred by filler candles)
REQUEST_FAULTS = {
    "server_error": 0.05,
    "bad_gateway": 0.03,
    "rate_limit": 0.05,
    "retry_after_s": 1,
    "timeout": 0.02,
    "timeout_s": 12.0,  # ccxt gives up after 10 s
    "malformed": 0.03,
    # not on the order book: freqtrade 2026.9 stops (exit code 2) when the book it reads right
    # after an entry fills comes back empty, which is what ccxt makes of a truncated body
    "malformed_paths": ("/fapi/v1/klines", "/fapi/v1/markPriceKlines", "/fapi/v1/fundingRate"),
    "seed": 7,
}
CANDLE_FAULTS = {"missing_candle": 0.02, "duplicate_candle": 0.03}


def e2e_steps(bot: Bot, ex: ReplayExchange, snap: dict[str, Any], timing: dict[str, float]) -> None:
    t0 = time.monotonic()
    bot.wait_ready()
    timing["ready"] = time.monotonic() - t0
    snap["status_open"] = bot.wait_for("an open trade", lambda: _open_trades(bot), 300)
    snap["db_open"] = bot.db_trades()
    timing["entry"] = time.monotonic() - t0
    for pair in PAIRS:
        snap[f"candles:{pair}"] = bot.wait_for(
            f"{pair} candles", lambda p=pair: _pair_candles(bot, p), 60
        )
    snap["closed"] = bot.wait_for("a closed trade", lambda: _closed_trades(bot), 240)
    snap["trades"] = bot.api("trades")
    snap["status_after_close"] = bot.api("status")
    snap["db_closed"] = bot.db_trades()
    timing["exit"] = time.monotonic() - t0
    snap["alive_before_stop"] = bot.alive
    bot.stop()
    timing["stopped"] = time.monotonic() - t0


def faults_steps(
    bot: Bot, ex: ReplayExchange, snap: dict[str, Any], timing: dict[str, float]
) -> None:
    from liqsignals.replay.faults import FaultConfig

    t0 = time.monotonic()
    bot.wait_ready()
    # faults from the first analysis on: a request fault during freqtrade's first, paged history
    # download leaves it with a history that ends days early, which it does not repair
    bot.wait_analysed(PAIRS)
    ex.set_faults(FaultConfig(**REQUEST_FAULTS))
    timing["ready"] = time.monotonic() - t0
    snap["status_open"] = bot.wait_for("an open trade", lambda: _open_trades(bot), 300)
    timing["entry"] = time.monotonic() - t0
    ex.set_faults(FaultConfig(**REQUEST_FAULTS, **CANDLE_FAULTS))
    snap["polls_before_restart"] = _poll(bot, seconds=20)
    snap["status_before_stop"] = bot.api("status")
    bot.stop()
    timing["first_stop"] = time.monotonic() - t0
    snap["db_before_restart"] = bot.db_trades()
    bot.start()
    bot.wait_ready(timeout=240)
    timing["restarted"] = time.monotonic() - t0
    snap["status_after_restart"] = bot.wait_for(
        "open trades after the restart", lambda: _open_trades(bot), 120
    )
    snap["polls_after_restart"] = _poll(bot, seconds=20)
    snap["status_final"] = bot.api("status")
    snap["trades_final"] = bot.api("trades")
    bot.stop()
    snap["db_final"] = bot.db_trades()
    timing["stopped"] = time.monotonic() - t0


def _poll(bot: Bot, seconds: float) -> list[dict[str, Any]]:
    """Ask the REST API once a second: alive? answering? how many open trades per pair?"""
    polls = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = bot.try_api("status")
        polls.append(
            {
                "alive": bot.alive,
                "answered": status is not None,
                "open": [(t["trade_id"], t["pair"]) for t in status or []],
            }
        )
        time.sleep(1.0)
    return polls


_RUNS: dict[str, PaperRun] = {}


def paper_runs(root: Path) -> dict[str, PaperRun]:
    """The e2e and faults scenarios, run once per test session, side by side (the bots mostly
    wait for candles, so two at a time cost little more time than one)."""
    import threading

    if _RUNS:
        return _RUNS
    signal_ = pick_signal()
    from liqsignals.replay.faults import FaultConfig

    jobs = {
        "e2e": (e2e_steps, {"minimal_roi": E2E_ROI}, None),
        "faults": (faults_steps, {}, FaultConfig()),
    }
    results: dict[str, PaperRun] = {}

    def run(name: str) -> None:
        steps, config, faults = jobs[name]
        results[name] = run_scenario(
            name, root / name, signal_, steps, config=config, faults=faults
        )

    threads = [threading.Thread(target=run, args=(n,), name=f"paper-{n}") for n in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=900)
    _RUNS.update(results)
    return _RUNS


def backtest_entries(
    datadir: Path,
    strategy: str,
    first: pd.Timestamp,
    last: pd.Timestamp,
    tmp: Path,
    pairs: tuple[str, ...] = PAIRS,
) -> dict[tuple[str, str], set[pd.Timestamp]]:
    """``freqtrade backtesting --export signals`` of ``strategy`` on ``datadir`` from ``first``
    to two candles after ``last``, every signal a trade (``minimal_roi {"0": -1}``, no limit on
    open trades): per pair and side the signal candles' dates (a trade opens one candle later)."""
    from freqtrade.data.btanalysis import load_backtest_analysis_data, load_backtest_data

    from liqsignals.replay.offline import run_offline

    (tmp / "user_data").mkdir(parents=True, exist_ok=True)
    overlay = tmp / "every-signal-trades.json"
    overlay.write_text(
        json.dumps(
            {"minimal_roi": {"0": -1}, "max_open_trades": -1, "stake_amount": 100,
             "dry_run_wallet": 1_000_000}
        )
    )  # fmt: skip
    timerange = f"{first.value // 10**9}-{(last.value // 10**6 + 2 * TF_MS) // 1000}"
    cmd = [
        sys.executable, "-m", "freqtrade", "backtesting",
        "-c", str(ROOT / "config" / "futures.json"), "-c", "{overlay}", "-c", str(overlay),
        "--strategy-path", str(ROOT / "strategies"), "-s", strategy,
        "--datadir", str(datadir), "--userdir", str(tmp / "user_data"),
        "--timeframe", TIMEFRAME, "--timerange", timerange,
        "--export", "signals", "--cache", "none",
    ]  # fmt: skip
    result = run_offline(cmd, datadir, cwd=ROOT, echo=False, timeout=300)
    assert result.returncode == 0, result.output[-3000:]
    results = tmp / "user_data" / "backtest_results"
    trades = load_backtest_data(results)
    rejected = load_backtest_analysis_data(results, "rejected") or {}
    assert not any(len(df) for df in rejected.get(strategy, {}).values())
    out: dict[tuple[str, str], set[pd.Timestamp]] = {}
    for pair in pairs:
        mine = trades[trades["pair"] == pair] if len(trades) else trades
        for side, short in (("long", False), ("short", True)):
            opened = mine.loc[mine["is_short"] == short, "open_date"] if len(mine) else []
            out[(pair, side)] = {pd.Timestamp(d) - pd.Timedelta(milliseconds=TF_MS) for d in opened}
    return out


#: what asyncio logs when freqtrade closes its ccxt exchange while a candle request is still in
#: flight: the request's rate-limit task is collected unfinished. It happens only when SIGTERM
#: lands during a refresh, after freqtrade has begun its own shutdown, and is not a crash.
SHUTDOWN_RACE = "asyncio - ERROR - Task was destroyed but it is pending!\ntask: <Task pending"


def error_lines(log: str) -> list[int]:
    """Offsets in ``log`` of every line logged at ERROR level."""
    found, at = [], log.find(" ERROR ")
    while at >= 0:
        found.append(at)
        at = log.find(" ERROR ", at + 1)
    return found


def is_shutdown_race(log: str, at: int) -> bool:
    """The ERROR line at ``at`` is ccxt's rate-limit task collected after the bot began to stop."""
    start = log.rfind("\n", 0, at) + 1
    entry = log[start : log.find("\n", log.find("\n", at) + 1)]
    shutdown = log.find("worker found ... calling exit")
    return (
        0 <= shutdown < start
        and SHUTDOWN_RACE in entry
        and "Throttler.looper()" in entry
        and "ccxt/async_support/base/throttler.py" in entry
    )
