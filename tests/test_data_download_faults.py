"""Downloads through real ccxt HTTP against a misbehaving replay exchange: faults are retried or
reported clearly, files are never corrupted, and an interrupted download resumed later ends with
exactly the file an uninterrupted one writes."""

from __future__ import annotations

from pathlib import Path

import ccxt
import pandas as pd
import pytest
from _replay_support import add_metric_files, make_datadir

from liqsignals.data import download as dl
from liqsignals.data.datadir import load_series
from liqsignals.replay.faults import FaultConfig
from liqsignals.replay.server import ReplayExchange

PAIR = "BTC/USDT:USDT"
DATA_PATHS = ("/futures/data",)


def _download(server: ReplayExchange, target: Path, kind: str, tf: str, **kwargs):
    exchange = dl.make_exchange("binance", {"exchange": {"ccxt_config": server.ccxt_config()}})
    exchange.timeout = 3000  # ms: an injected timeout fails fast
    now = pd.Timestamp(server.store.last_close_ms(), unit="ms", tz="UTC")
    return dl.download(exchange, PAIR, tf, target, kind, progress=False, now=lambda: now, **kwargs)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    root = make_datadir(tmp_path_factory.mktemp("src"))
    add_metric_files(root)
    return root


@pytest.fixture(scope="module")
def clean_copy(source, tmp_path_factory) -> dict[str, pd.DataFrame]:
    """What an uninterrupted download without faults writes."""
    out = {}
    target = tmp_path_factory.mktemp("clean")
    with ReplayExchange(source) as server:
        for kind, tf in (("open_interest", "5m"), ("long_short_ratio", "1h")):
            _download(server, target, kind, tf)
            out[kind] = load_series(target, PAIR, tf, kind)
    return out


@pytest.mark.slow
def test_transient_faults_are_retried_to_the_same_file(source, clean_copy, tmp_path):
    faults = FaultConfig(
        server_error=0.15, bad_gateway=0.1, rate_limit=0.1, malformed=0.1, retry_after_s=3,
        paths=DATA_PATHS, seed=11,
    )  # fmt: skip
    waits: list[float] = []
    with ReplayExchange(source, faults=faults) as server:
        for kind, tf in (("open_interest", "5m"), ("long_short_ratio", "1h")):
            _download(server, tmp_path, kind, tf, sleep=waits.append)
            got = load_series(tmp_path, PAIR, tf, kind)
            pd.testing.assert_frame_equal(got, clean_copy[kind])
    assert waits, "faults were injected, so some requests were retried"
    assert 3.0 in waits  # a 429's Retry-After was honoured


@pytest.mark.slow
def test_interrupted_then_resumed_equals_uninterrupted(source, clean_copy, tmp_path):
    # every data request fails once the first pages are in: the run stops with a clear error
    with ReplayExchange(source, faults=FaultConfig(server_error=1.0, paths=DATA_PATHS)) as srv:
        with pytest.raises(ccxt.BaseError):
            _download(srv, tmp_path, "open_interest", "5m", sleep=lambda s: None)
    # nothing half-written: no file, or a readable file holding a prefix of the clean copy
    try:
        partial = load_series(tmp_path, PAIR, "5m", "open_interest")
    except FileNotFoundError:
        partial = None
    if partial is not None:
        pd.testing.assert_frame_equal(partial, clean_copy["open_interest"].iloc[: len(partial)])
    # a healthy rerun continues from the last stored row and ends with the clean file
    with ReplayExchange(source) as server:
        _download(server, tmp_path, "open_interest", "5m")
    pd.testing.assert_frame_equal(
        load_series(tmp_path, PAIR, "5m", "open_interest"), clean_copy["open_interest"]
    )


@pytest.mark.slow
def test_interruption_midway_keeps_pages_and_resumes(source, clean_copy, tmp_path):
    """Faults on some requests with no retries left: the run stops midway with pages on disk;
    the rerun fetches only the rest and the result equals the clean copy."""
    faults = FaultConfig(server_error=0.7, paths=DATA_PATHS, seed=3)
    stopped = False
    with ReplayExchange(source, faults=faults) as server:
        try:
            _download(server, tmp_path, "open_interest", "5m", sleep=lambda s: None)
        except ccxt.BaseError:
            stopped = True
    assert stopped  # with half the data requests failing, the retries run out
    try:
        partial = load_series(tmp_path, PAIR, "5m", "open_interest")
    except FileNotFoundError:
        partial = None  # stopped before the first page was stored
    if partial is not None:
        pd.testing.assert_frame_equal(partial, clean_copy["open_interest"].iloc[: len(partial)])
    with ReplayExchange(source) as server:
        _download(server, tmp_path, "open_interest", "5m")
    pd.testing.assert_frame_equal(
        load_series(tmp_path, PAIR, "5m", "open_interest"), clean_copy["open_interest"]
    )
