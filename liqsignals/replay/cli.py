"""``liqsignals replay`` and ``liqsignals offline``: the replay exchange from the command line.

``liqsignals replay --datadir DIR [--host 127.0.0.1] [--port 8701]``
    Serve until Ctrl-C or SIGTERM.
``liqsignals replay --print-config [--port 8701]``
    Print the freqtrade config overlay for that port (what ``config/replay.json`` holds for the
    default port) and exit.
``liqsignals offline [--datadir DIR] -- freqtrade backtesting -c config/futures.json -c {overlay} ...``
    Run one command with the exchange alive on a free port; ``{overlay}``, ``{port}`` and
    ``{url}`` in the command are replaced. Exits with the command's exit code.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from liqsignals.cli import options
from liqsignals.replay.config import DEFAULT_HOST, DEFAULT_PORT


def _port(text: str) -> int:
    """argparse type of ``--port``: an integer from 0 to 65535 (argparse reports anything else
    as a usage error, exit code 2)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is out of range (0-65535; 0: a free port)")
    return port


def register(subparsers: Any) -> None:
    """Add the ``replay`` and ``offline`` commands to the ``liqsignals`` parser."""
    p = subparsers.add_parser(
        "replay",
        help="serve a freqtrade datadir as a Binance USDT-M futures exchange on loopback",
        description="Serve a freqtrade datadir as a Binance USDT-M futures REST exchange on "
        "loopback, for freqtrade and ccxt to use offline (layer config/replay.json).",
    )
    _add_exchange_options(p)
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="address or name to listen on; it must resolve to loopback addresses only",
    )
    p.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help="port, 0-65535 (0: a free one; default %(default)s)",
    )
    p.add_argument(
        "--ws-backlog",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="liquidation websocket: a new subscription first gets the recorded events of this "
        "many stored seconds before it (default 0, as on Binance; models a reconnect's "
        "duplicates)",
    )
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the freqtrade config overlay for --host/--port and exit",
    )
    p.set_defaults(func=_cmd_replay)

    o = subparsers.add_parser(
        "offline",
        help="run a command (e.g. freqtrade) with the replay exchange alive; "
        "{overlay} in it becomes the overlay config's path",
        description="Start the replay exchange on a free loopback port, write its freqtrade "
        "config overlay to a temporary file, run COMMAND with {overlay}, {port} and {url} "
        "replaced, stop the exchange and exit with COMMAND's exit code.",
    )
    _add_exchange_options(o)
    o.add_argument("--timeout", type=float, default=None, help="kill COMMAND after SECONDS")
    o.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    o.set_defaults(func=_cmd_offline)


def _add_exchange_options(p: argparse.ArgumentParser) -> None:
    # the shared options layer: -c (its datadir is served when --datadir is left out) and
    # --datadir (default: the config's datadir, else the bundled sample data)
    options.add_config_option(p)
    options.add_datadir_option(p)
    p.add_argument(
        "--at",
        default=None,
        help="historical mode: the instant the exchange calls now (ISO date/time or epoch ms; "
        "default: end of the data)",
    )
    p.add_argument(
        "--live",
        action="store_true",
        help="live mode: replay history shifted so that --start plays back as the current "
        "wall-clock time; candles appear as time passes",
    )
    p.add_argument(
        "--start",
        default=None,
        help="live mode: stored moment that maps to now (default: one week before the data ends)",
    )
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="live mode: time acceleration (default 1; freqtrade needs 1, it compares candle "
        "dates with its own clock)",
    )
    p.add_argument(
        "--align",
        default="1w",
        metavar="STEP",
        help="live mode: shift history by a whole number of STEP (1w keeps weekdays and funding "
        "times, 8h funding times, 1h candles up to 1h; default %(default)s)",
    )
    p.add_argument(
        "--faults",
        default=None,
        metavar="SPEC",
        help="fault injection, e.g. 'server_error=0.02,rate_limit=0.01,retry_after_s=2,seed=1' "
        "(see liqsignals.replay.faults)",
    )


def _parse_ms(text: str) -> int:
    if text.isdigit():
        return int(text)
    import pandas as pd

    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise options.CLIError(
            f"cannot read {text!r} as a date/time or epoch milliseconds"
        ) from None
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.value // 1_000_000)


def _parse_step(text: str) -> int:
    from liqsignals.replay.store import INTERVALS

    step = INTERVALS.get(text, 0)
    if not step:
        known = ", ".join(k for k, v in INTERVALS.items() if v)
        raise options.CLIError(f"--align {text!r}: expected one of {known}")
    return step


def _exchange_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    from liqsignals.replay.clock import WEEK_MS, HistoricalClock, LiveClock
    from liqsignals.replay.faults import FaultConfig
    from liqsignals.replay.store import DataStore

    datadir, _ = options.resolve_datadir(args.datadir, options.load_config(args.config))
    store = DataStore(datadir)
    if args.live and args.at:
        raise options.CLIError("--at (historical) and --live exclude each other")
    clock: Any
    if args.live:
        start = _parse_ms(args.start) if args.start else store.last_close_ms() - WEEK_MS
        clock = LiveClock(start, speed=args.speed, align_ms=_parse_step(args.align))
    else:
        clock = HistoricalClock(_parse_ms(args.at) if args.at else store.last_close_ms())
    faults = FaultConfig.parse(args.faults) if args.faults else None
    return {"datadir": datadir, "clock": clock, "faults": faults}


def _cmd_replay(args: argparse.Namespace) -> int:
    from liqsignals.replay.server import resolve_bind_address

    try:  # the resolved addresses must all be loopback (a name such as 127.example is not)
        resolve_bind_address(args.host, args.port)
    except ValueError as exc:
        raise options.CLIError(f"--host {args.host}: {exc}") from None
    if args.print_config:
        if args.port == 0:
            raise options.CLIError("--print-config needs the port the server will use, not 0")
        from liqsignals.replay.config import freqtrade_overlay

        print(json.dumps(freqtrade_overlay(args.port, args.host), indent=2))
        return 0

    from liqsignals.replay.server import ReplayExchange

    kwargs = _exchange_kwargs(args)
    if not args.ws_backlog >= 0:
        raise options.CLIError(f"--ws-backlog {args.ws_backlog}: must not be negative")
    exchange = ReplayExchange(
        host=args.host, port=args.port, ws_backlog_ms=int(args.ws_backlog * 1000), **kwargs
    )
    try:
        exchange.start()
    except OSError as exc:
        raise options.CLIError(f"cannot listen on {args.host}:{args.port}: {exc}") from None
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    markets = ", ".join(m.pair for m in exchange.store.markets.values())
    print(
        f"replay exchange on {exchange.url} (liquidation streams on {exchange.ws_url}/ws) "
        f"serving {exchange.store.datadir} ({markets}); "
        f"clock {exchange.clock!r}. Ctrl-C to stop.",
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        exchange.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("replay exchange stopped", flush=True)
    return 0


def _cmd_offline(args: argparse.Namespace) -> int:
    from liqsignals.replay.offline import run_offline

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise options.CLIError("no command given (liqsignals offline -- freqtrade ...)")
    result = run_offline(command, timeout=args.timeout, **_exchange_kwargs(args))
    if result.timed_out:
        print(f"liqsignals offline: {command[0]} timed out", file=sys.stderr)
        return 124
    return result.returncode
