"""Alerts of a running bot: freqtrade messages (``dp.send_msg``: Telegram, webhooks, Discord, as
the bot's config routes them) when

* price comes within ``cluster_distance_pct`` of a significant cluster (``cluster``),
* a candle sweeps a cluster (``sweep``: ``liq_sweep_long`` / ``_short`` and the "through"
  variants),
* the magnet switches side (``magnet``: ``liq_magnet_price`` moves from above price to below or
  back).

Off by default; the config turns them on::

    "liqsignals": {"alerts": {"enabled": true, "cluster_distance_pct": 0.5,
                              "cooldown_minutes": 60, "cluster": true, "sweep": true,
                              "magnet": true}}

Each closed candle is looked at once (the latest row of the analysed frame), and an alert of one
kind and side for one pair is not repeated within ``cooldown_minutes`` of candle time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import pandas as pd

__all__ = ["AlertBook", "AlertSettings", "alert_settings"]


@dataclass(frozen=True)
class AlertSettings:
    enabled: bool = False
    cluster_distance_pct: float = 0.5
    cooldown_minutes: float = 60.0
    cluster: bool = True
    sweep: bool = True
    magnet: bool = True

    def __post_init__(self) -> None:
        for name in ("cluster_distance_pct", "cooldown_minutes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f'"liqsignals": {{"alerts": {{"{name}": ...}}}} must be a number')
            if not math.isfinite(value) or value < 0:
                raise ValueError(f'"liqsignals": {{"alerts": {{"{name}": {value}}}}} must be >= 0')
        for name in ("enabled", "cluster", "sweep", "magnet"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(
                    f'"liqsignals": {{"alerts": {{"{name}": ...}}}} must be true/false'
                )


def alert_settings(config: Mapping[str, Any]) -> AlertSettings:
    """The config's ``"liqsignals": {"alerts": {...}}`` (unknown keys are an error)."""
    raw = (config.get("liqsignals") or {}).get("alerts") or {}
    if not isinstance(raw, Mapping):
        raise ValueError('"liqsignals": {"alerts": ...} must be an object')
    known = {f.name for f in fields(AlertSettings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f'unknown "liqsignals" alert setting(s) {unknown}; known: {sorted(known)}')
    return AlertSettings(**dict(raw))


def _num(row: pd.Series, name: str) -> float:
    value = row.get(name, math.nan)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value


def _price(value: float) -> str:
    return f"{value:.6g}"


class AlertBook:
    """The alerts of one strategy instance: :meth:`check` returns the messages for the latest
    candle of a pair's analysed frame (each candle once, cooldown per pair, kind and side)."""

    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings
        self.last_checked: dict[str, pd.Timestamp] = {}
        self.last_sent: dict[tuple[str, str], pd.Timestamp] = {}
        self.sent: list[str] = []

    def check(self, pair: str, frame: pd.DataFrame) -> list[str]:
        if not self.settings.enabled or len(frame) == 0 or "date" not in frame:
            return []
        row = frame.iloc[-1]
        date = pd.Timestamp(row["date"])
        seen = self.last_checked.get(pair)
        if seen is not None and date <= seen:
            return []
        self.last_checked[pair] = date
        prev = frame.iloc[-2] if len(frame) > 1 else None
        out: list[str] = []
        for key, text in self._events(pair, row, prev):
            if self._allowed(pair, key, date):
                out.append(f"liqsignals {pair} {date:%Y-%m-%d %H:%M} UTC: {text}")
        self.sent.extend(out)
        return out

    def _allowed(self, pair: str, key: str, date: pd.Timestamp) -> bool:
        last = self.last_sent.get((pair, key))
        cooldown = pd.Timedelta(minutes=self.settings.cooldown_minutes)
        if last is not None and date - last < cooldown:
            return False
        self.last_sent[(pair, key)] = date
        return True

    def _events(self, pair: str, row: pd.Series, prev: pd.Series | None) -> list[tuple[str, str]]:
        s = self.settings
        close = _num(row, "close")
        events: list[tuple[str, str]] = []
        if s.sweep:
            for side, edge in (("long", "low"), ("short", "high")):
                swept = _num(row, f"liq_sweep_{side}") == 1
                through = _num(row, f"liq_sweep_{side}_through") == 1
                if swept or through:
                    how = "closed through it" if through else "closed back"
                    level = _num(row, f"liq_sweep_{side}_{edge}")
                    notional = _num(row, f"liq_sweep_{side}_notional")
                    events.append(
                        (
                            f"sweep_{side}",
                            f"{side} liquidation cluster swept (cluster {edge} {_price(level)}, "
                            f"{how}, close {_price(close)}, est. notional {notional:,.0f})",
                        )
                    )
        if s.cluster:
            for side in ("long", "short"):
                dist = _num(row, f"liq_{side}_cluster_dist_pct")
                if math.isfinite(dist) and 0 <= dist <= s.cluster_distance_pct:
                    price = _num(row, f"liq_{side}_cluster_price")
                    where = "below" if side == "long" else "above"
                    events.append(
                        (
                            f"cluster_{side}",
                            f"price {_price(close)} within {dist:.2f}% of the {side} liquidation "
                            f"cluster at {_price(price)} ({where})",
                        )
                    )
        if s.magnet and prev is not None:
            now_side = self._magnet_side(row)
            before = self._magnet_side(prev)
            if now_side and before and now_side != before:
                events.append(
                    (
                        "magnet",
                        f"magnet switched from {before} to {now_side} price (magnet "
                        f"{_price(_num(row, 'liq_magnet_price'))}, close {_price(close)})",
                    )
                )
        return events

    @staticmethod
    def _magnet_side(row: pd.Series) -> str:
        dist = _num(row, "liq_magnet_dist_pct")
        if not math.isfinite(dist) or dist == 0:
            return ""
        return "above" if dist > 0 else "below"
