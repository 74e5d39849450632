"""Statistics over the estimate: evaluation, calibration, information tests, event studies.

Each module is a library of functions returning result dataclasses (``to_dict()`` for
``--json``); the commands in :mod:`liqsignals.cli` are thin layers over them.
"""
