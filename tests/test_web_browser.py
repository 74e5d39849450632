"""The web view in a real browser: the system's Chromium through chromedriver (Selenium).

Each test runs one scenario of this file as a script inside a private network namespace that has
only loopback (``unshare -n``, then ``ip link set lo up``), so the server, the replay exchange and
the browser cannot reach anything else. The script prints one JSON line of observations; the
tests assert on them. Without Chromium, chromedriver, Selenium or ``unshare`` the tests skip,
except under ``CI=true``, where they fail (``scripts/install_browser.sh`` installs the browser).

Expected values are computed here, not by the page: the hovered notional is checked against
:func:`liqsignals.heatmap.liquidation_heatmap` called by the scenario with the page's view.
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


def _assert_exact_hover(h: dict[str, Any]) -> None:
    """The hovered cell's notional is the matrix value the test computed on its own."""
    assert "UTC" in h["text"] and "price" in h["text"] and "notional" in h["text"], h["text"]
    assert abs(h["row"] - h["target"][0]) <= 1 and abs(h["col"] - h["target"][1]) <= 1, h
    assert h["time"] == h["own_time"], "the hovered column is not the matrix's column"
    assert h["own_lo"] <= h["price"] <= h["own_hi"], "the hovered price is not in the row"
    assert h["own_value"] > 0, "the test aimed at an empty cell"
    assert h["notional"] == pytest.approx(h["own_value"], rel=1e-12), h
    assert f"{round(h['own_value']):,}" in h["text"], h["text"]


@pytest.mark.slow
def test_page_draws_changes_and_hovers() -> None:
    obs = _scenario("page", timeout=180)
    assert obs["severe"] == [], obs["severe"]
    assert obs["js_errors"] == []
    assert obs["lit_share"] > 0.2, "the heatmap is (nearly) blank"
    assert obs["hash_pair"] != obs["hash_first"], "changing the pair did not change the picture"
    assert obs["hash_window"] != obs["hash_pair"], "changing the window did not change it"
    _assert_exact_hover(obs["hover"])
    assert obs["map_time"] == obs["hover"]["time"], "the map does not follow the hovered time"
    assert obs["readout_rows"] >= 7
    (t0, t1, n), (z0, z1, zn) = obs["span_before"], obs["span_zoom"]
    assert t0 < z0 < z1 < t1, "the drag did not zoom into the range"
    assert (z1 - z0) < (t1 - t0) / 3
    assert zn > n / 4, "the zoomed range is not recomputed at screen resolution"


@pytest.mark.slow
def test_selectors_colours_trades_and_png() -> None:
    obs = _scenario("controls", timeout=180)
    assert obs["severe"] == [], obs["severe"]
    assert obs["js_errors"] == []
    # colour-blind scale: another picture, and no black cell (cividis starts at #00224e)
    assert obs["hash_cividis"] != obs["hash_default"]
    assert obs["black_default"] > 0.05 and obs["black_cividis"] < 0.002, obs
    # mode selector
    assert obs["mode_after"] == "long" and obs["hash_long"] != obs["hash_default"]
    # timeframe and preset selectors
    assert obs["tf_after"] == "15m" and obs["hash_15m"] != obs["hash_long"]
    assert obs["preset_after"] == "binance_btc" and obs["hash_preset"] != obs["hash_15m"]
    # exchange selector: both exchanges asked for, summed into another picture
    assert obs["exchanges_after"] == ["binance", "bybit"], obs["exchanges_after"]
    assert obs["hash_two"] != obs["hash_one"]
    assert obs["vmax_two"] > obs["vmax_one"] * 1.2
    # trades overlay from the --trades file
    assert obs["trades_n"] == 2 and obs["hash_trades"] != obs["hash_no_trades"]
    assert obs["trade_pixels"] > 20, "no trade line drawn in its colours"
    # PNG download: a PNG of the canvas' size
    assert obs["png_magic"] == "89504e470d0a1a0a"
    assert obs["png_size"] == obs["canvas_size"]


