"""``liqsignals heatmap`` and ``liqsignals map``: liquidation pictures from a freqtrade datadir.

Flags follow freqtrade's habits and are the shared ones of :mod:`liqsignals.cli.options`:
``-c/--config`` (optional, layered: later files override earlier ones; ``datadir``,
``exchange.name``, ``exchange.pair_whitelist`` and ``timeframe`` fill in what the flags leave out),
``--datadir``, ``--exchange``, ``-p/--pairs``, ``-i/-t/--timeframe``, ``--timerange``. Without
``--datadir`` and without a ``datadir`` in a config the bundled sample data (Binance, BTC and ETH)
is used.

Several exchanges: ``--exchange binance,bybit`` computes the book per exchange and sums the
pictures on a common price grid (same columns, same price rows; the candles drawn are the first
exchange's). Each exchange reads its own datadir: give ``--datadir`` once per exchange, in the same
order, or once for the first exchange, the others then being its siblings
(``user_data/data/binance`` -> ``user_data/data/bybit``), as freqtrade lays them out.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from liqsignals.cli import options

_HEATMAP_EPILOG = """\
examples:
  liqsignals heatmap -p BTC/USDT:USDT -t 1h --timerange 20250301-20250531 --out heatmap.png
  liqsignals heatmap --datadir user_data/data/binance -p BTC/USDT:USDT -t 15m \\
      --window 2w --mode long --colors cividis --out btc_long.html
  liqsignals heatmap -c config.json -p ETH/USDT:USDT -t 15m --timerange 20250101-20250201 \\
      --trades user_data/backtest_results --out eth_trades.png
  liqsignals heatmap --exchange binance,bybit --datadir user_data/data/binance \\
      -p BTC/USDT:USDT -t 1h --out btc_two_exchanges.png
  liqsignals heatmap -p BTC/USDT:USDT -t 1h --out heatmap.html --html plotly

An .html file is the page of `liqsignals serve` in one self-contained file: the web view's own
renderer and the data inline (no server, no CDN), the map at the last column beside it, exact
notional on hover. --html plotly writes the older plotly figure instead.

The engine starts one --window before the first column, so keep that much history in the data.
Columns are thinned so a picture has at most --max-columns of them.
"""

_MAP_EPILOG = """\
examples:
  liqsignals map -p BTC/USDT:USDT -t 15m --out map.png
  liqsignals map -p BTC/USDT:USDT -t 15m --at "2025-05-20 12:00" --window 1w --out map.html
  liqsignals map --exchange binance,bybit --datadir user_data/data/binance \\
      -p BTC/USDT:USDT -t 1h --range 10 --out map.png
