"""Running the installed ``rac-store`` script as a user would, and reading what it prints."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

RAC_STORE = str(Path(sys.executable).parent / "rac-store")
"""The console script of the test environment's install (``.venv/bin/rac-store``)."""


def rac_store(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``rac-store ARGS`` to completion; ``RAC_REDIS_URL`` only when ``env`` sets it."""
    environment = {k: v for k, v in os.environ.items() if k != "RAC_REDIS_URL"}
    return subprocess.run(
        [RAC_STORE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**environment, **(env or {})},
        check=False,
    )


def lines(process: subprocess.Popen[str]) -> Iterator[str]:
    """What a running process prints on stdout, line by line."""
    assert process.stdout is not None
    for line in process.stdout:
        yield line.rstrip("\n")


def wait_for(printed: Iterator[str], text: str, seen: list[str] | None = None) -> str:
    """The first line containing ``text`` (every line read is appended to ``seen``)."""
    for line in printed:
        if seen is not None:
            seen.append(line)
        if text in line:
            return line
    raise AssertionError(f"the process ended before printing {text!r}")


def poll_file(path: Path, text: str, timeout: float = 60.0) -> str:
    """The content of ``path`` once it contains ``text`` (AssertionError after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = path.read_text()
        if text in content:
            return content
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path}")


def stop(process: subprocess.Popen[str], grace: float) -> None:
    """SIGTERM ``process``, and SIGKILL it when it has not ended within ``grace`` seconds."""
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
