"""``python -m benchmarks``: the same runner as ``rac-store bench``."""

import sys

from .runner import main

if __name__ == "__main__":  # spawned workers import this module too
    sys.exit(main())
