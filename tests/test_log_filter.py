"""The dry-run tests' log check: which ERROR lines of a stopped bot are freqtrade's shutdown race
(see ``_dryrun_support.is_shutdown_race``) and which are failures. Runs in every test run (the
dry-run tests that use it are marked slow)."""

from __future__ import annotations

from _dryrun_support import error_lines, is_shutdown_race


def test_only_the_ccxt_shutdown_race_is_forgiven() -> None:
    """The filter above forgives ccxt's rate-limit task after the stop began, nothing else."""
    head = "t - freqtrade - INFO - running\n"
    stop = "t - freqtrade.commands.trade_commands - INFO - worker found ... calling exit\n"
    race = (
        "t - asyncio - ERROR - Task was destroyed but it is pending!\n"
        "task: <Task pending name='Task-495' coro=<Throttler.looper() done, defined at "
        "/v/site-packages/ccxt/async_support/base/throttler.py:76> wait_for=<Future pending>>\n"
    )
    other = "t - freqtrade - ERROR - something broke\nnext\n"
    for log, expected in (
        (head + stop + race, [True]),
        (head + race + stop, [False]),  # before the stop: a real failure
        (head + stop + race.replace("Throttler.looper", "Worker.run"), [False]),
        (head + stop + race + other, [True, False]),
    ):
        assert [is_shutdown_race(log, at) for at in error_lines(log)] == expected
