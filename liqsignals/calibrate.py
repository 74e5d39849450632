"""Fit the model's free parameters to realised liquidations, and score the fit on later data.

The objective is the mean of the two Spearman rank correlations (long side, short side) between
estimated and realised liquidations per bar (:func:`liqsignals.evaluate.compare_realised`), averaged
over pairs. Ranks do not see the scale, and without open interest every estimate is proportional to
``participation``; so the search runs over the parameters that change the *shape* of the estimates,
and ``participation`` is then set in closed form so that the median ratio of estimated to realised
totals on the training bars is 1 (``log10_scale = 0``).

Searched (seeded, within ``budget`` model evaluations):

* ``window``: one of :data:`WINDOW_CHOICES`;
* ``close_half_life``: one of :data:`HALF_LIFE_CHOICES` (``None`` = no decay);
* ``direction_tilt``: 0 .. 1;
* the leverage mix: a named preset (``all``, ``high``, ``low``) or weights over
  :data:`LEVERAGE_GRID` shaped as a log-normal bump, centre 3x .. 75x and spread 0.3 .. 1.5
  (natural-log units).

The search evaluates the base model and the named leverage presets first, then random points
(about half the budget), then a coordinate search around the best point (neighbouring choices,
continuous steps halved when nothing improves). Progress goes to ``progress(message)``.

Example
-------
>>> result = calibrate({"BTC/USDT:USDT": candles}, {"BTC/USDT:USDT": realised},
...                    train="20241101-20250301", test="20250301-20250601")  # doctest: +SKIP
>>> result.test_score, result.params                                          # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liqsignals.engine import LiquidationEngine
from liqsignals.evaluate import (
    candle_dates,
    candle_spacing,
    compare_realised,
    format_timedelta,
    json_safe,
    json_value,
    read_realised,
    realised_bars,
)
from liqsignals.fileio import atomic_write_text
from liqsignals.model import LEVERAGE_PRESETS, LiquidationModel, parse_duration

__all__ = [
    "CALIBRATION_WARMUP",
    "HALF_LIFE_CHOICES",
    "LEVERAGE_GRID",
    "OBJECTIVE",
    "WINDOW_CHOICES",
    "CalibrationResult",
    "calibrate",
    "format_range",
    "leverage_weights",
    "write_preset",
]

WINDOW_CHOICES: tuple[str, ...] = ("1d", "3d", "1w", "2w", "1M")
HALF_LIFE_CHOICES: tuple[str | None, ...] = ("4h", "6h", "12h", "1d", "2d", "4d", "1w", None)
LEVERAGE_GRID: tuple[float, ...] = (2.0, 3.0, 5.0, 10.0, 20.0, 25.0, 50.0, 75.0, 100.0)
TILT_CHOICES: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
#: History to load before the training period: the longest searched window (1M) plus two days.
CALIBRATION_WARMUP = pd.Timedelta(days=32)
OBJECTIVE = "mean of the Spearman rank correlations (long, short) of estimated vs realised per bar"

_CENTRE_RANGE = (3.0, 75.0)
_SPREAD_RANGE = (0.3, 1.5)


def leverage_weights(centre: float, spread: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Leverages of :data:`LEVERAGE_GRID` and weights ``exp(-(ln L - ln centre)**2 / (2
    spread**2))``, normalised; leverages with a weight under 0.5 % are dropped (fewer cohorts)."""
    lev = np.asarray(LEVERAGE_GRID)
    w = np.exp(-((np.log(lev) - math.log(centre)) ** 2) / (2.0 * spread**2))
    w = w / w.sum()
    keep = w >= 0.005
    w = np.round(w[keep] / w[keep].sum(), 4)
    return tuple(float(x) for x in lev[keep]), tuple(float(x) for x in w)


def format_range(start: pd.Timestamp, stop: pd.Timestamp) -> str:
    """``YYYYMMDD-YYYYMMDD`` (with ``THHMM`` where an end is not midnight)."""

    def one(ts: pd.Timestamp) -> str:
        return ts.strftime("%Y%m%d") if ts == ts.normalize() else ts.strftime("%Y%m%dT%H%M")

    return f"{one(start)}-{one(stop)}"


