"""Apply always converges, whatever happens upstream and in Atlan (see stateful_apply.py)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from stateful_apply import ApplyMachine


def test_apply_converges_under_upstream_changes_and_atlan_drift(tmp_path):
    run_state_machine_as_test(
        lambda: ApplyMachine(tmp_path),
        settings=settings(max_examples=20, stateful_step_count=10, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                 HealthCheck.too_slow]),
    )
