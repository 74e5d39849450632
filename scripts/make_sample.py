"""Regenerate the bundled sample data in ``liqsignals/sample_data/`` from a full datadir.

Not needed at runtime: this is the recipe behind the files shipped with the package. It slices
freqtrade feather files by date and writes them the way freqtrade does (feather, lz4, level 9),
keeping each file's column layout and dtypes as they are in the source.

Run from the repository root::

    python scripts/make_sample.py --source ../shared/data/binance

``--source`` is a freqtrade datadir for Binance USDT-M futures (it contains ``futures/``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

PAIRS: tuple[str, ...] = ("BTC_USDT_USDT", "ETH_USDT_USDT")

# (timeframe, candle type) -> inclusive UTC date span [first day, last day]
SLICES: dict[tuple[str, str], tuple[str, str]] = {
    ("1h", "futures"): ("2024-06-01", "2025-05-31"),
    ("15m", "futures"): ("2024-06-01", "2025-05-31"),
    ("5m", "futures"): ("2025-03-01", "2025-05-31"),
    ("1h", "mark"): ("2024-06-01", "2025-05-31"),
    ("1h", "funding_rate"): ("2024-06-01", "2025-05-31"),
}

_DEFAULT_TARGET = Path(__file__).resolve().parent.parent / "liqsignals" / "sample_data" / "binance"


def slice_file(source: Path, target: Path, first_day: str, last_day: str) -> int:
    """Copy the rows of ``source`` dated ``first_day`` 00:00 to ``last_day`` 23:59:59 (UTC).

    The column layout and dtypes are kept; the file is written as freqtrade writes feather.
    Returns the number of rows written.
    """
    df = pd.read_feather(source)
    start = pd.Timestamp(first_day, tz="UTC")
    stop = pd.Timestamp(last_day, tz="UTC") + pd.Timedelta(days=1)
    part = df.loc[(df["date"] >= start) & (df["date"] < stop)].reset_index(drop=True)
    if part.empty:
        raise ValueError(f"{source.name} has no rows between {first_day} and {last_day}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    part.to_feather(tmp, compression="lz4", compression_level=9)
    tmp.replace(target)
    return len(part)


def make_sample(source: Path, target: Path = _DEFAULT_TARGET) -> list[tuple[Path, int]]:
    """Write every slice in ``SLICES`` for every pair in ``PAIRS``; return (file, rows) pairs."""
    written = []
    for pair in PAIRS:
        for (timeframe, candle_type), (first, last) in SLICES.items():
            name = f"{pair}-{timeframe}-{candle_type}.feather"
            out = target / "futures" / name
            rows = slice_file(source / "futures" / name, out, first, last)
            written.append((out, rows))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source",
        type=Path,
        default=Path("../shared/data/binance"),
        help="freqtrade datadir holding futures/ (default: %(default)s)",
    )
    parser.add_argument(
        "--target",
        type=Path,
        default=_DEFAULT_TARGET,
        help="datadir to write (default: the package's sample_data/binance)",
    )
    args = parser.parse_args(argv)
    total = 0
    for path, rows in make_sample(args.source, args.target):
        size = path.stat().st_size
        total += size
        print(f"{path.name:45s} {rows:7d} rows {size / 1e6:6.2f} MB")
    print(f"total {total / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
