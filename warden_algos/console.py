"""The ``warden-algos`` console script and ``python -m warden_algos``: one start for both.

``WARDEN_IMPORTTIME=1`` (see ``importtrace``) must be honoured before the command line's own
imports, so that an author can see what their algorithm costs from the command the README uses
everywhere; the frozen entry point (``build/entry.py``) does the same for the executable.
"""

from __future__ import annotations


def main() -> int:
    from warden_algos.importtrace import install_if_requested

    install_if_requested()
    from warden_algos.cli import main as cli_main  # after the tracer, on purpose

    return cli_main()
