"""Statistics over the estimate: evaluation, calibration, information tests, event studies.

Each module is a library of functions returning result dataclasses (``to_dict()`` for
``--json``); the commands in :mod:`liqsignals.cli` are thin layers over them.

:mod:`~liqsignals.analysis.magnets`
    the magnet test (do clusters attract price?) and its :class:`MagnetEvaluation`;
:mod:`~liqsignals.analysis.realised`
    estimated vs realised liquidations per bar and its :class:`RealisedEvaluation`;
:mod:`~liqsignals.analysis.common`
    shared helpers (horizons, candle dates, Spearman, JSON-safe values).

:mod:`liqsignals.evaluate` gathers the evaluations' public names in one place; reports
(markdown and figures) are in :mod:`liqsignals.report`.
"""
