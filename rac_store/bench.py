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


def load_runner() -> ModuleType | None:
    """``benchmarks.runner``, or None when this install has no source tree."""
    checkout = Path(__file__).resolve().parent.parent
    try:
        return importlib.import_module("benchmarks.runner")
    except ModuleNotFoundError as exc:
        if exc.name not in ("benchmarks", "benchmarks.runner"):
            raise
    if (checkout / "benchmarks" / "runner.py").is_file():
        sys.path.append(str(checkout))
        return importlib.import_module("benchmarks.runner")
    return None


def _unavailable(args: argparse.Namespace) -> int:
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
        parser.set_defaults(run=_unavailable)
        return
    runner.add_arguments(parser)
    parser.set_defaults(run=runner.run)
