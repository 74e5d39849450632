"""Interval statistics for overlapping samples: moving-block bootstrap and Holm's correction.

Samples taken every few candles with a horizon of many candles overlap, so an i.i.d. bootstrap
understates the uncertainty. :func:`paired_block_bootstrap` resamples circular blocks of
consecutive samples (Künsch's moving-block bootstrap on a circle): a resample is the mean of
``ceil(n / block)`` blocks drawn with replacement among the ``n`` circular blocks of length
``block``. With ``b`` given, the statistic is the mean of the paired differences ``a - b``.
:func:`block_bootstrap_ratio` does the same for ``sum(num) / sum(den)`` (a lift).

:func:`holm` is Holm's step-down adjustment of a family of p-values (family-wise error rate).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = [
    "Interval",
    "block_bootstrap_ratio",
    "block_resample_sums",
    "holm",
    "paired_block_bootstrap",
]


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap interval.

    estimate : the statistic on the data; low, high : the percentile interval at ``confidence``;
    p_value : one-sided bootstrap p-value of ``statistic <= null``
    (``(1 + #{resample <= null}) / (1 + resamples)``); block : block length in samples;
    n : number of samples; resamples, confidence, null : the settings.
    """

    estimate: float
    low: float
    high: float
    p_value: float
    block: int
    n: int
    resamples: int
    confidence: float
    null: float

    def covers(self, value: float) -> bool:
        return bool(self.low <= value <= self.high)

    def excludes(self, value: float) -> bool:
        return not self.covers(value)

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in asdict(self).items()}  # fmt: skip


def _check(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(f"{name} has non-finite values (first at position {int(bad[0])})")
    return arr


def block_resample_sums(
    values: np.ndarray, block: int, resamples: int, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """Sums of ``resamples`` circular moving-block resamples of ``values``.

    Returns the sums (one per resample) and the number of values in each resample
    (``ceil(n / block) * block``); their ratio is the resampled mean.
    """
    x = np.asarray(values, dtype=np.float64)
    n = x.shape[0]
    b = int(min(max(1, block), n))
    k = math.ceil(n / b)
    ext = np.concatenate([x, x[: b - 1]]) if b > 1 else x
    csum = np.concatenate([[0.0], np.cumsum(ext)])
    starts_sum = csum[b : b + n] - csum[:n]  # sum of the block starting at each position
    picks = rng.integers(0, n, size=(resamples, k))
    return starts_sum[picks].sum(axis=1), k * b


def _interval(est: float, boot: np.ndarray, confidence: float, null: float, block: int,
              n: int) -> Interval:  # fmt: skip
    alpha = 1.0 - confidence
    low, high = np.quantile(boot, [alpha / 2.0, 1.0 - alpha / 2.0])
    p = (1.0 + float(np.sum(boot <= null))) / (1.0 + boot.shape[0])
    return Interval(float(est), float(low), float(high), float(p), int(block), int(n),
                    int(boot.shape[0]), float(confidence), float(null))  # fmt: skip


def _validate(block: int, resamples: int, confidence: float) -> None:
    if int(block) < 1:
        raise ValueError(f"block must be >= 1 sample, got {block!r}")
    if int(resamples) < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")


def paired_block_bootstrap(
    a: np.ndarray | Sequence[float],
    b: np.ndarray | Sequence[float] | None = None,
    *,
    block: int,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    null: float = 0.0,
) -> Interval:
    """Moving-block bootstrap interval of ``mean(a - b)`` (or ``mean(a)`` without ``b``).

    ``a`` and ``b`` are per-sample scores in time order (the same samples, paired); blocks of
    ``block`` consecutive samples keep the serial dependence. Raises ``ValueError`` on empty,
    misaligned or non-finite input.
    """
    _validate(block, resamples, confidence)
    x = _check(np.asarray(a), "a")
    if b is not None:
        y = _check(np.asarray(b), "b")
        if y.shape != x.shape:
            raise ValueError(f"a and b must be paired: lengths {x.shape[0]} and {y.shape[0]}")
        x = x - y
    if x.shape[0] == 0:
        raise ValueError("no samples to bootstrap")
    rng = np.random.default_rng(seed)
    sums, m = block_resample_sums(x, block, int(resamples), rng)
    return _interval(float(x.mean()), sums / m, confidence, null, min(block, x.shape[0]),
                     x.shape[0])  # fmt: skip


def block_bootstrap_ratio(
    num: np.ndarray | Sequence[float],
    den: np.ndarray | Sequence[float],
    *,
    block: int,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    null: float = 1.0,
) -> Interval:
    """Moving-block bootstrap interval of ``sum(num) / sum(den)`` (the same blocks for both)."""
    _validate(block, resamples, confidence)
    x = _check(np.asarray(num), "num")
    y = _check(np.asarray(den), "den")
    if y.shape != x.shape:
        raise ValueError(f"num and den must be paired: lengths {x.shape[0]} and {y.shape[0]}")
    if x.shape[0] == 0:
        raise ValueError("no samples to bootstrap")
    if not y.sum() > 0:
        raise ValueError("den sums to zero: the ratio is undefined")
    sx, _ = block_resample_sums(x, block, int(resamples), np.random.default_rng(seed))
    sy, _ = block_resample_sums(y, block, int(resamples), np.random.default_rng(seed))
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = np.where(sy > 0, sx / np.where(sy > 0, sy, 1.0), np.nan)
    boot = boot[np.isfinite(boot)]
    return _interval(float(x.sum() / y.sum()), boot, confidence, null, min(block, x.shape[0]),
                     x.shape[0])  # fmt: skip


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the input order (capped at 1, monotone).

    >>> holm([0.01, 0.04, 0.03, 0.005]).round(3).tolist()
    [0.03, 0.06, 0.06, 0.02]
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError("p_values must be one-dimensional")
    if p.size and (not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1):
        raise ValueError("p_values must lie in [0, 1]")
    m = p.shape[0]
    order = np.argsort(p, kind="stable")
    adj_sorted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adj_sorted, 1.0)
    return out
