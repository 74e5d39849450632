"""The sweep spec (a TOML file) and its validation.

A spec names one ``liqsignals`` command that prints JSON (``evaluate magnets``, ``evaluate
realised``, ``evaluate information``, ``evaluate competing`` or ``calibrate``), the data it reads
and a grid of the command's own options::

    [sweep]
    command = "evaluate magnets"
    datadir = "/data/binance"          # a shared path; relative paths are taken from the spec's folder
    pairs = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    timeframe = "1h"
    timerange = "20250101-20250301"

    [options]                          # optional: the same value in every task
    boot = 200

    [grid]                             # every combination of these values, times every pair
    window = ["1d", "1w"]
    horizon = ["4h", "1d"]

Keys are option names without the leading ``--`` (``band-pct`` or ``band_pct``). A ``true`` value is
a bare flag, ``false`` leaves it out; a list value in ``[options]`` is passed as several words
(``targets = ["liq", "swing"]``). ``timeframe`` and ``timerange`` may also be grid keys (several
timeframes, or folds). Without ``datadir`` the bundled sample data is used.

Everything is checked here, before any task runs: the command exists and prints ``--json``,
every key is one of its options, each pair has candles in the datadir for each timeframe, and
every task's argument list parses (:func:`load_spec`). A problem is a
:class:`liqsignals.cli.options.CLIError` that says what is wrong.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liqsignals.cli.options import CLIError, availability_problem

__all__ = ["CommandInfo", "SweepSpec", "command_info", "load_spec", "parse_spec"]

#: options the sweep sets itself, or that would make tasks write files
RESERVED = frozenset({"datadir", "data-dir", "pairs", "json", "report", "out", "config", "help"})
#: the commands a sweep may run (those with ``--json``)
COMMAND_ROOTS = ("evaluate", "calibrate")

Scalar = str | int | float | bool


@dataclass(frozen=True)
class CommandInfo:
    """What a command accepts: its words (``["evaluate", "magnets"]``) and option names."""

    words: tuple[str, ...]
    options: frozenset[str]

    @property
    def name(self) -> str:
        return " ".join(self.words)


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: the command, data, fixed options and the grid (values in file order)."""

    command: CommandInfo
    datadir: Path
    pairs: tuple[str, ...]
    timeframe: str | None
    timerange: str | None
    options: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Scalar]] = field(default_factory=dict)
    source: str = ""

    def cells(self) -> list[dict[str, Scalar]]:
        """Every combination of the grid values (the first key varies slowest)."""
        keys = list(self.grid)
        return [
            dict(zip(keys, combo, strict=True)) for combo in itertools.product(*self.grid.values())
        ]


# ----------------------------------------------------------------------------- commands
def _help_text(words: Sequence[str]) -> tuple[int, str]:
    """``liqsignals WORDS --help``: (exit status, stdout + stderr), nothing printed."""
    from liqsignals.cli import main

    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([*words, "--help"])
        except SystemExit as exc:
            code = exc.code
    return (int(code) if isinstance(code, int) else 2), out.getvalue() + err.getvalue()


def _option_names(text: str) -> list[str]:
    """The long option names (without ``--``) a help text lists, one option per line:
    ``  -p PAIRS [PAIRS ...], --pairs PAIRS [PAIRS ...]   help``."""
    names = []
    for line in text.splitlines():
        if re.match(r"^  -", line):
            flags = re.split(r"(?<=\S)  +", line.strip(), maxsplit=1)[0]
            names += re.findall(r"--([a-z][a-z0-9-]*)", flags)
    return names


def _subcommands(text: str) -> list[str]:
    """The subcommands listed under ``positional arguments:`` of a help text."""
    section = text.split("positional arguments:", 1)
    if len(section) < 2:
        return []
    body = section[1].split("\n\n", 1)[0]
    return re.findall(r"^    ([a-z][a-z0-9_-]*)", body, flags=re.MULTILINE)


def command_info(command: str) -> CommandInfo:
    """The options of ``command`` (``"evaluate magnets"``), read from its ``--help`` usage; a
    :class:`CLIError` naming the commands a sweep can run when it is not one of them."""
    words = tuple(str(command).split())
    allowed = _runnable_commands()
    if " ".join(words) not in allowed:
        raise CLIError(
            f"[sweep] command {command!r} is not a command a sweep can run; use one of: "
            + ", ".join(allowed)
        )
    code, text = _help_text(words)
    opts = frozenset(_option_names(text))
    if code != 0 or "json" not in opts:
        raise CLIError(f"[sweep] command {command!r} has no --json output; a sweep needs one")
    return CommandInfo(words, opts)


def _runnable_commands() -> list[str]:
    names = []
    for root in COMMAND_ROOTS:
        _, text = _help_text([root])
        subs = _subcommands(text)
        names += [f"{root} {s}" for s in subs] if subs else [root]
    return names


