"""The benchmark's metrics, ``evaluate`` and the ``report`` tables and figures."""
