"""The Lua scripts in ``lua/``: their names, their text, and the command that runs them.

A script may say ``-- @include "name"`` on a line of its own; the loader puts
``lua/includes/name.lua`` there. Redis >= 7 reads a first line ``#!lua flags=...``;
the embedded server (fakeredis + lupa) cannot, so its variant has that line
blanked (kept as a comment, so line numbers in errors still match).

A script runs as ``EVALSHA`` with the SHA1 of its text; when the server answers
NOSCRIPT (its cache was emptied: ``SCRIPT FLUSH``, a restart, a failover) the
senders (:mod:`rac_store.sending`, :mod:`rac_store.aio.sending`) send the same
call once more as ``EVAL`` with the text, which also loads it into the cache.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from functools import cache
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any, NamedTuple


class Script(str, Enum):
    """Every script of ``lua/``, by the name of its file."""

    ADD_EXPECTATIONS = "add_expectations"
    ADD_ACKS = "add_acks"
    UPDATE_STATUS = "update_status"
    CLEAR_RUN = "clear_run"
    READ_EXPECTATIONS = "read_expectations"
    INIT_META = "init_meta"
    READ_RUN = "read_run"
    SWEEP_RUN = "sweep_run"
    RECORD_FINDING = "record_finding"
    END_RUN = "end_run"
    READ_GROUP = "read_group"
    DEAD_LETTER = "dead_letter"

    def __str__(self) -> str:
        return self.value


_INCLUDE = re.compile(r'^-- @include "([a-z_]+)"\s*$', re.MULTILINE)

Arg = str | bytes | int
"""One KEYS or ARGV value of a call."""


class ScriptCall(NamedTuple):
    """One script invocation: which script, its KEYS and ARGV, and a name for errors.

    A named tuple rather than a dataclass: one is built per ack on the hot path,
    and a tuple is the cheapest immutable record Python makes.
    """

    script: Script
    keys: Sequence[str]
    args: Sequence[Arg]
    operation: str


@dataclass(frozen=True)
class ScriptSource:
    """One script's text for a real Redis server and for the embedded one."""

    script: Script
    server_text: str
    embedded_text: str

    @property
    def read_only(self) -> bool:
        """True for a script flagged ``#!lua flags=no-writes``."""
        first = self.server_text.partition("\n")[0]
        return first.startswith("#!lua") and "no-writes" in first

    def text(self, embedded: bool) -> str:
        """The variant for the embedded backend or for a real server."""
        return self.embedded_text if embedded else self.server_text


class LoadedScript(NamedTuple):
    """A script's text for one backend and its SHA1 (what EVALSHA names)."""

    text: str
    sha: str
    read_only: bool

    def command(self, call: ScriptCall, by_body: bool = False) -> tuple[Arg, ...]:
        """The ``EVALSHA`` (or, ``by_body``, the ``EVAL``) command of ``call``."""
        head = ("EVAL", self.text) if by_body else ("EVALSHA", self.sha)
        return (*head, len(call.keys), *call.keys, *call.args)


def lua_dir() -> Traversable:
    """The folder of Lua scripts: inside the installed wheel, or the source tree's ``lua/``."""
    packaged = resources.files("rac_store") / "lua"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "lua"


def _inline_includes(text: str, folder: Traversable) -> str:
    def include(match: re.Match[str]) -> str:
        return (folder / "includes" / f"{match.group(1)}.lua").read_text(encoding="utf-8")

    return _INCLUDE.sub(include, text)


def _blank_shebang(text: str) -> str:
    if text.startswith("#!"):
        first, _, rest = text.partition("\n")
        return f"-- {first}\n{rest}"
    return text


@cache
def load_source(script: Script) -> ScriptSource:
    """The script ``lua/<name>.lua`` with its includes inlined."""
    script = Script(script)
    folder = lua_dir()
    text = _inline_includes((folder / f"{script.value}.lua").read_text(encoding="utf-8"), folder)
    return ScriptSource(script, text, _blank_shebang(text))


@cache
def load_scripts(embedded: bool) -> dict[Script, LoadedScript]:
    """Every script in the variant a server (or the embedded backend) can load."""
    loaded = {}
    for script in Script:
        source = load_source(script)
        text = source.text(embedded)
        sha = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()
        loaded[script] = LoadedScript(text, sha, source.read_only)
    return loaded


def preload(client: Any) -> dict[Script, str]:
    """``SCRIPT LOAD`` every script into the server of ``client`` (a sync redis-py client
    of an admin); the SHA1 of each.

    For deployments whose workers may not ``EVAL`` (``worker_rules(allow_eval=False)``,
    docs/security.md): they can then run the store's scripts, and only those. Run it
    again after every restart, failover or ``SCRIPT FLUSH`` (on every primary of a
    Redis Cluster): until then those workers' calls fail with StorePermissionError.
    """
    return {
        script: str(client.script_load(loaded.text))
        for script, loaded in load_scripts(embedded=False).items()
    }
