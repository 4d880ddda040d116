"""Apply takes a plan's changes a window at a time (issue 13: every step in bounded memory).

The oracle is the same plan applied in one window: cutting it into windows of any size
changes neither an outcome, nor what lands on either side, nor what qatlan owns after.
"""

from __future__ import annotations

import collections

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qatlan import addresses
from qatlan.apply import runner
from qatlan.plan import Action, Change
from stateful_apply import Rig

SPECS = ("tables=10,columns=3,seed=2", "tables=8,columns=4,seed=7")

_ASSETS = [addresses.atlan_asset(f"default/snowflake/1/DB/S/T{i}") for i in range(6)]
_PARTS = [addresses.announcement, addresses.link, lambda a: addresses.tag(a, "PII"),
          lambda a: addresses.cm(a, "Qualytics")]


@st.composite
def _plan_order(draw):
    """Changes as a plan orders them: each asset's changes side by side."""
    out = []
    for asset in draw(st.lists(st.sampled_from(_ASSETS), unique=True)):
        for part in draw(st.lists(st.sampled_from(_PARTS), min_size=1, max_size=4, unique=True)):
            out.append(Change(part(asset), Action.CREATE, None, "x"))
    return out


@given(_plan_order(), st.integers(1, 12))
def test_windows_cut_between_assets_only_and_lose_nothing(changes, size):
    cut = list(runner.windows(changes, size))
    assert [c for window, _ in cut for c in window] == changes
    assert [last for _, last in cut] == [False] * (len(cut) - 1) + [True] * bool(cut)
    seen: collections.Counter = collections.Counter()
    for window, last in cut:
        assert window
        if not last:
            assert len(window) >= size  # a window ends early only at the end of the plan
        seen.update({addresses.parse(c.address)[0] for c in window})
    assert all(n == 1 for n in seen.values())  # an asset's changes share one window


def _outcomes(result):
    return {r.address: (r.action, r.outcome, r.error, r.earlier) for r in result.results}


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=st.sampled_from(SPECS), size=st.integers(1, 40))
def test_an_apply_in_windows_is_the_apply_in_one(tmp_path_factory, monkeypatch, spec, size):
    whole = Rig(tmp_path_factory.mktemp("whole"), spec, overwrite_tags=True)
    cut = Rig(tmp_path_factory.mktemp("cut"), spec, overwrite_tags=True)
    try:
        plans = [rig.plan() for rig in (whole, cut)]
        assert [c.to_dict() for c in plans[0].changes] == [c.to_dict() for c in plans[1].changes]
        assert any(c.target.get("side") == "qualytics" for c in plans[0].changes)
        assert any(c.target.get("part") == "typedef" for c in plans[0].changes)
        one = whole.apply(plans[0])
        with monkeypatch.context() as m:
            m.setattr(runner, "WINDOW", size)
            many = cut.apply(plans[1])
        assert _outcomes(many) == _outcomes(one)
        assert many.counts() == one.counts() and one.ok and many.ok
        assert cut.state.owned().keys() == whole.state.owned().keys()
        for rig in (whole, cut):
            assert rig.plan().in_sync()
        # a container's fields cut apart cost one more write request a window, no more
        windows = len(list(runner.windows(plans[1].changes, size)))
        assert sum(many.writes.values()) <= sum(one.writes.values()) + windows
    finally:
        whole.close()
        cut.close()


@pytest.mark.parametrize("size", [1, 3])
def test_progress_runs_on_across_windows(tmp_path, monkeypatch, size):
    rig = Rig(tmp_path, SPECS[0])
    seen: dict[str, list[tuple[int, int | None]]] = collections.defaultdict(list)
    try:
        plan = rig.plan()
        monkeypatch.setattr(runner, "WINDOW", size)
        rig.apply(plan, progress=lambda stage, done, total: seen[stage].append((done, total)))
    finally:
        rig.close()
    done = [d for d, _ in seen["atlan"]]
    assert done == sorted(done) and len(done) > 1  # runs on across windows, never goes back
    assert seen["atlan"][-1][0] == seen["atlan"][-1][1]  # ends at the total it names