"""


def register(subparsers: Any) -> None:
    """Add ``heatmap`` and ``map`` to the ``liqsignals`` parser."""
    h = subparsers.add_parser(
        "heatmap",
        help="liquidation heatmap picture (time x price), PNG or the web view as one HTML file",
        description="Estimate the liquidation book over time from candles and draw it as a\n"
        "heatmap (price x time, colour = estimated liquidation notional), with the\n"
        "candles and optionally the trades of a freqtrade backtest on top.",
        epilog=_HEATMAP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(h)
    h.add_argument(
        "--timerange",
        default=None,
        help="columns to draw, YYYYMMDD-[YYYYMMDD] (default: from one window after the first "
        "candle to the last)",
    )
    h.add_argument(
        "--mode",
        choices=["long", "short", "combined"],
        default="combined",
        help="which positions (default: %(default)s)",
    )
    h.add_argument(
        "--colors",
        choices=["default", "cividis", "viridis", "magma"],
        default="default",
        help="colour scale; cividis/viridis/magma are colour-blind safe (default: %(default)s)",
    )
    h.add_argument(
        "--scale",
        choices=["sqrt", "log", "linear"],
        default="sqrt",
        help="colour intensity scaling (default: %(default)s)",
    )
    h.add_argument(
        "--clip",
        type=float,
        default=99.5,
        metavar="PCT",
        help="colours saturate at this percentile of the non-empty cells (default: %(default)s)",
    )
    h.add_argument(
        "--range",
        dest="range_pct",
        type=float,
        default=None,
        metavar="PCT",
        help="price axis from PCT %% below the lowest shown candle to PCT %% above the highest "
        "(with --mode long mostly below, with --mode short mostly above; default: half the "
        "candles' span, between 2 and 15)",
    )
    h.add_argument(
        "--no-smooth",
        action="store_true",
        help="draw the raw rows (no display smoothing along price, which otherwise removes the "
        "thin stripes left by the model's few entry prices per candle)",
    )
    h.add_argument(
        "--trades",
        type=Path,
        default=None,
        metavar="RESULT",
        help="freqtrade backtest result (.zip/.json, or the backtest_results folder for the "
        "newest) whose trades to draw",
    )
    h.add_argument("--strategy", default=None, help="strategy in a multi-strategy result")
    h.add_argument(
        "--max-columns",
        type=int,
        default=2000,
        help="at most this many time columns, PNG and HTML; snapshots are thinned and the "
        "picture states the column step (default: %(default)s)",
    )
    h.add_argument(
        "--max-rows",
        type=int,
        default=500,
        help="at most this many price rows, PNG and HTML; neighbouring bins are summed and the "
        "colour bar states the row height (default: %(default)s)",
    )
    h.add_argument(
        "--html",
        choices=["web", "plotly"],
        default="web",
        help="HTML output: the web view's renderer, self-contained (web), or a plotly figure "
        "(plotly; see --plotlyjs) (default: %(default)s)",
    )
    h.set_defaults(func=_cmd_heatmap)

    m = subparsers.add_parser(
        "map",
        help="liquidation map picture (estimated liquidations per price at one instant)",
        description="Estimate the liquidation book at one candle and draw it as bars of long\n"
        "liquidations below and short liquidations above the price, with cumulative\n"
        "curves and the largest clusters labelled.",
        epilog=_MAP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(m)
    m.add_argument(
        "--at",
        default=None,
        help="the book at the close of the last candle at or before this date/time, UTC; "
        "must lie within the data (default: last candle)",
    )
    m.add_argument(
        "--range",
        dest="range_pct",
        type=float,
        default=15.0,
        metavar="PCT",
        help="price axis +/- PCT %% around the price (default: %(default)s)",
    )
    m.add_argument(
        "--top", type=int, default=3, help="label the N largest clusters per side (default: 3)"
    )
    m.set_defaults(func=_cmd_map)


def _common(p: argparse.ArgumentParser) -> None:
    options.add_config_option(p)
    options.add_datadir_option(p, several=True)
    p.add_argument(
        "--exchange",
        default=None,
        help="exchange, or several joined by commas to sum them, e.g. binance,bybit "
        "(default: the config's, else binance)",
    )
    options.add_pairs_option(p, what=" (one picture each)")
    options.add_timeframe_option(p, default="1h")
    p.add_argument(
        "--window",
        default="1w",
        help="positions expire after this: 12h, 1d, 3d, 1w, 2w, 1M, 3M, 6M, 1y (default: 1w)",
    )
    p.add_argument(
        "--leverage",
        choices=["all", "high", "low"],
        default="all",
        help="leverage mix of the model (default: %(default)s)",
    )
    p.add_argument(
        "--no-market-data",
        action="store_true",
        help="ignore open interest / taker volume / long-short ratio files in the datadir",
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="FILE",
        help="output .png or .html (with several pairs the pair is added to the name)",
    )
    p.add_argument("--width", type=int, default=1600, help="PNG width in pixels (default 1600)")
    p.add_argument("--height", type=int, default=900, help="PNG height in pixels (default 900)")
    p.add_argument(
        "--plotlyjs",
        choices=["inline", "cdn"],
        default="inline",
        help="plotly HTML (map, heatmap --html plotly): embed plotly.js (works offline, ~5 MB) "
        "or load it from its CDN (default: %(default)s)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


# ----------------------------------------------------------------------------- resolution
def _note(text: str) -> None:
    options.note(text)


def _resolve(args: argparse.Namespace) -> dict[str, Any]:
    """Exchanges with their datadirs, pairs and timeframe from flags, config and defaults.

    The datadir rule of :mod:`liqsignals.cli.options` per exchange: ``--datadir`` (once per
    exchange, or once for the first, the others being its siblings), else the config's
    ``datadir`` (for the first exchange, siblings for the others), else the bundled sample data.
    """
    config = options.load_config(args.config)
    spec = args.exchange or (config.get("exchange") or {}).get("name") or "binance"
    exchanges = [e.strip() for e in str(spec).split(",") if e.strip()]
    if not exchanges or len(set(exchanges)) != len(exchanges):
        raise options.CLIError(
            f"--exchange {spec!r}: give one or more distinct names, e.g. binance,bybit"
        )
    given: list[Path] = list(args.datadir or [])
    if len(given) > 1 and len(given) != len(exchanges):
        raise options.CLIError(
            f"{len(given)} --datadir for {len(exchanges)} exchanges: give one per exchange "
            f"or one for the first"
        )
    if len(given) == len(exchanges):
        datadirs = given
    else:
        first, source = options.resolve_datadir(
            given[0] if given else None, config, exchange=exchanges[0]
        )
        if source == "sample":
            datadirs = [options.resolve_datadir(None, {}, exchange=ex)[0] for ex in exchanges]
            _note(
                "no --datadir and no datadir in a config: using the bundled sample data in "
                f"{datadirs[0]}"
            )
        else:
            datadirs = [first] + [first.parent / ex for ex in exchanges[1:]]
    return {
        "exchanges": list(zip(exchanges, datadirs, strict=True)),
        "pairs": options.resolve_pairs(args.pairs, config),
        "timeframe": options.resolve_timeframe(args.timeframe, config, "1h"),
    }


def _out_path(out: Path, pair: str, several: bool) -> Path:
    if out.suffix.lower() not in (".png", ".html", ".htm"):
        raise options.CLIError(f"--out {out}: use a .png or .html file name")
    if not several:
        return out
    from liqsignals.data.datadir import pair_to_filename

    return out.with_name(f"{out.stem}_{pair_to_filename(pair)}{out.suffix}")


def _load(exchange: str, datadir: Path, pair: str, timeframe: str, market: bool) -> Any:
    from liqsignals.data.datadir import attach_market_data

    df = options.load_candles(datadir, pair, timeframe, exchange=exchange)
    if market:
        before = set(df.columns)
        df = attach_market_data(df, datadir, pair, timeframe)
        extra = sorted(c for c in set(df.columns) - before if df[c].notna().any())
        if extra:
            _note(f"{exchange} {pair}: using {', '.join(extra)}")
    return df


@contextmanager
def _progress(args: argparse.Namespace, desc: str) -> Iterator[Callable[[int, int], None]]:
    from tqdm import tqdm

    bars: list[Any] = []

    def update(done: int, total: int) -> None:
        if not bars:  # created on the first report, when the total is known
            bars.append(
                tqdm(
                    total=total,
                    desc=desc,
                    unit="candle",
                    unit_scale=True,
                    file=sys.stderr,
                    disable=args.no_progress,
                    dynamic_ncols=True,
                )
            )
        bars[0].update(done - bars[0].n)

    try:
        yield update
    finally:
        for bar in bars:
            bar.close()


@contextmanager
def _warnings_as_notes() -> Iterator[None]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        _note(str(w.message))


def _wrote(path: Path) -> None:
    size = path.stat().st_size
    print(f"wrote {path} ({size / 1024:.0f} KB)")


def _meta(exchanges: list[tuple[str, Path]], pair: str, args: argparse.Namespace, tf: str) -> dict:
    return {
        "pair": pair,
        "timeframe": tf,
        "exchange": "+".join(ex for ex, _ in exchanges),
        "window": args.window,
        "leverage": args.leverage,
    }


# ----------------------------------------------------------------------------- commands
def _check_window(model: Any, timeframe: str, given: str) -> None:
    from liqsignals.model import timeframe_to_timedelta

    try:
        step = timeframe_to_timedelta(timeframe)
    except ValueError:
        return
    if model.window_td < step:
        raise options.CLIError(
            f"--window {given} is shorter than one {timeframe} candle: "
            f"positions would expire within their own candle; use at least {timeframe}"
        )


def _cmd_heatmap(args: argparse.Namespace) -> int:
    from liqsignals.heatmap import combine_heatmaps, liquidation_heatmap
    from liqsignals.model import LiquidationModel
    from liqsignals.plotting import load_trades, save_heatmap

    r = _resolve(args)
    model = LiquidationModel(window=args.window, leverage=args.leverage)
    _check_window(model, r["timeframe"], args.window)
    tr = options.parse_timerange(args.timerange)
    if args.max_columns < 1 or args.max_rows < 1:
        raise options.CLIError("--max-columns and --max-rows must be positive")
    if args.range_pct is not None and not 0 <= args.range_pct < 100:
        raise options.CLIError(f"--range {args.range_pct}: give a percentage in [0, 100)")
    margin = None if args.range_pct is None else args.range_pct / 100
    for pair in r["pairs"]:
        out = _out_path(args.out, pair, len(r["pairs"]) > 1)
        trades = None
        if args.trades is not None:
            trades = load_trades(args.trades, pair=pair, strategy=args.strategy)
            _note(f"{len(trades)} {pair} trades in {args.trades}")
        parts: list[Any] = []
        frames: list[Any] = []
        for ex, datadir in r["exchanges"]:
            df = _load(ex, datadir, pair, r["timeframe"], not args.no_market_data)
            frames.append(df)
            with _progress(args, f"{ex} {pair}") as progress, _warnings_as_notes():
                if parts:
                    hm = liquidation_heatmap(df, model, like=parts[0], progress=progress)
                else:
                    hm = liquidation_heatmap(
                        df,
                        model,
                        start=tr.start,
                        end=tr.stop,
                        max_times=args.max_columns,
                        max_bins=args.max_rows,
                        margin=margin,
                        side=args.mode,
                        progress=progress,
                    )
            parts.append(hm)
        hm = combine_heatmaps(parts) if len(parts) > 1 else parts[0]
        hm.meta.update(_meta(r["exchanges"], pair, args, r["timeframe"]))
        if not args.no_progress:
            print(f"rendering {out.name} ({hm.shape[0]} columns x {hm.shape[1]} rows)",
                  file=sys.stderr)  # fmt: skip
        extra: dict[str, Any] = {}
        if out.suffix.lower() != ".png" and args.html == "web":
            from liqsignals.web.payload import map_payload

            with _warnings_as_notes():  # the map beside the heatmap, at its last column
                extra["lmap"] = map_payload(frames, model, hm.times[-1])
        save_heatmap(
            hm,
            out,
            args.mode,
            width=args.width,
            height=args.height,
            colors=args.colors,
            scale=args.scale,
            clip_pct=args.clip,
            trades=trades,
            smooth=not args.no_smooth,
            plotlyjs=True if args.plotlyjs == "inline" else "cdn",
            html=args.html,
            **extra,
        )
        _wrote(out)
    return 0


def _cmd_map(args: argparse.Namespace) -> int:
    from liqsignals.heatmap import combine_maps, liquidation_map
    from liqsignals.model import LiquidationModel
    from liqsignals.plotting import save_map

    r = _resolve(args)
    model = LiquidationModel(window=args.window, leverage=args.leverage)
    if args.top < 0:
        raise options.CLIError("--top must be >= 0")
    _check_window(model, r["timeframe"], args.window)
    for pair in r["pairs"]:
        out = _out_path(args.out, pair, len(r["pairs"]) > 1)
        maps: list[Any] = []
        for ex, datadir in r["exchanges"]:
            df = _load(ex, datadir, pair, r["timeframe"], not args.no_market_data)
            with _progress(args, f"{ex} {pair}") as progress, _warnings_as_notes():
                maps.append(liquidation_map(df, model, at=args.at, progress=progress))
        lmap = combine_maps(maps) if len(maps) > 1 else maps[0]
        save_map(
            lmap,
            out,
            width=args.width,
            height=args.height,
            range_pct=args.range_pct,
            top=args.top,
            meta=_meta(r["exchanges"], pair, args, r["timeframe"]),
            plotlyjs=True if args.plotlyjs == "inline" else "cdn",
        )
        _wrote(out)
    return 0