@pytest.mark.slow
def test_static_export_renders_in_the_browser() -> None:
    obs = _scenario("export", timeout=180)
    assert obs["severe"] == [], obs["severe"]
    assert obs["js_errors"] == []
    assert obs["requests"] == [], "the exported page asked for something"
    assert obs["url"].startswith("file://")
    assert obs["lit_share"] > 0.2, "the exported heatmap is (nearly) blank"
    assert obs["static"] is True and obs["map_rows"] >= 7
    assert obs["trades_n"] == 1
    _assert_exact_hover(obs["hover"])


@pytest.mark.slow
def test_live_candle_appears_without_reload() -> None:
    obs = _scenario("live")
    assert obs["severe"] == [], obs["severe"]
    assert obs["last_after"] > obs["last_before"], obs
    # within one candle of its close, every time (3 updates)
    assert len(obs["lags_candles"]) == 3 and max(obs["lags_candles"]) < 1.0, obs["lags_candles"]
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
    assert obs["public_rc"] == 2, "--host 0.0.0.0 without --token started"
    assert "--token" in obs["public_err"] and "0.0.0.0" in obs["public_err"]


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


_SETTLED = """
const s = window.liqsignals, c = document.getElementById('heatmap');
const r = c.getBoundingClientRect();
return s.pending === 0 && Math.abs(r.width - c.width) <= 1 && Math.abs(r.height - c.height) <= 1;
"""


