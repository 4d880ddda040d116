"""`apply_plan` against the in-process sandbox: every change kind, already/drifted, partial
updates, batching, the journal and resuming, faults."""

from __future__ import annotations

import copy
import json
import math

import httpx
import pytest

from qatlan.apply import Outcome, find_interrupted
from qatlan.errors import ApplyError
from qatlan.plan import Action, Plan, plan_checksum
from qatlan.sandbox.ops import FaultSettings, OpsSettings
from stateful_apply import BULK, SEARCH, Rig, entities_of, minimum_posts

SMALL = "tables=12,columns=4,seed=1"


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path, SMALL)
    yield r
    r.close()


def changes(plan: Plan, part: str, action: Action | None = None, side: str = "atlan"):
    return [c for c in plan.changes if c.target.get("part") == part and c.target.get("side") == side
            and (action is None or c.action is action)]


def outcomes(result) -> dict[str, str]:
    return {r.address: r.outcome.value for r in result.results if not r.earlier}


def matched_table(rig: Rig) -> tuple[dict, str]:
    """A Qualytics table container without active anomalies and the GUID of its Atlan table.

    Pairs come from the Links of the first plan (each Link URL names its container).
    """
    plan = rig.first_plan or rig.plan()
    snap = rig.state.load_snapshot()
    for c in changes(plan, "link", Action.CREATE):
        cid = int(c.after["url"].split("/containers/")[1].split("/")[0])
        container = snap.containers.get(cid)
        if container is not None and not container.active_anomalies and container.score is not None:
            return rig.container(cid), c.target["guid"]
    raise AssertionError("no matched table without anomalies")


# --------------------------------------------------------------------------- the whole run


def test_first_apply_writes_every_change_once_and_converges(rig):
    plan = rig.plan()
    result = rig.apply(plan)
    adopted = {c.address for c in plan.changes if c.action is Action.ADOPT}
    assert result.ok
    assert {a: o for a, o in outcomes(result).items() if a not in adopted} == {
        c.address: "applied" for c in plan.changes if c.address not in adopted}
    assert {outcomes(result)[a] for a in adopted} <= {"already"}
    assert result.counts()["adopted"] == len(adopted)
    assert result.counts()["added"] + result.counts()["changed"] + len(adopted) == len(plan.changes)
    assert rig.plan().in_sync()


@pytest.mark.parametrize("batch_size", [20, 50])
def test_bulk_writes_stay_within_ten_percent_of_the_minimum(tmp_path, batch_size):
    rig = Rig(tmp_path, "tables=30,seed=3", batch_size=batch_size)
    plan = rig.plan()
    rig.reset_stats()
    rig.apply(plan).raise_for_failures()
    minimum = minimum_posts(plan, batch_size)
    assert minimum <= rig.bulk_posts() <= math.ceil(minimum * 1.1)
    rig.close()


def _atlan_reads(rig: Rig) -> dict[str, int]:
    out = {"get": 0, "search": 0}
    for e in rig.sb.atlan_app.ops.stats.to_json()["endpoints"]:
        if e["method"] == "GET" and e["path"] == BULK:
            out["get"] += e["count"]
        elif e["path"].endswith("/search/indexsearch"):
            out["search"] += e["count"]
    return out


def test_first_apply_reads_each_target_once_before_and_once_after_writing(tmp_path):
    rig = Rig(tmp_path, "tables=30,seed=3")
    plan = rig.plan()
    rig.reset_stats()
    rig.apply(plan).raise_for_failures()
    link_creates = sum(1 for c in plan.changes if c.target.get("part") == "link" and c.action is Action.CREATE)
    assert link_creates > 0
    reads = _atlan_reads(rig)
    # Links to create: found through the assets' `links` relationship in the same re-read,
    # consistent right after a write, with no index search
    assert reads["search"] == 0
    # re-read and read back: GET /entity/bulk with 100 GUIDs, before and after writing
    per_pass = math.ceil(entities_of(plan) / 100)
    assert 2 * per_pass <= reads["get"] <= math.ceil(2 * per_pass * 1.1)
    rig.close()


