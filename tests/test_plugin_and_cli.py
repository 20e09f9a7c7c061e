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


def test_the_fixture_is_the_process_wide_store_during_the_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import uuid
        import pytest
        from rac_store import (
            RACDurabilityError, create_domain_ack, create_run_expectations,
            get_audit_reconciler, get_audit_store,
        )

        def code_under_test():
            run = uuid.uuid4()  # uses the process-wide store, as application code does
            get_audit_store().add_expectations(run, create_run_expectations(run))
            get_audit_store().add_ack(run, create_domain_ack(run, "logs", "start_trace"))
            return run

        @pytest.fixture(params=["local", "test", "prod"])
        def mode(request, monkeypatch):
            monkeypatch.setenv("AOS_MODE", request.param)
            monkeypatch.delenv("RAC_REDIS_URL", raising=False)
            return request.param

        def test_code_under_test_writes_to_the_fixture(mode, audit_store):
            run = code_under_test()
            assert get_audit_store() is audit_store
            assert [a.action for a in audit_store.get_acks(run)] == ["start_trace"]
            assert get_audit_reconciler().store is audit_store
            assert get_audit_reconciler().reconcile(run).status.value == "IN_PROGRESS"

        def test_after_the_fixture_the_environment_rules_again(monkeypatch):
            monkeypatch.setenv("AOS_MODE", "test")
            monkeypatch.delenv("RAC_REDIS_URL", raising=False)
            with pytest.raises(RACDurabilityError):
                get_audit_store()
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=4)


def test_the_async_fixture_without_pytest_asyncio(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import uuid
        from rac_store import AsyncAuditStore, create_domain_ack, create_run_expectations

        def test_acks_in_asyncio_run(async_audit_store):
            assert isinstance(async_audit_store, AsyncAuditStore)

            async def main():
                run = uuid.uuid4()
                await async_audit_store.add_expectations(run, create_run_expectations(run))
                acks = [create_domain_ack(run, "logs", name) for name in ("a", "b", "c")]
                await asyncio.gather(*(async_audit_store.add_ack(run, a) for a in acks))
                return len(await async_audit_store.get_acks(run))

            assert asyncio.run(main()) == 3

        def test_each_test_gets_its_own(async_audit_store):
            assert asyncio.run(async_audit_store.get_pending_run_ids()) == []
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:asyncio")
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
