"""``python -m rac_store`` is the ``rac-store`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
