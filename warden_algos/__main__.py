"""``python -m warden_algos ...``: the same command as the ``warden-algos`` console script.

Like the frozen entry point, it honours ``WARDEN_IMPORTTIME=1`` (see ``importtrace``), so a test can
compare what an unfrozen and a frozen start import with one parser.
"""

import sys

from warden_algos.importtrace import install_if_requested

install_if_requested()

from warden_algos.cli import main  # noqa: E402  (after the tracer, on purpose)

sys.exit(main())
