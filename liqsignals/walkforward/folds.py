"""Consecutive, non-overlapping walk-forward folds: each fold is a training span followed
directly by its test span, and fold ``i + 1`` starts where fold ``i`` ends.

Boundaries fall on whole UTC days. freqtrade keeps the candles whose open time is ``<=`` a
timerange's stop, so a span ``[start, stop)`` is handed to freqtrade as
``START-(stop - 1 s)``: the candle that opens at ``stop`` belongs to the next span only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["MIN_TEST_DAYS", "MIN_TRAIN_DAYS", "Fold", "freqtrade_timerange", "make_folds"]

#: the shortest training span a fold may have (hyperopt on less is noise)
MIN_TRAIN_DAYS = 7
#: the shortest test span a fold may have
MIN_TEST_DAYS = 3
_FMT = "%Y%m%dT%H%M%S"


def freqtrade_timerange(start: datetime, stop: datetime) -> str:
    """freqtrade's ``--timerange`` for the half-open span ``[start, stop)``."""
    return f"{start.strftime(_FMT)}-{(stop - timedelta(seconds=1)).strftime(_FMT)}"


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: train on ``[train_start, test_start)``, test on
    ``[test_start, test_stop)`` (UTC)."""

    index: int
    train_start: datetime
    test_start: datetime
    test_stop: datetime

    @property
    def train_stop(self) -> datetime:
        return self.test_start

    @property
    def train_timerange(self) -> str:
        return freqtrade_timerange(self.train_start, self.test_start)

    @property
    def test_timerange(self) -> str:
        return freqtrade_timerange(self.test_start, self.test_stop)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "train_start": self.train_start.isoformat(),
            "train_stop": self.train_stop.isoformat(),
            "test_start": self.test_start.isoformat(),
            "test_stop": self.test_stop.isoformat(),
            "train_timerange": self.train_timerange,
            "test_timerange": self.test_timerange,
        }


def _day(ts: datetime) -> datetime:
    ts = ts.astimezone(UTC) if ts.tzinfo else ts.replace(tzinfo=UTC)
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


def make_folds(
    start: datetime, stop: datetime, folds: int, train_fraction: float = 0.7
) -> list[Fold]:
    """``folds`` consecutive folds covering ``[start, stop)`` (whole days; the last fold's test
    span takes the days that do not divide evenly). Raises ``ValueError`` when a span would be
    shorter than :data:`MIN_TRAIN_DAYS` / :data:`MIN_TEST_DAYS`."""
    if folds < 1:
        raise ValueError(f"--folds must be >= 1, got {folds}")
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"--train-fraction must lie in (0, 1), got {train_fraction}")
    first, end = _day(start), _day(stop)
    days = (end - first).days
    fold_days = days // folds
    train_days = round(fold_days * train_fraction)
    test_days = fold_days - train_days
    if train_days < MIN_TRAIN_DAYS or test_days < MIN_TEST_DAYS:
        raise ValueError(
            f"folds too short: {days} days in {folds} folds give {train_days} training and "
            f"{test_days} test days per fold (need at least {MIN_TRAIN_DAYS} and "
            f"{MIN_TEST_DAYS}); use fewer folds or a longer --timerange"
        )
    out = []
    for i in range(folds):
        a = first + timedelta(days=i * fold_days)
        b = a + timedelta(days=train_days)
        c = end if i == folds - 1 else a + timedelta(days=fold_days)
        out.append(Fold(i, a, b, c))
    return out