def settle(driver: Any, loads: int = 0) -> None:
    """Wait for more than ``loads`` heatmap loads, none in flight, the canvas at its size."""
    wait_js(driver, f"return window.liqsignals && window.liqsignals.loads > {loads}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # settled twice 300 ms apart
        if driver.execute_script(_SETTLED):
            time.sleep(0.3)
            if driver.execute_script(_SETTLED):
                return
        time.sleep(0.1)
    raise RuntimeError("the page did not settle")


def act(driver: Any, fn: Any) -> None:
    """Do ``fn()`` (a control change that reloads the heatmap) and wait for the page to settle."""
    loads = driver.execute_script("return window.liqsignals.loads")
    fn()
    settle(driver, loads)
    wait_js(driver, "return window.liqsignals.map !== null")


def select(driver: Any, element_id: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    act(driver, lambda: Select(driver.find_element("id", element_id)).select_by_value(value))


def select_now(driver: Any, element_id: str, value: str) -> None:
    """Choose ``value`` in a selector that redraws without asking the server (colours)."""
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", element_id)).select_by_value(value)


def own_heatmap(df: Any, view: dict[str, Any], **params: Any) -> dict[str, Any]:
    """The heatmap the page should show, computed here with the library's public API.

    Returns the matrix as the page indexes it (``z[row, col]``, row 0 = highest price), the
    column dates (ms) and the row edges (ascending)."""
    import warnings

    from liqsignals.heatmap import liquidation_heatmap, smooth_along_price

    smooth = params.pop("smooth", False)
    mode = params.pop("mode", "combined")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hm = liquidation_heatmap(
            df, start=view["start"], end=view.get("end"), max_times=view["w"],
            max_bins=view["h"], **params,
        )  # fmt: skip
        if smooth:
            hm = smooth_along_price(hm)
    z = hm.matrix(mode).T[::-1]
    return {"z": z, "times": (hm.times.asi8 // 1_000_000).tolist(), "edges": hm.edges.tolist()}


def hover_exact(driver: Any, own: dict[str, Any]) -> dict[str, Any]:
    """Hover over the largest cell of the column two thirds across (aimed with the page's
    fixed margins) and read the hover box; the expected values come from ``own``."""
    import numpy as np
    from selenium.webdriver.common.action_chains import ActionChains

    z = own["z"]
    rows, cols = z.shape
    canvas = driver.find_element("id", "heatmap")
    w, h = driver.execute_script("const c = arguments[0]; return [c.width, c.height]", canvas)
    pw, ph = w - 74 - 8, h - 8 - 26  # the margins of app.js
    j = cols * 2 // 3
    i = int(np.argmax(z[:, j]))
    x, y = 74 + (j + 0.5) * pw / cols, 8 + (i + 0.5) * ph / rows
    ActionChains(driver).move_to_element_with_offset(
        canvas, round(x - w / 2), round(y - h / 2)
    ).perform()
    wait_js(driver, "return document.getElementById('hover').dataset.notional !== undefined")
    box = driver.find_element("id", "hover")
    got = {k: box.get_attribute(f"data-{k}") for k in ("row", "col", "time", "price", "notional")}
    row, col = int(got["row"]), int(got["col"])
    k = rows - 1 - row  # own edges are ascending
    return {
        "text": box.text,
        "target": [i, j],
        "row": row,
        "col": col,
        "time": int(got["time"]),
        "price": float(got["price"]),
        "notional": float(got["notional"]),
        "own_time": own["times"][col],
        "own_value": float(z[row, col]),
        "own_lo": own["edges"][k],
        "own_hi": own["edges"][k + 1],
    }


def _pixels(driver: Any, test: str) -> float:
    """Share of the plot area's pixels for which the JS expression ``test`` (of r, g, b) holds."""
    js = f"""
    const c = document.getElementById('heatmap'), ctx = c.getContext('2d');
    const d = ctx.getImageData(80, 12, c.width - 90, c.height - 40).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) {{
      const r = d[i], g = d[i + 1], b = d[i + 2];
      if ({test}) n++;
    }}
    return n / (d.length / 4);
    """
    return float(driver.execute_script(js))


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
        settle(driver)
        wait_js(driver, "return window.liqsignals.map !== null")
        obs: dict[str, Any] = {"lit_share": driver.execute_script(_LIT)}
        obs["hash_first"] = _hash(driver)
        select(driver, "pair", "ETH/USDT:USDT")
        obs["hash_pair"] = _hash(driver)
        select(driver, "window", "1d")
        obs["hash_window"] = _hash(driver)
        # hover: the exact notional of the cell, against the heatmap computed here
        import pandas as pd

        tf = driver.execute_script("return document.getElementById('timeframe').value")
        req = driver.execute_script("return window.liqsignals.hm.req")
        df = sample.load_candles("ETH/USDT:USDT", tf)
        last = df["date"].iloc[-1]
        start = max(last - pd.Timedelta(days=90), df["date"].iloc[0])  # the page's default 3M
        view = {"start": start, "w": int(req["w"]), "h": int(req["h"])}
        obs["hover"] = hover_exact(driver, own_heatmap(df, view, window="1d"))
        t_hover = obs["hover"]["time"]
        wait_js(
            driver,
            f"return window.liqsignals.map && window.liqsignals.map.time <= {t_hover}"
            " && window.liqsignals.map.time !== window.liqsignals.hm.last",
        )
        canvas = driver.find_element("id", "heatmap")
        obs["map_time"] = driver.execute_script("return window.liqsignals.map.time")
        obs["readout_rows"] = len(driver.find_elements("css selector", "#readout tr"))
        # drag across the heatmap: the zoomed time range comes back at screen resolution
        span = "const t = window.liqsignals.hm.times; return [t[0], t[t.length - 1], t.length]"
        obs["span_before"] = driver.execute_script(span)
        act(
            driver,
            lambda: (
                ActionChains(driver)
                .move_to_element_with_offset(canvas, -300, 0)
                .click_and_hold()
                .move_by_offset(200, 0)
                .release()
                .perform()
            ),
        )
        obs["span_zoom"] = driver.execute_script(span)
        obs["js_errors"] = driver.execute_script("return window.liqsignals.errors")
        obs["severe"] = _severe(driver)
        return obs
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        proc.wait(10)


def _trades_file(folder: Path, rows: list[tuple[str, str, float, float, bool]]) -> Path:
    trades = [
        {
            "pair": "BTC/USDT:USDT",
            "open_date": f"{a}+00:00",
            "close_date": f"{b}+00:00",
            "open_rate": o,
            "close_rate": c,
            "is_short": short,
            "profit_ratio": 0.02,
        }
        for a, b, o, c, short in rows
    ]
    path = folder / "backtest-result.json"
    path.write_text(json.dumps({"strategy": {"S": {"trades": trades}}}))
    return path


def _png_size(data: bytes) -> list[int]:
    return [int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")]


def _controls_scenario() -> dict[str, Any]:
    from selenium.webdriver.support.ui import Select

    from liqsignals import sample
    from liqsignals.data.datadir import save_candles

    tmp = Path(tempfile.mkdtemp(prefix="liqsignals-web-"))
    bybit = tmp / "bybit"  # a second venue: the sample's candles 0.4 % higher
    for pair in ("BTC/USDT:USDT", "ETH/USDT:USDT"):
        df = sample.load_candles(pair, "5m")
        for col in ("open", "high", "low", "close"):
            df[col] = df[col] * 1.004
        save_candles(df, bybit, pair, "5m")
    trades = _trades_file(
        tmp,
        [
            ("2025-04-10 00:00:00", "2025-04-20 00:00:00", 79_000.0, 84_000.0, False),
            ("2025-05-01 00:00:00", "2025-05-10 00:00:00", 97_000.0, 103_000.0, False),
        ],
    )
    args = ["--datadir", str(sample.datadir()), "--datadir", str(bybit), "--trades", str(trades)]
    proc = start_server(args)
    base = f"http://127.0.0.1:{PORT}"
    driver = None
    try:
        driver = browser()
        wait_http(base + "/healthz", proc)
        driver.get(base + "/")
        settle(driver)
        wait_js(driver, "return window.liqsignals.map !== null")
        black = "r + g + b < 24"
        obs: dict[str, Any] = {
            "hash_default": _hash(driver),
            "black_default": _pixels(driver, black),
        }
        # trades overlay: pixels in the profit colour of the trade lines and the long-entry
        # dots (#39d98a, #2ebd85), with the overlay minus without it
        green = (
            "(r === 0x39 && g === 0xd9 && b === 0x8a) || (r === 0x2e && g === 0xbd && b === 0x85)"
        )
        area = driver.execute_script("const c = document.getElementById('heatmap');"
                                     " return (c.width - 90) * (c.height - 40)")  # fmt: skip
        obs["hash_no_trades"] = obs["hash_default"]
        before = _pixels(driver, green) * area
        act(driver, lambda: driver.find_element("id", "show-trades").click())
        obs["trades_n"] = driver.execute_script("return window.liqsignals.trades.length")
        obs["hash_trades"] = _hash(driver)
        obs["trade_pixels"] = round(_pixels(driver, green) * area - before)
        act(driver, lambda: driver.find_element("id", "show-trades").click())
        # colour-blind scale
        select_now(driver, "colors", "cividis")
        obs["hash_cividis"] = _hash(driver)
        obs["black_cividis"] = _pixels(driver, black)
        select_now(driver, "colors", "default")
        # mode
        select(driver, "mode", "long")
        obs["mode_after"] = driver.execute_script("return window.liqsignals.hm.mode")
        obs["hash_long"] = _hash(driver)
        # timeframe and model preset
        select(driver, "timeframe", "15m")
        obs["tf_after"] = driver.execute_script("return window.liqsignals.hm.timeframe")
        obs["hash_15m"] = _hash(driver)
        select(driver, "preset", "binance_btc")
        obs["preset_after"] = driver.execute_script("return window.liqsignals.hm.preset")
        obs["hash_preset"] = _hash(driver)
        select(driver, "preset", "default")
        select(driver, "timeframe", "5m")  # the second venue has 5m candles only
        obs["vmax_one"] = driver.execute_script("return window.liqsignals.hm.vmax")
        obs["hash_one"] = _hash(driver)
        # exchanges: add bybit to binance (a multiple select)
        act(driver, lambda: Select(driver.find_element("id", "exchange")).select_by_value("bybit"))
        obs["exchanges_after"] = driver.execute_script("return window.liqsignals.hm.exchanges")
        obs["hash_two"] = _hash(driver)
        obs["vmax_two"] = driver.execute_script("return window.liqsignals.hm.vmax")
        # PNG download
        downloads = tmp / "downloads"
        downloads.mkdir()
        driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )
        driver.find_element("id", "png").click()
        deadline = time.monotonic() + 20
        files: list[Path] = []
        while time.monotonic() < deadline and not files:
            files = [p for p in downloads.glob("*.png") if p.stat().st_size > 0]
            time.sleep(0.1)
        data = files[0].read_bytes() if files else b""
        obs["png_magic"] = data[:8].hex()
        obs["png_size"] = _png_size(data) if data else None
        obs["canvas_size"] = driver.execute_script(
            "const c = document.getElementById('heatmap'); return [c.width, c.height]"
        )
        obs["js_errors"] = driver.execute_script("return window.liqsignals.errors")
        obs["severe"] = _severe(driver)
        return obs
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def _export_scenario() -> dict[str, Any]:
    import pandas as pd

    from liqsignals import sample

    tmp = Path(tempfile.mkdtemp(prefix="liqsignals-export-"))
    out = tmp / "btc.html"
    trades = _trades_file(
        tmp, [("2025-05-01 00:00:00", "2025-05-10 00:00:00", 97_000.0, 103_000.0, False)]
    )
    cmd = [sys.executable, "-m", "liqsignals", "heatmap", "-p", "BTC/USDT:USDT", "-t", "1h",
           "--timerange", "20250401-", "--window", "1w", "--mode", "long",
           "--max-columns", "600", "--max-rows", "300", "--no-market-data",
           "--trades", str(trades), "--out", str(out), "--no-progress"]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"export failed: {done.stderr[-2000:]}")
    driver = None
    try:
        driver = browser()
        driver.get(out.as_uri())
        wait_js(driver, "return window.liqsignals && window.liqsignals.loads >= 1")
        obs: dict[str, Any] = {"url": driver.current_url, "lit_share": driver.execute_script(_LIT)}
        obs["static"] = driver.execute_script("return window.liqsignals.static")
        obs["map_rows"] = len(driver.find_elements("css selector", "#readout tr"))
        obs["trades_n"] = driver.execute_script("return window.liqsignals.trades.length")
        df = sample.load_candles("BTC/USDT:USDT", "1h")
        view = {"start": pd.Timestamp("2025-04-01", tz="UTC"), "w": 600, "h": 300}
        own = own_heatmap(df, view, window="1w", side="long", mode="long", smooth=True)
        obs["hover"] = hover_exact(driver, own)
        obs["requests"] = driver.execute_script(
            "return performance.getEntriesByType('resource').map((e) => e.name)"
        )
        obs["js_errors"] = driver.execute_script("return window.liqsignals.errors")
        obs["severe"] = _severe(driver)
        return obs
    finally:
        if driver is not None:
            driver.quit()
        shutil.rmtree(tmp, ignore_errors=True)


def _live_scenario() -> dict[str, Any]:
    import ccxt
    import pandas as pd

    from liqsignals import sample
    from liqsignals.data.datadir import save_candles
    from liqsignals.replay import LiveClock, ReplayExchange
    from liqsignals.replay.config import ccxt_config

    first = sample.load_candles("BTC/USDT:USDT", "15m")
    start_ms = int(first["date"].iloc[-1].value // 1_000_000) - 3 * 86_400_000
    clock = LiveClock(start_ms, speed=200.0, align_ms=3_600_000)  # a 15m candle: 4.5 s
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
            # each update: how long after the close of the first candle it adds (replay time)
            step = 15 * 60_000
            last, lags = obs["last_before"], []
            deadline = time.monotonic() + 45
            while len(lags) < 3 and time.monotonic() < deadline:
                now = driver.execute_script("return window.liqsignals.lastCandle")
                if now > last:
                    lags.append((clock.now_ms() - (last + 2 * step)) / step)
                    last = now
                time.sleep(0.05)
            obs["lags_candles"] = lags
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
        settle(driver)
        obs["page_lit"] = driver.execute_script(_LIT)
        # a public address without --token: refused before it binds
        cmd = [sys.executable, "-m", "liqsignals.web.cli", "--host", "0.0.0.0", "--port", "8051"]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
        obs["public_rc"] = done.returncode
        obs["public_err"] = done.stderr
        return obs
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    scenarios = {
        "page": _page_scenario,
        "controls": _controls_scenario,
        "export": _export_scenario,
        "live": _live_scenario,
        "token": _token_scenario,
    }
    print(json.dumps(scenarios[sys.argv[1]]()), flush=True)
