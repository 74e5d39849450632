"""``LiqStrategy``: the ``IStrategy`` to derive liquidation-aware strategies from."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from freqtrade.strategy import IStrategy

from liqsignals.data.datadir import ReadCache
from liqsignals.features import DEFAULT_INTENSITY_LOOKBACK, FeatureStream, liquidation_features
from liqsignals.model import LiquidationModel
from liqsignals.strategy import alerts, costs, settings, stops
from liqsignals.strategy import market_data as md
from liqsignals.strategy.live_cache import (
    LiqStreamStats,
    LiveFeatureCache,
    LiveJoin,
    StateHooks,
    state_hooks,
)
from liqsignals.strategy.live_state import StateStream
from liqsignals.strategy.signals import join_columns
from liqsignals.strategy.sizing import capped_leverage, row_stake_factor, sized_stake

__all__ = ["LiqStrategy"]

logger = logging.getLogger(__name__)


class LiqStrategy(IStrategy):
    """Base class for liquidation-aware strategies: subclass it instead of ``IStrategy`` and call
    :meth:`liq_populate` in ``populate_indicators``. Single inheritance on purpose: freqtrade's
    parallel hyperopt (``-j 2``) pickles the strategy class, and an extra mixin base fails there.

    Settings are the ``liq_*`` class attributes below (``liq_params``: other
    :class:`~liqsignals.LiquidationModel` fields); the config's ``"liqsignals": {"window": ...}``
    overrides ``liq_window``. ``startup_candle_count`` follows from the window, the timeframe and
    the lookback unless the class body sets it.
    """

    liq_window: ClassVar[str] = "1w"
    liq_leverage: ClassVar[str] = "all"
    liq_params: ClassVar[dict[str, Any]] = {}
    # open interest, funding, mark, taker volume, long/short ratio wherever they exist
    liq_use_market_data: ClassVar[bool] = True
    liq_intensity_lookback: ClassVar[int] = DEFAULT_INTENSITY_LOOKBACK
    leverage_cap: ClassVar[float] = 3.0
    liq_stake_factors: ClassVar[dict[int, float]] = {2: 0.75, 3: 0.5}  # by intensity bucket
    liq_near_atr: ClassVar[float] = 3.0  # a cluster this close (ATRs) reduces the stake
    liq_stop_buffer_atr: ClassVar[float] = 1.0
    # backtest slippage (liqsignals.strategy.costs): 0 bp by default, i.e. freqtrade's own fills;
    # the config's "liqsignals": {"slippage_bp": ..., "wick_slippage_factor": ...} overrides
    liq_slippage_bp: ClassVar[float] = 0.0
    liq_wick_slippage_factor: ClassVar[float] = 3.0
    liq_wick_entry_tags: ClassVar[tuple[str, ...]] = ()  # entries that follow a wick
    _liq_startup_auto: ClassVar[bool] = True
    INTERFACE_VERSION = 3

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._liq_startup_auto = "startup_candle_count" not in cls.__dict__
        if cls._liq_startup_auto and getattr(cls, "timeframe", None):
            cls.startup_candle_count = settings.strategy_startup(cls, cls.timeframe)

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        if window := (config.get("liqsignals") or {}).get("window"):
            self.liq_window = str(window)  # type: ignore[misc]
        timeframe = config.get("timeframe") or getattr(self, "timeframe", None)
        if self._liq_startup_auto and timeframe:  # StrategyResolver reads it next
            self.startup_candle_count = settings.strategy_startup(self, timeframe)
        # dry-run / live: long windows from the saved pair state (liqsignals.strategy.live_state)
        self.liq_state = bool(timeframe) and settings.live_state_on(config, self, str(timeframe))
        if self.liq_state and self._liq_startup_auto and md.is_trading(None, config):
            self.startup_candle_count = settings.live_startup(self.liq_intensity_lookback)
        self.liq_alerts = alerts.AlertBook(alerts.alert_settings(config))
        self.liq_live_cache = LiveFeatureCache()
        self.liq_live_join = LiveJoin()  # join_columns with the labels kept between candles
        self.liq_read_cache = ReadCache()  # the datadir's files, read again when changed
        self._liq_warned: set[tuple[str, str]] = set()
        self.liq_fetcher: Any = None  # liqsignals.live.series.SeriesFetcher, made when live
        for message in md.deprecated_settings(config):
            logger.warning(message)
        default = costs.SlippageSettings(self.liq_slippage_bp, self.liq_wick_slippage_factor)
        self.liq_slippage = costs.slippage_settings(config, default)

    def liq_model(self, pair: str) -> LiquidationModel:
        """The model for ``pair``: class settings plus the pair's margin tiers on the config's
        venue (``exchange.name``; ``"liqsignals": {"tiers_file": {venue: path}}`` overrides)."""
        return settings.config_model(
            pair, self.liq_window, self.liq_leverage, self.liq_params, self.config
        )

    def liq_feature_kwargs(self) -> dict[str, Any]:
        return settings.feature_kwargs(self.liq_intensity_lookback)

    def liq_live(self) -> bool:
        """Dry-run or live (from ``self.dp.runmode``): the incremental path."""
        return md.is_trading(getattr(self, "dp", None), self.config)

    def _liq_lookups(self) -> bool:
        # every run mode alike: a live bot holds what informative_pairs() declared
        return bool(self.liq_use_market_data and getattr(self, "dp", None))

    def liq_inputs(self, dataframe: pd.DataFrame, pair: str) -> pd.DataFrame:
        """The engine inputs: candles plus open interest, funding, mark, taker buy volume and
        long/short ratio wherever freqtrade's DataProvider or the datadir has them (see
        :func:`liqsignals.strategy.market_data.market_inputs`); in dry-run / live open interest,
        taker volume and the long/short ratio are fetched into the datadir first
        (:class:`liqsignals.live.series.SeriesFetcher`)."""
        if not self._liq_lookups():
            return md.candle_inputs(dataframe)
        self._liq_fetch(dataframe, pair)
        return md.market_inputs(
            dataframe, self.dp, pair, self.timeframe, self._liq_warned,
            datadir=self.config.get("datadir"), cache=self._liq_reads(),
        )  # fmt: skip

    def _liq_fetch(self, dataframe: pd.DataFrame, pair: str) -> None:
        """Dry-run / live: fetch what the datadir lacks of the frame's span (SeriesFetcher)."""
        if self.liq_live() and len(dataframe) and md.has_exchange(self.dp, pair):
            if self.liq_fetcher is None:
                from liqsignals.live.series import SeriesFetcher

                self.liq_fetcher = SeriesFetcher(self.config)
            dates = pd.to_datetime(dataframe["date"], utc=True)
            datadir = self.config.get("datadir")
            self.liq_fetcher.refresh(pair, self.timeframe, datadir, dates.iloc[0], dates.iloc[-1])

    def _liq_reads(self) -> ReadCache | None:
        """The datadir reads kept between candles: dry-run / live only (a backtest reads each
        file once)."""
        return self.liq_read_cache if self.liq_live() else None

    def _liq_live_inputs(self, dataframe: pd.DataFrame, pair: str) -> dict[str, Any]:
        """Dry-run / live: :meth:`liq_inputs` as arrays, the candles not copied (a subclass
        that overrides :meth:`liq_inputs` gets its frame)."""
        if type(self).liq_inputs is not LiqStrategy.liq_inputs:
            return dict(self.liq_inputs(dataframe, pair).items())
        self._liq_fetch(dataframe, pair)
        return md.market_arrays(
            dataframe, self.dp, pair, self.timeframe, self._liq_warned,
            datadir=self.config.get("datadir"), cache=self.liq_read_cache,
        )  # fmt: skip

    def informative_pairs(self) -> list[tuple[str, str, str]]:
        """What freqtrade fetches for the strategy in dry-run / live (backtests read the datadir
        files without it): per whitelisted pair mark candles at the strategy's timeframe and
        funding rates (1h). Open interest (which freqtrade serves a bot one bar late), taker
        volume and the long/short ratio :meth:`liq_inputs` fetches itself."""
        if not self._liq_lookups() or not self.liq_live():
            return []
        out: list[tuple[str, str, str]] = []
        for pair in self.dp.current_whitelist():
            out += [(pair, self.timeframe, "mark"), (pair, "1h", "funding_rate")]
        return out

    def liq_populate(self, dataframe: pd.DataFrame, metadata: dict[str, Any]) -> pd.DataFrame:
        """Add every ``liq_*`` column (and ``funding_rate`` when known) to ``dataframe``."""
        pair, live = metadata["pair"], self.liq_live()
        funding: Any = None
        values: np.ndarray | pd.DataFrame
        if live:
            inputs: Any = dataframe  # a live bot on candles alone: no copy
            if self._liq_lookups():
                inputs = self._liq_live_inputs(dataframe, pair)
                funding = inputs.pop("funding_rate", None)
            build = lambda: FeatureStream(self.liq_model(pair), **self.liq_feature_kwargs())  # noqa: E731
            cache = self.liq_live_cache
            state = self.liq_state_hooks(pair) if self.liq_state else None
            names, values = cache.feature_frame(
                pair, inputs, build, index=dataframe.index, candles_only=inputs is dataframe,
                state=state,
            )  # fmt: skip
        else:
            inputs = self.liq_inputs(dataframe, pair)
            funding = inputs.pop("funding_rate") if "funding_rate" in inputs else None
            feats = liquidation_features(inputs, self.liq_model(pair), **self.liq_feature_kwargs())
            names, values = list(feats.columns), feats.to_numpy(dtype=np.float64)
        if live:
            out = self.liq_live_join(dataframe, names, values, funding)
        else:
            out = join_columns(dataframe, names, values, funding)
        if live and self.liq_alerts.settings.enabled:
            for message in self.liq_alerts.check(pair, out):
                self.dp.send_msg(message, always_send=True)
        if not self.liq_use_market_data:
            return out
        return md.attach_realised(out, self.config, pair, self.timeframe)  # liq_realised_*

    def liq_state_hooks(self, pair: str) -> StateHooks:
        """Where and how the dry-run / live path keeps ``pair``'s engine state."""
        build = lambda: StateStream(self.liq_model(pair), **self.liq_feature_kwargs())  # noqa: E731
        return state_hooks(self.config, self.timeframe, build)

    def liq_stream_stats(self, pair: str) -> LiqStreamStats | None:
        """Counters of the dry-run / live engine of ``pair`` (``None`` before its first call)."""
        return self.liq_live_cache.stats(pair)

    def leverage(self, pair: str, current_time: Any, current_rate: float,
                 proposed_leverage: float, max_leverage: float, entry_tag: str | None, side: str,
                 **kwargs: Any) -> float:  # fmt: skip
        """The configured cap, never above what the exchange allows for the pair."""
        return capped_leverage(self.leverage_cap, max_leverage)

    def custom_stake_amount(self, pair: str, current_time: Any, current_rate: float,
                            proposed_stake: float, min_stake: float | None, max_stake: float,
                            leverage: float, entry_tag: str | None, side: str,
                            **kwargs: Any) -> float:  # fmt: skip
        """Reduce the stake when a high-intensity cluster is close on the adverse side."""
        if (row := self.liq_last_row(pair)) is None:
            return proposed_stake
        factor = row_stake_factor(row, side, self.liq_near_atr, self.liq_stake_factors)
        return sized_stake(proposed_stake, factor, min_stake, max_stake)

    def _liq_slips(self) -> bool:
        # backtests and hyperopt only: a dry-run / live order keeps freqtrade's price
        return self.liq_slippage.slippage_bp > 0 and not self.liq_live()

    def custom_entry_price(self, pair: str, trade: Any, current_time: Any, proposed_rate: float,
                           entry_tag: str | None, side: str, **kwargs: Any) -> float:  # fmt: skip
        """Backtest slippage on entries (``liqsignals.strategy.costs``): ``proposed_rate`` moved
        ``slippage_bp`` against the trade, times the wick factor for ``liq_wick_entry_tags``."""
        if not self._liq_slips():
            return proposed_rate
        bp = self.liq_slippage.entry_bp(entry_tag in self.liq_wick_entry_tags)
        return costs.slipped_price(proposed_rate, bp, buy=side != "short")

    def custom_exit_price(self, pair: str, trade: Any, current_time: Any, proposed_rate: float,
                          current_profit: float, exit_tag: str | None,
                          **kwargs: Any) -> float:  # fmt: skip
        """Backtest slippage on exits freqtrade prices through this hook (exit signals and
        ``custom_exit``; stop-loss and ROI exits fill unslipped)."""
        if not self._liq_slips():
            return proposed_rate
        short = bool(getattr(trade, "is_short", False))
        return costs.slipped_price(proposed_rate, self.liq_slippage.slippage_bp, buy=short)

    def liq_last_row(self, pair: str) -> pd.Series | None:
        """The latest analysed candle of ``pair`` (causal in backtests: freqtrade trims it)."""
        df = stops.analyzed_frame(getattr(self, "dp", None), pair, self.timeframe)
        return None if df is None else df.iloc[-1]

    def liq_signal_row(self, pair: str, trade: Any) -> pd.Series | None:
        """The candle whose signal opened ``trade`` (the last candle closed before the entry)."""
        df = stops.analyzed_frame(getattr(self, "dp", None), pair, self.timeframe)
        return None if df is None else stops.signal_row(df, trade.open_date_utc, self.timeframe)

    def liq_cluster_stop(
        self, pair: str, trade: Any, current_rate: float, *, buffer_atr: float | None = None
    ) -> float | None:
        """``custom_stoploss`` value beyond the nearest adverse cluster plus an ATR buffer;
        ``None`` (keep the stop) when no cluster is known. freqtrade only ever tightens a stop."""
        buffer = self.liq_stop_buffer_atr if buffer_atr is None else buffer_atr
        return stops.cluster_stoploss(self.liq_last_row(pair), trade, current_rate, buffer)
