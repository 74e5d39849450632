"""Optional dependencies: a missing extra is an ImportError that says what to install.

The core install (``pip install liqsignals``) gives the indicator API with numpy, pandas, numba
and pyarrow. The rest comes with extras:

========== ================================================== ==========================
extra      gives                                              brings
========== ================================================== ==========================
freqtrade  strategies, the strategy glue, offline freqtrade   freqtrade[hyperopt,plot]
data       downloads, collectors                              ccxt, tqdm
plot       PNG and HTML pictures                              matplotlib, plotly, tqdm
evaluate   the evaluation's learners and statistics           scikit-learn, scipy
web        the live web view (``liqsignals serve``)            starlette, uvicorn, ccxt
all        every extra above
========== ================================================== ==========================
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["EXTRAS", "ensure", "require"]

#: module -> the extra that installs it
EXTRAS: dict[str, str] = {
    "freqtrade": "freqtrade",
    "ccxt": "data",
    "tqdm": "data",
    "websockets": "data",
    "lightgbm": "freqai",
    "datasieve": "freqai",
    "xgboost": "freqai",
    "matplotlib": "plot",
    "plotly": "plot",
    "sklearn": "evaluate",
    "scipy": "evaluate",
    "ray": "ray",
    "starlette": "web",
    "uvicorn": "web",
}


def require(module: str, what: str | None = None) -> ModuleType:
    """Import ``module``; when it is missing, raise an ImportError naming the extra to install.

    >>> require("numpy").__name__
    'numpy'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        if exc.name is not None and exc.name.split(".")[0] != top:
            raise  # the module exists but one of its own imports failed
        extra = EXTRAS.get(top)
        if extra is None:
            raise
        purpose = f" for {what}" if what else ""
        raise ImportError(
            f"{module} is needed{purpose} but is not installed; "
            f"install it with: pip install 'liqsignals[{extra}]'"
        ) from exc


def ensure(module: str, what: str | None = None) -> None:
    """Check that ``module`` is installed without importing it (modules that import their heavy
    dependencies lazily call this at import time); raise like :func:`require` when it is not."""
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        require(module, what)  # raises the ImportError naming the extra
