"""Fault injection for the replay exchange: the switch that makes a healthy server misbehave.

A :class:`FaultConfig` lists how often each kind of fault happens; the server asks its
:class:`FaultInjector` once per request (and once per candle for candle faults). All draws come
from one seeded generator, so a run with the same seed and the same request sequence fails the
same way.

Request faults (at most one per request, chosen with the given probabilities):

========================  ===================================================================
``server_error``          HTTP 500, body ``{"code": -1001, "msg": "Internal error; ..."}``
``bad_gateway``           HTTP 502, Binance-style JSON body
``rate_limit``            HTTP 429, ``Retry-After: <retry_after_s>``, body code ``-1003``
``timeout``               no answer for ``timeout_s`` seconds, then the connection is dropped
``malformed``             HTTP 200 with a truncated, unparsable JSON body
========================  ===================================================================

Websocket faults (drawn per message of the liquidation streams, see :mod:`.ws`):

========================  ===================================================================
``ws_drop``               the connection is cut (no close frame) instead of sending the message
``ws_reconnect``          a close frame (code 1001, "reconnect") instead of the message
========================  ===================================================================

Candle faults (drawn per candle in ``/fapi/v1/klines`` and ``/fapi/v1/markPriceKlines``):

========================  ===================================================================
``missing_candle``        the candle is left out of the answer
``duplicate_candle``      the candle is sent twice in a row
========================  ===================================================================

``paths`` limits faults to request paths starting with one of the given prefixes (``None``:
every path). ``/fapi/v1/time`` and ``/fapi/v1/ping`` are exempt unless named explicitly.
``malformed_paths`` narrows the malformed-JSON fault further (a malformed answer drawn for
another path is served healthy): ccxt hands a truncated body back as an empty structure, and
freqtrade 2026.9 stops with exit code 2 when the order book it reads right after an entry fills
comes back empty, so a run that must survive keeps malformed answers off ``/fapi/v1/depth``.

Example
-------
>>> cfg = FaultConfig.parse("server_error=0.1,rate_limit=0.05,retry_after_s=2,seed=7")
>>> cfg.server_error, cfg.retry_after_s, cfg.seed
(0.1, 2, 7)
>>> FaultConfig().enabled
False
"""

from __future__ import annotations

import dataclasses
import enum
import random
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

_T = TypeVar("_T")

_EXEMPT = ("/fapi/v1/time", "/fapi/v1/ping")


class Fault(enum.Enum):
    """A request-level fault."""

    SERVER_ERROR = "server_error"
    BAD_GATEWAY = "bad_gateway"
    RATE_LIMIT = "rate_limit"
    TIMEOUT = "timeout"
    MALFORMED = "malformed"


_REQUEST_FAULTS = tuple(Fault)


@dataclass(frozen=True)
class FaultConfig:
    """How often the replay exchange misbehaves. All rates are probabilities in ``[0, 1]``."""

    server_error: float = 0.0
    bad_gateway: float = 0.0
    rate_limit: float = 0.0
    timeout: float = 0.0
    malformed: float = 0.0
    missing_candle: float = 0.0
    duplicate_candle: float = 0.0
    #: websocket: per message, cut the connection without a close frame instead of sending it
    ws_drop: float = 0.0
    #: websocket: per message, send a close frame (1001, "reconnect") instead of the message
    ws_reconnect: float = 0.0
    #: seconds sent in the ``Retry-After`` header of 429 answers
    retry_after_s: int = 1
    #: how long a timed-out request hangs before the connection is dropped
    timeout_s: float = 30.0
    seed: int = 0
    #: path prefixes the faults apply to; ``None`` for all paths
    paths: tuple[str, ...] | None = None
    #: path prefixes the malformed fault applies to (within ``paths``); ``None`` for all
    malformed_paths: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        rates = {f.value: getattr(self, f.value) for f in _REQUEST_FAULTS}
        rates["missing_candle"] = self.missing_candle
        rates["duplicate_candle"] = self.duplicate_candle
        rates["ws_drop"] = self.ws_drop
        rates["ws_reconnect"] = self.ws_reconnect
        for name, rate in rates.items():
            if not 0.0 <= float(rate) <= 1.0:
                raise ValueError(f"fault rate {name}={rate!r} is not in [0, 1]")
        if sum(getattr(self, f.value) for f in _REQUEST_FAULTS) > 1.0 + 1e-12:
            raise ValueError("request fault rates add up to more than 1")
        if self.missing_candle + self.duplicate_candle > 1.0 + 1e-12:
            raise ValueError("missing_candle + duplicate_candle add up to more than 1")
        if self.ws_drop + self.ws_reconnect > 1.0 + 1e-12:
            raise ValueError("ws_drop + ws_reconnect add up to more than 1")
        if self.retry_after_s < 0 or self.timeout_s < 0:
            raise ValueError("retry_after_s and timeout_s must not be negative")

    @property
    def enabled(self) -> bool:
        """``True`` when any fault can happen."""
        return any(
            getattr(self, f.name) > 0
            for f in dataclasses.fields(self)
            if f.type == "float" and f.name != "timeout_s"
        )

    @classmethod
    def parse(cls, spec: str) -> FaultConfig:
        """Build a config from ``"name=value,name=value"`` (the CLI's ``--faults`` text).

        ``paths`` and ``malformed_paths`` take prefixes separated by ``|``, e.g.
        ``paths=/fapi/v1/klines|/fapi/v1/depth``.
        """
        kwargs: dict[str, Any] = {}
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            name, sep, value = item.partition("=")
            name = name.strip()
            if not sep or name not in types:
                known = ", ".join(sorted(types))
                raise ValueError(f"bad fault setting {item!r}; expected name=value with {known}")
            value = value.strip()
            try:
                if name in ("paths", "malformed_paths"):
                    kwargs[name] = tuple(p for p in value.split("|") if p)
                elif types[name] == "int":
                    kwargs[name] = int(value)
                else:
                    kwargs[name] = float(value)
            except ValueError:
                raise ValueError(f"bad value for fault setting {name!r}: {value!r}") from None
        return cls(**kwargs)


