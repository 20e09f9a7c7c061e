"""The mutation check: ``python -m tests.mutation`` (called by .ci/run).

Each mutant of :mod:`tests.mutation.mutants` is applied, one at a time, to a
temporary copy of the tree (the working tree is never touched), and its tests
run there; a mutant must make them fail. First the same tests run on the
unmutated copy and must pass, so a failure really is the mutant's doing.
Exit status: 0 when every mutant is killed, 1 when one survives or a test run
errs, 2 when a mutant's snippet is not found exactly once.

Options: ``--list`` prints the mutants; ``--only TEXT`` runs those whose name
contains TEXT; ``--markdown`` prints the result table in Markdown.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .mutants import MUTANTS, Mutant

ROOT = Path(__file__).resolve().parents[2]
COPIED = ("rac_store", "lua", "tests", "benchmarks", "pyproject.toml")
TIMEOUT_S = 600


class SnippetError(Exception):
    """A mutant's snippet is missing from its file, or found more than once."""


def check_snippets(mutants: Sequence[Mutant], root: Path) -> None:
    """Every snippet occurs exactly once in its file; SnippetError says which does not."""
    problems = []
    for mutant in mutants:
        path = root / mutant.file
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        found = text.count(mutant.original)
        if found == 0:
            problems.append(
                f"snippet not found in {mutant.file}: update the mutant {mutant.name!r}"
                f" (snippet {mutant.original!r})"
            )
        elif found > 1:
            problems.append(
                f"snippet found {found} times in {mutant.file}: make the mutant"
                f" {mutant.name!r} more exact (snippet {mutant.original!r})"
            )
    if problems:
        raise SnippetError("\n".join(problems))


def copy_tree(target: Path) -> None:
    """The package, scripts, tests and test configuration, without caches."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        else:
            shutil.copy2(source, target / name)


def run_tests(copy: Path, tests: Sequence[str], keyword: str) -> int:
    """pytest's exit status for ``tests`` in the copy (its own rac_store and lua/)."""
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("COVERAGE_PROCESS_START", None)
    command = [sys.executable, "-m", "pytest", "-q", "-x", "--no-header"]
    command += [*tests, "-k", keyword]
    done = subprocess.run(
        command, cwd=copy, env=env, timeout=TIMEOUT_S, capture_output=True, text=True, check=False
    )
    if done.returncode not in (0, 1):
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n", file=sys.stderr)
    return done.returncode


def imports_the_copy(copy: Path) -> bool:
    """True when Python started in the copy imports the copy's rac_store (not the installed one)."""
    env = {**os.environ, "PYTHONPATH": str(copy)}
    code = "import rac_store, sys; sys.stdout.write(rac_store.__file__)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=copy, env=env, capture_output=True, text=True, check=True
    )
    return Path(done.stdout).resolve().is_relative_to(copy.resolve())


def baseline(copy: Path, mutants: Sequence[Mutant]) -> list[str]:
    """Problems of the unmutated copy: each group of tests (by ``-k``) must pass."""
    problems = []
    groups: dict[str, list[str]] = {}
    for mutant in mutants:
        groups.setdefault(mutant.keyword, []).extend(mutant.tests)
    for keyword, tests in groups.items():
        status = run_tests(copy, list(dict.fromkeys(tests)), keyword)
        if status != 0:
            problems.append(f"the unmutated tests fail (pytest exit {status}, -k {keyword!r})")
    return problems


def apply_and_run(copy: Path, mutant: Mutant) -> str:
    """``killed``, ``SURVIVED`` or ``ERROR (pytest exit N)``; the copy is restored after."""
    path = copy / mutant.file
    original = path.read_text(encoding="utf-8")
    try:
        path.write_text(original.replace(mutant.original, mutant.mutated, 1), encoding="utf-8")
        status = run_tests(copy, mutant.tests, mutant.keyword)
    finally:
        path.write_text(original, encoding="utf-8")
    if status == 1:
        return "killed"
    if status == 0:
        return "SURVIVED"
    return f"ERROR (pytest exit {status})"


def table(results: Sequence[tuple[Mutant, str]], markdown: bool) -> str:
    """The results, one row per mutant."""
    if markdown:
        rows = ["| mutant | file | tests | result |", "|---|---|---|---|"]
        for mutant, result in results:
            tests = "<br>".join(f"`{t}`" for t in mutant.tests)
            rows.append(f"| {mutant.name} | `{mutant.file}` | {tests} | {result} |")
        return "\n".join(rows)
    return "\n".join(
        f"{result:<9} {mutant.name}  [{mutant.file}]  <- {', '.join(mutant.tests)}"
        for mutant, result in results
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__)
    parser.add_argument("--list", action="store_true", help="print the mutants and exit")
    parser.add_argument("--only", default="", help="run the mutants whose name contains this")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    mutants = [m for m in MUTANTS if args.only in m.name]
    if args.list:
        print(table([(m, "-") for m in mutants], args.markdown))
        return 0
    try:
        check_snippets(mutants, ROOT)
    except SnippetError as exc:
        print(f"mutation check: {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="rac-mutants-") as tmp:
        copy = Path(tmp)
        copy_tree(copy)
        if not imports_the_copy(copy):
            print("mutation check: the copy does not import its own rac_store", file=sys.stderr)
            return 1
        problems = baseline(copy, mutants)
        if problems:
            print("mutation check: " + "\n".join(problems), file=sys.stderr)
            return 1
        results = []
        for mutant in mutants:
            results.append((mutant, apply_and_run(copy, mutant)))
            print(f"{results[-1][1]:<9} {mutant.name}", flush=True)
    killed = sum(result == "killed" for _, result in results)
    print(f"\n{table(results, args.markdown)}\n\nmutants killed: {killed} of {len(results)}")
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
