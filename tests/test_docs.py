"""Docs that run: every ```python block of README.md and docs/*.md, and an API page that is whole.

The blocks of one file run in order, in one namespace (a later block may use what an
earlier one made), on the embedded store: no ``RAC_REDIS_URL``, ``AOS_MODE=local``.
A block that cannot run here says so on its first line, ``# doc-test: skip (reason)``;
those are listed in :data:`SKIPPED`, so a new one fails this test until it is named there.
"""

from __future__ import annotations

import enum
import io
import re
import socket
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

import rac_store
from rac_store import models

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIP = re.compile(r"^#\s*doc-test:\s*skip\s*\((?P<reason>[^)]+)\)")
FENCE = re.compile(r"^```python[ \t]*\n(?P<code>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)

SKIPPED = {
    ("README.md", "needs a Redis Cluster"),
    ("docs/cluster.md", "needs a Redis Cluster"),
    ("docs/security.md", "needs a Redis with TLS"),
}
"""The blocks that do not run here: (page, reason). Every other block runs."""


@dataclass(frozen=True)
class Block:
    """One ```python block: where it is, its code, and why it is skipped (if it is)."""

    page: str
    line: int
    code: str

    @property
    def skip_reason(self) -> str | None:
        match = SKIP.match(self.code)
        return match.group("reason").strip() if match else None


def blocks(page: Path) -> list[Block]:
    """The ```python blocks of a Markdown page, in order."""
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start("code")) + 1
        found.append(Block(str(page.relative_to(ROOT)), line, match.group("code")))
    return found


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT))


class OwnSocketsOnly:
    """Sockets may connect only to what a doc block itself listens on (never a real server)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.bound: set[object] = set()
        bind, connect, connect_ex = (
            socket.socket.bind,
            socket.socket.connect,
            socket.socket.connect_ex,
        )

        def recording_bind(sock: socket.socket, address: object) -> None:
            bind(sock, address)
            self.bound.add(sock.getsockname())

        def checked(real: Callable[[socket.socket, object], object]) -> Callable[..., object]:
            def call(sock: socket.socket, address: object) -> object:
                if address not in self.bound:
                    raise AssertionError(f"a doc block tried to connect to {address!r}")
                return real(sock, address)

            return call

        monkeypatch.setattr(socket.socket, "bind", recording_bind)
        monkeypatch.setattr(socket.socket, "connect", checked(connect))
        monkeypatch.setattr(socket.socket, "connect_ex", checked(connect_ex))


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_python_block_runs(page: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAC_REDIS_URL", raising=False)
    monkeypatch.setenv("AOS_MODE", "local")
    OwnSocketsOnly(monkeypatch)  # never a real server (not even one on 6379)
    namespace: dict[str, object] = {"__name__": f"doc_{page.stem}"}
    ran = 0
    for block in blocks(page):
        if block.skip_reason is not None:
            continue
        code = compile(block.code, f"{block.page}:{block.line}", "exec")
        with redirect_stdout(io.StringIO()):
            exec(code, namespace)  # a failure names the page and line of the block
        ran += 1
    print(f"{_name(page)}: {ran} block(s) ran")


def test_skipped_blocks_are_named() -> None:
    skipped = {
        (block.page, block.skip_reason)
        for page in PAGES
        for block in blocks(page)
        if block.skip_reason is not None
    }
    assert skipped == SKIPPED
    total = sum(len(blocks(page)) for page in PAGES)
    print(f"{total} python blocks, {len(skipped)} skipped: {sorted(skipped)}")
    assert total - len(skipped) >= 6


def test_the_api_page_covers_every_public_name() -> None:
    api = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    missing = [
        name for name in rac_store.__all__ if not re.search(rf"`{re.escape(name)}[`(.\[ ]", api)
    ]
    assert missing == []
    for member in rac_store.ReconciliationStatus:  # every status is named
        assert member.value in api


def _enums() -> list[type[enum.Enum]]:
    public = [getattr(rac_store, name) for name in rac_store.__all__]
    found = {e for e in public if isinstance(e, type) and issubclass(e, enum.Enum)}
    found |= {
        e
        for e in vars(models).values()
        if isinstance(e, type) and issubclass(e, enum.Enum) and e.__module__ == models.__name__
    }
    return sorted(found, key=lambda e: e.__name__)


@pytest.mark.parametrize("kind", _enums(), ids=lambda e: e.__name__)
def test_enums_print_as_their_value(kind: type[enum.Enum]) -> None:
    for member in kind:
        assert str(member) == member.value
        assert f"{member}" == member.value and f"{member:>12}" == f"{member.value:>12}"
        assert "%s" % member == member.value  # noqa: UP031  (old-style formatting too)
