"""The package's shape, checked on its source: no module reaches into another module's private
names, no function takes more than ten parameters, every subpackage is reachable from
``import liqsignals``, and the core imports no optional stack."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "liqsignals"
MAX_PARAMS = 10
# conventional public API of namedtuples, spelt with an underscore
PUBLIC_UNDERSCORE = {"_replace", "_asdict", "_fields", "_make", "_field_defaults"}


def _modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if ".venv" not in p.parts)


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name not in PUBLIC_UNDERSCORE


def _is_module(dotted: str) -> bool:
    rel = Path(*dotted.split("."))
    return (ROOT / rel).with_suffix(".py").exists() or (ROOT / rel / "__init__.py").exists()


def _resolve(node: ast.ImportFrom, module: str, is_pkg: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_pkg:
        base = base[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _defined_private(tree: ast.AST) -> set[str]:
    """Private names a module defines itself (functions, classes, attributes, globals)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name.split(".")[0])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # __slots__ entries and dataclass field names given as strings
            if node.value.isidentifier():
                names.add(node.value)
    return {n for n in names if _is_private(n)}


def private_violations() -> list[str]:
    out = []
    for path in _modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        module = _module_name(path)
        is_pkg = path.name == "__init__.py"
        own = _defined_private(tree)
        rel = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                src = _resolve(node, module, is_pkg)
                if not src.startswith("liqsignals"):
                    continue
                for alias in node.names:
                    if _is_private(alias.name) and not _is_module(f"{src}.{alias.name}"):
                        out.append(f"{rel}:{node.lineno} imports {src}.{alias.name}")
            elif isinstance(node, ast.Attribute) and _is_private(node.attr):
                base = node.value
                if isinstance(base, ast.Name) and base.id in {"self", "cls"}:
                    continue
                if node.attr in own:
                    continue  # the module's own private name (another instance of its class)
                out.append(f"{rel}:{node.lineno} uses .{node.attr}")
    return out


def long_signatures() -> list[str]:
    out = []
    for path in _modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                a = node.args
                n = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs)
                if a.args and a.args[0].arg in {"self", "cls"}:
                    n -= 1
                if n > MAX_PARAMS:
                    out.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}() has {n}")
    return out


def test_no_cross_module_private_names():
    found = private_violations()
    assert not found, "private names used across modules:\n" + "\n".join(found)


def test_no_function_has_more_than_ten_parameters():
    found = long_signatures()
    assert not found, "functions with more than 10 parameters:\n" + "\n".join(found)


def test_the_checker_finds_what_it_must(tmp_path, monkeypatch):
    """The checks above could fail: planted violations are found."""
    pkg = tmp_path / "liqsignals"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def _hidden():\n    return 1\n")
    (pkg / "_priv.py").write_text("X = 1\n")
    (pkg / "b.py").write_text(
        "from liqsignals.a import _hidden\n"
        "from liqsignals import _priv\n"
        "import liqsignals.a as a\n"
        "class C:\n"
        "    def __init__(self):\n"
        "        self._own = 1\n"
        "    def same(self, other):\n"
        "        return other._own\n"
        "def f(x):\n"
        "    return x._other_private + a._hidden()\n"
        "def g(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11):\n"
        "    return 0\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PKG", pkg)
    found = private_violations()
    assert any("imports liqsignals.a._hidden" in f for f in found)
    assert any("uses ._other_private" in f for f in found)
    assert not any("liqsignals._priv" in f for f in found)  # a private module is fine
    assert not any("_own" in f for f in found)
    assert [s.split()[-1] for s in long_signatures()] == ["11"]


def test_every_subpackage_is_an_attribute():
    code = (
        "import liqsignals\n"
        "for name in ('multi', 'features', 'engine', 'model', 'heatmap', 'columns', 'inputs',\n"
        "             'data', 'sample', 'evaluate', 'replay'):\n"
        "    assert getattr(liqsignals, name).__name__ == 'liqsignals.' + name, name\n"
        "print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


@pytest.mark.parametrize(
    "module",
    ["liqsignals", "liqsignals.engine", "liqsignals.features", "liqsignals.inputs"],
)
def test_core_imports_no_optional_stack(module):
    """The indicator API needs numpy, pandas and numba only: importing it (and computing
    features) loads none of freqtrade, ccxt, matplotlib, plotly."""
    code = (
        f"import sys, {module}\n"
        "import liqsignals\n"
        "from liqsignals import sample\n"
        "df = sample.load_candles('BTC/USDT:USDT', '1h').iloc[:400]\n"
        "liqsignals.liquidation_features(df, window='1d')\n"
        "bad = [m for m in ('freqtrade', 'ccxt', 'matplotlib', 'plotly', 'talib', 'ta')\n"
        "       if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "", f"{module} pulled in {res.stdout.strip()}"


def test_a_missing_extra_names_what_to_install(monkeypatch):
    from liqsignals.extras import require

    monkeypatch.setitem(sys.modules, "plotly", None)  # import plotly -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'liqsignals\[plot\]'"):
        require("plotly", "HTML pictures")
    monkeypatch.setitem(sys.modules, "ccxt", None)
    with pytest.raises(ImportError, match=r"liqsignals\[data\]"):
        require("ccxt")
    assert require("numpy").__name__ == "numpy"


def test_ensure_checks_without_importing(monkeypatch):
    from liqsignals.extras import ensure

    monkeypatch.setitem(sys.modules, "plotly", None)
    with pytest.raises(ImportError, match=r"liqsignals\[plot\]"):
        ensure("plotly", "HTML pictures")
    ensure("json")  # present: no error


def test_moved_names_keep_working_with_a_deprecation_warning():
    import liqsignals.engine as engine
    from liqsignals.inputs import prepare_inputs

    with pytest.warns(DeprecationWarning, match=r"liqsignals\.inputs\.prepare_inputs"):
        old = engine.prepare_inputs
    assert old is prepare_inputs
    with pytest.raises(AttributeError):
        engine.no_such_name  # noqa: B018
