"""The wheel ships every Lua file, py.typed and the entry points."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from rac_store.scripts import Script

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_contents(tmp_path: Path) -> None:
    from hatchling.builders.wheel import WheelBuilder

    wheel = Path(
        next(iter(WheelBuilder(str(ROOT)).build(directory=str(tmp_path), versions=["standard"])))
    )
    names = set(zipfile.ZipFile(wheel).namelist())
    for script in tuple(Script):
        assert f"rac_store/lua/{script}.lua" in names
    assert "rac_store/lua/includes/common.lua" in names
    assert "rac_store/py.typed" in names
    for subpackage in ("aio", "cli", "cluster", "web"):
        assert f"rac_store/{subpackage}/__init__.py" in names
    for asset in (
        "templates/base.html",
        "templates/run.html",
        "static/style.css",
        "static/findings.js",
    ):
        assert f"rac_store/web/{asset}" in names  # the dashboard's pages, no CDN
    # test and benchmark tooling stays in the checkout
    assert not [n for n in names if "redis_process" in n or n.startswith(("tests/", "benchmarks/"))]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "rac-store = rac_store.cli:main" in text
    assert "rac_store = rac_store.testing" in text


@pytest.mark.slow
def test_an_installed_wheel_runs_the_lua_it_ships(tmp_path: Path) -> None:
    """Unpacked from the wheel (no checkout on the path), the scripts come from rac_store/lua."""
    import subprocess
    import sys

    from hatchling.builders.wheel import WheelBuilder

    wheel = next(
        iter(WheelBuilder(str(ROOT)).build(directory=str(tmp_path), versions=["standard"]))
    )
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import uuid, rac_store, rac_store.scripts as s\n"
        "from rac_store import AuditStore, create_domain_ack\n"
        "store = AuditStore()\n"
        "run = uuid.uuid4()\n"
        "outcome = store.add_ack(run, create_domain_ack(run, 'd', 'a'))\n"
        "print(rac_store.__file__, s.lua_dir(), outcome)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    module, lua, outcome = done.stdout.split()
    assert module == str(site / "rac_store" / "__init__.py")
    assert lua == str(site / "rac_store" / "lua")
    assert outcome == "DRIFT"
