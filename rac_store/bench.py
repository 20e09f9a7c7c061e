"""``rac-store bench``: the benchmark runner of the source tree (``benchmarks/``).

The runner and the baseline it compares against live in ``benchmarks/`` beside
the package, not inside it: they are tools of the project, not of the library.
The command finds them when rac_store is installed from a checkout
(``pip install -e .``, the README's install) or run from one.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import ModuleType

_HINT = (
    "rac-store bench needs the benchmarks/ folder of a rac_store checkout:"
    " install with `pip install -e .` from the repository"
)


CHECKOUT = Path(__file__).resolve().parent.parent
"""The source tree this package was imported from (when it was)."""


def load_runner(checkout: Path = CHECKOUT, module: str = "benchmarks.runner") -> ModuleType | None:
    """The runner module, or None when neither sys.path nor ``checkout`` has it."""
    package = module.split(".", 1)[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name not in (package, module):
            raise
    if (checkout / package / "runner.py").is_file():
        sys.path.append(str(checkout))
        return importlib.import_module(module)
    return None


def unavailable(args: argparse.Namespace) -> int:
    """What ``rac-store bench`` does without a checkout: say how to get one; exit code 2."""
    print(f"rac-store: {_HINT}", file=sys.stderr)
    return 2


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``bench`` to the CLI."""
    runner = load_runner()
    parser = commands.add_parser(
        "bench",
        help="side-by-side benchmarks against PING, raw SET and the old design",
        description="Run every benchmark figure of rac_store side by side and print the ratios.",
    )
    if runner is None:
        parser.set_defaults(run=unavailable)
        return
    runner.add_arguments(parser)
    parser.set_defaults(run=runner.run)