def test_a_second_apply_after_a_successful_one_makes_no_write_requests(rig):
    first = rig.plan()
    rig.apply(first).raise_for_failures()
    rig.reset_stats()
    again = rig.plan()
    assert again.is_empty()
    rig.apply(again)
    rig.apply(first)  # the same plan again: everything is settled in the journal
    assert rig.writes() == {}


def test_applying_the_same_plan_twice_reports_the_first_run_as_earlier(rig):
    plan = rig.plan()
    rig.apply(plan)
    second = rig.apply(plan)
    assert all(r.earlier for r in second.results)
    assert second.counts()["earlier"] == len(plan.changes)


# --------------------------------------------------------------------------- partial updates


def test_partial_update_leaves_other_attributes_custom_metadata_and_tags_alone(rig):
    rig.plan(create_definitions=False)  # a snapshot to find a matched table in
    container, guid = matched_table(rig)
    before = copy.deepcopy(rig.entity(guid))
    rig.change({"side": "atlan", "op": "update", "guid": guid,
                "set": {"attributes": {"description": "kept by a person", "userDescription": "mine"}}})
    rig.sync().raise_for_failures()
    after = rig.entity(guid)
    assert after["attributes"]["description"] == "kept by a person"
    assert after["attributes"]["userDescription"] == "mine"
    assert {c["typeName"] for c in before["classifications"]} <= {c["typeName"] for c in after["classifications"]}
    for set_hash, values in before["businessAttributes"].items():
        assert after["businessAttributes"][set_hash] == values


def test_a_persons_custom_metadata_set_is_kept(rig):
    guid = next(e["guid"] for e in rig.sb.world.export()["atlan"]["entities"] if e.get("businessAttributes"))
    theirs = copy.deepcopy(rig.entity(guid)["businessAttributes"])
    rig.sync().raise_for_failures()
    for set_hash, values in theirs.items():
        assert rig.entity(guid)["businessAttributes"][set_hash] == values


def test_a_persons_announcement_is_left_untouched(rig):
    guid = next(e["guid"] for e in rig.sb.world.export()["atlan"]["entities"]
                if e["attributes"].get("announcementUpdatedBy") == "jsmith")
    theirs = {k: v for k, v in rig.entity(guid)["attributes"].items() if k.startswith("announcement")}
    plan = rig.plan()
    assert any(c.rule == "announcement_not_owned" for c in plan.conflicts)
    rig.apply(plan).raise_for_failures()
    assert {k: v for k, v in rig.entity(guid)["attributes"].items() if k.startswith("announcement")} == theirs


def test_the_link_is_created_once_with_the_idempotent_qualified_name(rig):
    plan = rig.plan()
    link = changes(plan, "link", Action.CREATE)[0]
    rig.apply(plan).raise_for_failures()
    found = rig.active_links(link.target["guid"])
    assert [(l["attributes"]["qualifiedName"], l["attributes"]["link"]) for l in found] == [
        (f"{link.target['qualified_name']}/Qualytics", link.after["url"])]


# --------------------------------------------------------------------------- each change kind


def test_a_score_change_updates_only_that_attribute(rig):
    rig.sync()
    container, guid = matched_table(rig)
    score = {**container["quality_score"], "total": 12.5}
    rig.change({"side": "qualytics", "kind": "containers", "op": "update", "id": container["id"],
                "set": {"quality_score": score}})
    plan = rig.plan()
    cm = [c for c in changes(plan, "cm", Action.UPDATE) if c.target["guid"] == guid]
    assert [c.after for c in cm] == [{"Quality Score": 12.5}]
    rig.reset_stats()
    result = rig.apply(plan)
    assert outcomes(result) == {cm[0].address: "applied"} or set(outcomes(result).values()) == {"applied"}
    set_hash, attr = cm[0].target["set_hash"], cm[0].target["attributes"]["Quality Score"]
    assert rig.entity(guid)["businessAttributes"][set_hash][attr] == 12.5
    assert rig.bulk_posts() == 1


