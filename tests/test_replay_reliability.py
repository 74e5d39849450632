"""The replay exchange under concurrency, slow or vanishing clients, and bad bind arguments.

Every client here talks to 127.0.0.1; every loop is bounded in count and in time.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from _replay_support import http_get, json_get, make_datadir

from liqsignals.cli import main as liqsignals_main
from liqsignals.replay import ReplayExchange, ServerLimits

pytestmark = pytest.mark.slow

CCXT_DEFAULT_TIMEOUT_S = 10.0  # ccxt's Exchange.timeout is 10 000 ms
PING = b"GET /fapi/v1/ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.fixture(scope="module")
def datadir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_datadir(tmp_path_factory.mktemp("replay-reliability"))


def _quick(datadir: Path, **timeouts: float) -> ReplayExchange:
    """An exchange with short timeouts, so connections time out within a test (3 s leaves
    time to open a few hundred connections first on a busy machine)."""
    return ReplayExchange(datadir, limits=ServerLimits(**timeouts))


def _open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # not Linux: the thread and connection counts still apply
        return None


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a Content-Length: (status, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before the headers: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(
        int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed mid-body")
        body += chunk
    return int(lines[0].split()[1]), body


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes ``sock`` within ``within`` seconds (EOF or reset)."""
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _wait_for(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


# ------------------------------------------------------------------ load


def test_200_concurrent_klines_requests_do_not_time_out(datadir: Path) -> None:
    """The listen backlog of 5 made 200 simultaneous clients wait for SYN retries (up to 18 s
    to connect, 89 of 200 timed out); all must be answered within ccxt's 10 s timeout."""
    n = 200
    path = "/fapi/v1/klines?symbol=BTCUSDT&interval=1h&limit=100"
    with ReplayExchange(datadir) as ex:
        status, _, expected = http_get(ex.url + path)
        assert status == 200 and len(json.loads(expected)) == 100
        start = threading.Barrier(n + 1)
        results: list[tuple[str, float]] = []
        lock = threading.Lock()

        def client() -> None:
            start.wait(timeout=30)
            t0 = time.monotonic()
            try:
                with socket.create_connection(
                    ("127.0.0.1", ex.port), timeout=CCXT_DEFAULT_TIMEOUT_S
                ) as sock:
                    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                    status, body = _read_response(sock)
                    outcome = "ok" if status == 200 and body == expected else "wrong"
            except OSError as exc:
                outcome = type(exc).__name__
            with lock:
                results.append((outcome, time.monotonic() - t0))

        threads = [threading.Thread(target=client, daemon=True) for _ in range(n)]
        for t in threads:
            t.start()
        start.wait(timeout=30)
        deadline = time.monotonic() + 3 * CCXT_DEFAULT_TIMEOUT_S
        for t in threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
    outcomes = [r[0] for r in results]
    assert len(results) == n, f"{n - len(results)} clients still waiting"
    assert outcomes.count("ok") == n, {o: outcomes.count(o) for o in set(outcomes)}
    slowest = max(r[1] for r in results)
    print(f"slowest of {n}: {slowest:.2f} s")
    assert slowest < CCXT_DEFAULT_TIMEOUT_S, f"slowest answer took {slowest:.1f} s"


def test_idle_keepalive_connections_are_closed_and_threads_return_to_baseline(
    datadir: Path,
) -> None:
    """298 of 300 idle keep-alive connections used to stay open for good, one thread each."""
    with _quick(datadir, idle_timeout=3.0) as ex:
        _check_idle_connections_time_out(ex)


def _check_idle_connections_time_out(ex: ReplayExchange) -> None:
    import gc
    import tracemalloc

    threads_before = threading.active_count()
    fds_before = _open_fds()
    tracemalloc.start()
    mem_before = tracemalloc.get_traced_memory()[0]
    socks = []
    try:
        for _ in range(300):
            sock = socket.create_connection(("127.0.0.1", ex.port), timeout=5)
            socks.append(sock)
            sock.sendall(PING)
            assert _read_response(sock) == (200, b"{}")
        # the connections are open and idle: they hold no thread
        assert ex.open_connections == 300
        mem_open = tracemalloc.get_traced_memory()[0] - mem_before
        assert threading.active_count() == threads_before
        closed = [_closed_by_server(s, within=6.0) for s in socks]
        assert all(closed), f"{closed.count(False)} of 300 idle connections left open"
        assert _wait_for(lambda: ex.open_connections == 0, timeout=2.0), ex.open_connections
    finally:
        for sock in socks:
            sock.close()
    assert threading.active_count() == threads_before
    if fds_before is not None:  # every server-side socket was released too
        assert _wait_for(lambda: _open_fds() == fds_before, timeout=2.0), (_open_fds(), fds_before)
    # memory back to baseline: what 300 connections allocated is released (Python allocations,
    # traced; the process's RSS need not shrink, so it is not the measure)
    del socks
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - mem_before
    tracemalloc.stop()
    # (300 open connections hold about 1 KB each; a leak of half of them would fail this)
    assert held < mem_open / 2, (
        f"{held} of {mem_open} bytes still held after the connections closed"
    )
    # and the server still answers
    assert json_get(ex.url + "/fapi/v1/ping") == (200, {})


# ------------------------------------------------------------------ slow and vanishing clients


def test_slow_header_connections_do_not_pin_threads_and_are_closed(datadir: Path) -> None:
    """400 connections sending a partial request line used to hold 410 threads, forever."""
    with _quick(datadir, header_timeout=3.0, idle_timeout=60.0) as ex:
        _check_slow_headers_time_out(ex)


def _check_slow_headers_time_out(ex: ReplayExchange) -> None:
    threads_before = threading.active_count()
    socks = []
    try:
        for _ in range(400):
            sock = socket.create_connection(("127.0.0.1", ex.port), timeout=5)
            socks.append(sock)
            sock.sendall(b"GET /fapi/v1/ping HTT")  # and never the rest
        assert _wait_for(lambda: ex.open_connections == 400, timeout=2.0), ex.open_connections
        assert threading.active_count() == threads_before
        # a well-behaved client is answered at once meanwhile
        t0 = time.monotonic()
        assert json_get(ex.url + "/fapi/v1/ping") == (200, {})
        assert time.monotonic() - t0 < 1.0
        closed = [_closed_by_server(s, within=6.0) for s in socks]
        assert all(closed), f"{closed.count(False)} of 400 slow connections left open"
    finally:
        for sock in socks:
            sock.close()
    assert _wait_for(lambda: ex.open_connections == 0, timeout=2.0), ex.open_connections
    assert threading.active_count() == threads_before


def test_connection_cap_drops_the_longest_waiting_connection(datadir: Path) -> None:
    """Past max_connections, a new client displaces the connection idle the longest."""
    with ReplayExchange(datadir, limits=ServerLimits(max_connections=8)) as ex:
        socks = [socket.create_connection(("127.0.0.1", ex.port), timeout=5) for _ in range(8)]
        try:
            assert _wait_for(lambda: ex.open_connections == 8, timeout=2.0)
            for sock in socks[1:]:  # all but the first have been active since
                sock.sendall(PING)
                assert _read_response(sock) == (200, b"{}")
            assert json_get(ex.url + "/fapi/v1/ping") == (200, {})
            assert _closed_by_server(socks[0], within=2.0)
            for sock in socks[1:]:  # the others are still served on their connection
                sock.sendall(PING)
                assert _read_response(sock) == (200, b"{}")
            assert ex.open_connections <= 8
        finally:
            for sock in socks:
                sock.close()


def test_client_disconnecting_mid_response_prints_no_traceback(
    datadir: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Client resets and broken pipes used to print socketserver tracebacks on stderr."""
    big = b"GET /fapi/v1/klines?symbol=BTCUSDT&interval=5m&limit=1500 HTTP/1.1\r\nHost: x\r\n\r\n"
    caplog.set_level(logging.WARNING, logger="liqsignals.replay")
    with ReplayExchange(datadir) as ex:
        for i in range(30):
            sock = socket.create_connection(("127.0.0.1", ex.port), timeout=5)
            sock.sendall(big)
            if i % 3 == 1:
                sock.recv(100)  # the answer has begun
            elif i % 3 == 2:
                time.sleep(0.02)  # the answer is being written
            # an abortive close: the server's next read or write meets a reset
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            sock.close()
        assert _wait_for(lambda: ex.open_connections == 0, timeout=5.0), ex.open_connections
        assert json_get(ex.url + "/fapi/v1/ping") == (200, {})  # unharmed
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Error" not in err, err
    assert [r.getMessage() for r in caplog.records] == []


# ------------------------------------------------------------------ where it listens


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::"])
def test_replay_exchange_refuses_to_listen_on_all_interfaces(datadir: Path, host: str) -> None:
    """``ReplayExchange(host="0.0.0.0")`` used to serve every interface."""
    with pytest.raises(ValueError, match="loopback only.*allow_remote=True"):
        ReplayExchange(datadir, host=host)


def test_replay_exchange_binds_a_remote_address_only_when_asked(datadir: Path) -> None:
    ex = ReplayExchange(datadir, host="0.0.0.0", allow_remote=True)  # built, never started
    assert ex.host == "0.0.0.0" and not ex.running


def _fake_resolver(real: Any, table: dict[str, list[str]]) -> Any:
    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in table:
            return real(host, port, *args, **kwargs)
        if not table[host]:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (addr, port or 0)) for addr in table[host]
        ]

    return getaddrinfo


def test_hostnames_that_do_not_resolve_to_loopback_are_refused(
    datadir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prefix check let ``127.example`` through; the resolved addresses decide now."""
    table = {
        "127.example": ["203.0.113.7"],
        "half.test": ["127.0.0.1", "198.51.100.1"],
        "nowhere.invalid": [],
        "replay.test": ["127.0.0.2"],
    }
    monkeypatch.setattr(socket, "getaddrinfo", _fake_resolver(socket.getaddrinfo, table))
    with pytest.raises(ValueError, match=r"'127\.example' resolves to 203\.0\.113\.7"):
        ReplayExchange(datadir, host="127.example")
    with pytest.raises(ValueError, match=r"198\.51\.100\.1, not a loopback address"):
        ReplayExchange(datadir, host="half.test")
    with pytest.raises(ValueError, match="does not resolve"):
        ReplayExchange(datadir, host="nowhere.invalid")
    assert ReplayExchange(datadir, host="replay.test").host == "replay.test"
    # the CLI uses the same check (it used to accept any host starting with "127.")
    assert liqsignals_main(["replay", "--host", "127.example", "--print-config"]) == 2


def test_localhost_resolves_to_loopback_and_serves(datadir: Path) -> None:
    with ReplayExchange(datadir, host="localhost") as ex:
        assert json_get(f"http://127.0.0.1:{ex.port}/fapi/v1/ping") == (200, {})


# ------------------------------------------------------------------ command-line arguments


@pytest.mark.parametrize("port", ["70000", "-1", "65536"])
def test_cli_port_out_of_range_is_a_usage_error(
    port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--port 70000`` used to end in an OverflowError traceback (and was printed in configs)."""
    with pytest.raises(SystemExit) as exit_info:
        liqsignals_main(["replay", "--port", port, "--print-config"])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert "argument --port" in captured.err and port in captured.err
    assert captured.out == ""


def test_cli_port_70000_exits_2_without_traceback() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "liqsignals", "replay", "--port", "70000"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2, res.stderr
    assert "argument --port: 70000 is out of range" in res.stderr
    assert "Traceback" not in res.stderr


def test_python_api_port_out_of_range_is_a_value_error(datadir: Path) -> None:
    for port in (70000, -1):
        with pytest.raises(ValueError, match=f"port {port}: expected an integer from 0 to 65535"):
            ReplayExchange(datadir, port=port)


def test_cli_print_config_for_port_0_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """An overlay for "any free port" points freqtrade nowhere; it used to be printed."""
    assert liqsignals_main(["replay", "--port", "0", "--print-config"]) == 2
    captured = capsys.readouterr()
    assert "--print-config needs the port" in captured.err and captured.out == ""
