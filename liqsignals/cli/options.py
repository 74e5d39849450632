"""The options every data-reading ``liqsignals`` command shares, and their one error type.

Flags (added by :func:`add_data_options` and friends) follow freqtrade's habits:

``-c/--config PATH`` (repeatable)
    freqtrade config files, layered: later files override earlier ones, key by key (nested
    dictionaries are merged), as ``freqtrade -c base.json -c override.json`` does. They fill in
    what the flags leave out: ``datadir``, ``exchange.name``, ``exchange.pair_whitelist`` and
    ``timeframe``.
``--datadir DIR``
    The datadir rule, the same for every command (:func:`resolve_datadir`): ``--datadir`` if
    given, else the config's ``datadir``, else the bundled sample data (Binance BTC and ETH
    futures, 2024-06 .. 2025-05; a note on stderr says so).
``-p/--pairs``, ``-t/--timeframe``
    From the flags, else the config (``exchange.pair_whitelist``, ``timeframe``). A pair or
    timeframe the datadir does not hold is an error that lists what it does hold, and a missing
    datadir folder one that says it is missing (:func:`load_candles`).
``--timerange START-STOP``
    freqtrade's syntax (:func:`parse_timerange`), with an error that names the bad part.

Errors: a command raises :class:`CLIError` (a ``ValueError``) for bad input; ``liqsignals``
prints ``liqsignals COMMAND: error: MESSAGE`` on stderr and exits with status 2, without a
traceback (:func:`run_command`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from liqsignals.data.datadir import TimeRange

__all__ = [
    "DATADIR_RULE",
    "CLIError",
    "DataOptions",
    "add_config_option",
    "add_data_options",
    "add_datadir_option",
    "add_pairs_option",
    "add_timeframe_option",
    "add_timerange_option",
    "availability_problem",
    "load_candles",
    "load_config",
    "merge_configs",
    "note",
    "parse_timerange",
    "resolve_data_options",
    "resolve_datadir",
    "resolve_pairs",
    "resolve_timeframe",
    "run_command",
]

#: How every command picks its datadir (also in the ``--datadir`` help).
DATADIR_RULE = "default: the config's datadir, else the bundled sample data"

#: Exceptions that are the user's input, not a bug: message and exit status 2, no traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
)


class CLIError(ValueError):
    """Bad command-line input; ``liqsignals`` prints the message and exits with status 2."""


def note(text: str) -> None:
    """One ``note: ...`` line on stderr (never on stdout, which may hold JSON)."""
    print(f"note: {text}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- flags
def add_config_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--config",
        action="append",
        default=[],
        metavar="PATH",
        help="freqtrade config file; repeat to layer them (later files override earlier ones); "
        "supplies datadir, exchange.name, exchange.pair_whitelist and timeframe",
    )


def add_datadir_option(p: argparse.ArgumentParser, *, several: bool = False) -> None:
    extra = "; once per --exchange or once for the first" if several else ""
    p.add_argument(
        "--datadir",
        "--data-dir",
        dest="datadir",
        action="append" if several else "store",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"exchange data folder, e.g. user_data/data/binance{extra} ({DATADIR_RULE})",
    )


def add_pairs_option(p: argparse.ArgumentParser, *, what: str = "") -> None:
    p.add_argument(
        "-p",
        "--pairs",
        nargs="+",
        default=None,
        help=f"pairs, e.g. BTC/USDT:USDT{what} (default: the config's pair_whitelist)",
    )


def add_timeframe_option(p: argparse.ArgumentParser, *, default: str | None = None) -> None:
    fallback = f", else {default}" if default else ""
    p.add_argument(
        "-i",
        "-t",
        "--timeframe",
        default=None,
        help=f"candle timeframe, e.g. 15m or 1h (default: the config's{fallback})",
    )


def add_timerange_option(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--timerange", default=None, help=help)


def add_data_options(
    p: argparse.ArgumentParser, *, timerange_help: str | None = None, pairs_what: str = ""
) -> None:
    """``-c``, ``--datadir``, ``-p``, ``-t`` and (unless ``timerange_help`` is None)
    ``--timerange``."""
    add_config_option(p)
    add_datadir_option(p)
    add_pairs_option(p, what=pairs_what)
    add_timeframe_option(p)
    if timerange_help is not None:
        add_timerange_option(p, timerange_help)


# ----------------------------------------------------------------------------- config
def merge_configs(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``: nested dictionaries merge key by key, anything else in
    ``override`` replaces the value in ``base`` (freqtrade's ``deep_merge_dicts`` rule)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_configs(out[key], value)
        else:
            out[key] = value
    return out


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CLIError(f"config file {path} does not exist")
    try:  # freqtrade's reader allows comments and trailing commas, as freqtrade does
        from freqtrade.configuration.load_config import load_config_file
    except ImportError:  # pragma: no cover - freqtrade is optional
        load_config_file = None
    try:
        doc = load_config_file(str(path)) if load_config_file else json.loads(path.read_text())
    except Exception as exc:  # freqtrade raises its own OperationalException
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CLIError(f"config file {path} is not valid JSON: {first}") from None
    if not isinstance(doc, dict):
        raise CLIError(f"config file {path} must hold a JSON object")
    return doc


def load_config(paths: Sequence[str | Path]) -> dict[str, Any]:
    """The config files layered in order (later files override earlier ones); ``{}`` for none."""
    config: dict[str, Any] = {}
    for path in paths:
        config = merge_configs(config, _read_config(Path(path)))
    return config


# ----------------------------------------------------------------------------- resolution
def resolve_datadir(
    flag: str | Path | None, config: Mapping[str, Any], *, exchange: str = "binance"
) -> tuple[Path, str]:
    """``(datadir, source)``: ``--datadir``, else the config's ``datadir``, else the bundled
    sample data for ``exchange``; ``source`` is ``"--datadir"``, ``"config"`` or ``"sample"``."""
    if flag is not None:
        return Path(flag), "--datadir"
    if config.get("datadir"):
        return Path(str(config["datadir"])), "config"
    from liqsignals import sample

    try:
        return sample.datadir(exchange), "sample"
    except ValueError as exc:
        raise CLIError(f"no --datadir and no datadir in a config: {exc}") from None


def resolve_pairs(flag: Sequence[str] | None, config: Mapping[str, Any]) -> list[str]:
    pairs = list(flag or (config.get("exchange") or {}).get("pair_whitelist") or [])
    if not pairs:
        raise CLIError("no pairs: pass -p/--pairs (e.g. BTC/USDT:USDT) or a config with pairs")
    return pairs


def resolve_timeframe(
    flag: str | None, config: Mapping[str, Any], default: str | None = None
) -> str:
    from liqsignals.model import timeframe_to_timedelta

    tf = flag or config.get("timeframe") or default
    if not tf:
        raise CLIError("no timeframe: pass -t/--timeframe (e.g. 1h) or a config with one")
    try:
        timeframe_to_timedelta(str(tf))
    except ValueError as exc:
        raise CLIError(f"-t/--timeframe: {exc}") from None
    return str(tf)


_PART_FORMATS = ("%Y%m%d", "%Y%m%dT%H%M", "%Y%m%dT%H%M%S")


def _valid_part(text: str) -> bool:
    if text.isdigit() and len(text) in (10, 13):
        return True
    for fmt in _PART_FORMATS:
        try:
            datetime.strptime(text, fmt)
        except ValueError:
            continue
        # strptime accepts unpadded fields ("2025011" as %Y%m%d): insist on the exact length
        if len(text) == {"%Y%m%d": 8, "%Y%m%dT%H%M": 13, "%Y%m%dT%H%M%S": 15}[fmt]:
            return True
    return False


def parse_timerange(text: str | None, flag: str = "--timerange") -> TimeRange:
    """freqtrade's ``START-STOP`` (either end may be empty; each end ``YYYYMMDD``,
    ``YYYYMMDDTHHMM[SS]`` or a Unix time in s/ms); a :class:`CLIError` naming ``flag`` and the
    bad part otherwise. ``None`` or ``""`` is the unbounded range."""
    from liqsignals.data import datadir as dd

    if text is None or text == "":
        return dd.TimeRange(None, None)
    parts = str(text).split("-")
    if len(parts) != 2 or not any(parts):
        raise CLIError(
            f"{flag} {text!r}: expected START-STOP such as 20240101-20240301 (either end may "
            f"be empty: 20240101- or -20240301)"
        )
    for part in parts:
        if part and not _valid_part(part):
            raise CLIError(
                f"{flag} {text!r}: {part!r} is not a date; use YYYYMMDD, YYYYMMDDTHHMM, "
                f"YYYYMMDDTHHMMSS or a Unix time in seconds (10 digits) or milliseconds (13)"
            )
    try:
        return dd.parse_timerange(text)
    except ValueError as exc:
        detail = str(exc).splitlines()[0].split(": ", 1)[-1]
        raise CLIError(f"{flag} {text!r}: {detail}") from None


def availability_problem(
    datadir: Path, pair: str, timeframe: str, candle_type: str = "futures"
) -> str | None:
    """``None`` when ``datadir`` holds ``candle_type`` candles of ``pair`` in ``timeframe``;
    else what is wrong: the folder is missing, or the pairs (or the pair's timeframes) it holds.
    """
    from liqsignals.data.datadir import data_path, list_data
    from liqsignals.model import timeframe_to_timedelta

    if not datadir.exists():
        return f"datadir {datadir} does not exist (a folder such as user_data/data/binance)"
    if not datadir.is_dir():
        return f"datadir {datadir} is not a folder"
    if data_path(datadir, pair, timeframe, candle_type).is_file():
        return None
    held = [(p, t) for p, t, kind in list_data(datadir) if kind == candle_type]
    pairs = sorted({p for p, _ in held})
    if not pairs:
        return f"datadir {datadir} holds no {candle_type} candles (expected {datadir}/futures/)"
    if pair not in pairs:
        return f"pair {pair!r} is not in {datadir}; it has {candle_type} candles for: " + (
            ", ".join(pairs)
        )
    tfs = sorted({t for p, t in held if p == pair}, key=timeframe_to_timedelta)
    return (
        f"no {timeframe} {candle_type} candles for {pair} in {datadir}; its timeframes: "
        + ", ".join(tfs)
    )


def load_candles(
    datadir: Path, pair: str, timeframe: str, timerange: TimeRange | None = None, **kw: Any
) -> pd.DataFrame:
    """Candles through :func:`liqsignals.data.datadir.load_candles`; a missing file's error
    (which names the file and the ``freqtrade download-data`` command) also says what the
    datadir holds or that it is missing (:func:`availability_problem`); an empty selection is a
    :class:`CLIError`."""
    from liqsignals.data.datadir import load_candles as load

    try:
        df = load(datadir, pair, timeframe, timerange=timerange, **kw)
    except FileNotFoundError as exc:
        problem = availability_problem(datadir, pair, timeframe)
        raise FileNotFoundError(f"{problem}\n{exc}" if problem else str(exc)) from None
    if df.empty:
        span = "" if timerange is None else f" between {timerange.start} and {timerange.stop}"
        raise CLIError(f"no {pair} {timeframe} candles in {datadir}{span}")
    return df


@dataclass(frozen=True)
class DataOptions:
    """What :func:`resolve_data_options` made of the shared flags and the config."""

    datadir: Path
    datadir_source: str
    pairs: list[str]
    timeframe: str
    timerange: str | None = None
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def range(self) -> TimeRange:
        return parse_timerange(self.timerange)


def resolve_data_options(
    args: argparse.Namespace, *, default_timeframe: str | None = None
) -> DataOptions:
    """Config layering, the datadir rule, pairs, timeframe and a checked timerange from
    ``args`` (the flags of :func:`add_data_options`)."""
    config = load_config(getattr(args, "config", None) or [])
    exchange = str((config.get("exchange") or {}).get("name") or "binance")
    datadir, source = resolve_datadir(args.datadir, config, exchange=exchange)
    if source == "sample":
        note(f"no --datadir and no datadir in a config: using the bundled sample data in {datadir}")
    pairs = resolve_pairs(args.pairs, config)
    timeframe = resolve_timeframe(args.timeframe, config, default_timeframe)
    timerange = getattr(args, "timerange", None)
    parse_timerange(timerange)
    return DataOptions(datadir, source, pairs, timeframe, timerange, config)


# ----------------------------------------------------------------------------- errors
def run_command(func: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """``func(args)``; bad input (:data:`USER_ERRORS`, :class:`CLIError` among them) becomes one
    ``liqsignals COMMAND: error: MESSAGE`` on stderr and status 2; Ctrl-C is status 130."""
    try:
        rc = func(args)
    except KeyboardInterrupt:
        return 130
    except USER_ERRORS as exc:
        print(f"liqsignals {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return int(rc or 0)
