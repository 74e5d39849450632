"""The dry-run / live step reads the datadir's market series through a cache
(:class:`liqsignals.data.datadir.ReadCache`) and hands the engine arrays instead of a copied
frame: its output frames must equal the uncached path's (``liq_inputs`` ->
``market_inputs`` without a cache) candle after candle, also when a series file appears,
is rewritten, or is deleted while the bot runs, and on frames with gaps or filler candles."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _dryrun_support import LIVE_FRAME, load_strategy

from liqsignals import sample
from liqsignals.data.datadir import ReadCache, data_path, load_series, save_series, write_frame
from liqsignals.strategy import market_data as md

PAIR = "BTC/USDT:USDT"
META = {"pair": PAIR}
OLD_NS = 1_600_000_000 * 10**9  # a modification time long past: the cache trusts such reads


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return sample.load_candles(PAIR, "15m").iloc[-(LIVE_FRAME + 40) :].reset_index(drop=True)


@pytest.fixture()
def datadir(tmp_path: Path) -> Path:
    """The sample's BTC files, plus 5m mark candles (finer than the 15m candles)."""
    src = sample.datadir() / "futures"
    dst = tmp_path / "binance" / "futures"
    dst.mkdir(parents=True)
    for name in os.listdir(src):
        if name.startswith("BTC_"):
            shutil.copy(src / name, dst / name)
    five = load_series(tmp_path / "binance", PAIR, "5m", "futures")
    save_series(five, tmp_path / "binance", PAIR, "5m", "mark")
    return tmp_path / "binance"


def series(candles: pd.DataFrame, kind: str, seed: int) -> pd.DataFrame:
    """A synthetic series of ``kind`` at 15m on the candles' dates (positive values)."""
    rng = np.random.default_rng(seed)
    n = len(candles)
    dates = candles["date"]
    if kind == "open_interest":
        amount = 1e4 + np.cumsum(rng.normal(0.0, 10.0, n))
        return pd.DataFrame(
            {"date": dates, "open_interest_amount": amount, "open_interest_value": np.nan}
        )
    if kind == "taker_volume":
        vol = candles["volume"].to_numpy()
        share = rng.uniform(0.3, 0.7, n)
        return pd.DataFrame(
            {"date": dates, "taker_buy_volume": vol * share, "taker_sell_volume": vol * (1 - share)}
        )
    ratio = rng.uniform(0.6, 1.8, n)
    return pd.DataFrame(
        {
            "date": dates,
            "long_short_ratio": ratio,
            "long_account": ratio / (1 + ratio),
            "short_account": 1 / (1 + ratio),
        }
    )


def reference(datadir: Path):
    """The same strategy on the uncached path: ``liq_inputs`` overridden by the plain
    ``market_inputs`` (a fresh read of every file, a copied input frame)."""
    strategy = load_strategy(live=True, datadir=datadir)
    warned: set[tuple[str, str]] = set()

    def liq_inputs(self, dataframe, pair):
        return md.market_inputs(
            dataframe, self.dp, pair, self.timeframe, warned, datadir=self.config["datadir"]
        )

    strategy.__class__ = type("Uncached", (type(strategy),), {"liq_inputs": liq_inputs})
    return strategy


def both(fast, slow, frame: pd.DataFrame) -> pd.DataFrame:
    """One candle of both strategies on copies of ``frame``; their frames must be equal."""
    got = fast.liq_populate(frame.copy(), META)
    want = slow.liq_populate(frame.copy(), META)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert list(got.columns) == list(want.columns)
    return got


def test_the_fast_path_is_taken(datadir: Path, candles: pd.DataFrame) -> None:
    fast = load_strategy(live=True, datadir=datadir)
    assert fast.liq_live()
    fast.liq_populate(candles.iloc[:LIVE_FRAME].copy(), META)
    reads = fast.liq_read_cache.reads
    assert reads >= 1  # the 5m mark file
    for end in range(LIVE_FRAME + 1, LIVE_FRAME + 4):
        out = fast.liq_populate(candles.iloc[end - LIVE_FRAME : end].copy(), META)
        assert fast.liq_stream_stats(PAIR).last_mode == "update"
    # the mark file was written moments ago: read again until it is older than the tick
    # rule's two seconds, never fewer times than candles
    assert reads <= fast.liq_read_cache.reads <= reads + 3
    assert np.isfinite(out["liq_long_liquidated"].to_numpy()[-10:]).all()