def _point_to_changes(point: Mapping[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {
        "window": point["window"],
        "close_half_life": point["close_half_life"],
        "direction_tilt": float(point["direction_tilt"]),
    }
    if point.get("leverage"):
        changes["leverage"] = point["leverage"]
    else:
        levs, ws = leverage_weights(point["lev_centre"], point["lev_spread"])
        changes["leverages"] = levs
        changes["leverage_weights"] = ws
    return changes


def _model_for(base: LiquidationModel, point: Mapping[str, Any]) -> LiquidationModel:
    return base.replace(**_point_to_changes(point))


def _describe(point: Mapping[str, Any]) -> str:
    lev = point.get("leverage") or f"~{point['lev_centre']:.0f}x/{point['lev_spread']:.2f}"
    return (
        f"window={point['window']} half_life={point['close_half_life']} "
        f"tilt={point['direction_tilt']:.2f} leverage={lev}"
    )


def _key(point: Mapping[str, Any]) -> tuple[Any, ...]:
    lev: Any = point.get("leverage") or (
        round(float(point["lev_centre"]), 3),
        round(float(point["lev_spread"]), 3),
    )
    return (
        point["window"],
        point["close_half_life"],
        round(float(point["direction_tilt"]), 3),
        lev,
    )


def _base_point(base: LiquidationModel) -> dict[str, Any]:
    d = base.to_dict()
    window = d["window"] if d["window"] in WINDOW_CHOICES else WINDOW_CHOICES[2]
    hl = d["close_half_life"]
    if hl is not None and not isinstance(hl, str):
        hl = None
    preset = next(
        (
            name
            for name, (lv, w) in LEVERAGE_PRESETS.items()
            if tuple(lv) == tuple(d["leverages"]) and tuple(w) == tuple(d["leverage_weights"])
        ),
        None,
    )
    point: dict[str, Any] = {
        "window": window,
        "close_half_life": hl,
        "direction_tilt": float(d["direction_tilt"]),
        "leverage": preset,
        "lev_centre": 15.0,
        "lev_spread": 0.8,
    }
    if preset is None:
        levs = np.asarray(d["leverages"], dtype=float)
        ws = np.asarray(d["leverage_weights"], dtype=float)
        ws = ws / ws.sum()
        mu = float(np.sum(ws * np.log(levs)))
        sd = float(np.sqrt(np.sum(ws * (np.log(levs) - mu) ** 2)))
        point["lev_centre"] = float(np.clip(math.exp(mu), *_CENTRE_RANGE))
        point["lev_spread"] = float(np.clip(sd, *_SPREAD_RANGE))
    return point


def _random_point(rng: np.random.Generator) -> dict[str, Any]:
    use_preset = rng.random() < 0.25
    return {
        "window": WINDOW_CHOICES[rng.integers(len(WINDOW_CHOICES))],
        "close_half_life": HALF_LIFE_CHOICES[rng.integers(len(HALF_LIFE_CHOICES))],
        "direction_tilt": float(np.round(rng.random(), 3)),
        "leverage": sorted(LEVERAGE_PRESETS)[rng.integers(len(LEVERAGE_PRESETS))]
        if use_preset
        else None,
        "lev_centre": float(
            np.round(
                math.exp(rng.uniform(math.log(_CENTRE_RANGE[0]), math.log(_CENTRE_RANGE[1]))), 2
            )
        ),
        "lev_spread": float(np.round(rng.uniform(*_SPREAD_RANGE), 3)),
    }


def _neighbours(point: Mapping[str, Any], steps: Mapping[str, float]) -> list[dict[str, Any]]:
    """Points one move away along each coordinate."""
    out: list[dict[str, Any]] = []

    def with_(**kw: Any) -> dict[str, Any]:
        return {**point, **kw}

    i = WINDOW_CHOICES.index(point["window"])
    out += [with_(window=WINDOW_CHOICES[j]) for j in (i - 1, i + 1) if 0 <= j < len(WINDOW_CHOICES)]
    i = HALF_LIFE_CHOICES.index(point["close_half_life"])
    out += [
        with_(close_half_life=HALF_LIFE_CHOICES[j])
        for j in (i - 1, i + 1)
        if 0 <= j < len(HALF_LIFE_CHOICES)
    ]
    t = float(point["direction_tilt"])
    out += [
        with_(direction_tilt=round(v, 3))
        for v in (t - steps["tilt"], t + steps["tilt"])
        if 0.0 <= v <= 1.0
    ]
    if point.get("leverage"):
        out += [with_(leverage=None)]  # leave the preset for the continuous mix
        out += [with_(leverage=p) for p in sorted(LEVERAGE_PRESETS) if p != point["leverage"]]
    else:
        c, s = float(point["lev_centre"]), float(point["lev_spread"])
        f = math.exp(steps["centre"])
        out += [
            with_(lev_centre=round(v, 2))
            for v in (c / f, c * f)
            if _CENTRE_RANGE[0] <= v <= _CENTRE_RANGE[1]
        ]
        out += [
            with_(lev_spread=round(v, 3))
            for v in (s - steps["spread"], s + steps["spread"])
            if _SPREAD_RANGE[0] <= v <= _SPREAD_RANGE[1]
        ]
    return out


class _Problem:
    """Candles, realised bars and the bar range of one period, for all pairs."""

    def __init__(
        self,
        candles: Mapping[str, pd.DataFrame],
        realised: Mapping[str, pd.DataFrame],
        start: pd.Timestamp,
        stop: pd.Timestamp,
        name: str,
    ) -> None:
        self.pairs = list(candles)
        self.candles: dict[str, pd.DataFrame] = {}
        self.realised = realised
        self.start = start
        self.stop = stop
        self.name = name
        longest = max(parse_duration(w, "window") for w in WINDOW_CHOICES)
        for pair in self.pairs:
            df = candles[pair]
            d = pd.Series(candle_dates(df))
            first = pd.Timestamp(d.iloc[0], tz="UTC") if len(d) else None
            if first is None:
                raise ValueError(f"{pair}: no candles")
            # every candidate window must be warmed up on the same bars: start late enough
            self.start = max(self.start, first + longest)
            lo = d.searchsorted((start - longest - pd.Timedelta(days=1)).tz_localize(None))
            hi = d.searchsorted(stop.tz_localize(None), side="right")
            self.candles[pair] = df.iloc[lo:hi].reset_index(drop=True)
        if self.start >= self.stop:
            raise ValueError(
                f"{name} period {format_range(start, stop)} leaves no bar after the longest "
                f"window's warm-up ({WINDOW_CHOICES[-1]}); candles start too late"
            )

    def evaluate(self, model: LiquidationModel) -> dict[str, dict[str, Any]]:
        out = {}
        for pair in self.pairs:
            df = self.candles[pair]
            est = LiquidationEngine(model, summaries=False).update_many(df)
            bars = realised_bars(
                df, self.realised[pair], estimates=est, start=self.start, stop=self.stop
            )
            out[pair] = compare_realised(bars)
        return out


@dataclass
class CalibrationResult:
    """What :func:`calibrate` found (fields described there); :meth:`to_dict` is the
    ``liqsignals calibrate --json`` object (every field but ``model`` and ``history``, which
    ``full=True`` adds), ``preset`` is the file :func:`write_preset` wrote, if any."""

    params: dict[str, Any]
    model: dict[str, Any]
    objective: str
    pairs: list[str]
    timeframe: str
    train: str
    test: str
    train_bars: str
    test_bars: str
    train_score: float | None
    test_score: float | None
    start_train_score: float | None
    start_test_score: float | None
    baseline_test_score: float | None
    excursion_test_score: float | None
    train_metrics: dict[str, dict[str, Any]]
    test_metrics: dict[str, dict[str, Any]]
    start_test_metrics: dict[str, dict[str, Any]]
    evaluations: int
    budget: int
    seed: int
    seconds: float
    history: list[float] = field(default_factory=list)
    preset: str | None = None

    def to_dict(self, *, full: bool = False) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if out["preset"] is None:
            del out["preset"]
        if not full:
            del out["model"], out["history"]
        return json_safe(out)


def _score(metrics: Mapping[str, Mapping[str, Any]], key: str = "spearman_mean") -> float:
    vals = [m[key] for m in metrics.values()]
    if any(v is None for v in vals):
        return -math.inf
    return float(np.mean(vals))


def calibrate(
    candles: Mapping[str, pd.DataFrame],
    realised: Mapping[str, pd.DataFrame | str | Path],
    *,
    train: str | tuple,
    test: str | tuple,
    model: LiquidationModel | None = None,
    budget: int = 60,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> CalibrationResult:
    """Fit the model to realised liquidations on ``train`` and score it on ``test``.

    Parameters
    ----------
    candles : pair -> candles (one timeframe), covering both periods plus one month before
        ``train`` for warm-up (less only shortens the usable training period).
    realised : pair -> realised liquidation bars (anything :func:`liqsignals.evaluate.read_realised`
        reads).
    train, test : freqtrade-style ranges (``"20241101-20250301"``); bars must lie entirely inside
        a range; the test period must start at or after the end of the training period.
    model : the starting model (default :class:`~liqsignals.LiquidationModel()`); parameters that
        are not searched keep its values.
    budget : model evaluations on the training period (at least 4).
    seed : seed of the random search.
    progress : called with one line per evaluation.

    Returns
    -------
    :class:`CalibrationResult` with fields:

    params : fitted parameters (the searched ones and ``participation``), for
        :class:`~liqsignals.LiquidationModel`
    model : the full fitted parameter set (``LiquidationModel.to_dict()``)
    train, test : the ranges as ``YYYYMMDD-YYYYMMDD`` (bars actually used: train_bars, test_bars)
    train_score, test_score : objective of the fitted model (mean Spearman, -1..1)
    start_train_score, start_test_score : the same for the starting model
    test_metrics : pair -> :func:`~liqsignals.evaluate.compare_realised` of the fitted model on
        the test period (includes both baselines); start_test_metrics : same for the start model
    evaluations, seconds, objective, pairs, timeframe, history (score per evaluation)
    """
    from liqsignals.data.datadir import parse_timerange

    if budget < 4:
        raise ValueError(f"budget must be at least 4 evaluations, got {budget}")
    if not candles:
        raise ValueError("no candles given")
    missing = [p for p in candles if p not in realised]
    if missing:
        raise ValueError(f"no realised liquidations for {missing}")
    tr, te = parse_timerange(train), parse_timerange(test)
    if None in (tr.start, tr.stop, te.start, te.stop):
        raise ValueError("train and test need both ends (YYYYMMDD-YYYYMMDD)")
    assert tr.start is not None and tr.stop is not None and te.start is not None
    assert te.stop is not None
    if te.start < tr.stop:
        raise ValueError(
            f"test period {test} overlaps or precedes the training period {train}: the score "
            f"must come from later data"
        )
    say = progress or (lambda _msg: None)
    real = {p: read_realised(realised[p]) for p in candles}
    tfs = {p: candle_spacing(candle_dates(df)) for p, df in candles.items()}
    base = model or LiquidationModel()
    train_p = _Problem(candles, real, tr.start, tr.stop, "train")
    test_p = _Problem(candles, real, te.start, te.stop, "test")
    rng = np.random.default_rng(seed)
    t0 = time.monotonic()
    cache: dict[tuple[Any, ...], float] = {}
    history: list[float] = []
    best: dict[str, Any] = {}
    best_score = -math.inf

    def run(point: dict[str, Any]) -> float:
        nonlocal best, best_score
        key = _key(point)
        if key in cache:
            return cache[key]
        if len(history) >= budget:
            return -math.inf
        score = _score(train_p.evaluate(_model_for(base, point)))
        cache[key] = score
        history.append(score)
        if score > best_score:
            best, best_score = dict(point), score
        say(
            f"[{len(history)}/{budget}] train score {score:.4f} (best {best_score:.4f}) "
            f"{_describe(point)}"
        )
        return score

    start_point = _base_point(base)
    run(start_point)
    for name in sorted(LEVERAGE_PRESETS):
        run({**start_point, "leverage": name})
    n_random = max(0, budget // 2 - len(history))
    for _ in range(n_random):
        run(_random_point(rng))
    steps = {"tilt": 0.25, "centre": math.log(2.0), "spread": 0.3}
    while len(history) < budget:
        improved = False
        for cand in _neighbours(best, steps):
            if len(history) >= budget:
                break
            before = best_score
            run(cand)
            if best_score > before:
                improved = True
                break  # restart the neighbourhood from the new best point
        if not improved:
            if steps["tilt"] < 0.02:
                break  # converged before the budget ran out
            steps = {k: v / 2.0 for k, v in steps.items()}
    fitted = _model_for(base, best)
    # participation in closed form: estimates scale with it (candles only), ranks do not
    train_metrics = train_p.evaluate(fitted)
    scales = [m["log10_scale"] for m in train_metrics.values() if m["log10_scale"] is not None]
    if scales:
        p = fitted.participation / 10.0 ** float(np.mean(scales))
        fitted = fitted.replace(participation=float(f"{p:.4g}"))
        train_metrics = train_p.evaluate(fitted)
    test_metrics = test_p.evaluate(fitted)
    start_train = train_p.evaluate(base)
    start_test = test_p.evaluate(base)
    params = {k: v for k, v in fitted.to_dict().items() if k in _FITTED_KEYS}
    if best.get("leverage"):
        params.pop("leverages", None)
        params.pop("leverage_weights", None)
    else:
        params.pop("leverage", None)
    tf = next(iter(tfs.values()))
    return CalibrationResult(
        params=params,
        model=fitted.to_dict(),
        objective=OBJECTIVE,
        pairs=list(candles),
        timeframe=format_timedelta(tf),
        train=format_range(tr.start, tr.stop),
        test=format_range(te.start, te.stop),
        train_bars=_bar_span(train_metrics),
        test_bars=_bar_span(test_metrics),
        train_score=json_value(_score(train_metrics)),
        test_score=json_value(_score(test_metrics)),
        start_train_score=json_value(_score(start_train)),
        start_test_score=json_value(_score(start_test)),
        baseline_test_score=json_value(_score(test_metrics, "baseline_spearman_mean")),
        excursion_test_score=json_value(_score(test_metrics, "excursion_spearman_mean")),
        train_metrics=train_metrics,
        test_metrics=test_metrics,
        start_test_metrics=start_test,
        evaluations=len(history),
        budget=budget,
        seed=seed,
        seconds=round(time.monotonic() - t0, 1),
        history=[round(h, 5) for h in history],
    )


def _bar_span(metrics: Mapping[str, Mapping[str, Any]]) -> str:
    """``first .. last`` bar open time over the pairs, and the bar count (first pair)."""
    first = min(str(m["first_bar"]) for m in metrics.values())
    last = max(str(m["last_bar"]) for m in metrics.values())
    n = next(iter(metrics.values()))["n_bars"]
    return f"{first[:16]} .. {last[:16]} UTC ({n} bars)"


_FITTED_KEYS = (
    "window",
    "leverage",
    "leverages",
    "leverage_weights",
    "participation",
    "close_half_life",
    "direction_tilt",
)


def write_preset(
    result: CalibrationResult | Mapping[str, Any], path: str | Path, *, realised_name: str = ""
) -> Path:
    """Write a calibration result as a preset file for :meth:`LiquidationModel.preset`.

    The file holds the fitted parameters and metadata only::

        {"params": {...}, "fitted_on": {"pair", "timeframe", "train", "objective", ...},
         "test_score": ..., "test": "YYYYMMDD-YYYYMMDD", ...}
    """
    path = Path(path)
    if isinstance(result, CalibrationResult):
        result = result.to_dict(full=True)
    LiquidationModel(**_tuples(result["params"]))  # must load
    pairs = list(result["pairs"])
    doc = {
        "params": dict(result["params"]),
        "fitted_on": {
            "pair": pairs[0] if len(pairs) == 1 else pairs,
            "timeframe": result["timeframe"],
            "train": result["train"],
            "train_bars": result["train_bars"],
            "objective": result["objective"],
            "realised": realised_name,
            "evaluations": result["evaluations"],
            "seed": result["seed"],
        },
        "train_score": result["train_score"],
        "test": result["test"],
        "test_score": result["test_score"],
        "start_test_score": result["start_test_score"],
        "baseline_test_score": result["baseline_test_score"],
        "excursion_test_score": result["excursion_test_score"],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")
    return path


def _tuples(params: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(params)
    for key in ("leverages", "leverage_weights"):
        if out.get(key) is not None:
            out[key] = tuple(out[key])
    return out
