"""The ``liqsignals`` command line.

Each command lives in its own module, which exposes ``register(subparsers)``; this file only
lists them, so commands load their (heavy) imports only when they run.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# module paths whose ``register(subparsers)`` adds one or more commands
_COMMAND_MODULES: list[str] = [
    "liqsignals.replay.cli",
    "liqsignals.data.cli",
    "liqsignals.evaluate_cli",
    "liqsignals.plot_cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liqsignals",
        description="Estimated liquidation levels for crypto futures: heatmaps, maps, "
        "evaluation, data tools and a loopback replay exchange for freqtrade.",
    )
    from liqsignals import __version__

    parser.add_argument("--version", action="version", version=f"liqsignals {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for path in _COMMAND_MODULES:
        importlib.import_module(path).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except KeyboardInterrupt:
        return 130
    except (FileNotFoundError, ValueError) as exc:
        print(f"liqsignals {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