def test_files_appearing_rewritten_and_deleted_while_running(
    datadir: Path, candles: pd.DataFrame
) -> None:
    fast, slow = load_strategy(live=True, datadir=datadir), reference(datadir)
    steps = iter(range(LIVE_FRAME, len(candles) + 1))

    def step() -> pd.DataFrame:
        end = next(steps)
        return both(fast, slow, candles.iloc[end - LIVE_FRAME : end].reset_index(drop=True))

    first = step()
    assert all(
        kind != "open_interest" for _, _, kind in fast.liq_read_cache.pair_data(datadir, PAIR)
    )
    # open interest appears after the start (atomic write: a new file)
    oi_path = save_series(
        series(candles, "open_interest", 1), datadir, PAIR, "15m", "open_interest"
    )
    with_oi = step()
    liq = [c for c in first.columns if c.startswith("liq_")]
    before = first[liq].to_numpy()[1:]  # the candles both frames hold
    assert not np.array_equal(with_oi[liq].to_numpy()[:-1], before, equal_nan=True)
    assert fast.liq_stream_stats(PAIR).last_mode == "rebuild"  # an input column was gained
    # taker volume and the long/short ratio, uncompressed: a rewrite keeps the size
    taker = data_path(datadir, PAIR, "15m", "taker_volume")
    taker.parent.mkdir(parents=True, exist_ok=True)
    series(candles, "taker_volume", 2).to_feather(taker, compression="uncompressed")
    ratio = data_path(datadir, PAIR, "15m", "long_short_ratio")
    series(candles, "long_short_ratio", 3).to_feather(ratio, compression="uncompressed")
    for path in (*datadir.glob("futures/*.feather"), taker, ratio):
        os.utime(path, ns=(OLD_NS, OLD_NS))
    step()
    step()  # served from the cache now (old files)
    reads = fast.liq_read_cache.reads
    step()
    assert fast.liq_read_cache.reads == reads
    # rewritten in place with the same size (same inode): seen by its modification time
    size, inode = taker.stat().st_size, taker.stat().st_ino
    with open(taker, "r+b") as fh:
        series(candles, "taker_volume", 4).to_feather(fh, compression="uncompressed")
    assert (taker.stat().st_size, taker.stat().st_ino) == (size, inode)
    rewritten = step()
    assert fast.liq_read_cache.reads == reads + 1
    assert fast.liq_stream_stats(PAIR).last_mode == "rebuild"  # the inputs' history changed
    # deleted: the strategy runs without it, as the uncached path does
    ratio.unlink()
    gone = step()
    assert gone.shape == rewritten.shape
    taker.unlink()
    oi_path.unlink()
    step()
    step()


def test_gaps_and_filler_candles(datadir: Path, candles: pd.DataFrame) -> None:
    save_series(series(candles, "open_interest", 5), datadir, PAIR, "15m", "open_interest")
    save_series(series(candles, "long_short_ratio", 6), datadir, PAIR, "15m", "long_short_ratio")
    fast, slow = load_strategy(live=True, datadir=datadir), reference(datadir)
    frame = candles.iloc[:LIVE_FRAME].reset_index(drop=True)
    both(fast, slow, frame)
    filler = candles.iloc[1 : LIVE_FRAME + 1].reset_index(drop=True)
    prev = filler.loc[LIVE_FRAME - 6, "close"]
    filler.loc[LIVE_FRAME - 5, ["open", "high", "low", "close", "volume"]] = [prev] * 4 + [0.0]
    both(fast, slow, filler)  # a filler candle: freqtrade's stand-in for a missing one
    real = candles.iloc[2 : LIVE_FRAME + 2].reset_index(drop=True)
    both(fast, slow, real)  # the real candle arrives: the engine is rebuilt
    assert fast.liq_stream_stats(PAIR).last_mode == "rebuild"
    gap = candles.iloc[3 : LIVE_FRAME + 3].drop(index=LIVE_FRAME - 10).reset_index(drop=True)
    both(fast, slow, gap)  # a candle missing from the frame
    both(fast, slow, candles.iloc[4 : LIVE_FRAME + 4].reset_index(drop=True))


