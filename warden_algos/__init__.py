"""warden-algos: write anomaly-detection and RCA algorithms in Python; the JVM platform runs them.

Kept import-free on purpose: every CLI start imports this module, and a one-shot run's latency is
the platform's latency. Authors import from ``warden_algos.interfaces``.
"""

__version__ = "0.1.0"
