"""Testing kit for apply: a `Rig` (in-process sandbox, config, state) and a state machine.

`ApplyMachine` is modelled on zarr's `ZarrStoreStateMachine`: rules change Qualytics upstream,
drift Atlan out of band, and plan + apply; the model is the Qualytics score each matched table
should show in Atlan. Invariants after an apply: a fresh plan is empty, applying the same plan
again settles nothing new (only `earlier`), and every matched table carries its score.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from conftest import make_config, sandbox_config_doc, world_doc
from qatlan.apply import ApplyResult, apply_plan
from qatlan.plan import Action, Plan
from qatlan.pipeline import PlanOptions, make_plan
from qatlan.sandbox.ops import OpsSettings
from qatlan.sandbox.server import Sandbox
from qatlan.sandbox.world import World
from qatlan.state import State

BULK = "/api/meta/entity/bulk"
SEARCH = "/api/meta/search/indexsearch"


async def no_sleep(seconds: float) -> None:
    """Retry waits (Retry-After, backoff) cost no time in tests."""


class Rig:
    """A sandbox world with a qatlan config and state pointing at it, in-process."""

    def __init__(self, tmp_path: Path, spec: str = "tables=12,columns=4,seed=1", *,
                 atlan_ops: OpsSettings | None = None, batch_size: int = 20, **sync: Any):
        self.sb = Sandbox(World(world_doc(spec)), atlan_ops=atlan_ops or OpsSettings(requests_per_minute=0))
        doc = sandbox_config_doc(self.sb.world, **sync)
        doc["qualytics"]["integration_id"] = 1
        doc["atlan"]["batch_size"] = batch_size
        self.tmp_path = tmp_path
        self.first_plan: Plan | None = None
        self.config = make_config(tmp_path, doc)
        self.state = State.open(tmp_path / "state.db")
        self.transports: dict[str, Any] = {
            "atlan_transport": self.sb.atlan_transport(),
            "qualytics_transport": self.sb.qualytics_transport(),
            "sleep": no_sleep,
        }

    def close(self) -> None:
        self.state.close()

    def plan(self, **options: Any) -> Plan:
        options.setdefault("create_definitions", True)
        plan = make_plan(self.config, self.state, PlanOptions(**options), **self.transports)
        if self.first_plan is None:
            self.first_plan = plan
        return plan

    def apply(self, plan: Plan, **kwargs: Any) -> ApplyResult:
        return apply_plan(self.config, self.state, plan, **{**self.transports, **kwargs})

    def sync(self) -> ApplyResult:
        """Plan and apply everything (a first run)."""
        return self.apply(self.plan())

    # ---- the sandbox

    def reset_stats(self) -> None:
        self.sb.atlan_app.ops.stats.reset()
        self.sb.qualytics_app.ops.stats.reset()

    def writes(self) -> dict[tuple[str, str, str], int]:
        """Write requests the servers saw: (service, method, path) → count (searches left out)."""
        out = {}
        for service, app in (("atlan", self.sb.atlan_app), ("qualytics", self.sb.qualytics_app)):
            for e in app.ops.stats.to_json()["endpoints"]:
                if e["method"] != "GET" and e["path"] != SEARCH:
                    out[(service, e["method"], e["path"])] = e["count"]
        return out

    def bulk_posts(self) -> int:
        return self.writes().get(("atlan", "POST", BULK), 0)

    def change(self, *changes: dict[str, Any]) -> None:
        self.sb.world.apply_changes(list(changes))

    def entity(self, guid: str) -> dict[str, Any]:
        return self.sb.world.atlan.get(guid)

    def container(self, cid: int) -> dict[str, Any]:
        return self.sb.world.qualytics.get("containers", cid)

    def active_links(self, asset_guid: str, name: str = "Qualytics") -> list[dict[str, Any]]:
        """The ACTIVE Links called `name` on an asset (people's other Links left out)."""
        return [l for l in self.sb.world.atlan.links_of(asset_guid)
                if l["status"] == "ACTIVE" and l["attributes"].get("name") == name]

    def tag_names(self, guid: str) -> set[str]:
        """Display names of the direct tags of an Atlan entity."""
        store = self.sb.world.atlan
        display = {d["name"]: d.get("displayName") for d in store.typedefs["classificationDefs"]}
        return {display.get(c["typeName"]) for c in self.entity(guid).get("classifications") or ()
                if c.get("entityGuid") in (None, guid)}


def entities_of(plan: Plan) -> int:
    """Bulk-upsert entities a plan needs: one per asset with value changes, one per Link write."""
    assets, links = set(), 0
    for c in plan.changes:
        t = c.target
        if t.get("side") != "atlan" or t.get("part") == "typedef":
            continue
        if t["part"] == "link":
            links += c.action is not Action.DELETE
        else:
            assets.add(t["guid"])
    return len(assets) + links


def minimum_posts(plan: Plan, batch_size: int) -> int:
    return math.ceil(entities_of(plan) / batch_size)


# --------------------------------------------------------------------------- the state machine

SPECS = ("tables=10,columns=3,seed=2", "tables=10,columns=3,seed=5")
#: Atlan tags that no Qualytics global tag shares a name with
PULL_TAGS = ("PII", "GDPR", "Gold", "Confidential")


class ApplyMachine(RuleBasedStateMachine):
    """Upstream changes, Atlan drift, and plan + apply; apply must always converge."""

    def __init__(self, tmp_path: Path):
        super().__init__()
        self.tmp_path = tmp_path
        self.rig: Rig | None = None
        self.applied: tuple[Plan, ApplyResult] | None = None
        self.runs = 0

    @initialize(spec=st.sampled_from(SPECS))
    def start(self, spec: str) -> None:
        folder = self.tmp_path / f"m{id(self)}"
        folder.mkdir(parents=True, exist_ok=True)
        self.rig = Rig(folder, spec)
        self.pairs = self._matched_tables()
        note(f"world {spec}: {len(self.pairs)} matched tables")

    def teardown(self) -> None:
        if self.rig is not None:
            self.rig.close()

    def _matched_tables(self) -> list[tuple[int, str]]:
        self.rig.sync()
        snap = self.rig.state.load_snapshot()
        out = []
        for c in sorted(snap.containers.values(), key=lambda c: c.id):
            qn_prefix = f"/{c.name}"
            hits = [a for a in snap.assets.values() if a.type_name == "Table" and a.qualified_name.endswith(qn_prefix)]
            if len(hits) == 1 and c.score is not None:
                out.append((c.id, hits[0].guid))
        return out

    # ---- rules

    @precondition(lambda self: bool(self.pairs))
    @rule(data=st.data(), total=st.floats(min_value=0, max_value=100, allow_nan=False))
    def change_score(self, data: st.DataObject, total: float) -> None:
        cid, _ = data.draw(st.sampled_from(sorted(self.pairs)))
        score = dict(self.rig.container(cid).get("quality_score") or {})
        score["total"] = round(total, 1)
        note(f"(upstream) container {cid} score total → {score['total']}")
        self.rig.change({"side": "qualytics", "kind": "containers", "op": "update", "id": cid,
                         "set": {"quality_score": score}})
        self.applied = None

    @precondition(lambda self: bool(self.pairs))
    @rule(data=st.data(), tag=st.sampled_from(("Critical", "Sensitive")), on=st.booleans())
    def toggle_qualytics_tag(self, data: st.DataObject, tag: str, on: bool) -> None:
        cid, _ = data.draw(st.sampled_from(sorted(self.pairs)))
        tags = [t for t in self.rig.container(cid).get("tags") or [] if t != tag] + ([tag] if on else [])
        note(f"(upstream) container {cid} tags → {tags}")
        self.rig.change({"side": "qualytics", "kind": "containers", "op": "update", "id": cid,
                         "set": {"tags": tags}})
        self.applied = None

    @precondition(lambda self: bool(self.pairs))
    @rule(data=st.data(), tag=st.sampled_from(PULL_TAGS))
    def drift_atlan_tag(self, data: st.DataObject, tag: str) -> None:
        _, guid = data.draw(st.sampled_from(sorted(self.pairs)))
        store = self.rig.sb.world.atlan
        hashed = next(d["name"] for d in store.typedefs["classificationDefs"] if d.get("displayName") == tag)
        current = [c for c in self.rig.entity(guid).get("classifications") or [] if c.get("entityGuid") in (None, guid)]
        has = any(c["typeName"] == hashed for c in current)
        new = [c for c in current if c["typeName"] != hashed] if has else current + [{"typeName": hashed}]
        note(f"(atlan drift) {guid} tag {tag} {'removed' if has else 'added'}")
        self.rig.change({"side": "atlan", "op": "update", "guid": guid,
                         "set": {"classifications": [{"typeName": c["typeName"]} for c in new]}})
        self.applied = None

    @precondition(lambda self: bool(self.pairs))
    @rule(data=st.data())
    def drift_atlan_score(self, data: st.DataObject) -> None:
        """Someone overwrites the score qatlan wrote: qatlan no longer owns it (a conflict)."""
        _, guid = data.draw(st.sampled_from(sorted(self.pairs)))
        note(f"(atlan drift) clear {guid}'s custom metadata")
        self.rig.change({"side": "atlan", "op": "update", "guid": guid, "set": {"businessAttributes": {}}})
        self.applied = None

    @rule()
    def plan_and_apply(self) -> None:
        plan = self.rig.plan()
        result = self.rig.apply(plan)
        self.runs += 1
        note(f"(apply) {result.counts()}")
        assert result.ok, result.failed
        self.applied = (plan, result)

    # ---- invariants

    @precondition(lambda self: self.applied is not None)
    @invariant()
    def next_plan_is_empty(self) -> None:
        plan = self.rig.plan(create_definitions=False)
        assert plan.is_empty(), [c.address for c in plan.changes]

    @precondition(lambda self: self.applied is not None)
    @invariant()
    def applying_twice_settles_nothing_new(self) -> None:
        plan, _ = self.applied
        self.rig.reset_stats()
        again = self.rig.apply(plan)
        assert all(r.earlier for r in again.results if r.outcome.value in ("applied", "already"))
        assert self.rig.bulk_posts() == 0

    @precondition(lambda self: self.applied is not None)
    @invariant()
    def scores_match_the_model(self) -> None:
        snap = self.rig.state.load_snapshot()
        cm = next(d for d in snap.cm_defs.values() if d.display_name == "Qualytics")
        score_hash = cm.attr_hash("Quality Score")
        for cid, guid in self.pairs:
            want = (self.rig.container(cid).get("quality_score") or {}).get("total")
            got = ((self.rig.entity(guid).get("businessAttributes") or {}).get(cm.hashed_name) or {}).get(score_hash)
            if got is not None:  # None: someone cleared it and it is no longer ours (a conflict)
                assert round(float(got), 2) == round(float(want), 2), (cid, guid, got, want)


# --------------------------------------------------------------------------- the command line


def cli_app():
    """The `qatlan` app (`qatlan.cli.app`)."""
    from qatlan.cli import app

    return app


def qatlan_command() -> list[str]:
    """`qatlan` in a subprocess, from this interpreter's environment."""
    import sys

    return [sys.executable, "-m", "qatlan"]


def toml_text(doc: dict[str, Any]) -> str:
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return str(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = []
    for section in ("atlan", "qualytics", "sync", "state", "watch"):
        if doc.get(section):
            lines.append(f"[{section}]")
            lines += [f"{k} = {value(v)}" for k, v in doc[section].items()]
    for m in doc.get("mappings", []):
        lines.append("[[mappings]]")
        lines += [f"{k} = {value(v)}" for k, v in m.items()]
    return "\n".join(lines) + "\n"


def write_live_config(tmp_path: Path, sb: Sandbox, **sections: dict[str, Any]) -> Path:
    """qatlan.toml for a sandbox running over HTTP (state under tmp_path/state)."""
    doc = sandbox_config_doc(sb.world, base_url_atlan=sb.atlan_url, base_url_qualytics=sb.qualytics_url)
    doc["qualytics"]["integration_id"] = 1
    doc["state"] = {"path": str(tmp_path / "state" / "qatlan.db")}
    for section, values in sections.items():
        doc.setdefault(section, {}).update(values)
    path = tmp_path / "qatlan.toml"
    path.write_text(toml_text(doc), encoding="utf-8")
    return path


def server_writes(sb: Sandbox) -> int:
    """Write requests both servers saw (searches are reads)."""
    total = 0
    for app in (sb.atlan_app, sb.qualytics_app):
        total += sum(e["count"] for e in app.ops.stats.to_json()["endpoints"]
                     if e["method"] != "GET" and e["path"] != SEARCH)
    return total
