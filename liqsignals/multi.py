"""Several exchanges, one market: a combined liquidation book.

Traders on Binance, Bybit and OKX hold the same BTC perpetual; their liquidations sit at nearby
prices and move the same market. :func:`combine_exchanges` merges per-exchange inputs into one
engine input:

* **prices** come from a reference exchange (the first, or ``reference=``): its candles drive
  the price path that liquidates positions on every venue (prices differ across venues by a few
  basis points, below the 10 bp bin width);
* **volume** is summed in quote currency (each exchange's volume times its own typical price) and
  expressed in base units at the reference's typical price;
* **open interest** is summed in coins (``open_interest``, or ``open_interest_value`` divided by
  the exchange's close) when every selected exchange has it; a candle where one of them is
  missing has no combined value (the engine then uses its candles-only rules);
* **mark price** (``mark_high`` / ``mark_low``, the mark-price trigger) is the reference's,
  like its prices: the reference's mark path liquidates every venue's positions (venues' mark
  prices follow one index and differ by less than a bin); other venues' mark columns are
  ignored;
* **taker buy volume** is summed like volume, the **long/short ratio** averaged with volume
  weights, each only when every selected exchange has it;
* **margin tiers**: each exchange keeps its own (:func:`liqsignals.tiers.load_tiers`: Binance's
  own table; Bybit, OKX and others the documented approximation, flagged and logged, unless a
  ccxt ``fetch_leverage_tiers`` file is given in ``tiers_files={venue: path}``, or a model in
  ``models=``). The engine's leverage mix becomes the union of every exchange's (leverage, tier)
  liquidation factors, weighted per candle by the exchange's share of the candle's quote volume,
  so a venue's positions land at its own liquidation prices. Every table is isolated margin.

``exchanges=[...]`` keeps a subset (the exchange filter). With one exchange the result equals
:func:`liqsignals.liquidation_levels` on its frame, bit for bit.

>>> frames = {"binance": binance_15m, "bybit": bybit_15m}              # doctest: +SKIP
>>> feats = liquidation_features_multi(frames, symbol="BTC/USDT:USDT")  # doctest: +SKIP

:class:`MultiFeatureStream` is the incremental path for live bots: candle by candle, the same
values as :func:`liquidation_features_multi` bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liqsignals.columns import FEATURE_COLUMNS
from liqsignals.engine import LeverageMix, LiquidationEngine
from liqsignals.features import derive_features
from liqsignals.inputs import prepare_inputs
from liqsignals.model import LiquidationModel, resolve_model
from liqsignals.readout import LOOKBACK_FIELDS, ReadoutParams, split_readout
from liqsignals.tiers import venue_models

__all__ = [
    "CombinedInputs",
    "MultiFeatureStream",
    "combined_engine",
    "combine_exchanges",
    "liquidation_features_multi",
    "liquidation_levels_multi",
]


@dataclass
class CombinedInputs:
    """Engine inputs for several exchanges (see :func:`combine_exchanges`).

    ``frame`` has the reference's dates and OHLC (and mark range, when it has one) and the
    combined ``volume`` (and optional ``open_interest``, ``taker_buy_volume``,
    ``long_short_ratio``); ``weights`` (candles x
    factors) gives each exchange's leverage-mix weights times its volume share; ``f_long`` /
    ``f_short`` are the matching liquidation-price factors; ``shares`` the volume share per exchange.
    """

    frame: pd.DataFrame
    weights: np.ndarray
    f_long: np.ndarray
    f_short: np.ndarray
    exchanges: list[str]
    shares: pd.DataFrame


def _select(
    frames: Mapping[str, pd.DataFrame], exchanges: Sequence[str] | None, reference: str | None
) -> tuple[list[str], str]:
    if not frames:
        raise ValueError("no exchanges given")
    names = list(frames) if exchanges is None else list(exchanges)
    unknown = [e for e in names if e not in frames]
    if unknown:
        raise ValueError(f"exchange filter names {unknown}, but data is for {sorted(frames)}")
    if not names:
        raise ValueError("the exchange filter selects no exchange")
    ref = names[0] if reference is None else reference
    if ref not in names:
        raise ValueError(f"reference exchange {ref!r} is not among the selected {names}")
    return [ref] + [e for e in names if e != ref], ref


def _oi_coins(df: pd.DataFrame) -> pd.Series | None:
    if "open_interest" in df.columns:
        return df["open_interest"].astype(float)
    if "open_interest_value" in df.columns:
        return df["open_interest_value"].astype(float) / df["close"].astype(float)
    return None


def combine_exchanges(
    frames: Mapping[str, pd.DataFrame],
    model: LiquidationModel | None = None,
    *,
    models: Mapping[str, LiquidationModel] | None = None,
    exchanges: Sequence[str] | None = None,
    reference: str | None = None,
    tiers_files: Mapping[str, str | Path] | None = None,
    **params: Any,
) -> CombinedInputs:
    """Merge per-exchange candle frames (same market) into one engine input.

    Parameters
    ----------
    frames : ``{exchange: candles}`` in freqtrade's columns, optional inputs as for
        :func:`liqsignals.liquidation_levels`. Each frame is validated.
    model : the common model (window, bins, cluster rules, leverage mix); ``**params`` override it.
    models : per-exchange models whose leverage mix and margin tiers replace the common model's for
        that exchange (e.g. ``{"bybit": model.replace(symbol=None, maintenance_margin_rate=0.005)}``).
        An exchange without one uses the common model with that venue's own tiers
        (:func:`liqsignals.tiers.venue_model`).
    tiers_files : ``{exchange: path}`` of ccxt ``fetch_leverage_tiers`` JSON files that override
        those venues' tiers.
    exchanges : the exchange filter (default: all of ``frames``).
    reference : the exchange whose candles give prices and dates (default: the first selected).
    """
    base = resolve_model(model, params)
    names, ref = _select(frames, exchanges, reference)
    for name in names:
        prepare_inputs(frames[name])  # the same validation and errors as a single frame
    ref_df = frames[ref].reset_index(drop=True)
    dates = pd.to_datetime(ref_df["date"], utc=True)
    typical_ref = ((ref_df["high"] + ref_df["low"] + ref_df["close"]) / 3.0).to_numpy(float)

    def aligned(name: str) -> pd.DataFrame:
        df = frames[name].copy()
        df["date"] = pd.to_datetime(df["date"], utc=True)
        return df.set_index("date").reindex(dates)

    quote = {}
    al = {}
    for name in names:
        a = aligned(name)
        al[name] = a
        typical = (a["high"] + a["low"] + a["close"]) / 3.0
        quote[name] = (a["volume"] * typical).fillna(0.0).to_numpy(float)  # missing candle: 0
    total_quote = np.sum([quote[n] for n in names], axis=0)

    out = ref_df[["date", "open", "high", "low", "close"]].copy()
    others = [n for n in names if n != ref]
    # the reference's own volume as given (no round trip through quote), others converted
    out["volume"] = ref_df["volume"].to_numpy(float) + sum(
        (quote[n] / typical_ref for n in others), np.zeros(len(out))
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = {n: np.where(total_quote > 0, quote[n] / total_quote, 0.0) for n in names}
    # with no volume anywhere nothing opens; the weights then only need to be valid
    shares[ref] = np.where(total_quote > 0, shares[ref], 1.0)

    if "mark_high" in ref_df.columns and "mark_low" in ref_df.columns:
        out["mark_high"] = ref_df["mark_high"].to_numpy(float)
        out["mark_low"] = ref_df["mark_low"].to_numpy(float)
    ois = {n: _oi_coins(al[n]) for n in names}
    if all(v is not None for v in ois.values()):
        out["open_interest"] = np.sum(
            [ois[n].to_numpy(float) for n in names],  # type: ignore[union-attr]
            axis=0,
        )
    if all("taker_buy_volume" in al[n] for n in names):
        tb = ref_df["taker_buy_volume"].to_numpy(float) + sum(
            (
                (al[n]["taker_buy_volume"] * (al[n]["high"] + al[n]["low"] + al[n]["close"]) / 3.0)
                .fillna(0.0)
                .to_numpy(float)
                / typical_ref
                for n in others
            ),
            np.zeros(len(out)),
        )
        out["taker_buy_volume"] = np.minimum(tb, out["volume"].to_numpy())
    if all("long_short_ratio" in al[n] for n in names):
        if not others:
            out["long_short_ratio"] = ref_df["long_short_ratio"].to_numpy(float)
        else:
            long_share = np.sum(
                [
                    shares[n] * (al[n]["long_short_ratio"] / (1 + al[n]["long_short_ratio"]))
                    for n in names
                ],
                axis=0,
            )
            with np.errstate(invalid="ignore", divide="ignore"):
                out["long_short_ratio"] = long_share / (1.0 - long_share)

    per_model = venue_models(base, names, tiers_files, models)
    f_long, f_short, weights = [], [], []
    for n in names:
        fl, fs, w = per_model[n].liquidation_factors()
        f_long.append(fl)
        f_short.append(fs)
        weights.append(shares[n][:, None] * w[None, :])
    return CombinedInputs(
        frame=out,
        weights=np.ascontiguousarray(np.concatenate(weights, axis=1)),
        f_long=np.concatenate(f_long),
        f_short=np.concatenate(f_short),
        exchanges=names,
        shares=pd.DataFrame(shares, index=out.index),
    )


def combined_engine(combined: CombinedInputs, model: LiquidationModel) -> LiquidationEngine:
    """A fresh engine for a combined book: each venue's leverage mix side by side; run it with
    ``engine.run(prepare_inputs(combined.frame), weights=combined.weights)``."""
    w0 = np.ones(combined.f_long.shape[0]) / combined.f_long.shape[0]
    return LiquidationEngine(model, mix=LeverageMix(combined.f_long, combined.f_short, w0))


def liquidation_levels_multi(
    frames: Mapping[str, pd.DataFrame],
    model: LiquidationModel | None = None,
    *,
    models: Mapping[str, LiquidationModel] | None = None,
    exchanges: Sequence[str] | None = None,
    reference: str | None = None,
    tiers_files: Mapping[str, str | Path] | None = None,
    **params: Any,
) -> pd.DataFrame:
    """:func:`liqsignals.liquidation_levels` for several exchanges' combined book; rows follow
    the reference exchange's candles."""
    base = resolve_model(model, params)
    combined = combine_exchanges(
        frames, base, models=models, exchanges=exchanges, reference=reference,
        tiers_files=tiers_files,
    )  # fmt: skip
    eng = combined_engine(combined, base)
    res = eng.run(prepare_inputs(combined.frame), weights=combined.weights, order="F")
    return res.to_frame(combined.frame.index)


