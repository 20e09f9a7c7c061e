"""``python -m rac_store`` is the ``rac-store`` command."""

import sys

from .cli import main

sys.exit(main())
