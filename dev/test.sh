#!/usr/bin/env bash
# The README's test command: bring what the tests need beyond Python (dev/system-deps.sh, a no-op
# when everything is there), then the whole suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash dev/system-deps.sh
exec .venv/bin/python -m pytest "$@"