def test_bad_input_keeps_its_error(datadir: Path, candles: pd.DataFrame) -> None:
    fast, slow = load_strategy(live=True, datadir=datadir), reference(datadir)
    frame = candles.iloc[:LIVE_FRAME].reset_index(drop=True)
    with pytest.raises(ValueError, match="no column") as want:
        slow.liq_populate(frame.drop(columns="volume"), META)
    with pytest.raises(ValueError, match="no column") as got:
        fast.liq_populate(frame.drop(columns="volume"), META)
    assert str(got.value) == str(want.value)
    bad = frame.copy()
    bad.loc[LIVE_FRAME - 1, "close"] = np.nan
    with pytest.raises(ValueError) as want:
        slow.liq_populate(bad.copy(), META)
    with pytest.raises(ValueError) as got:
        fast.liq_populate(bad.copy(), META)
    assert str(got.value) == str(want.value)
    # a corrupt series file: the same warning and fallback on both paths
    path = save_series(series(candles, "open_interest", 7), datadir, PAIR, "15m", "open_interest")
    path.write_bytes(b"not a feather file")
    both(fast, slow, frame)


# ----------------------------------------------------------------------------- ReadCache


def test_read_cache_lists_new_files_and_forgets_deleted(
    datadir: Path, candles: pd.DataFrame
) -> None:
    cache = ReadCache()
    from liqsignals.data.datadir import list_data

    assert cache.list_data(datadir) == list_data(datadir)
    listings = cache.listings
    assert cache.list_data(datadir) == list_data(datadir)
    path = save_series(
        series(candles, "long_short_ratio", 8), datadir, PAIR, "15m", "long_short_ratio"
    )
    assert (PAIR, "15m", "long_short_ratio") in cache.list_data(datadir)
    assert cache.list_data(datadir) == list_data(datadir)
    assert cache.pair_data(datadir, PAIR) == [e for e in list_data(datadir) if e[0] == PAIR]
    path.unlink()
    assert (PAIR, "15m", "long_short_ratio") not in cache.list_data(datadir)
    assert cache.listings > listings


def _taker_file(datadir: Path) -> tuple[pd.DataFrame, Path]:
    """An uncompressed taker-volume file of 50 candles in ``datadir`` (a rewrite keeps its size)."""
    frame = pd.DataFrame(
        {"date": pd.date_range("2024-01-01", periods=50, freq="15min", tz="UTC"),
         "taker_buy_volume": np.arange(50.0), "taker_sell_volume": np.ones(50)}
    )  # fmt: skip
    path = data_path(datadir, PAIR, "15m", "taker_volume")
    path.parent.mkdir(parents=True)
    frame.to_feather(path, compression="uncompressed")
    return frame, path


def test_read_cache_rereads_a_fresh_file_even_with_the_same_stat(tmp_path: Path) -> None:
    """A write within the same time-stamp tick leaves size and mtime unchanged: a file read
    within two seconds of its modification is read again next time."""
    frame, path = _taker_file(tmp_path)
    cache = ReadCache()
    first = cache.load_series(tmp_path, PAIR, "15m", "taker_volume")
    stat = path.stat()
    with open(path, "r+b") as fh:
        frame.assign(taker_buy_volume=frame["taker_buy_volume"] * 2).to_feather(
            fh, compression="uncompressed"
        )
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same tick
    assert path.stat().st_size == stat.st_size
    second = cache.load_series(tmp_path, PAIR, "15m", "taker_volume")
    np.testing.assert_array_equal(second["taker_buy_volume"], first["taker_buy_volume"] * 2)
    pd.testing.assert_frame_equal(second, load_series(tmp_path, PAIR, "15m", "taker_volume"))
    # an old file is kept: no read while nothing changes
    os.utime(path, ns=(OLD_NS, OLD_NS))
    cache.load_series(tmp_path, PAIR, "15m", "taker_volume")
    reads = cache.reads
    for _ in range(3):
        kept = cache.load_series(tmp_path, PAIR, "15m", "taker_volume")
    assert cache.reads == reads
    pd.testing.assert_frame_equal(kept, load_series(tmp_path, PAIR, "15m", "taker_volume"))
    # replaced atomically (a new inode), even with the old time stamp and size
    write_frame(frame, path)
    os.utime(path, ns=(OLD_NS, OLD_NS))
    np.testing.assert_array_equal(
        cache.load_series(tmp_path, PAIR, "15m", "taker_volume")["taker_buy_volume"],
        frame["taker_buy_volume"],
    )


