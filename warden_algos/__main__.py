"""``python -m warden_algos ...``: the same command as the ``warden-algos`` console script."""

import sys

from warden_algos.console import main

sys.exit(main())
