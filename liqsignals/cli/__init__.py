"""The ``liqsignals`` command line (console entry point ``liqsignals.cli:main``).

Each command lives in its own module, which exposes ``register(subparsers)``; this package only
lists them, so commands load their (heavy) imports only when they run. The options the
data-reading commands share (layered ``-c`` configs, the datadir rule, ``-p``, ``-t``,
``--timerange``) and the one error path live in :mod:`liqsignals.cli.options`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from liqsignals.cli.options import CLIError, run_command

__all__ = ["COMMAND_MODULES", "CLIError", "build_parser", "main"]

#: module paths whose ``register(subparsers)`` adds one or more commands
COMMAND_MODULES: tuple[str, ...] = (
    "liqsignals.replay.cli",
    "liqsignals.data.cli",
    "liqsignals.evaluate_cli",
    "liqsignals.plot_cli",
    "liqsignals.web.cli",
    "liqsignals.sweep.cli",
    "liqsignals.walkforward.cli",
    "liqsignals.live.cli",
)


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
    for path in COMMAND_MODULES:
        importlib.import_module(path).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command; bad input gives a message on stderr and status 2."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if isinstance(getattr(args, "passthrough", None), list):
        args.passthrough = extra  # a command that parses its own options
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return run_command(args.func, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