def _anomalies(rig: Rig, cid: int) -> list[dict]:
    return [a for a in rig.sb.world.export()["qualytics"]["anomalies"] if a["container_id"] == cid]


def test_the_announcement_is_raised_updated_and_removed_with_the_anomaly_count(rig):
    rig.sync()
    container, guid = matched_table(rig)
    template = next(a for a in rig.sb.world.export()["qualytics"]["anomalies"] if a.get("check_ids"))
    checks = [c["id"] for c in rig.sb.world.export()["qualytics"]["checks"] if c["container_id"] == container["id"]]
    ids = []
    for n in (1, 2):
        new = {**template, "id": 9000 + n, "uuid": f"00000000-0000-4000-8000-00000000900{n}",
               "container_id": container["id"], "check_ids": checks[:1], "status": "Active"}
        rig.change({"side": "qualytics", "kind": "anomalies", "op": "add", "record": new})
        ids.append(new["id"])
        rig.sync().raise_for_failures()
        assert rig.entity(guid)["attributes"]["announcementTitle"] == f"Qualytics: {n} active anomal{'y' if n == 1 else 'ies'}"
    for i in ids:
        rig.change({"side": "qualytics", "kind": "anomalies", "op": "update", "id": i, "set": {"status": "Resolved"}})
    rig.sync().raise_for_failures()
    assert "announcementType" not in rig.entity(guid)["attributes"]


def test_a_qualytics_tag_is_pushed_and_removed_again(rig):
    rig.sync()
    container, guid = matched_table(rig)
    tags = container.get("tags") or []
    rig.change({"side": "qualytics", "kind": "containers", "op": "update", "id": container["id"],
                "set": {"tags": tags + ["Critical"]}})
    rig.sync().raise_for_failures()
    assert "Critical" in rig.tag_names(guid)
    rig.change({"side": "qualytics", "kind": "containers", "op": "update", "id": container["id"], "set": {"tags": tags}})
    result = rig.sync()
    assert "Critical" not in rig.tag_names(guid)
    assert [r.action for r in result.results if "#tag:Critical" in r.address] == [Action.DELETE]


def _set_atlan_tag(rig: Rig, guid: str, display: str, on: bool) -> None:
    store = rig.sb.world.atlan
    hashed = next(d["name"] for d in store.typedefs["classificationDefs"] if d.get("displayName") == display)
    current = [{"typeName": c["typeName"]} for c in rig.entity(guid)["classifications"]
               if c.get("entityGuid") in (None, guid) and c["typeName"] != hashed]
    rig.change({"side": "atlan", "op": "update", "guid": guid,
                "set": {"classifications": current + ([{"typeName": hashed}] if on else [])}})


def test_an_atlan_tag_is_pulled_as_an_external_tag_and_removed_again(rig):
    rig.sync()
    container, guid = matched_table(rig)
    _set_atlan_tag(rig, guid, "Gold", True)
    rig.sync().raise_for_failures()
    gold = [t for t in rig.container(container["id"])["tags"] if t == "Gold"]
    assert gold and rig.sb.world.qualytics.get("global_tags", "Gold")["type"] == "external"
    _set_atlan_tag(rig, guid, "Gold", False)
    rig.sync().raise_for_failures()
    assert "Gold" not in rig.container(container["id"])["tags"]


def test_written_containers_are_marked_dirty_for_the_next_refresh(rig):
    plan = rig.plan()
    rig.apply(plan)
    written = {c.target["container_id"] for c in changes(plan, "tag", side="qualytics")
               if c.target["kind"] != "datastore"}
    assert written and written <= set(rig.state.dirty_containers())


def test_a_new_qualytics_url_updates_the_link_in_place(tmp_path, rig):
    rig.sync()
    doc = rig.config.model_dump(by_alias=True)
    doc["qualytics"]["ui_url"] = "https://elsewhere.example"
    from conftest import make_config

    rig.config = make_config(tmp_path, doc)
    plan = rig.plan()
    update = changes(plan, "link", Action.UPDATE)[0]
    before = rig.active_links(update.target["guid"])
    rig.apply(plan).raise_for_failures()
    after = rig.active_links(update.target["guid"])
    assert [l["guid"] for l in after] == [l["guid"] for l in before]
    assert after[0]["attributes"]["link"].startswith("https://elsewhere.example/")


