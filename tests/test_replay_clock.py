"""Clocks and fault injection of the replay exchange (no server needed)."""

from __future__ import annotations

import pytest

from liqsignals.replay.clock import WEEK_MS, HistoricalClock, LiveClock
from liqsignals.replay.faults import Fault, FaultConfig, FaultInjector


class FakeWall:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def test_historical_clock_is_fixed_and_unshifted() -> None:
    clock = HistoricalClock(1_700_000_000_000)
    assert clock.now_ms() == clock.now_ms() == 1_700_000_000_000
    assert clock.offset_ms == 0 and not clock.live
    assert clock.to_data(123) == 123 and clock.to_served(123) == 123
    clock.advance(900_000)
    assert clock.now_ms() == 1_700_000_900_000
    clock.set(5)
    assert clock.data_now_ms() == 5


def test_live_clock_shifts_history_by_whole_weeks_to_the_wall_clock() -> None:
    wall = FakeWall(1_795_000_000_123)
    start = 1_748_000_000_000
    clock = LiveClock(start, wall=wall)
    assert clock.live
    assert clock.offset_ms % WEEK_MS == 0
    # the stored start plays back as now, to within half a week
    assert abs(clock.data_now_ms() - start) <= WEEK_MS // 2
    assert clock.now_ms() == wall.now
    before = clock.data_now_ms()
    wall.now += 60_000
    assert clock.data_now_ms() - before == 60_000
    assert clock.to_served(clock.to_data(42)) == 42


def test_live_clock_speed() -> None:
    wall = FakeWall(10 * WEEK_MS)
    clock = LiveClock(3 * WEEK_MS, speed=60.0, wall=wall)
    t0 = clock.now_ms()
    wall.now += 1_000  # one wall second is one exchange minute
    assert clock.now_ms() - t0 == 60_000
    with pytest.raises(ValueError, match="speed"):
        LiveClock(0, speed=0)


def test_fault_config_parse_and_validation() -> None:
    cfg = FaultConfig.parse("server_error=0.1, rate_limit=0.05,retry_after_s=3,seed=9,paths=/a|/b")
    assert (cfg.server_error, cfg.rate_limit, cfg.retry_after_s, cfg.seed) == (0.1, 0.05, 3, 9)
    assert cfg.paths == ("/a", "/b") and cfg.enabled
    assert not FaultConfig().enabled
    with pytest.raises(ValueError, match="bad fault setting"):
        FaultConfig.parse("nonsense=1")
    with pytest.raises(ValueError, match="bad value"):
        FaultConfig.parse("timeout=lots")
    with pytest.raises(ValueError, match="not in"):
        FaultConfig(server_error=1.5)
    with pytest.raises(ValueError, match="more than 1"):
        FaultConfig(server_error=0.6, bad_gateway=0.6)


def test_fault_draws_are_seeded_and_follow_the_rates() -> None:
    cfg = FaultConfig(server_error=0.2, rate_limit=0.1, malformed=0.05, seed=3)
    a = [FaultInjector(cfg).draw("/fapi/v1/klines") for _ in range(1)]
    inj1, inj2 = FaultInjector(cfg), FaultInjector(cfg)
    seq1 = [inj1.draw("/fapi/v1/klines") for _ in range(4000)]
    seq2 = [inj2.draw("/fapi/v1/klines") for _ in range(4000)]
    assert seq1 == seq2 and a[0] == seq1[0]
    share = {f: seq1.count(f) / len(seq1) for f in Fault}
    assert share[Fault.SERVER_ERROR] == pytest.approx(0.2, abs=0.03)
    assert share[Fault.RATE_LIMIT] == pytest.approx(0.1, abs=0.03)
    assert share[Fault.MALFORMED] == pytest.approx(0.05, abs=0.02)
    assert share[Fault.TIMEOUT] == 0 and share[Fault.BAD_GATEWAY] == 0
    # time and ping stay healthy unless named explicitly
    assert all(inj1.draw("/fapi/v1/time") is None for _ in range(200))


def test_fault_paths_limit_where_faults_happen() -> None:
    inj = FaultInjector(FaultConfig(server_error=1.0, paths=("/fapi/v1/depth",)))
    assert inj.draw("/fapi/v1/depth") is Fault.SERVER_ERROR
    assert inj.draw("/fapi/v1/klines") is None


def test_candle_faults_drop_and_duplicate_rows() -> None:
    rows = list(range(2000))
    dropped = FaultInjector(FaultConfig(missing_candle=0.1, seed=1)).mangle_rows("/k", rows)
    assert 1700 < len(dropped) < 1900 and dropped == sorted(set(dropped))
    doubled = FaultInjector(FaultConfig(duplicate_candle=0.1, seed=1)).mangle_rows("/k", rows)
    assert 2100 < len(doubled) < 2300 and sorted(set(doubled)) == rows
    assert FaultInjector().mangle_rows("/k", rows) == rows