def _matches(path: str, prefixes: tuple[str, ...] | None) -> bool:
    return prefixes is None or any(path.startswith(p) for p in prefixes)


class FaultInjector:
    """Draws faults for a :class:`FaultConfig` from one seeded, thread-safe generator.

    ``counts`` tells how many faults were played so far, by name (the request faults'
    ``Fault`` values, ``missing_candle`` and ``duplicate_candle`` per candle), across configs.
    """

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.configure(config or FaultConfig())

    @property
    def config(self) -> FaultConfig:
        return self._config

    def configure(self, config: FaultConfig) -> None:
        """Switch to another config (and restart its random sequence from its seed)."""
        with self._lock:
            self._config = config
            self._rng = random.Random(config.seed)

    def applies(self, path: str) -> bool:
        cfg = self._config
        if not cfg.enabled:
            return False
        if cfg.paths is None:
            return path not in _EXEMPT
        return any(path.startswith(p) for p in cfg.paths)

    def draw(self, path: str) -> Fault | None:
        """The request fault to play for a request to ``path``, if any."""
        if not self.applies(path):
            return None
        cfg = self._config
        with self._lock:
            u = self._rng.random()
        edge = 0.0
        for fault in _REQUEST_FAULTS:
            edge += getattr(cfg, fault.value)
            if u < edge:
                if fault is Fault.MALFORMED and not _matches(path, cfg.malformed_paths):
                    return None
                with self._lock:
                    self.counts[fault.value] += 1
                return fault
        return None

    def draw_ws(self) -> str | None:
        """The websocket fault to play instead of the next message: ``"ws_drop"``,
        ``"ws_reconnect"`` or ``None`` (``paths`` does not apply to websocket faults)."""
        cfg = self._config
        if not (cfg.ws_drop or cfg.ws_reconnect):
            return None
        with self._lock:
            u = self._rng.random()
            name = None
            if u < cfg.ws_drop:
                name = "ws_drop"
            elif u < cfg.ws_drop + cfg.ws_reconnect:
                name = "ws_reconnect"
            if name is not None:
                self.counts[name] += 1
        return name

    def mangle_rows(self, path: str, rows: Sequence[_T]) -> list[_T]:
        """Drop or duplicate candles at the configured rates."""
        cfg = self._config
        if not (cfg.missing_candle or cfg.duplicate_candle) or not self.applies(path):
            return list(rows)
        out: list[_T] = []
        with self._lock:
            for row in rows:
                u = self._rng.random()
                if u < cfg.missing_candle:
                    self.counts["missing_candle"] += 1
                    continue
                out.append(row)
                if u < cfg.missing_candle + cfg.duplicate_candle:
                    self.counts["duplicate_candle"] += 1
                    out.append(row)
        return out