def test_a_container_gone_from_qualytics_retires_what_qatlan_wrote(rig):
    rig.sync()
    container, guid = matched_table(rig)
    rig.change({"side": "qualytics", "kind": "containers", "op": "delete", "id": container["id"]})
    plan = rig.plan()
    mine = [c for c in plan.changes if c.target.get("guid") == guid]
    assert {c.action for c in mine} == {Action.DELETE}
    rig.apply(plan).raise_for_failures()
    assert rig.active_links(guid) == []
    snap_cm = [c for c in mine if c.target["part"] == "cm"][0]
    assert snap_cm.target["set_hash"] not in (rig.entity(guid).get("businessAttributes") or {})


def test_overwrite_tags_converts_the_qualytics_tag_to_an_external_one(tmp_path):
    rig = Rig(tmp_path, SMALL, overwrite_tags=True)
    plan = rig.plan()
    convert = changes(plan, "tag", Action.UPDATE, side="qualytics")
    assert convert, "the world has a tag conflict"
    result = rig.apply(plan)
    assert {outcomes(result)[c.address] for c in convert} == {"applied"}
    assert rig.sb.world.qualytics.get("global_tags", convert[0].target["tag"])["type"] == "external"
    assert rig.plan().is_empty()
    rig.close()


# --------------------------------------------------------------------------- already and drifted


def test_targets_that_already_match_are_not_written(rig):
    plan = rig.plan()
    link = changes(plan, "link", Action.CREATE)[0]
    t = link.target
    rig.change({"side": "atlan", "op": "add", "entity": {
        "typeName": "Link", "status": "ACTIVE",
        "attributes": {"qualifiedName": t["link_qualified_name"], "name": "Qualytics", "link": link.after["url"],
                       "asset": {"typeName": t["type_name"], "guid": t["guid"]}}}})
    result = rig.apply(plan)
    assert outcomes(result)[link.address] == "already"
    assert len(rig.active_links(t["guid"])) == 1
    assert rig.plan().is_empty()


def test_targets_changed_since_the_plan_are_drifted_and_not_written(rig):
    rig.sync()
    container, guid = matched_table(rig)
    rig.change({"side": "qualytics", "kind": "containers", "op": "update", "id": container["id"],
                "set": {"quality_score": {**container["quality_score"], "total": 1.0}}})
    plan = rig.plan()
    cm = [c for c in changes(plan, "cm") if c.target["guid"] == guid][0]
    set_hash, attr = cm.target["set_hash"], cm.target["attributes"]["Quality Score"]
    rig.change({"side": "atlan", "op": "update", "guid": guid,
                "set": {"businessAttributes": {set_hash: {attr: 55.5}}}})
    rig.reset_stats()
    result = rig.apply(plan)
    assert outcomes(result)[cm.address] == "drifted"
    assert rig.entity(guid)["businessAttributes"][set_hash] == {attr: 55.5}
    assert "run `qatlan plan` again" in next(r.error for r in result.results if r.address == cm.address)


def test_a_deleted_target_is_drifted(rig):
    plan = rig.plan()
    link = changes(plan, "link", Action.CREATE)[0]
    asset = link.target["guid"]
    rig.change({"side": "atlan", "op": "delete", "guid": asset})
    result = rig.apply(plan)
    assert {outcomes(result)[c.address] for c in plan.changes if c.target.get("guid") == asset} == {"drifted"}
    assert result.ok and result.counts()["applied"] > 0


# --------------------------------------------------------------------------- journal and resuming


def test_each_outcome_is_journaled_with_the_ownership_it_implies(rig):
    plan = rig.plan()
    rig.apply(plan)
    rows = [(a, o) for a, (o, _) in rig.state.journal(plan_checksum(plan)).items()]
    assert {a for a, _ in rows} == {c.address for c in plan.changes}
    owned = rig.state.owned()
    values = [c for c in plan.changes if not c.address.startswith("atlan:typedef#")]
    assert all(c.address in owned for c in values)