def test_read_cache_errors_match_load_series(tmp_path: Path) -> None:
    cache = ReadCache()
    with pytest.raises(FileNotFoundError) as want:
        load_series(tmp_path, PAIR, "15m", "open_interest")
    with pytest.raises(FileNotFoundError) as got:
        cache.load_series(tmp_path, PAIR, "15m", "open_interest")
    assert str(got.value) == str(want.value)
    path = data_path(tmp_path, PAIR, "15m", "open_interest")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"corrupt")
    for _ in range(2):  # never kept
        with pytest.raises(Exception) as want:
            load_series(tmp_path, PAIR, "15m", "open_interest")
        with pytest.raises(type(want.value)):
            cache.load_series(tmp_path, PAIR, "15m", "open_interest")
    assert cache.reads == 0


# ----------------------------------------------------------------------------- LiveJoin


def _frame(variant: str, candles: pd.DataFrame) -> pd.DataFrame:
    frame = candles.iloc[:300].reset_index(drop=True).copy()
    if variant == "tags":
        frame["enter_tag"] = ""
        frame["exit_tag"] = None
    elif variant == "one tag":
        frame["exit_tag"] = "x"
    elif variant == "liq column":
        frame["liq_imbalance"] = 1.0
    elif variant == "funding column":
        frame["funding_rate"] = 0.5
    elif variant == "offset index":
        frame.index = frame.index + 7
    elif variant == "duplicate labels":
        frame = pd.concat([frame, frame[["close"]]], axis=1)
    return frame


@pytest.mark.parametrize(
    "variant",
    [
        "plain",
        "tags",
        "one tag",
        "liq column",
        "funding column",
        "offset index",
        "duplicate labels",
    ],
)
@pytest.mark.parametrize("funding", ["none", "array", "series"])
def test_live_join_equals_join_columns(candles: pd.DataFrame, variant: str, funding: str) -> None:
    from liqsignals.columns import FEATURE_COLUMNS
    from liqsignals.strategy.live_cache import LiveJoin
    from liqsignals.strategy.signals import join_columns

    join = LiveJoin()
    frame = _frame(variant, candles)
    names = list(FEATURE_COLUMNS)
    rng = np.random.default_rng(9)
    for _ in range(3):  # the first call makes the labels, the next ones reuse them
        values = rng.normal(size=(len(frame), len(names)))
        rates = rng.normal(size=len(frame))
        series_ = pd.Series(rates, index=frame.index)
        given = {"none": None, "array": rates, "series": series_}[funding]
        got = join(frame.copy(), names, values.copy(), given)
        want = join_columns(frame.copy(), names, values.copy(), None if given is None else series_)
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        assert list(got.columns) == list(want.columns)
        assert got.columns.dtype == want.columns.dtype == object
        assert [b.dtype for b in got._mgr.blocks] == [b.dtype for b in want._mgr.blocks]


def test_live_join_keeps_its_empty_tags_empty(candles: pd.DataFrame) -> None:
    from liqsignals.strategy.live_cache import LiveJoin

    join = LiveJoin()
    frame = _frame("plain", candles)
    values = np.zeros((len(frame), 2))
    out = join(frame.copy(), ["liq_a", "liq_b"], values)
    out.loc[3, "enter_tag"] = "long"  # as freqtrade and the strategies write them
    out["exit_tag"] = "gone"
    again = join(frame.copy(), ["liq_a", "liq_b"], values)
    assert again["enter_tag"].isna().all() and again["exit_tag"].isna().all()
    assert out.loc[3, "enter_tag"] == "long"
    with pytest.raises(ValueError, match="values have shape"):
        join(frame, ["liq_a"], values)


