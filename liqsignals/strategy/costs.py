"""Slippage in backtests, and the fee / funding / slippage totals of a backtest's trades.

freqtrade fills a backtest order at the price it asks for: a market stop at the stop, a limit
entry at the candle's open. :class:`~liqsignals.strategy.LiqStrategy` applies slippage through
``custom_entry_price`` and ``custom_exit_price`` with :func:`slipped_price`:

* the setting is ``"liqsignals": {"slippage_bp": 2.0, "wick_slippage_factor": 3.0}`` in the
  freqtrade config (or the class attributes ``liq_slippage_bp``, ``liq_wick_slippage_factor``);
  the **default is 0 bp**: without the setting, prices and trades are freqtrade's own;
* an entry pays ``slippage_bp`` against the trader (a long buys higher, a short sells lower);
  entries whose tag is one of the strategy's ``liq_wick_entry_tags`` (the sweep entries, which
  follow a liquidation wick) pay ``slippage_bp x wick_slippage_factor``;
* exits that freqtrade prices through ``custom_exit_price`` (exit signals and ``custom_exit``)
  pay ``slippage_bp``. freqtrade calls no price hook for stop-loss, ROI and liquidation exits:
  those fill unslipped, and :func:`trade_costs` reports them as ``unslipped_exits``;
* only backtests and hyperopt: in dry-run and live the hooks return freqtrade's price (real
  fills have their own slippage).

freqtrade clamps a long entry at the candle's high and a short entry at its low, so a slipped
price never leaves the candle.

:func:`trade_costs` sums fees, funding and (for a setting) the nominal slippage over the trades of
a freqtrade backtest export (``stats["trades"]``), in the stake currency.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "NO_PRICE_HOOK_EXITS",
    "SlippageSettings",
    "TradeCosts",
    "slipped_price",
    "slippage_settings",
    "trade_costs",
]

#: Exit reasons freqtrade fills without calling ``custom_exit_price``.
NO_PRICE_HOOK_EXITS: frozenset[str] = frozenset(
    {"stop_loss", "stoploss_on_exchange", "trailing_stop_loss", "roi", "liquidation", "force_exit"}
)


@dataclass(frozen=True)
class SlippageSettings:
    """``slippage_bp`` (basis points per fill, >= 0; 0 = no slippage) and
    ``wick_slippage_factor`` (multiplier for wick entries, >= 1)."""

    slippage_bp: float = 0.0
    wick_slippage_factor: float = 3.0

    def __post_init__(self) -> None:
        for name, lo in (("slippage_bp", 0.0), ("wick_slippage_factor", 1.0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ValueError(f"liqsignals.{name} must be a finite number, got {v!r}")
            if v < lo:
                raise ValueError(f"liqsignals.{name} must be >= {lo:g}, got {v!r}")

    def entry_bp(self, wick: bool) -> float:
        """Slippage of an entry fill (bp): times the wick factor on wick entries."""
        return self.slippage_bp * (self.wick_slippage_factor if wick else 1.0)

    def describe(self) -> str:
        """One line for a results table, e.g. ``slippage 2 bp (6 bp on wick entries)``."""
        if self.slippage_bp == 0:
            return "no slippage"
        return (
            f"slippage {self.slippage_bp:g} bp ({self.entry_bp(True):g} bp on wick entries) "
            "via custom_entry_price/custom_exit_price"
        )


def slippage_settings(config: Mapping[str, Any], default: SlippageSettings) -> SlippageSettings:
    """The ``"liqsignals"`` block's ``slippage_bp`` / ``wick_slippage_factor`` over ``default``.

    Raises ``ValueError`` naming the key for a negative, non-numeric or non-finite value.
    """
    block = config.get("liqsignals") or {}
    if not isinstance(block, Mapping):
        raise ValueError(f"config 'liqsignals' must be an object, got {block!r}")
    return SlippageSettings(
        slippage_bp=block.get("slippage_bp", default.slippage_bp),
        wick_slippage_factor=block.get("wick_slippage_factor", default.wick_slippage_factor),
    )


def slipped_price(proposed: float, bp: float, *, buy: bool) -> float:
    """``proposed`` moved ``bp`` basis points against the trader: up for a buy (long entry,
    short exit), down for a sell. ``bp == 0`` returns ``proposed`` unchanged."""
    if bp == 0:
        return proposed
    factor = 1.0 + bp / 1e4 if buy else 1.0 - bp / 1e4
    return float(proposed) * factor


@dataclass(frozen=True)
class TradeCosts:
    """Totals over a backtest's trades (stake currency): ``fees`` (both sides),
    ``funding`` (what the trades paid: positive = a cost; freqtrade's ``funding_fees`` is what
    they received), ``slippage`` (nominal, from the setting: entries at their bp, exits priced by
    ``custom_exit_price`` at ``slippage_bp``), ``trades``, ``unslipped_exits`` (stop-loss / ROI /
    liquidation exits, which fill without slippage) and ``unslipped_slippage`` (what those exits
    would have paid at ``slippage_bp``: not in freqtrade's profit, subtract it for an all-in
    figure)."""

    trades: int
    fees: float
    funding: float
    slippage: float
    unslipped_exits: int
    unslipped_slippage: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _num(trade: Mapping[str, Any], key: str) -> float:
    v = trade.get(key)
    if v is None:
        return 0.0
    try:
        out = float(v)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"trade field {key!r} is not a number: {v!r}") from exc
    return out if math.isfinite(out) else 0.0


def trade_costs(
    trades: Iterable[Mapping[str, Any]],
    settings: SlippageSettings | None = None,
    wick_tags: Iterable[str] = (),
) -> TradeCosts:
    """Fee, funding and nominal slippage totals of freqtrade's exported trades.

    Fees: ``fee_open x amount x open_rate + fee_close x amount x close_rate`` per trade. Funding:
    ``-funding_fees``. Slippage (nominal): ``amount x open_rate x entry_bp / 1e4`` at entry plus
    ``amount x close_rate x slippage_bp / 1e4`` for exits priced by ``custom_exit_price``; 0
    without ``settings``. (A slipped price clamped at the candle's high or low cost less.)
    """
    s = settings or SlippageSettings()
    tags = set(wick_tags)
    n = unslipped = 0
    fees = funding = slip = missed = 0.0
    for t in trades:
        n += 1
        amount, o, c = _num(t, "amount"), _num(t, "open_rate"), _num(t, "close_rate")
        fees += _num(t, "fee_open") * amount * o + _num(t, "fee_close") * amount * c
        funding -= _num(t, "funding_fees")
        ebp = s.entry_bp(t.get("enter_tag") in tags)
        slip += amount * o * ebp / 1e4
        exit_slip = amount * c * s.slippage_bp / 1e4
        if t.get("exit_reason") in NO_PRICE_HOOK_EXITS:
            unslipped += 1
            missed += exit_slip
        else:
            slip += exit_slip
    return TradeCosts(n, fees, funding, slip, unslipped, missed)