class _Counting(httpx.AsyncBaseTransport):
    """Counts the entities sent in bulk upserts (a write that landed is never sent again)."""

    def __init__(self, inner):
        self.inner, self.sent = inner, []

    async def handle_async_request(self, request):
        if request.method == "POST" and request.url.path.rstrip("/").endswith("/entity/bulk"):
            self.sent += [json.dumps(e["attributes"]["qualifiedName"]) for e in json.loads(request.content)["entities"]]
        return await self.inner.handle_async_request(request)


class _Stop(Exception):
    pass


def _stop_after(n: int):
    seen = []

    def progress(stage, done, total):
        if stage == "atlan":
            seen.append(done)
            if len(seen) >= n:
                raise _Stop

    return progress


def test_an_interrupted_apply_resumes_without_repeating_a_write(tmp_path):
    rig = Rig(tmp_path, "tables=30,seed=3")
    counting = _Counting(rig.sb.atlan_transport())
    rig.transports["atlan_transport"] = counting
    plan = rig.plan()
    with pytest.raises(_Stop):
        rig.apply(plan, parallelism=1, progress=_stop_after(2))
    journaled = {a: o for a, (o, _) in rig.state.journal(plan_checksum(plan)).items()}
    assert 0 < len(journaled) < len(plan.changes)
    assert find_interrupted(rig.state).left == len(plan.changes) - len(journaled)
    result = rig.apply(plan)
    assert sum(r.earlier for r in result.results) == len(journaled)
    assert len(counting.sent) == len(set(counting.sent)) == entities_of(plan)
    assert result.ok and rig.plan().is_empty()
    assert find_interrupted(rig.state) is None
    rig.close()


def test_journal_and_remote_agree_after_an_interruption(tmp_path):
    rig = Rig(tmp_path, "tables=30,seed=3")
    plan = rig.plan()
    with pytest.raises(_Stop):
        rig.apply(plan, parallelism=1, progress=_stop_after(1))
    journaled = {a for a, (o, _) in rig.state.journal(plan_checksum(plan)).items() if o == "applied"}
    fresh = rig.plan()
    assert journaled and not journaled & {c.address for c in fresh.changes}
    assert set(rig.state.owned()) >= {a for a in journaled if not a.startswith("atlan:typedef#")}
    rig.close()


def test_a_state_that_moved_on_is_not_resumed_as_it_is(tmp_path):
    rig = Rig(tmp_path, "tables=30,seed=3")
    plan = rig.plan()
    with pytest.raises(_Stop):
        rig.apply(plan, parallelism=1, progress=_stop_after(1))
    assert find_interrupted(rig.state).stale is False
    rig.plan()  # a refresh sees the writes: the serial moves
    left = find_interrupted(rig.state)
    assert left.stale is True and left.checksum == plan_checksum(plan)  # planned again, with its options
    rig.close()


# --------------------------------------------------------------------------- faults and limits


def test_faults_on_both_servers_still_converge_without_duplicates(tmp_path):
    faults = FaultSettings(seed=7, rate_500=0.04, rate_502=0.03, rate_503=0.03, rate_429=0.05,
                           rate_drop=0.02, rate_drop_after=0.03, retry_after=1)
    rig = Rig(tmp_path, "tables=20,columns=4,seed=2", atlan_ops=OpsSettings(requests_per_minute=0, faults=faults))
    rig.sb.qualytics_app.ops.set_faults(faults)
    plan = rig.plan()
    result = rig.apply(plan)
    if not result.ok:  # a change may fail after every retry: the next run finishes it
        result = rig.apply(plan)
    assert result.ok
    rig.sb.atlan_app.ops.set_faults(FaultSettings())
    rig.sb.qualytics_app.ops.set_faults(FaultSettings())
    assert rig.plan().is_empty()
    for c in changes(plan, "link", Action.CREATE):
        assert len(rig.active_links(c.target["guid"])) == 1
    rig.close()