def test_feature_rows_kept_past_the_spare_rows() -> None:
    """The pair's feature block grows into spare rows and moves when they run out: a bot
    whose frame rolls (old candles dropped) holds the tail of what a bot whose frame only
    grows holds, and that equals the backtest computation over the whole frame."""
    from liqsignals.strategy.live_cache import SPARE_ROWS

    all_candles = sample.load_candles(PAIR, "15m")
    rolling, growing = load_strategy(live=True), load_strategy(live=True)
    size = 300
    for end in range(size, size + 2 * SPARE_ROWS + 5):
        rolled = rolling.liq_populate(
            all_candles.iloc[end - size : end].reset_index(drop=True), META
        )
        grown = growing.liq_populate(all_candles.iloc[:end].copy(), META)
        liq = [c for c in grown.columns if c.startswith("liq_")]
        np.testing.assert_array_equal(rolled[liq].to_numpy(), grown[liq].to_numpy()[-size:])
    assert rolling.liq_stream_stats(PAIR).rebuilds == growing.liq_stream_stats(PAIR).rebuilds == 1
    batch = load_strategy().liq_populate(all_candles.iloc[:end].copy(), META)
    np.testing.assert_array_equal(grown[liq].to_numpy(), batch[liq].to_numpy())


#: what a strategy or freqtrade might do to the frame it got back, in place
WRITES = (
    lambda f, liq: f.loc[f.index[-3:], liq[0]],  # a read, as a control
    lambda f, liq: f.__setitem__(liq[1], 0.0),
    lambda f, liq: f.loc.__setitem__((f.index[-5:], liq[:3]), -1.0),
    lambda f, liq: f.iloc.__setitem__((0, f.columns.get_loc(liq[2])), 123.0),
    lambda f, liq: f.fillna(-7.0, inplace=True),  # noqa: PD002 (the in-place write under test)
    lambda f, liq: f.replace(np.nan, -2.0, inplace=True),  # noqa: PD002
    lambda f, liq: f.update(pd.DataFrame({liq[3]: np.full(len(f), 5.0)}, index=f.index)),
    lambda f, liq: f.loc.__setitem__((f.index[f["close"] > 0], "enter_tag"), "x"),
)


def test_frames_handed_out_without_a_copy_stay_apart() -> None:
    """The live frame views the cache's feature rows (no copy per candle): writes into it (any
    in-place pandas write, as each in WRITES), at once or after the next candle, change neither
    the next frames nor the frames handed out before. Every frame equals the one of a bot whose
    frames nobody writes into, the feature rows grow past their spare rows and move, and the
    pair never rebuilds."""
    from liqsignals.strategy.live_cache import SPARE_ROWS

    all_candles = sample.load_candles(PAIR, "15m")
    live, clean = load_strategy(live=True), load_strategy(live=True)
    size = LIVE_FRAME
    frames, snaps = [], []
    for k, end in enumerate(range(size, size + SPARE_ROWS + 9)):
        frame = all_candles.iloc[end - size : end].reset_index(drop=True)
        got = live.liq_populate(frame.copy(), META)
        pd.testing.assert_frame_equal(got, clean.liq_populate(frame.copy(), META), check_exact=True)
        if k:  # the previous frame, not written yet when odd, is as it was handed out
            if (k - 1) % 2:
                pd.testing.assert_frame_equal(frames[k - 1], snaps[k - 1], check_exact=True)
        frames.append(got)
        snaps.append(got.copy(deep=True))
        liq = [c for c in got.columns if c.startswith("liq_")]
        if k % 2 == 0:
            WRITES[k % len(WRITES)](got, liq)  # this candle's frame, written at once
        elif k >= 3:
            WRITES[k % len(WRITES)](frames[k - 2], liq)  # an older one, written late
    stats = live.liq_stream_stats(PAIR)
    assert stats.rebuilds == 1 and stats.updates == len(frames) - 1
    assert len(frames) > SPARE_ROWS


