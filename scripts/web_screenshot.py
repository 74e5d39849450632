"""The README screenshot of the web view: ``liqsignals serve`` on the bundled sample, opened in
the system Chromium (headless, through chromedriver) inside a private network namespace with only
loopback, one cell hovered, the page saved as PNG.

Usage: ``python scripts/web_screenshot.py [OUT.png]`` (default ``docs/images/web.png``); the page
shown is ``http://127.0.0.1:8050/?pair=BTC/USDT:USDT&timeframe=1h&span=3M``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PORT = 8050
URL = f"http://127.0.0.1:{PORT}/?pair=BTC/USDT:USDT&timeframe=1h&span=3M"


def _wait(driver: object, js: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.execute_script(js):  # type: ignore[attr-defined]
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for: {js}")


def inner(out: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains

    from liqsignals.fileio import atomic_write_bytes

    cmd = [sys.executable, "-m", "liqsignals", "serve", "--port", str(PORT)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
    profile = tempfile.mkdtemp(prefix="liqsignals-shot-")
    driver = None
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("liqsignals serve did not start") from None
                time.sleep(0.2)
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update",
                     "--hide-scrollbars", "--window-size=1400,860",
                     f"--user-data-dir={profile}"):  # fmt: skip
            opts.add_argument(flag)
        driver = webdriver.Chrome(options=opts, service=Service("/usr/bin/chromedriver"))
        driver.get(URL)
        _wait(driver, "return window.liqsignals && window.liqsignals.loads >= 1")
        _wait(driver, "return window.liqsignals.map !== null && window.liqsignals.pending === 0")
        time.sleep(0.5)
        canvas = driver.find_element("id", "heatmap")
        ActionChains(driver).move_to_element_with_offset(canvas, 180, -60).perform()
        _wait(driver, "return document.getElementById('hover').dataset.notional !== undefined")
        time.sleep(1.0)  # the map follows the hovered candle
        atomic_write_bytes(out, driver.get_screenshot_as_png())
        print(f"wrote {out}")
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(profile, ignore_errors=True)


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--inner":
        inner(Path(sys.argv[2]))
        return 0
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "images" / "web.png")
    cmd = f"ip link set lo up && exec {sys.executable} {Path(__file__)} --inner {out.resolve()}"
    return subprocess.run(["unshare", "-n", "sh", "-c", cmd], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())
