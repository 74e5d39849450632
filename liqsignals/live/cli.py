"""``liqsignals poll``: keep other venues' candles current (see :mod:`liqsignals.live.poller`).

liqsignals poll --venue bybit okx -p BTC/USDT:USDT -t 15m      # user_data/data/<venue>
liqsignals poll --venue bybit --data-root user_data/data --interval 20 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from liqsignals.cli import options

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``poll`` to the ``liqsignals`` parser."""
    p = subparsers.add_parser(
        "poll",
        help="keep other venues' candles current in freqtrade datadirs (long-running; for "
        "strategies that combine several venues)",
        description="One long-running process (SIGTERM stops it cleanly): every --interval "
        "seconds each venue's closed candles missing from <data-root>/<venue>/futures/ are "
        "fetched (gaps too) and merged atomically under a file lock. One status line per round "
        "on stderr.",
    )
    options.add_config_option(p)
    p.add_argument(
        "--venue",
        nargs="+",
        required=True,
        metavar="NAME[=CCXT_ID]",
        help="venues to poll, e.g. bybit okx (NAME is the datadir's folder; CCXT_ID defaults "
        "to NAME)",
    )
    p.add_argument(
        "--venue-config",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a freqtrade-style JSON config for one venue whose exchange.ccxt_config applies "
        "(e.g. other URLs); repeat per venue",
    )
    options.add_pairs_option(p)
    p.add_argument("-t", "--timeframes", nargs="+", default=["15m"], help="default: %(default)s")
    p.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="folder holding one datadir per venue (default: the config's user_data_dir/data, "
        "else user_data/data)",
    )
    p.add_argument("--interval", type=float, default=30.0, help="seconds between rounds")
    p.add_argument("--rounds", type=int, default=None, help="stop after this many rounds")
    p.add_argument(
        "--history-days", type=float, default=30.0, help="how far back a new file starts"
    )
    p.add_argument("--json", action="store_true", help="print the final status as JSON")
    p.set_defaults(func=_cmd_poll)


def _venues(args: argparse.Namespace, config: dict[str, Any]) -> list[Any]:
    from liqsignals.live.poller import PollVenue

    pairs = tuple(options.resolve_pairs(args.pairs, config))
    root = args.data_root or Path(str(config.get("user_data_dir", "user_data"))) / "data"
    extra: dict[str, dict[str, Any]] = {}
    for item in args.venue_config:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise options.CLIError(f"--venue-config wants NAME=PATH, got {item!r}")
        extra[name] = options.load_config([path])
    venues = []
    for item in args.venue:
        name, _, ccxt_id = item.partition("=")
        if not name:
            raise options.CLIError(f"--venue wants NAME[=CCXT_ID], got {item!r}")
        venues.append(PollVenue(name, Path(root) / name, pairs, ccxt_id, extra.pop(name, {})))
    if extra:
        raise options.CLIError(f"--venue-config names venue(s) {sorted(extra)} not in --venue")
    return venues


def _cmd_poll(args: argparse.Namespace) -> int:
    import pandas as pd

    from liqsignals.live.poller import run_poller

    if args.rounds is not None and args.rounds < 1:
        raise options.CLIError(f"--rounds must be >= 1, got {args.rounds}")
    if not args.history_days > 0:
        raise options.CLIError(f"--history-days must be positive, got {args.history_days}")
    config = options.load_config(args.config)
    venues = _venues(args, config)
    for v in venues:
        print(f"poll: {v.name} ({v.ccxt_id}) {', '.join(v.pairs)} -> {v.datadir}", file=sys.stderr)
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        state = run_poller(
            venues,
            timeframes=tuple(args.timeframes),
            interval=args.interval,
            rounds=args.rounds,
            stop=stop,
            history=pd.Timedelta(days=args.history_days),
        )
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if args.json:
        print(json.dumps({"venues": [v.to_dict() for v in venues], **state.to_dict()}, indent=2))
    return 0
