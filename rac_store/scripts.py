"""The Lua scripts in ``lua/``: read once, includes inlined, ready to register.

A script may say ``-- @include "name"`` on a line of its own; the loader puts
``lua/includes/name.lua`` there. Redis >= 7 reads a first line ``#!lua flags=...``;
the embedded server (fakeredis + lupa) cannot, so its variant has that line
blanked (kept as a comment, so line numbers in errors still match).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

from .embedded import is_embedded

SCRIPT_NAMES = (
    "add_expectations",
    "add_acks",
    "update_status",
    "clear_run",
    "read_expectations",
    "init_meta",
    "read_run",
    "sweep_run",
    "record_finding",
)

_INCLUDE = re.compile(r'^-- @include "([a-z_]+)"\s*$', re.MULTILINE)


@dataclass(frozen=True)
class ScriptSource:
    """One script's text for a real Redis server and for the embedded one."""

    name: str
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
def load_source(name: str) -> ScriptSource:
    """The script ``lua/<name>.lua`` with its includes inlined."""
    if name not in SCRIPT_NAMES:
        raise KeyError(f"no script named {name!r}")
    folder = lua_dir()
    text = _inline_includes((folder / f"{name}.lua").read_text(encoding="utf-8"), folder)
    return ScriptSource(name, text, _blank_shebang(text))


def register_scripts(client: Any) -> dict[str, Any]:
    """Every script registered on ``client`` (sync or asyncio), in the variant it can load.

    The result maps a script name to redis-py's ``Script`` (or ``AsyncScript``):
    EVALSHA first, reload and re-send on NOSCRIPT.
    """
    embedded = is_embedded(client)
    return {name: client.register_script(load_source(name).text(embedded)) for name in SCRIPT_NAMES}
