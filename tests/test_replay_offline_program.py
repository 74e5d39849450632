"""``liqsignals offline -- freqtrade ...`` works without an activated virtualenv."""

from __future__ import annotations

import sys

from liqsignals.replay import offline


def test_programs_not_on_path_run_with_this_interpreter(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert offline._resolve_program(["freqtrade", "backtesting", "-c", "x.json"]) == [
        sys.executable, "-m", "freqtrade", "backtesting", "-c", "x.json",
    ]  # fmt: skip
    assert offline._resolve_program(["echo", "hi"]) == ["echo", "hi"]


def test_programs_on_path_are_left_alone(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    assert offline._resolve_program(["freqtrade", "trade"]) == ["freqtrade", "trade"]
