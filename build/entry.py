"""The frozen executable's entry point: the warden-algos command line."""

import sys

from warden_algos.cli import main

if __name__ == "__main__":
    sys.exit(main())
