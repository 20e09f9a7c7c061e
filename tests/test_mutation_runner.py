"""The mutation check's own rules: snippets found exactly once, or a loud error."""

from __future__ import annotations

from pathlib import Path

import pytest

from .mutation.__main__ import ROOT, SnippetError, check_snippets
from .mutation.mutants import MUTANTS, Mutant


def test_every_mutant_matches_the_tree_exactly_once() -> None:
    check_snippets(MUTANTS, ROOT)
    assert len(MUTANTS) >= 12
    assert len({m.name for m in MUTANTS}) == len(MUTANTS)
    assert all(m.original != m.mutated and m.tests for m in MUTANTS)


def test_a_missing_or_repeated_snippet_stops_the_check(tmp_path: Path) -> None:
    (tmp_path / "x.lua").write_text("a > b\na > b\n", encoding="utf-8")
    gone = Mutant("gone", "x.lua", "c > d", "c >= d", ("t",))
    twice = Mutant("twice", "x.lua", "a > b", "a >= b", ("t",))
    with pytest.raises(SnippetError, match=r"snippet not found in x.lua: update the mutant 'gone'"):
        check_snippets([gone], tmp_path)
    with pytest.raises(SnippetError, match=r"snippet found 2 times in x.lua"):
        check_snippets([twice], tmp_path)