def test_feature_frame_shares_the_kept_rows_and_copies_on_write(candles: pd.DataFrame) -> None:
    """feature_frame hands out the kept rows themselves (no copy), and a write into the frame
    copies them first: the cache's rows keep their values."""
    from liqsignals.strategy.live_cache import LiveFeatureCache

    strategy = load_strategy(live=True)
    cache = LiveFeatureCache()

    def build():
        from liqsignals.features import FeatureStream

        return FeatureStream(strategy.liq_model(PAIR), **strategy.liq_feature_kwargs())

    first = candles.iloc[:LIVE_FRAME].reset_index(drop=True)
    names, block = cache.feature_frame(PAIR, first, build, index=first.index, candles_only=True)
    kept = cache.pairs[PAIR].features
    assert block.shape == (len(first), len(names))
    assert np.shares_memory(block.to_numpy(), kept)
    before = kept.copy()
    block.iloc[:, :] = -1.0
    assert (block.to_numpy() == -1.0).all()
    np.testing.assert_array_equal(cache.pairs[PAIR].features, before)
    nxt = candles.iloc[1 : LIVE_FRAME + 1].reset_index(drop=True)
    names2, block2 = cache.feature_frame(PAIR, nxt, build, index=nxt.index, candles_only=True)
    np.testing.assert_array_equal(block2.to_numpy()[:-1], before[1:])
    _, copied = cache.features(PAIR, nxt, build, candles_only=True)
    np.testing.assert_array_equal(copied, block2.to_numpy())
    assert not np.shares_memory(copied, cache.pairs[PAIR].features)


@pytest.mark.parametrize("case", ["sorted", "unsorted", "nat_first", "nat_inside", "equal"])
def test_market_columns_refuses_unsorted_dates_as_before(
    datadir: Path, candles: pd.DataFrame, case: str
) -> None:
    """market_columns checks the order of datetime dates on their int64 values: unsorted dates
    and NaT are refused (pandas' is_monotonic_increasing is False for them), also when no
    series is attached; sorted ones (repeated dates included) are taken."""
    from liqsignals.data.datadir import market_columns

    dates = candles["date"].iloc[:50].reset_index(drop=True)
    if case == "unsorted":
        dates = dates.iloc[::-1].reset_index(drop=True)
    elif case == "nat_first":
        dates = dates.where(dates.index != 0)
    elif case == "nat_inside":
        dates = dates.where(dates.index != 20)
    elif case == "equal":
        dates = pd.Series([dates.iloc[0]] * 5)
    for kinds in (["mark"], ["taker_volume"]):  # a 5m mark file is there, no taker file
        if case in ("sorted", "equal"):
            got = market_columns(dates, datadir, PAIR, "15m", kinds=kinds, cache=ReadCache())
            assert set(got) == ({"mark_high", "mark_low"} if kinds == ["mark"] else set())
        else:
            with pytest.raises(ValueError):
                market_columns(dates, datadir, PAIR, "15m", kinds=kinds, cache=ReadCache())


def test_live_join_follows_a_change_of_columns(candles: pd.DataFrame) -> None:
    """One LiveJoin fed frames whose columns change from call to call (other labels, the same
    labels in another dtype, the same count of columns) builds each as join_columns does."""
    from liqsignals.columns import FEATURE_COLUMNS
    from liqsignals.strategy.live_cache import LiveJoin
    from liqsignals.strategy.signals import join_columns

    plain = _frame("plain", candles)
    renamed = plain.rename(columns={"volume": "quote_volume"})  # same count, other label
    as_object = plain.copy()
    as_object.columns = pd.Index(list(plain.columns), dtype=object)
    frames = [
        plain,
        _frame("tags", candles),
        plain,
        renamed,
        as_object,
        _frame("one tag", candles),
        plain,
        _frame("liq column", candles),
        _frame("duplicate labels", candles),
        plain,
    ]
    full, short = list(FEATURE_COLUMNS), list(FEATURE_COLUMNS)[:-1]
    # the frames in turn (names and funding kept), then the names or the funding changed alone
    calls = [(frame, full, False) for frame in frames]
    calls += [(frame, short, True) for frame in frames]
    calls += [
        (plain, full, False),
        (plain, short, False),
        (plain, short, True),
        (plain, full, True),
    ]
    join = LiveJoin()
    rng = np.random.default_rng(11)
    for frame, names, with_funding in calls:
        values = rng.normal(size=(len(frame), len(names)))
        rates = rng.normal(size=len(frame)) if with_funding else None
        funding = None if rates is None else pd.Series(rates, index=frame.index)
        got = join(frame.copy(), names, values.copy(), rates)
        want = join_columns(frame.copy(), names, values.copy(), funding)
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        assert list(got.columns) == list(want.columns)
        assert got.columns.dtype == want.columns.dtype == object


