"""The mutants: one-line breaks of a rule, each of which some test must notice.

A mutant names a file, an exact snippet of it (found exactly once), what the
snippet becomes, and the tests that must fail once it is applied. Keep the
snippet small: other changes to the same file then leave it intact. When a
snippet is no longer found (the code moved on), the runner stops with
"snippet not found in <file>: update the mutant" — update the snippet to the
new code of the same rule, never delete the mutant to get green.

To add one when you add a rule: see docs/testing.md ("Adding a mutant").
"""

from __future__ import annotations

from dataclasses import dataclass

EMBEDDED_ONLY = "not redis and not cluster"
"""``-k`` expression: the embedded backend (and tests without a backend) only."""


@dataclass(frozen=True)
class Mutant:
    """One mutation of one rule, and the tests that must kill it."""

    name: str
    file: str
    original: str
    mutated: str
    tests: tuple[str, ...]
    keyword: str = EMBEDDED_ONLY


BOUNDARIES = "tests/test_clock_boundaries.py"
VALIDATION = "tests/test_contract_validation.py::test_lua_validates_before_the_first_write"

MUTANTS: tuple[Mutant, ...] = (
    # -- comparisons with the server clock (docs/state-machine.md, "Due time") --------
    Mutant(
        "late ack: now >= due",
        "lua/add_acks.lua",
        "late = (due ~= nil and now > due)",
        "late = (due ~= nil and now >= due)",
        (f"{BOUNDARIES}::test_an_ack_is_late_only_after_its_due_ms",),
    ),
    Mutant(
        "sweep: inclusive due bound",
        "lua/sweep_run.lua",
        "'-inf', '(' .. at,",
        "'-inf', at,",
        (f"{BOUNDARIES}::test_the_sweep_marks_only_after_the_due_ms",),
    ),
    Mutant(
        "manual late mark: now >= due",
        "lua/update_status.lua",
        "due ~= nil and now > due then late",
        "due ~= nil and now >= due then late",
        (f"{BOUNDARIES}::test_a_manual_status_move_is_late_only_after_the_due_ms",),
    ),
    Mutant(
        "reconciler overdue: now_ms >= due",
        "rac_store/reconciliation.py",
        "self.now_ms > due",
        "self.now_ms >= due",
        (
            f"{BOUNDARIES}::test_is_overdue_at_the_due_ms",
            f"{BOUNDARIES}::test_the_reconciler_counts_missing_only_after_the_due_ms",
        ),
    ),
    Mutant(
        "reconciler overdue: the client's clock",
        "rac_store/reconciliation.py",
        "self.now_ms > due",
        '__import__("time").time_ns() // 1_000_000 > due',
        ("tests/test_server_clock.py",),
    ),
    Mutant(
        "TTL refresh: PTTL <= threshold",
        "lua/add_acks.lua",
        "KEYS[k + 3]) < ttl_ms - math.floor(ttl_ms / 16)",
        "KEYS[k + 3]) <= ttl_ms - math.floor(ttl_ms / 16)",
        (f"{BOUNDARIES}::test_an_ack_refreshes_ttls_only_below_fifteen_sixteenths",),
    ),
    Mutant(
        "sweep's pending read: inclusive bound",
        "rac_store/core.py",
        'str(before_ms) if inclusive else f"({before_ms}"',
        "str(before_ms)",
        (f"{BOUNDARIES}::test_the_sweep_takes_runs_due_before_its_server_time",),
    ),
    Mutant(
        "due_before: exclusive bound",
        "rac_store/core.py",
        'return self.pending_runs(before, limit, "get_pending_run_ids", inclusive=True)',
        'return self.pending_runs(before, limit, "get_pending_run_ids", inclusive=False)',
        (f"{BOUNDARIES}::test_due_before_includes_runs_due_exactly_then",),
    ),
    Mutant(
        "sweep more_due: score <= now",
        "rac_store/reconciliation.py",
        "0 <= score < due.now_ms",
        "0 <= score <= due.now_ms",
        (f"{BOUNDARIES}::test_more_due_when_a_run_is_left_scored_before_the_sweeps_time",),
    ),
    # -- deduplication -------------------------------------------------------------
    Mutant(
        "duplicate check: an ack id seen before is recorded again",
        "lua/add_acks.lua",
        "  if previous then\n",
        "  if false then\n",
        (
            "tests/test_contract_writes.py::test_ack_outcomes_recorded_duplicate_drift",
            "tests/test_idempotency.py",
        ),
    ),
    Mutant(
        "duplicate check: a repeat inside one call repeats the first outcome",
        "lua/add_acks.lua",
        "first_here = not seen[ack_id]",
        "first_here = true",
        (
            "tests/reliability/test_lost_replies.py::"
            "test_resent_call_reports_first_outcome_but_new_call_is_duplicate",
        ),
    ),
    Mutant(
        "duplicate check: no table of met ack ids for a run with two acks in the call",
        "lua/add_acks.lua",
        "met[k] = m > 1 and {} or false",
        "met[k] = m > 2 and {} or false",
        (
            "tests/reliability/test_lost_replies.py::"
            "test_a_repeat_in_a_call_of_two_acks_is_a_duplicate",
        ),
    ),
    Mutant(
        "call token: a re-send after a lost reply reports DUPLICATE",
        "lua/add_acks.lua",
        "if first_here and string.sub(previous, 2) == token then",
        "if false then",
        (
            "tests/reliability/test_lost_replies.py::"
            "test_a_lost_round_trip_reply_is_resent_and_reports_the_first_outcomes",
            "tests/test_idempotency.py::test_retry_after_lost_reply_records_once",
        ),
        keyword="sleep or embedded",
    ),
    # -- the finding counters and verdict events (docs/state-machine.md) ----------------
    Mutant(
        "finding counters: MISSING marks count nothing",
        "lua/includes/common.lua",
        "COUNTERS[1], #marks / 2)",
        "COUNTERS[1], 0)",
        ("tests/test_findings_stream.py::test_counters_and_verdict_events_follow_the_data",),
    ),
    Mutant(
        "late ack: a MISSING action stays MISSING",
        "lua/add_acks.lua",
        "status == nil or status == 'PENDING' or status == 'MISSING' then",
        "status == nil or status == 'PENDING' then",
        ("tests/test_findings_stream.py::test_complete_after_a_late_ack_of_a_missing_action",),
    ),
    Mutant(
        "rollback after a success leaves it ACKED",
        "lua/add_acks.lua",
        "if status == 'ACKED' and ok == '2' then return 'FAILED' end",
        "if status == 'ACKED' and ok == '2' then return nil end",
        ("tests/test_verdicts.py::test_a_rollback_after_success_fails_the_expectation",),
    ),
    Mutant(
        "an ack with an error and the default status is a success",
        "rac_store/models.py",
        "self.status == AckStatus.SUCCESS and self.error is None and not self.rolled_back",
        "self.status == AckStatus.SUCCESS and not self.rolled_back",
        ("tests/test_verdicts.py::test_an_ack_with_an_error_and_the_default_status_is_a_failure",),
    ),
    Mutant(
        "verdict events: the same verdict pushed again",
        "lua/includes/common.lua",
        "if verdict == c[5] then return false end",
        "if false then return false end",
        ("tests/test_findings_stream.py::test_counters_and_verdict_events_follow_the_data",),
    ),
    Mutant(
        "record_finding: a verdict recorded again",
        "lua/record_finding.lua",
        "if redis.call('HGET', KEYS[1], VERDICT) == ARGV[2] then return 0 end",
        "",
        ("tests/test_reconciler.py::test_reconcile_records_a_verdict_only_when_it_is_new",),
    ),
    Mutant(
        "final verdict: what is pending is not missing",
        "rac_store/reconciliation.py",
        "or (final and exp.status is AuditStatus.PENDING)",
        "or False",
        (
            "tests/test_verdicts.py::"
            "test_a_final_verdict_counts_what_is_pending_as_missing_and_writes_nothing",
        ),
    ),
    Mutant(
        "reset detection: a lost epoch goes unnoticed",
        "lua/includes/common.lua",
        "if current == expected then return nil end",
        "if true then return nil end",
        (
            "tests/reliability/test_reset_detection.py::"
            "test_every_write_after_a_flush_is_refused_and_writes_nothing",
        ),
        keyword="embedded",  # the module is marked redis_only, which "not redis" deselects
    ),
    # -- separator validation (Lua and Python) ------------------------------------------
    Mutant(
        "separator check in add_acks.lua",
        "lua/add_acks.lua",
        "if not string.find(key, '|', 1, true) then",
        "if false then",
        (VALIDATION,),
    ),
    Mutant(
        "separator check in add_expectations.lua",
        "lua/add_expectations.lua",
        "if key == '' or not string.find(key, '|', 1, true) then",
        "if key == '' then",
        (VALIDATION,),
    ),
    Mutant(
        "separator check in update_status.lua",
        "lua/update_status.lua",
        "if not string.find(key, '|', 1, true) then return",
        "if false then return",
        (VALIDATION,),
    ),
    Mutant(
        "separator check in validation.py",
        "rac_store/validation.py",
        "if KEY_SEPARATOR in text or not text.isprintable():",
        "if not text.isprintable():",
        ("tests/test_contract_validation.py",),
    ),
    # -- the state machine ---------------------------------------------------------------
    Mutant(
        "a successful retry leaves FAILED",
        "lua/add_acks.lua",
        "status == 'FAILED' and ok == '1' then",
        "status == 'FAILED' and ok == 'never' then",
        ("tests/test_contract_writes.py::test_failed_ack_then_successful_retry",),
    ),
    Mutant(
        "update_status allows FAILED -> MISSING",
        "lua/update_status.lua",
        "FAILED = { ACKED = true },",
        "FAILED = { ACKED = true, MISSING = true },",
        ("tests/test_contract_status.py::test_every_edge",),
    ),
    # -- findings consumers: a loss is reported once ------------------------------------
    Mutant(
        "read_group: an unknown loss leaves the group where it was",
        "lua/read_group.lua",
        "'SETID', stream_key, group, reach,",
        "'SETID', stream_key, group, delivered,",
        ("tests/test_notify_edges.py::test_a_loss_of_an_unknown_size_is_reported_without_a_crash",),
        keyword="unknown_size",  # on the session's redis-server (Redis tells no lag there)
    ),
    # -- verdict precedence (STALE > INCOMPLETE > IN_PROGRESS > COMPLETE) ---------------
    Mutant(
        "verdict: STALE gives way to INCOMPLETE",
        "rac_store/reconciliation.py",
        "status = ReconciliationStatus.STALE",
        "status = ReconciliationStatus.INCOMPLETE",
        ("tests/test_reconciler.py::test_stale_when_the_liveness_check_is_missing",),
    ),
    Mutant(
        "verdict: IN_PROGRESS before INCOMPLETE",
        "rac_store/reconciliation.py",
        "elif missing or failed or snapshot.drift:",
        "elif (missing or failed or snapshot.drift) and not pending:",
        ("tests/test_verdict_precedence.py",),
    ),
    Mutant(
        "verdict: drift alone is not a finding",
        "rac_store/reconciliation.py",
        "elif missing or failed or snapshot.drift:",
        "elif missing or failed:",
        ("tests/test_reconciler.py::test_drift_alone_makes_a_run_incomplete",),
    ),
)
