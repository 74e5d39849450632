"""``liqsignals download``, ``liqsignals import`` and ``liqsignals collect-liquidations``.

Flags follow freqtrade's habits: ``--exchange``, ``-p/--pairs``, ``-t/--timeframes``,
``--timerange``, ``--datadir`` (default ``user_data/data/<exchange>``) and optional, layered
``-c/--config`` files whose ``exchange.name``, ``exchange.pair_whitelist`` and ``datadir`` fill in
what the flags leave out.

Examples::

    liqsignals download open-interest --exchange binance -p BTC/USDT:USDT -t 5m 1h
    liqsignals download long-short --exchange bybit -p BTC/USDT:USDT -t 1h --timerange 20250101-
    liqsignals import binance-dump BTCUSDT-metrics-2025-05-*.zip --datadir user_data/data/binance
    liqsignals import liquidation-events captures/*.csv --datadir user_data/data/binance
    liqsignals collect-liquidations --exchange binance -p BTC/USDT:USDT ETH/USDT:USDT
    liqsignals collect -c config/futures.json -t 5m 1h      # keep every series current

Candles, mark candles and funding rates come from ``freqtrade download-data --trading-mode
futures``; it also fetches open interest with ``--candle-types open_interest``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from liqsignals.cli import options

_DOWNLOADS = {
    "open-interest": "open_interest",
    "funding": "funding_rate",
    "long-short": "long_short_ratio",
    "taker-volume": "taker_volume",
}


def register(subparsers: Any) -> None:
    """Add ``download``, ``import``, ``collect-liquidations`` and ``collect`` to the
    ``liqsignals`` parser."""
    d = subparsers.add_parser(
        "download",
        help="download open interest, funding, long/short ratio or taker volume history",
        description="Download market-data history through ccxt into a freqtrade datadir, "
        "continuing from the last stored row. Candles, mark and funding also come with "
        "`freqtrade download-data --trading-mode futures`.",
    )
    d.add_argument("what", choices=sorted(_DOWNLOADS), help="which series")
    _common(d, exchange=True)
    d.add_argument(
        "-t",
        "--timeframes",
        nargs="+",
        default=["5m"],
        help="periods to fetch (default: %(default)s; funding always uses 1h files)",
    )
    d.add_argument("--timerange", default=None, help="YYYYMMDD-[YYYYMMDD]; default: from last row")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.set_defaults(func=_cmd_download)

    i = subparsers.add_parser(
        "import",
        help="import Binance dumps, liquidation event captures or liquidation totals",
        description="Import files into a freqtrade datadir: Binance public data dumps "
        "(klines, metrics, liquidationSnapshot; .zip or .csv), headerless forceOrder CSV "
        "captures, or CSV totals with date,long_liquidation_usd,short_liquidation_usd.",
    )
    i.add_argument(
        "kind", choices=["binance-dump", "liquidation-events", "liquidation-totals"], help="format"
    )
    i.add_argument("files", nargs="+", type=Path, help="files to import")
    _common(i, exchange=True)
    i.add_argument(
        "-t",
        "--timeframe",
        default=None,
        help="liquidation-totals: bar length (inferred from the dates when omitted)",
    )
    i.set_defaults(func=_cmd_import)

    c = subparsers.add_parser(
        "collect-liquidations",
        help="record live liquidations from the exchange websocket (ccxt.pro)",
        description="Record realised liquidations with ccxt.pro watch_liquidations into "
        "<datadir>/futures/liqsignals/<PAIR>-liquidation_events.feather until Ctrl-C or "
        "SIGTERM, all pairs in one process. Reconnects store no event twice; the file is "
        "rewritten atomically on every flush, so a kill loses at most the events since the "
        "last flush (--flush-seconds).",
    )
    _common(c, exchange=True)
    c.add_argument("--max-events", type=int, default=None, help="stop after N new events")
    c.add_argument("--flush-every", type=int, default=100, help="write every N events")
    c.add_argument(
        "--flush-seconds",
        type=_positive,
        default=30.0,
        help="write at least this often, events or not (default %(default)s)",
    )
    c.set_defaults(func=_cmd_collect)

    k = subparsers.add_parser(
        "collect",
        help="keep open interest, long/short, taker volume, funding and realised "
        "liquidations current (long-running; the way to build history)",
        description="One long-running process (SIGTERM stops it cleanly) that keeps the "
        "configured pairs' market data current: every --interval seconds open interest, "
        "long/short ratio, taker volume and funding are brought up to date (after downtime "
        "every gap the exchange still serves is filled), and realised liquidations stream in "
        "over the websocket. One status line per round on stderr.",
    )
    _common(k, exchange=False)
    k.add_argument(
        "--exchange",
        nargs="+",
        default=None,
        help="ccxt exchange id(s) (default: the config's exchange.name); several need no "
        "--datadir (each gets user_data/data/<exchange>)",
    )
    k.add_argument(
        "-t",
        "--timeframes",
        nargs="+",
        default=["5m"],
        help="periods of open interest, long/short and taker volume (default: %(default)s)",
    )
    k.add_argument(
        "--series",
        nargs="+",
        default=None,
        choices=sorted(_SERIES_CHOICES),
        help="what to keep current (default: all)",
    )
    k.add_argument(
        "--interval",
        type=_positive,
        default=60.0,
        help="seconds between REST rounds (default %(default)s)",
    )
    k.add_argument(
        "--flush-seconds",
        type=_positive,
        default=30.0,
        help="liquidations: write at least this often (default %(default)s)",
    )
    k.add_argument("--rounds", type=int, default=None, help="stop after N rounds (default: never)")
    k.set_defaults(func=_cmd_collect_all)


_SERIES_CHOICES = ("open-interest", "long-short", "taker-volume", "funding", "liquidations")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be positive")
    return value


def _until_signal(make: Any) -> Any:
    """Run the coroutine ``make(stop)`` with SIGTERM and SIGINT setting ``stop`` (so it ends
    cleanly: buffers flushed, files complete)."""
    import signal

    async def main() -> Any:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            return await make(stop)
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    return asyncio.run(main())


def _common(p: argparse.ArgumentParser, *, exchange: bool) -> None:
    """The shared ``-c``/``-p`` flags (:mod:`liqsignals.cli.options`), ``--exchange`` and a
    ``--datadir`` whose default is freqtrade's ``user_data/data/<exchange>`` (these commands
    write, so never the bundled sample)."""
    options.add_config_option(p)
    if exchange:
        p.add_argument("--exchange", default=None, help="ccxt exchange id (binance, bybit, okx)")
    options.add_pairs_option(p)
    p.add_argument(
        "--datadir",
        "--data-dir",
        dest="datadir",
        type=Path,
        default=None,
        help="exchange data folder (default: user_data/data/<exchange>)",
    )


def _load_config(paths: list[str]) -> dict[str, Any]:
    """The ``-c`` files layered (later ones win), read by the shared options layer."""
    return options.load_config(paths)


def _resolve(args: argparse.Namespace, *, need_pairs: bool = True) -> tuple[dict, str, list, Path]:
    config = _load_config(args.config)
    exchange = getattr(args, "exchange", None) or config.get("exchange", {}).get("name")
    if not exchange:
        raise options.CLIError("no exchange: pass --exchange or a config with exchange.name")
    pairs = (
        options.resolve_pairs(args.pairs, config)
        if need_pairs
        else list(args.pairs or config.get("exchange", {}).get("pair_whitelist", []))
    )
    from liqsignals.data.collect import venue_datadir

    return config, exchange, pairs, venue_datadir(exchange, config, args.datadir)


def _cmd_download(args: argparse.Namespace) -> int:
    from liqsignals.data.download import download, make_exchange

    config, name, pairs, datadir = _resolve(args)
    kind = _DOWNLOADS[args.what]
    timerange = options.parse_timerange(args.timerange) if args.timerange else None
    exchange = make_exchange(name, config)
    timeframes = ["1h"] if kind == "funding_rate" else args.timeframes
    for pair in pairs:
        for tf in timeframes:
            result = download(
                exchange,
                pair,
                tf,
                datadir,
                kind,
                timerange=timerange,
                progress=not args.no_progress,
            )
            span = f"{result.first} .. {result.last}" if result.first is not None else "empty"
            print(f"{pair} {tf} {kind}: {result.added} new rows, stored {span} -> {result.path}")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from liqsignals.data.liquidations import (
        import_liquidation_totals,
        read_liquidation_events_csv,
        save_liquidation_events,
    )

    _, name, pairs, datadir = _resolve(args, need_pairs=False)
    missing = [str(f) for f in args.files if not f.exists()]
    if missing:
        raise options.CLIError(f"no such file(s): {', '.join(missing)}")
    if args.kind == "binance-dump":
        from liqsignals.data.dumps import import_binance_dump

        if pairs and len(pairs) > 1:
            raise options.CLIError(
                "binance-dump takes at most one --pairs (it overrides the file names)"
            )
        for path, added in import_binance_dump(
            args.files, datadir, pair=pairs[0] if pairs else None
        ):
            print(f"{path}: {added} new rows")
    elif args.kind == "liquidation-events":
        import pandas as pd

        events = pd.concat([read_liquidation_events_csv(f, exchange=name) for f in args.files])
        symbols = sorted(set(events["symbol"]))
        for pair in pairs or symbols:
            path, added = save_liquidation_events(
                events.loc[events["symbol"] == pair], datadir, pair
            )
            print(f"{path}: {added} new events")
    else:
        if not pairs or len(pairs) != 1:
            raise options.CLIError("liquidation-totals needs exactly one --pairs")
        for f in args.files:
            print(import_liquidation_totals(f, datadir, pairs[0], args.timeframe))
    return 0


def _cmd_collect(args: argparse.Namespace) -> int:
    from liqsignals.data.download import make_exchange
    from liqsignals.data.liquidations import collect_liquidations

    config, name, pairs, datadir = _resolve(args)
    exchange = make_exchange(name, config, pro=True)

    def show(event: dict[str, Any]) -> None:
        print(
            f"{event['date']} {event['symbol']} {event['side']} "
            f"{event['amount']:g} @ {event['price']:g} = {event['value']:.0f}",
            file=sys.stderr,
        )

    stored = _until_signal(
        lambda stop: collect_liquidations(
            exchange,
            pairs,
            datadir,
            flush_every=args.flush_every,
            flush_seconds=args.flush_seconds,
            max_events=args.max_events,
            on_event=show,
            stop=stop,
        )
    )
    print(f"{stored} new events stored under {datadir}", flush=True)
    return 0


def _cmd_collect_all(args: argparse.Namespace) -> int:
    from liqsignals.data.collect import SERIES, VenueSpec, run_collect, venue_datadir

    config = _load_config(args.config)
    names = args.exchange or (
        [config["exchange"]["name"]] if config.get("exchange", {}).get("name") else []
    )
    if not names:
        raise options.CLIError("no exchange: pass --exchange or a config with exchange.name")
    if len(names) > 1 and args.datadir is not None:
        raise options.CLIError(
            "--datadir names one venue's folder; with several --exchange leave it out"
        )
    pairs = options.resolve_pairs(args.pairs, config)
    venues = [
        VenueSpec(name, venue_datadir(name, config, args.datadir), tuple(pairs), config)
        for name in names
    ]
    for venue in venues:
        print(f"collect: {venue.exchange} {', '.join(pairs)} -> {venue.datadir}", file=sys.stderr)
    state = _until_signal(
        lambda stop: run_collect(
            venues,
            series=tuple(args.series or SERIES),
            timeframes=tuple(args.timeframes),
            interval=args.interval,
            flush_seconds=args.flush_seconds,
            rounds=args.rounds,
            stop=stop,
        )
    )
    print(f"collect: stopped after {state.rounds} round(s)", file=sys.stderr, flush=True)
    return 0
