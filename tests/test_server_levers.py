"""benchmarks.server_levers: its variants are proven equivalent before they are timed, a
wrong variant is caught, and its quick mode produces every figure (never its speed)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from benchmarks import server_levers
from benchmarks.server_levers import NotEquivalentError, Variant
from rac_store.embedded import create_embedded_client

pytestmark = pytest.mark.redis_only

MUTANTS = {
    "a reply": (
        "local RECORDED, DUPLICATE, DRIFT, LATE = 0, 1, 2, 3",
        "local RECORDED, DUPLICATE, DRIFT, LATE = 0, 1, 2, 0",
    ),
    "the data only": (
        "status_record(target, now_text, late, live)",
        "status_record(target, now_text, late, '0')",
    ),
    "an error text": ("RAC_BADARG ok flag of ack", "RAC_BADARG ok-flag of ack"),
    "only a second call's reply": (
        "if first_here and string.sub(previous, 2) == token then",
        "if string.sub(previous, 2) == token then",
    ),
}
"""Changes a lever must not make, each seen by another part of the check."""


@pytest.fixture
def levers_client(redis_client: redis.Redis) -> Iterator[redis.Redis]:
    """The session's server, emptied, with the levers' function libraries removed after."""
    yield redis_client
    redis_client.function_flush()


def test_every_variant_is_equivalent_on_redis(levers_client: redis.Redis) -> None:
    variants = server_levers.load_variants(levers_client)
    befores = {f"before + {name}" for name in server_levers.SKIPS}
    assert {"current", "fcall", server_levers.BEFORE, "empty script", *befores} <= set(variants)
    compared = server_levers.check_equivalence(levers_client, variants)
    assert set(compared) == set(variants) - {"current", "empty script", "empty function"}
    assert min(compared.values()) >= 30
    assert not list(levers_client.scan_iter(match="levereq*"))  # it cleans up after itself


def test_the_library_is_equivalent_on_the_embedded_server() -> None:
    client = create_embedded_client()
    variants = server_levers.load_embedded_variants(client)
    compared = server_levers.check_equivalence(client, variants)
    assert compared["fcall"] >= 30
    assert compared[server_levers.BEFORE] >= 30


@pytest.mark.parametrize("what", MUTANTS)
def test_a_variant_that_changes_what_is_caught(levers_client: redis.Redis, what: str) -> None:
    old, new = MUTANTS[what]
    text = server_levers.current_script()
    assert text.count(old) == 1
    sha = str(levers_client.script_load(text.replace(old, new)))
    variants = server_levers.load_variants(levers_client)
    wrong = {"current": variants["current"], "mutant": Variant("mutant", ("EVALSHA", sha), "x")}
    with pytest.raises(NotEquivalentError, match="mutant"):
        server_levers.check_equivalence(levers_client, wrong)


def test_a_wrong_function_library_is_caught(levers_client: redis.Redis) -> None:
    old, new = MUTANTS["a reply"]
    text = server_levers.current_script().replace(old, new)
    levers_client.function_load(
        server_levers.function_library(text, "rac_levers_mutant", "rac_levers_mutant"),
        replace=True,
    )
    variants = server_levers.load_variants(levers_client)
    wrong = {
        "current": variants["current"],
        "mutant": Variant("mutant", ("FCALL", "rac_levers_mutant"), "fcall"),
    }
    with pytest.raises(NotEquivalentError, match="mutant, late"):
        server_levers.check_equivalence(levers_client, wrong)


def test_a_skip_that_no_longer_matches_the_script_is_refused() -> None:
    with pytest.raises(ValueError, match="0 matches"):
        server_levers.without_skips("-- not add_acks.lua\n", ["pending_parse"])


def test_the_skips_are_adopted_and_undone_exactly() -> None:
    """The current script has every skip; undoing them all leaves none of their text, and
    each skip alone differs from both ends."""
    current = server_levers.current_script()
    before = server_levers.before_adoption(current)
    for pairs in server_levers.SKIPS.values():
        for now, old in pairs:
            assert current.count(now) == 1
            if old:
                assert before.count(old) == 1
    for marker in ("now_text", "m > 1 and {} or false", "'PENDING|0|0|1'", "d1 ~= 0"):
        assert marker in current
        assert marker not in before
    alone = {server_levers.only_skip(current, name) for name in server_levers.SKIPS}
    assert len(alone) == len(server_levers.SKIPS)
    assert not alone & {current, before}


def _numbers(value: Any) -> Iterator[float]:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield float(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)


@pytest.mark.slow
def test_quick_mode_produces_every_figure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "levers.json"
    assert server_levers.main(["--quick", "--output", str(output)]) == 0
    found = json.loads(output.read_text())
    speed = found["speed"]
    for side in ("single", "batch"):
        assert set(speed[side]) >= {"current", "fcall", server_levers.BEFORE, "empty function"}
        for name, stats in speed[side].items():
            assert stats["script_us"] > 0, name
            assert stats["blocks"] == server_levers.QUICK_SPEED.blocks
        assert speed[side]["current"]["ratio_to_current"] == 1.0
        assert speed[side][server_levers.BEFORE]["ratio_to_before"] == 1.0
    memory = found["memory"]
    assert len(memory) == len(server_levers.LAYOUTS) + 2
    for name, side in memory.items():
        assert side[server_levers.AT] > 0, name
        assert side["keys_per_run"] > 0, name
    assert memory["one hash per run (+ acks list)"]["keys_per_run"] == pytest.approx(2.0)
    assert memory["current layout, rewritten (check)"]["keys_per_run"] == pytest.approx(4.0)
    assert found["embedded"]["equivalence_calls_compared"]["fcall"] >= 30
    assert found["embedded"]["equivalence_calls_compared"][server_levers.BEFORE] >= 30
    assert all(math.isfinite(number) for number in _numbers(found))
    printed = capsys.readouterr().out
    assert "| fcall |" in printed
    assert "| before adoption |" in printed
    assert "| before + met_table |" in printed
    assert "| original (two JSON strings) |" in printed
