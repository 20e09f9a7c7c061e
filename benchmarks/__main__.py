"""``python -m benchmarks``: the benchmark runner (run it from the repository root)."""

import sys

from .runner import main

if __name__ == "__main__":  # spawned workers import this module too
    sys.exit(main())