# ----------------------------------------------------------------------------- parsing
def _key(name: str, where: str, info: CommandInfo, *, grid: bool) -> str:
    opt = str(name).replace("_", "-")
    if opt in RESERVED:
        raise CLIError(
            f"{where} key {name!r}: the sweep sets --{opt} itself (or it writes files); "
            "put datadir and pairs in [sweep]"
        )
    if opt in ("timeframe", "timerange") and not grid:
        raise CLIError(f"{where} key {name!r}: put {opt} in [sweep] (or in [grid] to vary it)")
    if opt not in info.options:
        known = sorted(info.options - RESERVED)
        raise CLIError(
            f"{where} key {name!r} is not an option of `liqsignals {info.name}`; its options: "
            + ", ".join(known)
        )
    return opt


def _scalar(value: Any, where: str) -> Scalar:
    if isinstance(value, bool | int | float | str):
        return value
    raise CLIError(f"{where}: {value!r} is not a string, number or boolean")


def _require_table(doc: Mapping[str, Any], name: str, required: bool) -> dict[str, Any]:
    table = doc.get(name, {} if not required else None)
    if table is None:
        raise CLIError(f"the spec has no [{name}] table")
    if not isinstance(table, dict):
        raise CLIError(f"[{name}] must be a table")
    return table


def _datadir(sweep: Mapping[str, Any], base: Path) -> Path:
    raw = sweep.get("datadir")
    if raw is None or raw == "":
        from liqsignals import sample

        return sample.datadir().resolve()
    path = Path(str(raw)).expanduser()
    return (path if path.is_absolute() else base / path).resolve()


def _check_data(datadir: Path, pairs: Sequence[str], timeframes: Sequence[str]) -> None:
    for tf in timeframes:
        for pair in pairs:
            problem = availability_problem(datadir, pair, tf)
            if problem:
                raise CLIError(f"[sweep] pair {pair!r} has no {tf} data: {problem}")


def parse_spec(doc: Mapping[str, Any], base: Path | None = None, source: str = "") -> SweepSpec:
    """A :class:`SweepSpec` from a parsed TOML document; relative ``datadir`` from ``base``."""
    base = Path.cwd() if base is None else base
    sweep = _require_table(doc, "sweep", True)
    extra = sorted(set(doc) - {"sweep", "grid", "options"})
    if extra:
        raise CLIError(
            f"unknown table(s) in the spec: {', '.join(extra)} (use sweep, options, grid)"
        )
    unknown = sorted(set(sweep) - {"command", "datadir", "pairs", "timeframe", "timerange"})
    if unknown:
        raise CLIError(
            f"[sweep] key(s) {', '.join(unknown)} unknown: [sweep] takes command, datadir, pairs, "
            "timeframe, timerange; the command's options go in [options] or [grid]"
        )
    if not isinstance(sweep.get("command"), str) or not sweep["command"].strip():
        raise CLIError('[sweep] needs command = "evaluate magnets" (or another evaluate/calibrate)')
    info = command_info(sweep["command"])
    pairs = sweep.get("pairs")
    if isinstance(pairs, str):
        pairs = [pairs]
    if not pairs or not isinstance(pairs, list) or not all(isinstance(p, str) for p in pairs):
        raise CLIError('[sweep] needs pairs = ["BTC/USDT:USDT", ...]')
    if len(set(pairs)) != len(pairs):
        raise CLIError("[sweep] pairs lists a pair twice")

    grid: dict[str, list[Scalar]] = {}
    for name, values in _require_table(doc, "grid", False).items():
        opt = _key(name, "[grid]", info, grid=True)
        vals = values if isinstance(values, list) else [values]
        if not vals:
            raise CLIError(f"[grid] {name}: an empty list gives no tasks")
        grid[opt] = [_scalar(v, f"[grid] {name}") for v in vals]
        if len(set(map(repr, grid[opt]))) != len(grid[opt]):
            raise CLIError(f"[grid] {name} lists a value twice")
    options: dict[str, Any] = {}
    for name, value in _require_table(doc, "options", False).items():
        opt = _key(name, "[options]", info, grid=False)
        if opt in grid:
            raise CLIError(f"{name!r} is in both [options] and [grid]")
        options[opt] = (
            [_scalar(v, f"[options] {name}") for v in value]
            if isinstance(value, list)
            else _scalar(value, f"[options] {name}")
        )

    timeframe = sweep.get("timeframe")
    timerange = sweep.get("timerange")
    for opt, value in (("timeframe", timeframe), ("timerange", timerange)):
        if value is not None and opt not in info.options:
            raise CLIError(f"[sweep] {opt}: `liqsignals {info.name}` has no --{opt}")
        if value is not None and not isinstance(value, str):
            raise CLIError(f"[sweep] {opt} must be a string such as '1h' or '20250101-20250301'")
    frames = [str(v) for v in grid.get("timeframe", [timeframe] if timeframe else [])]
    if not frames:
        raise CLIError('[sweep] needs timeframe = "1h" (or a timeframe list in [grid])')
    datadir = _datadir(sweep, base)
    _check_data(datadir, pairs, frames)
    return SweepSpec(info, datadir, tuple(pairs), timeframe, timerange, options, grid, source)


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate the TOML spec at ``path`` (see the module docs)."""
    spec_path = Path(path)
    if not spec_path.is_file():
        raise CLIError(f"sweep spec {spec_path} does not exist")
    text = spec_path.read_text(encoding="utf-8")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CLIError(f"sweep spec {spec_path} is not valid TOML: {exc}") from None
    return parse_spec(doc, spec_path.resolve().parent, text)
