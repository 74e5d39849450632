"""Live helpers beyond one freqtrade exchange: :mod:`liqsignals.live.poller` keeps other
venues' candles current in a datadir (``liqsignals poll``)."""
