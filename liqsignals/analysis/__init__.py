"""The statistics behind ``liqsignals evaluate`` and ``liqsignals calibrate``.

:mod:`~liqsignals.analysis.magnets`
    the magnet test (do clusters attract price?) and :class:`MagnetEvaluation`;
:mod:`~liqsignals.analysis.realised`
    estimated vs realised liquidations per bar and :class:`RealisedEvaluation`;
:mod:`~liqsignals.analysis.common`
    shared helpers (horizons, candle dates, Spearman, JSON-safe values).

:mod:`liqsignals.evaluate` gathers their public names in one place; reports (markdown and
figures) are in :mod:`liqsignals.report`.
"""
