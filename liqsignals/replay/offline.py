"""Run a command with the replay exchange alive: ``freqtrade ... -c {overlay}`` fully offline.

Placeholders replaced in every argument: ``{overlay}`` (path of a temporary freqtrade config
overlay for the server), ``{port}`` and ``{url}``. The child also finds them in the environment
as ``LIQSIGNALS_REPLAY_OVERLAY``, ``LIQSIGNALS_REPLAY_PORT`` and ``LIQSIGNALS_REPLAY_URL``.

Example
-------
>>> result = run_offline(                                             # doctest: +SKIP
...     ["freqtrade", "backtesting", "-c", "config/futures.json", "-c", "{overlay}",
...      "--datadir", "user_data/data/binance", "-s", "LiqSweepReversal"],
...     datadir="user_data/data/binance",
... )
>>> result.returncode
0
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from liqsignals.replay.clock import Clock
from liqsignals.replay.config import write_overlay
from liqsignals.replay.faults import FaultConfig
from liqsignals.replay.server import ReplayExchange


@dataclass(frozen=True)
class OfflineResult:
    """Exit code and combined stdout/stderr of a command run by :func:`run_offline`."""

    returncode: int
    output: str
    argv: tuple[str, ...]
    timed_out: bool = False
    #: requests the replay exchange answered, per ``"METHOD /path"``
    requests: Mapping[str, int] = field(default_factory=dict)


def substitute(argv: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """Replace ``{name}`` placeholders (only the given names) in each argument."""
    out = []
    for arg in argv:
        for name, value in values.items():
            arg = arg.replace("{" + name + "}", value)
        out.append(arg)
    return out


def _resolve_program(args: list[str]) -> list[str]:
    """``freqtrade``/``liqsignals`` not on PATH (a virtualenv that is not activated): run the
    module with this interpreter, which has them installed."""
    import shutil

    if args and args[0] in ("freqtrade", "liqsignals") and shutil.which(args[0]) is None:
        return [sys.executable, "-m", args[0], *args[1:]]
    return args


def run_offline(
    argv: Sequence[str],
    datadir: str | os.PathLike[str],
    *,
    clock: Clock | None = None,
    faults: FaultConfig | None = None,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    echo: bool = True,
    stream: TextIO | None = None,
    timeout: float | None = None,
) -> OfflineResult:
    """Start the replay exchange, run ``argv`` to its end, stop the exchange.

    Parameters
    ----------
    argv:
        The command; ``{overlay}``, ``{port}``, ``{url}`` are replaced.
    datadir:
        Exchange folder of the freqtrade datadir the exchange serves.
    clock, faults:
        Passed to :class:`~liqsignals.replay.server.ReplayExchange`.
    cwd, env:
        Working directory and extra environment variables of the child.
    echo, stream:
        Whether to copy the child's output (stdout and stderr, merged) line by line to
        ``stream`` (default: ``sys.stdout``) while it runs; the result holds it either way.
    timeout:
        Seconds before the child is stopped (SIGTERM, then SIGKILL after 10 s); ``timed_out``
        is then set. Long-running commands such as ``freqtrade trade`` end this way.
    """
    with (
        tempfile.TemporaryDirectory(prefix="liqsignals-replay-") as tmp,
        ReplayExchange(datadir, clock=clock, faults=faults) as exchange,
    ):
        overlay = write_overlay(Path(tmp) / "replay-overlay.json", exchange.port, exchange.host)
        values = {"overlay": str(overlay), "port": str(exchange.port), "url": exchange.url}
        args = _resolve_program(substitute(argv, values))
        child_env = dict(os.environ)
        child_env.update(env or {})
        child_env.update(
            LIQSIGNALS_REPLAY_OVERLAY=values["overlay"],
            LIQSIGNALS_REPLAY_PORT=values["port"],
            LIQSIGNALS_REPLAY_URL=values["url"],
            PYTHONUNBUFFERED="1",
        )
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
        )
        lines: list[str] = []
        sink = (stream or sys.stdout) if echo else None
        reader = threading.Thread(target=_pump, args=(proc, lines, sink), daemon=True)
        reader.start()
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _stop(proc)
        except BaseException:  # Ctrl-C: take the child down with us
            _stop(proc)
            raise
        finally:
            reader.join(timeout=10)
        return OfflineResult(
            proc.returncode,
            "".join(lines),
            tuple(args),
            timed_out,
            dict(exchange.api.requests),
        )


def _stop(proc: subprocess.Popen[str], grace: float = 10.0) -> None:
    """SIGTERM (freqtrade shuts down cleanly on it), then SIGKILL after ``grace`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _pump(proc: subprocess.Popen[str], sink: list[str], echo: TextIO | None) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        sink.append(line)
        if echo is not None:
            echo.write(line)
            echo.flush()
