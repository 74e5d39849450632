"""Known answers for the moving-block bootstrap and Holm's correction."""

from __future__ import annotations

import numpy as np
import pytest

from liqsignals.analysis.intervals import (
    block_bootstrap_ratio,
    block_resample_sums,
    holm,
    paired_block_bootstrap,
)


def test_holm_known_answer() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4*0.005, 3*0.01, max(2*0.03, .), max(1*0.04, 0.06)
    assert holm([0.01, 0.04, 0.03, 0.005]).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]).tolist() == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([]).tolist() == []
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([0.1, 1.5])


def test_constant_difference_gives_a_point_interval() -> None:
    a = np.arange(50, dtype=float)
    ci = paired_block_bootstrap(a + 0.25, a, block=7, resamples=200)
    assert ci.estimate == pytest.approx(0.25)
    assert ci.low == pytest.approx(0.25) and ci.high == pytest.approx(0.25)
    assert ci.p_value == pytest.approx(1 / 201)  # no resample at or below 0


def test_full_length_block_reproduces_the_mean() -> None:
    # a block of the whole series is a rotation of it: every resample has the sample mean
    rng = np.random.default_rng(1)
    x = rng.normal(size=40)
    ci = paired_block_bootstrap(x, block=40, resamples=100)
    assert ci.low == pytest.approx(x.mean()) and ci.high == pytest.approx(x.mean())


def test_block_sums_are_circular() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0])

    class Fixed:
        def integers(self, lo: int, hi: int, size: tuple[int, int]) -> np.ndarray:
            return np.array([[3, 0]])  # blocks starting at 3 (4, 1) and 0 (1, 2)

    sums, m = block_resample_sums(x, 2, 1, Fixed())  # type: ignore[arg-type]
    assert m == 4 and sums.tolist() == [8.0]


def test_coverage_on_autocorrelated_noise() -> None:
    # AR(1) noise with mean 0: 1-week-like blocks cover the true mean in about 95 % of seeds
    cover = 0
    seeds = range(60)
    for s in seeds:
        rng = np.random.default_rng(s)
        e = rng.normal(size=600)
        x = np.empty(600)
        x[0] = e[0]
        for i in range(1, 600):
            x[i] = 0.7 * x[i - 1] + e[i]
        cover += paired_block_bootstrap(x, block=30, resamples=400, seed=s).covers(0.0)
    assert 0.85 <= cover / len(seeds) <= 1.0


def test_ratio_interval_and_bad_input() -> None:
    num = np.array([1.0, 0.0, 1.0, 1.0])
    den = np.array([0.5, 0.5, 1.0, 0.5])
    ci = block_bootstrap_ratio(num, den, block=2, resamples=100)
    assert ci.estimate == pytest.approx(3.0 / 2.5)
    assert ci.low <= ci.estimate <= ci.high
    with pytest.raises(ValueError, match="paired"):
        paired_block_bootstrap([1.0, 2.0], [1.0], block=1)
    with pytest.raises(ValueError, match="position 1"):
        paired_block_bootstrap([1.0, np.nan], block=1)
    with pytest.raises(ValueError, match="block"):
        paired_block_bootstrap([1.0], block=0)
    with pytest.raises(ValueError, match="zero"):
        block_bootstrap_ratio([1.0], [0.0], block=1)
