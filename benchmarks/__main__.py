"""``python -m benchmarks``: the same runner as ``rac-store bench``."""

import sys

from .runner import main

sys.exit(main())
