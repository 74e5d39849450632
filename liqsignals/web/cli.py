"""``liqsignals serve``: the web view of the liquidation heatmap and map.

Loopback (127.0.0.1) by default. ``--token T`` makes every request carry the token (open the
page once as ``http://HOST:PORT/?token=T``; the page keeps it in a cookie); a ``--host`` other
than a loopback address is refused unless ``--token`` is given.

Live mode: ``--live-url URL`` polls a Binance-compatible exchange (the replay exchange,
``liqsignals replay --live``) through ccxt every ``--poll`` seconds (default: a quarter of the
shortest candle) for every pair/timeframe in the first datadir and appends the closed candles to
that datadir; the page asks every half ``--poll`` (0.5 to 30 s) whether a new candle arrived and
redraws without a reload, so a closed candle shows within about 0.75 ``--poll`` plus the
computation: well within one candle at the default.
Without ``--live-url`` the server still notices a datadir that another command keeps current
(``liqsignals download ...``, ``freqtrade download-data``) at the page's next poll.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["LivePoller", "add_arguments", "check_host", "main", "register"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``serve``."""
    parser.add_argument(
        "--datadir",
        action="append",
        default=None,
        help="freqtrade datadir (repeat for several exchanges; the exchange is the folder name; "
        "default: the bundled sample data)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8050, help="port (default 8050; 0: any free)")
    parser.add_argument("--token", default=None, help="require this token on every request")
    parser.add_argument("--trades", default=None, help="freqtrade backtest result to overlay")
    parser.add_argument(
        "--live-url",
        default=None,
        help="poll this Binance-compatible REST root through ccxt (e.g. the replay exchange "
        "http://127.0.0.1:8701) and append new candles to the first datadir",
    )
    parser.add_argument(
        "--poll",
        type=float,
        default=None,
        help="seconds between polls of the exchange (default: 30 s, or a quarter of the shortest "
        "candle in live mode); the page polls the server twice as often",
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False
        return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def check_host(host: str, token: str | None) -> None:
    """Refuse a non-loopback ``host`` without a token (``ValueError`` naming ``--token``)."""
    if not _is_loopback(host) and not token:
        raise ValueError(
            f"--host {host} is not a loopback address: refusing to serve without --token "
            f"(pass --token SECRET, or bind 127.0.0.1)"
        )


class LivePoller:
    """Thread: every ``interval`` seconds fetch closed candles through ccxt and append them."""

    def __init__(self, url: str, datadir: Path, interval: float) -> None:
        import ccxt

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--live-url must be http://HOST:PORT, got {url!r}")
        from liqsignals.replay.config import ccxt_config

        conf = ccxt_config(parts.port or 80, parts.hostname)
        self.exchange = ccxt.binanceusdm({**conf, "enableRateLimit": False, "timeout": 10_000})
        self.datadir = datadir
        self.interval = interval
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="liqsignals-live", daemon=True)
        self.errors = 0

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()

    def poll_once(self) -> int:
        """One round over the datadir's futures files; returns the candles added."""
        import pandas as pd

        from liqsignals.data.datadir import append_frame, data_path, list_data, load_candles
        from liqsignals.model import timeframe_to_timedelta

        added = 0
        for pair, tf, kind in list_data(self.datadir):
            if kind != "futures":
                continue
            old = load_candles(self.datadir, pair, tf)
            since = (
                int(pd.Timestamp(old["date"].iloc[-1]).value // 1_000_000) + 1 if len(old) else None
            )
            rows = self.exchange.fetch_ohlcv(pair, tf, since=since, limit=1000)
            step = int(timeframe_to_timedelta(tf).value // 1_000_000)
            now = int(self.exchange.fetch_time())
            rows = [r for r in rows if r[0] + step <= now]  # closed candles only
            if not rows:
                continue
            df = pd.DataFrame(rows, columns=["date", "open", "high", "low", "close", "volume"])
            df["date"] = pd.to_datetime(df["date"], unit="ms", utc=True)
            _, n = append_frame(df, data_path(self.datadir, pair, tf))
            added += n
        return added

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # network trouble: keep serving, try again next round
                self.errors += 1
                print(f"liqsignals serve: live poll failed: {exc}", file=sys.stderr)
            self.stop_event.wait(self.interval)


def _warm_up() -> None:
    """Compile the kernels before the first request (numba): the same code paths on a small
    sample, so the first page load does not pay for compilation."""
    import pandas as pd

    from liqsignals import sample
    from liqsignals.model import LiquidationModel
    from liqsignals.web.app import heatmap_payload, map_payload

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = sample.load_candles("BTC/USDT:USDT", "1h").tail(400)
        model = LiquidationModel(window="1d")
        start = pd.Timestamp(df["date"].iloc[-100])
        view = {"start": start, "end": None, "width": 40, "height": 30}
        heatmap_payload([df, df], model, "combined", view)
        map_payload([df], model, None)


def _run(args: argparse.Namespace) -> int:
    from liqsignals.web.app import WebConfig, create_app

    check_host(args.host, args.token)
    if args.datadir:
        dirs = [Path(d) for d in args.datadir]
    else:
        from liqsignals import sample

        dirs = [sample.datadir()]
    datadirs: dict[str, Path] = {}
    for d in dirs:
        if not d.is_dir():
            raise ValueError(f"--datadir {d} does not exist")
        name = d.resolve().name
        while name in datadirs:
            name += "_"
        datadirs[name] = d
    poll = args.poll
    poller = None
    if args.live_url:
        if poll is None:
            from liqsignals.data.datadir import list_data
            from liqsignals.model import timeframe_to_timedelta

            tfs = [timeframe_to_timedelta(tf) for _, tf, _ in list_data(dirs[0])]
            poll = min(tfs).total_seconds() / 4 if tfs else 15.0
        poller = LivePoller(args.live_url, dirs[0], poll)
    poll = 30.0 if poll is None else poll
    if poll <= 0:
        raise ValueError(f"--poll must be > 0, got {poll}")
    trades = Path(args.trades) if args.trades else None
    if trades is not None:
        if not trades.exists():
            raise ValueError(f"--trades {trades} does not exist")
        from liqsignals.plotting import load_trades  # the plot extra; checked at start

        load_trades(trades)  # a file that is not a backtest result stops here, not per request
    page_poll = min(max(poll / 2, 0.5), 30.0)
    cfg = WebConfig(datadirs=datadirs, token=args.token, trades=trades, poll_s=page_poll)
    cfg.live = poller is not None
    app = create_app(cfg)
    _warm_up()
    import uvicorn

    if poller is not None:
        poller.start()
    shown = f"[{args.host}]" if ":" in args.host else args.host
    suffix = f"/?token={args.token}" if args.token else "/"
    print(f"liqsignals serve: http://{shown}:{args.port}{suffix}", file=sys.stderr, flush=True)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    finally:
        if poller is not None:
            poller.stop()
    return 0


def register(subparsers: Any) -> None:
    """Add ``serve`` to the ``liqsignals`` parser (the dispatcher's hook)."""
    p = subparsers.add_parser(
        "serve",
        help="web view of the liquidation heatmap and map (loopback by default)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    p.set_defaults(func=_run)


def main(argv: Sequence[str] | None = None) -> int:
    """``liqsignals serve`` as a program; bad input: a message on stderr and status 2."""
    parser = argparse.ArgumentParser(prog="liqsignals serve", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        print(f"liqsignals serve: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
