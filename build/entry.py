"""The frozen executable's entry point: the warden-algos command line.

Before anything else: a onefile executable claims the folder it unpacked into and sweeps the ones
that killed runs left behind (``warden_algos.runtime_dir``), and ``WARDEN_IMPORTTIME=1`` starts
tracing imports (``warden_algos.importtrace``), so that the command line's own imports are traced.
"""

import sys

from warden_algos.importtrace import install_if_requested
from warden_algos.runtime_dir import claim_and_sweep

claim_and_sweep()
install_if_requested()

from warden_algos.cli import main  # noqa: E402  (after the tracer, on purpose)

if __name__ == "__main__":
    sys.exit(main())
