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

Candles, mark candles and funding rates come from ``freqtrade download-data --trading-mode
futures``; it also fetches open interest with ``--candle-types open_interest``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

_DOWNLOADS = {
    "open-interest": "open_interest",
    "funding": "funding_rate",
    "long-short": "long_short_ratio",
    "taker-volume": "taker_volume",
}


def register(subparsers: Any) -> None:
    """Add ``download``, ``import`` and ``collect-liquidations`` to the ``liqsignals`` parser."""
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
        "<datadir>/futures/liqsignals/<PAIR>-liquidation_events.feather until Ctrl-C. "
        "Reconnects keep neither gaps in the file nor duplicates.",
    )
    _common(c, exchange=True)
    c.add_argument("--max-events", type=int, default=None, help="stop after N new events")
    c.add_argument("--flush-every", type=int, default=100, help="write every N events")
    c.set_defaults(func=_cmd_collect)


def _common(p: argparse.ArgumentParser, *, exchange: bool) -> None:
    p.add_argument(
        "-c",
        "--config",
        action="append",
        default=[],
        metavar="PATH",
        help="freqtrade config file(s), layered; supply exchange, pairs and datadir",
    )
    if exchange:
        p.add_argument("--exchange", default=None, help="ccxt exchange id (binance, bybit, okx)")
    p.add_argument("-p", "--pairs", nargs="+", default=None, help="pairs, e.g. BTC/USDT:USDT")
    p.add_argument(
        "--datadir",
        "--data-dir",
        dest="datadir",
        type=Path,
        default=None,
        help="exchange data folder (default: user_data/data/<exchange>)",
    )


def _load_config(paths: list[str]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if not paths:
        return config
    from freqtrade.configuration.load_config import load_config_file
    from freqtrade.misc import deep_merge_dicts

    for path in paths:
        config = deep_merge_dicts(load_config_file(path), config)
    return config


def _resolve(args: argparse.Namespace, *, need_pairs: bool = True) -> tuple[dict, str, list, Path]:
    config = _load_config(args.config)
    exchange = getattr(args, "exchange", None) or config.get("exchange", {}).get("name")
    if not exchange:
        raise ValueError("no exchange: pass --exchange or a config with exchange.name")
    pairs = args.pairs or list(config.get("exchange", {}).get("pair_whitelist", []))
    if need_pairs and not pairs:
        raise ValueError("no pairs: pass -p/--pairs or a config with exchange.pair_whitelist")
    datadir = args.datadir or (
        Path(config["datadir"])
        if config.get("datadir")
        else Path(config.get("user_data_dir", "user_data")) / "data" / exchange
    )
    return config, exchange, pairs, datadir


def _cmd_download(args: argparse.Namespace) -> int:
    from liqsignals.data.download import download, make_exchange

    config, name, pairs, datadir = _resolve(args)
    kind = _DOWNLOADS[args.what]
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
                timerange=args.timerange,
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
        raise FileNotFoundError(f"no such file(s): {', '.join(missing)}")
    if args.kind == "binance-dump":
        from liqsignals.data.dumps import import_binance_dump

        if pairs and len(pairs) > 1:
            raise ValueError("binance-dump takes at most one --pairs (it overrides the file names)")
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
            raise ValueError("liquidation-totals needs exactly one --pairs")
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

    stored = asyncio.run(
        collect_liquidations(
            exchange,
            pairs,
            datadir,
            flush_every=args.flush_every,
            max_events=args.max_events,
            on_event=show,
        )
    )
    print(f"{stored} new events stored under {datadir}")
    return 0
