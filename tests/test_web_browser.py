"""The web view in a real browser: the system's Chromium through chromedriver (Selenium).

Each test runs one scenario of this file as a script inside a private network namespace that has
only loopback (``unshare -n``, then ``ip link set lo up``), so the server, the replay exchange and
the browser cannot reach anything else. The script prints one JSON line of observations; the
tests assert on them. Without Chromium, chromedriver, Selenium or ``unshare`` the tests skip,
except under ``CI=true``, where they fail (``scripts/install_browser.sh`` installs the browser).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ROOT = Path(__file__).resolve().parents[1]
PORT = 8050  # the namespace is private: no other server can hold this port


# ----------------------------------------------------------------------------- the pytest side
def _missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            return f"{path} is missing (run scripts/install_browser.sh)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare / ip (util-linux, iproute2) are missing"
    if _unshare() is None:
        return "cannot create a network namespace with unshare -n (nor -rn as a normal user)"
    return None


def _unshare() -> list[str] | None:
    """``unshare -n`` as root; ``unshare -rn`` (a user namespace) for a normal user."""
    for cmd in (["unshare", "-n"], ["unshare", "-rn"]):
        probe = subprocess.run([*cmd, "sh", "-c", "ip link set lo up"], capture_output=True)
        if probe.returncode == 0:
            return cmd
    return None


def _scenario(name: str, timeout: float = 90) -> dict[str, Any]:
    reason = _missing()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run under CI=true: {reason}")
        pytest.skip(reason)
    inner = f"ip link set lo up && exec {sys.executable} {Path(__file__)} {name}"
    prefix = _unshare()
    assert prefix is not None
    proc = subprocess.run(
        [*prefix, "sh", "-c", inner],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert proc.returncode == 0 and lines, (
        f"scenario {name} failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n"
        f"{proc.stderr[-3000:]}"
    )
    return dict(json.loads(lines[-1]))


@pytest.mark.slow
def test_page_draws_changes_and_hovers() -> None:
    obs = _scenario("page")
    assert obs["severe"] == [], obs["severe"]
    assert obs["js_errors"] == []
    assert obs["lit_share"] > 0.2, "the heatmap is (nearly) blank"
    assert obs["hash_pair"] != obs["hash_first"], "changing the pair did not change the picture"
    assert obs["hash_window"] != obs["hash_pair"], "changing the window did not change it"
    hover = obs["hover"]
    assert "UTC" in hover and "price" in hover and "notional" in hover, hover
    assert obs["map_time"] == obs["hover_time"], "the map does not follow the hovered time"
    assert obs["readout_rows"] >= 7
    (t0, t1, n), (z0, z1, zn) = obs["span_before"], obs["span_zoom"]
    assert t0 < z0 < z1 < t1, "the drag did not zoom into the range"
    assert (z1 - z0) < (t1 - t0) / 3
    assert zn > n / 4, "the zoomed range is not recomputed at screen resolution"


@pytest.mark.slow
def test_live_candle_appears_without_reload() -> None:
    obs = _scenario("live")
    assert obs["severe"] == [], obs["severe"]
    assert obs["last_after"] > obs["last_before"], obs
    assert obs["page_id_after"] == obs["page_id_before"], "the page was reloaded"
    assert obs["loads_after"] > obs["loads_before"]


@pytest.mark.slow
def test_token_required() -> None:
    obs = _scenario("token")
    assert obs["without"] == 401
    assert obs["static_without"] == 401
    assert obs["wrong"] == 401
    assert obs["with"] == 200
    assert obs["page_lit"] > 0.2, "the page opened with ?token= did not draw"


# ----------------------------------------------------------------------------- the script side
def start_server(args: list[str], env_extra: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, **(env_extra or {})}
    cmd = [sys.executable, "-m", "liqsignals.web.cli", "--port", str(PORT), *args]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=sys.stderr, text=True
    )


def wait_http(url: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def _status(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {})) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,800",
        f"--user-data-dir={tempfile.mkdtemp(prefix='liqsignals-chromium-')}",
    ):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))


def wait_js(driver: Any, js: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(js)
        if value:
            return value
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for: {js}")


_LIT = """
const c = document.getElementById('heatmap'), ctx = c.getContext('2d');
const d = ctx.getImageData(80, 12, c.width - 90, c.height - 40).data;
let lit = 0;
for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 30) lit++;
return lit / (d.length / 4);
"""


def _hash(driver: Any) -> str:
    url = driver.execute_script("return document.getElementById('heatmap').toDataURL()")
    return hashlib.sha256(url.encode()).hexdigest()


def _severe(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def select(driver: Any, element_id: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    loads = driver.execute_script("return window.liqsignals.loads")
    Select(driver.find_element("id", element_id)).select_by_value(value)
    wait_js(driver, f"return window.liqsignals.loads > {loads}")
    wait_js(driver, "return window.liqsignals.map !== null")


def _page_scenario() -> dict[str, Any]:
    from selenium.webdriver.common.action_chains import ActionChains

    from liqsignals import sample

    proc = start_server(["--datadir", str(sample.datadir())])
    base = f"http://127.0.0.1:{PORT}"
    driver = None
    try:
        driver = browser()  # starts while the server compiles its kernels
        wait_http(base + "/healthz", proc)
        driver.get(base + "/")
        wait_js(driver, "return window.liqsignals && window.liqsignals.loads >= 1")
        wait_js(driver, "return window.liqsignals.map !== null")
        obs: dict[str, Any] = {"lit_share": driver.execute_script(_LIT)}
        obs["hash_first"] = _hash(driver)
        select(driver, "pair", "ETH/USDT:USDT")
        obs["hash_pair"] = _hash(driver)
        select(driver, "window", "1d")
        obs["hash_window"] = _hash(driver)
        canvas = driver.find_element("id", "heatmap")
        ActionChains(driver).move_to_element_with_offset(canvas, 150, 0).perform()
        hover = driver.find_element("id", "hover")
        wait_js(driver, "return document.getElementById('hover').style.display === 'block'")
        obs["hover"] = hover.text
        obs["hover_time"] = int(hover.get_attribute("data-time"))
        wait_js(
            driver,
            f"return window.liqsignals.map && window.liqsignals.map.time <= {obs['hover_time']}"
            " && window.liqsignals.map.time !== window.liqsignals.hm.last",
        )
        obs["map_time"] = driver.execute_script("return window.liqsignals.map.time")
        obs["readout_rows"] = len(driver.find_elements("css selector", "#readout tr"))
        # drag across the heatmap: the zoomed time range comes back at screen resolution
        span = "const t = window.liqsignals.hm.times; return [t[0], t[t.length - 1], t.length]"
        obs["span_before"] = driver.execute_script(span)
        loads = driver.execute_script("return window.liqsignals.loads")
        ActionChains(driver).move_to_element_with_offset(
            canvas, -300, 0
        ).click_and_hold().move_by_offset(200, 0).release().perform()
        wait_js(driver, f"return window.liqsignals.loads > {loads}")
        obs["span_zoom"] = driver.execute_script(span)
        obs["js_errors"] = driver.execute_script("return window.liqsignals.errors")
        obs["severe"] = _severe(driver)
        return obs
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        proc.wait(10)


def _live_scenario() -> dict[str, Any]:
    import ccxt
    import pandas as pd

    from liqsignals import sample
    from liqsignals.data.datadir import save_candles
    from liqsignals.replay import LiveClock, ReplayExchange
    from liqsignals.replay.config import ccxt_config

    first = sample.load_candles("BTC/USDT:USDT", "15m")
    start_ms = int(first["date"].iloc[-1].value // 1_000_000) - 3 * 86_400_000
    clock = LiveClock(start_ms, speed=600.0, align_ms=3_600_000)
    tmp = Path(tempfile.mkdtemp(prefix="liqsignals-live-"))
    target = tmp / "binance"
    source = tmp / "replay"  # the replay serves only BTC 15m: a faster start
    save_candles(first, source, "BTC/USDT:USDT", "15m")
    driver = None
    with ReplayExchange(source, clock=clock) as ex:
        client = ccxt.binanceusdm(ccxt_config(ex.port))
        rows = client.fetch_ohlcv("BTC/USDT:USDT", "15m", limit=700)[:-1]
        seed = pd.DataFrame(rows, columns=["date", "open", "high", "low", "close", "volume"])
        seed["date"] = pd.to_datetime(seed["date"], unit="ms", utc=True)
        save_candles(seed, target, "BTC/USDT:USDT", "15m")
        url = f"http://127.0.0.1:{ex.port}"
        proc = start_server(["--datadir", str(target), "--live-url", url, "--poll", "1"])
        base = f"http://127.0.0.1:{PORT}"
        try:
            driver = browser()
            wait_http(base + "/healthz", proc)
            driver.get(base + "/")
            wait_js(driver, "return window.liqsignals && window.liqsignals.loads >= 1")
            obs: dict[str, Any] = {
                "last_before": driver.execute_script("return window.liqsignals.lastCandle"),
                "loads_before": driver.execute_script("return window.liqsignals.loads"),
                "page_id_before": driver.execute_script("return window.liqsignals.pageId"),
            }
            wait_js(
                driver, f"return window.liqsignals.lastCandle > {obs['last_before']}", timeout=20
            )
            obs["last_after"] = driver.execute_script("return window.liqsignals.lastCandle")
            obs["loads_after"] = driver.execute_script("return window.liqsignals.loads")
            obs["page_id_after"] = driver.execute_script("return window.liqsignals.pageId")
            obs["severe"] = _severe(driver)
            return obs
        finally:
            if driver is not None:
                driver.quit()
            proc.terminate()
            proc.wait(10)
            shutil.rmtree(tmp, ignore_errors=True)


def _token_scenario() -> dict[str, Any]:
    from liqsignals import sample

    token = "s3cret-token"
    proc = start_server(["--datadir", str(sample.datadir()), "--token", token])
    base = f"http://127.0.0.1:{PORT}"
    driver = None
    try:
        driver = browser()
        wait_http(base + "/healthz", proc)
        obs: dict[str, Any] = {
            "without": _status(base + "/api/meta"),
            "static_without": _status(base + "/static/app.js"),
            "wrong": _status(base + "/api/meta?token=nope"),
            "with": _status(base + "/api/meta", {"Authorization": f"Bearer {token}"}),
        }
        driver.get(f"{base}/?token={token}")
        wait_js(driver, "return window.liqsignals && window.liqsignals.loads >= 1")
        obs["page_lit"] = driver.execute_script(_LIT)
        return obs
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    scenarios = {"page": _page_scenario, "live": _live_scenario, "token": _token_scenario}
    print(json.dumps(scenarios[sys.argv[1]]()), flush=True)
