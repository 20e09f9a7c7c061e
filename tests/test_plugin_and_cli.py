"""The pytest plugin for users' tests, and the ``rac-store demo`` command."""

from __future__ import annotations

import pytest

from rac_store.cli import main

pytest_plugins = ["pytester"]


def test_audit_store_fixture_in_a_users_project(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import uuid
        from rac_store import StoreDurabilityMode, create_run_expectations

        def test_fresh_store(audit_store):
            run = uuid.uuid4()
            assert audit_store.durability_mode is StoreDurabilityMode.MEMORY
            assert audit_store.get_pending_run_ids() == []
            audit_store.add_expectations(run, create_run_expectations(run))

        def test_each_test_gets_its_own(audit_store):
            assert audit_store.get_pending_run_ids() == []
        """
    )
    result = pytester.runpytest_subprocess()  # the fixture comes from the entry point
    result.assert_outcomes(passed=2)


def _demo_findings(output: str) -> None:
    assert "store mode" in output
    assert output.count("\nrun ") == 3
    assert "FAILED   policies/evaluate_policy: policy engine timed out" in output
    assert "MISSING  logs/start_trace" in output
    assert "DRIFT    logs/complete_trace" in output


def test_demo_on_the_embedded_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    output = capsys.readouterr().out
    assert "store mode MEMORY" in output
    _demo_findings(output)


def test_store_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--redis-url", "redis://127.0.0.1:1/0"]) == 2
    assert "cannot connect to redis://127.0.0.1:1/0: connection refused" in capsys.readouterr().err