def test_lost_answers_to_writes_never_duplicate_anything(tmp_path):
    rig = Rig(tmp_path, "tables=20,columns=4,seed=2")
    plan = rig.plan()
    lost = FaultSettings(seed=3, rate_drop_after=0.4, methods=("POST", "PUT", "PATCH"),
                         paths=(BULK, "/api/meta/types/typedefs", "/api/global-tags", "/api/containers",
                                "/api/fields"))
    rig.sb.atlan_app.ops.set_faults(lost)
    rig.sb.qualytics_app.ops.set_faults(lost)
    result = rig.apply(plan)
    if not result.ok:
        result = rig.apply(plan)
    assert result.ok
    assert rig.sb.atlan_app.ops.stats.to_json()["faults"]["drop_after"] > 0
    assert rig.sb.qualytics_app.ops.stats.to_json()["faults"]["drop_after"] > 0
    rig.sb.atlan_app.ops.set_faults(FaultSettings())
    rig.sb.qualytics_app.ops.set_faults(FaultSettings())
    assert rig.plan().is_empty()
    for c in changes(plan, "link", Action.CREATE):
        assert len(rig.active_links(c.target["guid"])) == 1
    displays = [d.get("displayName") for d in rig.sb.world.atlan.typedefs["classificationDefs"]]
    assert len(displays) == len(set(displays))
    sets = [d.get("displayName") for d in rig.sb.world.atlan.typedefs["businessMetadataDefs"]]
    assert sets.count("Qualytics") == 1
    rig.close()


def test_a_refused_entity_fails_alone_and_apply_reports_it(rig):
    plan = rig.plan()
    persona = rig.sb.world.atlan.persona_for_token("atlan-sandbox-sync-token")
    refused = "default/postgres/"
    persona["update"] = [c for c in persona["update"] if not c.startswith(refused)]
    result = rig.apply(plan)
    failed = {r.address for r in result.failed}
    atlan_on_conn = {c.address for c in plan.changes
                     if c.target.get("side") == "atlan" and c.target.get("qualified_name", "").startswith(refused)}
    assert failed == atlan_on_conn and failed
    n = result.counts()
    assert n["applied"] + n["adopted"] == len(plan.changes) - len(failed)
    with pytest.raises(ApplyError, match="change\\(s\\) failed"):
        result.raise_for_failures()
    assert rig.state.runs()[0]["outcome"] == "error"


def test_apply_creates_links_without_the_lagging_index_search(rig):
    # Links to create are found through their assets' `links` relationship (GET /entity/bulk,
    # consistent after a write), so a failing (or lagging) search does not matter
    plan = rig.plan()
    link_creates = {c.address for c in plan.changes
                    if c.target.get("part") == "link" and c.action is Action.CREATE}
    rig.sb.atlan_app.ops.set_faults(FaultSettings(rate_500=1.0, paths=(SEARCH,)))
    result = rig.apply(plan)
    rig.sb.atlan_app.ops.set_faults(FaultSettings())
    result.raise_for_failures()
    assert link_creates and {r.address for r in result.results if r.outcome.value == "applied"} >= link_creates
    assert rig.plan().is_empty()


def test_slow_calls_shrink_the_batches(tmp_path, monkeypatch):
    from qatlan.apply import batching

    monkeypatch.setattr(batching, "SLOW_CALL_S", 0.02)
    faults = FaultSettings(latency_min_ms=30, methods=("POST",), paths=(BULK,))
    rig = Rig(tmp_path, SMALL, atlan_ops=OpsSettings(requests_per_minute=0, faults=faults))
    plan = rig.plan()
    rig.reset_stats()
    rig.apply(plan, parallelism=1).raise_for_failures()
    assert rig.bulk_posts() >= minimum_posts(plan, 20) + 2  # 20, then 10, then 5 per batch
    assert rig.plan().is_empty()
    rig.close()


def test_outcomes_are_the_documented_words():
    assert [o.value for o in Outcome] == ["applied", "already", "drifted", "failed", "skipped"]
