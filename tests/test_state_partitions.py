"""The state reads a snapshot's parts exactly as `split` cuts an in-memory snapshot (issue 13).

Worlds are saved to a state, then read back one datastore at a time through the indexes
(`State.load_shared`, `State.load_part`); each part must equal what
`qatlan.planner.split` makes of the same snapshot, for the latest snapshot and for an
earlier one (whose records have been superseded since).
"""

from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, given, settings

from qatlan.planner import outside_assets, scope, split
from qatlan.state import State
from strategies import two_datastores


def _read(st: State, sid: int, s, owned):
    shared = st.load_shared(sid)
    sc = scope(shared, s, (), st.used_domains(sid))
    extra = outside_assets(owned, sc.prefixes)
    if extra:
        shared = st.load_shared(sid, extra)
    return shared, [st.load_part(sid, ds_id, prefix) for ds_id, prefix in sc.prefixes.items()]


def _same(got, want) -> None:
    g_shared, g_parts = got
    w_shared, w_parts = want
    for name in ("datastores", "connections", "assets", "domains", "tag_defs", "cm_defs", "q_tags"):
        assert dict(getattr(g_shared, name)) == dict(getattr(w_shared, name)), name
    assert (g_shared.complete, g_shared.missing) == (w_shared.complete, w_shared.missing)
    assert [p.datastore_id for p in g_parts] == [p.datastore_id for p in w_parts]
    for g, w in zip(g_parts, w_parts):
        assert dict(g.containers) == dict(w.containers)
        assert dict(g.fields) == dict(w.fields)
        assert dict(g.assets) == dict(w.assets)
        assert dict(g.links) == dict(w.links)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(two_datastores(), two_datastores())
def test_the_state_reads_the_parts_split_cuts(first, later):
    world, owned, s = first
    with State.open(":memory:") as st:
        sid = st.save_snapshot(world, taken_at="2026-01-01T00:00:00Z")
        _same(_read(st, sid, s, owned), split(world, s, owned=owned))
        # a later snapshot supersedes records: the first one still reads as it was
        st.save_snapshot(dataclasses.replace(later[0], complete=True), taken_at="2026-01-02T00:00:00Z")
        _same(_read(st, sid, s, owned), split(world, s, owned=owned))