def test_no_stored_series_skips_the_reads_and_keeps_the_errors(
    datadir: Path, candles: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pair without any file in the datadir: market_arrays with a ReadCache attaches
    nothing without asking market_columns (what it would find: nothing), gives what the
    uncached path gives, refuses unsorted dates with the same error as before, and reads a
    file that appears later."""
    import liqsignals.data.datadir as dd

    pair = "ETH/USDT:USDT"  # the datadir holds BTC files only
    frame = candles.iloc[:300].reset_index(drop=True)
    calls: list[list[str]] = []
    real = dd.market_columns

    def counted(*args, **kwargs):
        calls.append(list(kwargs.get("kinds") or []))
        return real(*args, **kwargs)

    monkeypatch.setattr(dd, "market_columns", counted)
    cache = ReadCache()

    def arrays(df: pd.DataFrame, cached: bool) -> dict:
        return md.market_arrays(
            df, None, pair, "15m", set(), datadir=datadir, cache=cache if cached else None
        )

    fast = arrays(frame, True)
    assert calls == []
    slow = arrays(frame, False)
    assert len(calls) == 2  # taker volume + long/short ratio, then mark
    assert list(fast) == list(slow) == list(md.CANDLE_COLUMNS)
    unsorted = frame.iloc[::-1].reset_index(drop=True)
    with pytest.raises(ValueError) as want:
        arrays(unsorted, False)
    with pytest.raises(ValueError) as got:
        arrays(unsorted, True)
    assert (
        str(got.value)
        == str(want.value)
        == ("candles must be sorted by date before attaching market data")
    )
    calls.clear()
    taker = data_path(datadir, pair, "15m", "taker_volume")
    taker.parent.mkdir(parents=True, exist_ok=True)
    series(frame, "taker_volume", 8).to_feather(taker)
    got_taker = arrays(frame, True)
    assert calls == [["taker_volume", "long_short_ratio"]]  # mark: still nothing stored
    np.testing.assert_array_equal(
        got_taker["taker_buy_volume"], series(frame, "taker_volume", 8)["taker_buy_volume"]
    )
    np.testing.assert_array_equal(
        got_taker["taker_buy_volume"], arrays(frame, False)["taker_buy_volume"]
    )


def test_writes_around_copy_on_write_are_refused_not_passed_on() -> None:
    """A write through ``Series.array`` skips pandas' copy-on-write and would go straight into
    the cache's feature rows or the shared empty tag block: it raises instead, and the next
    frames (this pair's and another pair's) equal those of a bot nobody wrote into; ordinary
    pandas writes into the same frame still work."""
    all_candles = sample.load_candles(PAIR, "15m")
    live, clean = load_strategy(live=True), load_strategy(live=True)
    other = {"pair": "ETH/USDT:USDT"}
    size = LIVE_FRAME
    for k, end in enumerate(range(size, size + 4)):
        frame = all_candles.iloc[end - size : end].reset_index(drop=True)
        got = live.liq_populate(frame.copy(), META)
        pd.testing.assert_frame_equal(got, clean.liq_populate(frame.copy(), META), check_exact=True)
        got_other = live.liq_populate(frame.copy(), other)
        pd.testing.assert_frame_equal(
            got_other, clean.liq_populate(frame.copy(), other), check_exact=True
        )
        assert got_other["enter_tag"].isna().all()
        liq = [c for c in got.columns if c.startswith("liq_")]
        with pytest.raises(ValueError, match="read-only"):
            got[liq[k]].array[-10:] = 12345.0
        with pytest.raises(ValueError, match="read-only"):
            got["enter_tag"].array[:5] = "stale_tag"
        got.loc[got.index[-10:], liq[k]] = 12345.0  # pandas copies first
        got.loc[got.index[:5], "enter_tag"] = "tag"
        assert (got[liq[k]].to_numpy()[-10:] == 12345.0).all()
        assert (got["enter_tag"].to_numpy()[:5] == "tag").all()
    assert live.liq_stream_stats(PAIR).rebuilds == 1


def test_read_cache_sees_an_in_place_rewrite_that_puts_the_time_back(tmp_path: Path) -> None:
    """``cp -p`` or ``rsync -t --inplace`` rewrite a file in place (same inode), at the same
    size, and put its old modification time back: the change time still moves, so the cache
    reads the file again. A path that loops (symlinks) counts as missing, as for
    ``load_series``."""
    frame, path = _taker_file(tmp_path)
    os.utime(path, ns=(OLD_NS, OLD_NS))
    cache = ReadCache(fresh_s=0.0)  # every read trusted at once: only the stat decides
    first = cache.load_series(tmp_path, PAIR, "15m", "taker_volume")
    before = path.stat()
    with open(path, "r+b") as fh:
        frame.assign(taker_buy_volume=frame["taker_buy_volume"] * 3).to_feather(
            fh, compression="uncompressed"
        )
    os.utime(path, ns=(OLD_NS, OLD_NS))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino, before.st_size, before.st_mtime_ns,
    )  # fmt: skip
    second = cache.load_series(tmp_path, PAIR, "15m", "taker_volume")
    np.testing.assert_array_equal(second["taker_buy_volume"], first["taker_buy_volume"] * 3)
    loop = data_path(tmp_path, PAIR, "15m", "open_interest")
    os.symlink(loop.name, loop)  # a link to itself
    with pytest.raises(FileNotFoundError) as want:
        load_series(tmp_path, PAIR, "15m", "open_interest")
    with pytest.raises(FileNotFoundError) as got:
        cache.load_series(tmp_path, PAIR, "15m", "open_interest")
    assert str(got.value) == str(want.value)


def test_a_frame_kept_for_many_candles_still_takes_pandas_writes() -> None:
    """The first frame is kept alone while its feature rows move to a new buffer (past the
    spare rows) and its tag block's length is no longer kept: pandas writes into it still
    copy first (its memory stays shared with the frame owning it), as on a backtest frame,
    and later frames equal those of a bot nobody wrote into."""
    import gc

    from liqsignals.strategy.live_cache import SPARE_ROWS

    all_candles = sample.load_candles(PAIR, "15m")
    live, clean = load_strategy(live=True), load_strategy(live=True)
    start = LIVE_FRAME - 20  # a frame that grows: a new tag block length on every candle
    old = live.liq_populate(all_candles.iloc[:start].copy(), META)
    clean.liq_populate(all_candles.iloc[:start].copy(), META)
    for end in range(start + 1, start + SPARE_ROWS + 12):
        frame = all_candles.iloc[max(0, end - LIVE_FRAME) : end].reset_index(drop=True)
        live.liq_populate(frame.copy(), META)
        clean.liq_populate(frame.copy(), META)
    gc.collect()
    liq = [c for c in old.columns if c.startswith("liq_")]
    old.loc[old.index[-5:], liq[0]] = -1.0
    old.iloc[0, old.columns.get_loc(liq[1])] = -2.0
    old.fillna(-3.0, inplace=True)  # noqa: PD002 (the in-place write under test)
    old.loc[old.index[:3], "enter_tag"] = "kept"
    assert (old[liq[0]].to_numpy()[-5:] == -1.0).all() and old[liq[1]].iloc[0] == -2.0
    assert (old["enter_tag"].to_numpy()[:3] == "kept").all()
    end += 1
    frame = all_candles.iloc[end - LIVE_FRAME : end].reset_index(drop=True)
    got = live.liq_populate(frame.copy(), META)
    pd.testing.assert_frame_equal(got, clean.liq_populate(frame.copy(), META), check_exact=True)
    assert got["enter_tag"].isna().all()
