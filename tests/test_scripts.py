"""The Lua files: headers, includes, the shebang variants, and NOSCRIPT recovery."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from rac_store import AuditStore, create_domain_ack, create_run_expectations
from rac_store.scripts import Script, load_source, lua_dir

from .support.cluster import serving_node


@pytest.mark.parametrize("name", tuple(Script))
def test_every_script_has_a_header(name: str) -> None:
    text = (lua_dir() / f"{name}.lua").read_text(encoding="utf-8")
    header = text.split("]]", 1)[0]
    assert text.startswith("#!lua")
    for word in ("KEYS[1]", "ARGV", "Reply", "Errors"):
        assert word in header, f"{name}.lua header lacks {word}"
    uses = set(re.findall(r"KEYS\[(\d+)\]", text.split("]]", 1)[1]))
    documented = set(re.findall(r"KEYS\[(\d+)", header))
    assert uses <= documented | {"1"}, f"{name}.lua uses undocumented KEYS {uses - documented}"


@pytest.mark.parametrize("name", tuple(Script))
def test_includes_are_inlined_and_shebang_only_for_servers(name: str) -> None:
    source = load_source(name)
    assert not re.search(r"^-- @include ", source.server_text, re.MULTILINE)
    assert source.server_text.startswith("#!lua")
    assert not source.embedded_text.startswith("#!")
    assert source.embedded_text.count("\n") == source.server_text.count("\n")


KEY_PARAMETERS = (
    "KEYS[", "pending_key", "exp_key", "due_key", "st_key", "acks_key", "stream_key",
    "epoch_key",
)  # fmt: skip
"""What the first argument of a keyed redis.call may be: KEYS, or a helper's key parameter."""


SUBCOMMANDS = ("XINFO", "XGROUP", "XREADGROUP")
"""Commands whose key follows a subcommand or options (checked among all their arguments)."""


def test_no_script_builds_a_key_name() -> None:
    for name in tuple(Script):
        body = load_source(name).server_text
        for call in re.findall(r"redis\.call\('(\w+)',\s*([^,)]+)", body):
            command, first = call
            if command in SUBCOMMANDS:
                continue
            if command != "TIME":
                assert first.startswith(KEY_PARAMETERS), (name, call)
        for args in re.findall(rf"redis\.call\('(?:{'|'.join(SUBCOMMANDS)})',([^)]*)\)", body):
            keys = [a.strip() for a in args.split(",") if a.strip().startswith(KEY_PARAMETERS)]
            assert len(keys) == 1, (name, args)


def _work(store: AuditStore) -> str:
    """Every script once on a new run; the run's pending index key."""
    run = uuid.uuid4()
    store.add_expectations(run, create_run_expectations(run))
    store.add_ack(run, create_domain_ack(run, "incidents", "create_incident"))
    store.add_acks(run, [create_domain_ack(run, "logs", "start_trace")])
    store.update_expectation_status(run, "policies", "evaluate_policy", "MISSING")
    assert len(store.get_expectations(run)) == 4
    store.clear_run(run)
    return store.core.keys.for_run(str(run)).pending


def test_store_survives_script_flush(store: AuditStore, raw_client: Any) -> None:
    _work(store)
    raw_client.script_flush()
    assert raw_client.script_exists(store._scripts["add_acks"].sha) == [False]
    key = _work(store)  # NOSCRIPT: each call goes as EVAL; no error reaches the caller
    node = serving_node(raw_client, key)  # on a cluster: cached on the run's primary only
    assert node.script_exists(store._scripts["add_acks"].sha) == [True]


def test_unknown_script_name() -> None:
    with pytest.raises(ValueError, match="nope"):
        load_source("nope")