def liquidation_features_multi(
    frames: Mapping[str, pd.DataFrame],
    model: LiquidationModel | None = None,
    *,
    models: Mapping[str, LiquidationModel] | None = None,
    exchanges: Sequence[str] | None = None,
    reference: str | None = None,
    readout: ReadoutParams | None = None,
    tiers_files: Mapping[str, str | Path] | None = None,
    **params: Any,
) -> pd.DataFrame:
    """All ``liq_*`` columns for several exchanges' combined book (prices: the reference's).

    ``readout`` and the lookback keywords (``atr_period=`` ...) as in
    :func:`liqsignals.liquidation_features`; other keywords override the model's fields."""
    look = {k: params.pop(k) for k in LOOKBACK_FIELDS if k in params}
    base, readout = split_readout(resolve_model(model, params), readout, look)
    combined = combine_exchanges(
        frames, base, models=models, exchanges=exchanges, reference=reference,
        tiers_files=tiers_files,
    )  # fmt: skip
    eng = combined_engine(combined, base)
    res = eng.run(prepare_inputs(combined.frame), weights=combined.weights, order="F")
    levels = res.to_frame(combined.frame.index)
    return derive_features(combined.frame, levels, readout)


class MultiFeatureStream:
    """Candle-by-candle ``liq_*`` features of a combined book (several exchanges, one market):
    the values of :func:`liquidation_features_multi` over the same candles, bit for bit.

    Each :meth:`update_many` takes the reference exchange's new candles (newer than any seen)
    and, per other exchange, its candles for those dates (extra rows are ignored; a date an
    exchange has no candle for counts as no trading there, as in the batch path). The combined
    inputs of a candle depend on that candle's rows only, so the stream combines the new
    candles alone, advances one engine by them (per-candle venue weights) and derives the
    features from a bounded tail of candles and engine rows: the cost of a candle does not
    grow with the history.

    >>> stream = MultiFeatureStream(model, exchanges=["binance", "bybit"])   # doctest: +SKIP
    >>> rows = stream.update_many({"binance": new_15m, "bybit": bybit_15m})   # doctest: +SKIP
    """

    def __init__(
        self,
        model: LiquidationModel | None = None,
        *,
        exchanges: Sequence[str],
        models: Mapping[str, LiquidationModel] | None = None,
        reference: str | None = None,
        readout: ReadoutParams | None = None,
        tiers_files: Mapping[str, str | Path] | None = None,
        **params: Any,
    ) -> None:
        look = {k: params.pop(k) for k in LOOKBACK_FIELDS if k in params}
        self.model, self.readout = split_readout(resolve_model(model, params), readout, look)
        names = list(exchanges)
        if len(set(names)) != len(names):
            raise ValueError(f"exchanges must be distinct, got {names}")
        self.exchanges, self.reference = _select(
            {e: pd.DataFrame() for e in names}, None, reference
        )
        # each venue's model, its tiers resolved once (files read here, not per candle)
        self.models = venue_models(self.model, self.exchanges, tiers_files, models)
        r = self.readout
        # derive_features looks back at most this many rows before a candle
        self._keep = max(r.atr_period, r.intensity_lookback, r.drift_lookback) + 1
        self.engine: LiquidationEngine | None = None
        self._candles: pd.DataFrame | None = None
        self._levels: pd.DataFrame | None = None
        self._failed: str | None = None

    @property
    def columns(self) -> list[str]:
        """Names of the feature columns, in the order of :meth:`update_many`'s output."""
        return list(FEATURE_COLUMNS)

    @property
    def last_date(self) -> pd.Timestamp | None:
        """Date of the last reference candle processed (``None`` before the first)."""
        return None if self.engine is None else self.engine.last_date

    def update_many(self, frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
        """Process the reference exchange's new candles ``frames[reference]`` with the other
        exchanges' candles for the same dates; returns the feature rows of the new candles
        (index: the reference frame's). An exchange of the stream missing from ``frames``
        raises ``ValueError``; an invalid candle raises and spends the stream (build a new one)."""
        if self._failed is not None:
            raise RuntimeError(
                f"this MultiFeatureStream stopped at an invalid candle ({self._failed}); "
                "build a new one from valid history"
            )
        missing = [e for e in self.exchanges if e not in frames]
        if missing:
            raise ValueError(f"no candles given for exchange(s) {missing} of this stream")
        ref = frames[self.reference]
        if len(ref) == 0:
            return pd.DataFrame(columns=self.columns, index=ref.index, dtype=float)
        try:
            return self._advance(frames, ref)
        except Exception as exc:
            self._failed = str(exc)
            raise

    def _advance(self, frames: Mapping[str, pd.DataFrame], ref: pd.DataFrame) -> pd.DataFrame:
        dates = pd.to_datetime(ref["date"], utc=True)
        block: dict[str, pd.DataFrame] = {self.reference: ref}
        for name in self.exchanges[1:]:
            df = frames[name]
            keep = pd.to_datetime(df["date"], utc=True).isin(dates).to_numpy()
            block[name] = df.loc[keep]
        combined = combine_exchanges(
            block, self.model, models=self.models, exchanges=self.exchanges
        )
        if self.engine is None:
            self.engine = combined_engine(combined, self.model)
        res = self.engine.run(prepare_inputs(combined.frame), weights=combined.weights, order="F")
        levels = res.to_frame(combined.frame.index)
        candles = combined.frame[["high", "low", "close"]]
        if self._candles is not None and self._levels is not None:
            candles = pd.concat([self._candles, candles], ignore_index=True)
            levels = pd.concat([self._levels, levels], ignore_index=True)
        else:
            candles = candles.reset_index(drop=True)
            levels = levels.reset_index(drop=True)
        feats = derive_features(candles, levels, self.readout)
        n = len(ref)
        self._candles = candles.iloc[-self._keep :].reset_index(drop=True)
        self._levels = levels.iloc[-self._keep :].reset_index(drop=True)
        out = feats.iloc[-n:][self.columns]
        out.index = ref.index
        return out

    def update(self, candles: Mapping[str, Mapping[str, Any] | None]) -> dict[str, float]:
        """One closed reference candle ``candles[reference]`` and the other exchanges' candles of
        the same date (``None`` where an exchange has none); returns ``{column: value}``."""
        frames = {}
        for name in self.exchanges:
            c = candles.get(name) if name != self.reference else candles[name]
            if name not in candles:
                raise ValueError(f"no candle given for exchange {name!r} of this stream")
            row = (
                pd.DataFrame([dict(c)])
                if c is not None
                else pd.DataFrame(columns=["date", "open", "high", "low", "close", "volume"])
            )
            row["date"] = pd.to_datetime(row["date"], utc=True)
            frames[name] = row
        feats = self.update_many(frames)
        return {c: float(v) for c, v in feats.iloc[0].items()}
