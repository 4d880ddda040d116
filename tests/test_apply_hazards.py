"""What can go wrong around an apply, one test each (issue 12, cases 1-8).

Kills are simulated in-process where the point matters (the process "dies" right after a
server applied a write, before its answer is journaled); races are staged by a transport
that changes the world between two requests of the apply. Everything else is real HTTP
against the in-process sandbox.
"""

from __future__ import annotations

import json

import httpx
import pytest

from qatlan.apply import find_interrupted
from qatlan.errors import PlanRefused
from qatlan.plan import Action, plan_checksum
from stateful_apply import BULK, Rig

SPEC = "tables=30,seed=3"


class Died(BaseException):
    """The process ended (not an error qatlan could handle: nothing after it runs)."""


class Hook(httpx.AsyncBaseTransport):
    """Passes requests to `inner`; calls `before(request)` / `after(request, response)` on the
    requests `match` picks (`after` may raise Died: the answer is lost with the process)."""

    def __init__(self, inner, match, before=None, after=None, times: int = 1):
        self.inner, self.match, self.before, self.after, self.left = inner, match, before, after, times

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        hit = self.left > 0 and self.match(request)
        if hit:
            self.left -= 1
            if self.before is not None:
                early = self.before(request)
                if early is not None:
                    return early
        response = await self.inner.handle_async_request(request)
        if hit and self.after is not None:
            await response.aread()
            return self.after(request, response) or response
        return response


def _is(method: str, path: str):
    return lambda r: r.method == method and r.url.path.rstrip("/") == path.rstrip("/")


def _reconfigure(rig: Rig, **sections) -> None:
    updates = {name: getattr(rig.config, name).model_copy(update=values) for name, values in sections.items()}
    rig.config = rig.config.model_copy(update=updates)


def _die(request, response):
    raise Died


# --------------------------------------------------------------------------- case 1


def _matched_containers(rig: Rig) -> list[int]:
    snap = rig.state.load_snapshot()
    return sorted(c.id for c in snap.containers.values() if c.score is not None)


def test_writes_that_landed_before_a_kill_stay_qatlan_s_across_a_refresh(tmp_path):
    # cm_edits = "keep": a value qatlan does not know it wrote is a person's, never taken over
    rig = Rig(tmp_path, SPEC, cm_edits="keep")
    plan = rig.plan()
    # the third bulk write lands on the server; the process dies before its answer is journaled
    rig.transports["atlan_transport"] = Hook(rig.transports["atlan_transport"], _is("POST", BULK),
                                             after=_die, times=3)
    hook = rig.transports["atlan_transport"]
    hook.after = lambda req, resp: _die(req, resp) if hook.left == 0 else None
    with pytest.raises(Died):
        rig.apply(plan, parallelism=1)
    rig.transports["atlan_transport"] = hook.inner
    assert rig.state.open_intents()  # the write in flight when it died
    rig.plan()  # the scheduled drift job refreshes before anyone resumes: the plan goes stale
    assert not rig.state.open_intents()
    rig.sync().raise_for_failures()
    for cid in _matched_containers(rig):  # every score moves upstream
        score = dict(rig.container(cid).get("quality_score") or {})
        score["total"] = round(float(score.get("total") or 0) / 2 + 1, 1)
        rig.change({"side": "qualytics", "kind": "containers", "op": "update", "id": cid,
                    "set": {"quality_score": score}})
    again = rig.plan()
    assert [c.address for c in again.conflicts if c.rule == "cm_not_owned"] == []
    rig.apply(again).raise_for_failures()
    assert rig.plan().in_sync()
    rig.close()


def test_an_answer_lost_to_a_server_error_is_read_back(tmp_path):
    rig = Rig(tmp_path, SPEC)
    plan = rig.plan()
    # the server applies the write, then the gateway answers 502 (and keeps doing so on retry)
    bad = httpx.Response(502, json={"errorMessage": "bad gateway"})
    rig.transports["atlan_transport"] = Hook(rig.transports["atlan_transport"], _is("POST", BULK),
                                             after=lambda req, resp: bad, times=100)
    result = rig.apply(plan, parallelism=1)
    assert result.ok, result.failed[:3]
    assert not rig.state.open_intents()
    rig.transports["atlan_transport"] = rig.transports["atlan_transport"].inner
    assert rig.plan().in_sync()
    rig.close()


# --------------------------------------------------------------------------- case 2


def test_a_tag_a_person_adds_to_a_container_while_apply_runs_is_kept(tmp_path):
    rig = Rig(tmp_path, SPEC, push=False)
    _reconfigure(rig, qualytics={"batch_size": 1})
    plan = rig.plan()
    containers = sorted({int(c.target["id"]) for c in plan.changes
                         if c.target.get("side") == "qualytics" and c.target.get("kind") == "container"
                         and c.action is Action.CREATE})
    assert len(containers) >= 2
    last = containers[-1]
    mine = "Sensitive"
    assert mine not in (rig.container(last).get("tags") or [])

    def person_tags(request):  # while qatlan writes the first container, a person tags the last
        tags = list(rig.container(last).get("tags") or []) + [mine]
        rig.change({"side": "qualytics", "kind": "containers", "op": "update", "id": last,
                    "set": {"tags": tags}})

    rig.transports["qualytics_transport"] = Hook(rig.transports["qualytics_transport"],
                                                 _is("PATCH", "/api/containers"), before=person_tags)
    rig.apply(plan, parallelism=1).raise_for_failures()
    assert mine in rig.container(last)["tags"]
    planned = {c.after["name"] for c in plan.changes if c.target.get("id") == last and c.after}
    assert planned <= set(rig.container(last)["tags"])
    rig.close()


# --------------------------------------------------------------------------- case 4


def _links_by_name(rig: Rig) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in rig.sb.world.atlan.entities.values():
        if e["typeName"] == "Link" and e["status"] == "ACTIVE":
            out[e["attributes"]["name"]] = out.get(e["attributes"]["name"], 0) + 1
    return out


def test_renaming_link_name_renames_qatlan_s_links_instead_of_adding_new_ones(tmp_path):
    rig = Rig(tmp_path, SPEC)
    rig.sync().raise_for_failures()
    before = _links_by_name(rig)
    _reconfigure(rig, atlan={"link_name": "Data quality"})
    plan = rig.plan()
    renames = [c for c in plan.changes if c.part == "link"]
    assert renames and all(c.action is Action.UPDATE and c.before["name"] == "Qualytics"
                           and c.after["name"] == "Data quality" for c in renames)
    rig.apply(plan).raise_for_failures()
    after = _links_by_name(rig)
    assert after.get("Data quality", 0) == len(renames)
    assert after.get("Qualytics", 0) == before["Qualytics"] - len(renames)  # a person's stay
    assert sum(after.values()) == sum(before.values())  # none added, none orphaned
    assert rig.plan().in_sync()
    rig.close()


def test_renaming_the_custom_metadata_set_moves_the_values_under_the_removal_guard(tmp_path):
    rig = Rig(tmp_path, SPEC)
    rig.sync().raise_for_failures()
    old = {k: v for k, v in rig.state.owned().items() if "#cm:Qualytics" in k}
    assert old
    _reconfigure(rig, atlan={"custom_metadata_set": "Data Quality"})
    with pytest.raises(PlanRefused, match="--allow-mass-removal"):
        rig.plan()
    plan = rig.plan(allow_mass_removal=True)
    removed = {c.address for c in plan.changes if c.action is Action.DELETE and c.part == "cm:Qualytics"}
    assert removed == set(old)
    rig.apply(plan).raise_for_failures()
    store = rig.sb.world.atlan
    old_hash = next(d["name"] for d in store.typedefs["businessMetadataDefs"] if d["displayName"] == "Qualytics")
    assert not [e for e in store.entities.values() if (e.get("businessAttributes") or {}).get(old_hash)]
    owned = rig.state.owned()
    assert not [k for k in owned if "#cm:Qualytics" in k]
    assert len([k for k in owned if "#cm:Data Quality" in k]) == len(old)
    assert rig.plan().in_sync()
    rig.close()


# --------------------------------------------------------------------------- case 6


def test_a_link_a_person_adds_after_the_plan_is_not_duplicated(tmp_path):
    rig = Rig(tmp_path, SPEC)
    plan = rig.plan()
    create = next(c for c in plan.changes if c.part == "link" and c.action is Action.CREATE)
    guid = create.target["guid"]
    rig.change({"side": "atlan", "op": "add", "entity": {
        "typeName": "Link", "attributes": {
            "qualifiedName": "a-person-s-link", "name": "Qualytics", "link": "https://wiki.example/dq",
            "asset": {"typeName": create.target["type_name"], "guid": guid}}}})
    result = rig.apply(plan)
    assert len(rig.active_links(guid)) == 1
    outcome = next(r for r in result.results if r.address == create.address)
    assert outcome.outcome.value == "drifted" and "did not create" in outcome.error
    rig.close()


# --------------------------------------------------------------------------- case 7


@pytest.mark.parametrize("landed", [False, True], ids=["refused", "landed-then-502"])
def test_a_502_on_creating_an_external_tag_is_read_back_and_retried(tmp_path, landed):
    rig = Rig(tmp_path, SPEC, push=False)
    plan = rig.plan()
    creates = [c for c in plan.changes if c.target.get("side") == "qualytics" and c.action is Action.CREATE]
    assert creates
    # a gateway's 502: an HTML page, not the API's JSON
    bad = httpx.Response(502, text="<html><body>502 Bad Gateway</body></html>",
                         headers={"content-type": "text/html"})
    inner = rig.transports["qualytics_transport"]
    rig.transports["qualytics_transport"] = (
        Hook(inner, _is("POST", "/api/global-tags"), after=lambda req, resp: bad) if landed
        else Hook(inner, _is("POST", "/api/global-tags"), before=lambda req: bad))
    result = rig.apply(plan)
    assert result.ok, result.failed[:3]
    rig.transports["qualytics_transport"] = inner
    assert rig.plan().in_sync()
    rig.close()


# --------------------------------------------------------------------------- case 8 and resuming


def test_an_interrupted_apply_whose_state_moved_on_is_reported_stale(tmp_path):
    rig = Rig(tmp_path, SPEC, create_definitions=False)
    plan = rig.plan(create_definitions=True)
    rig.state.start_run("apply", plan_checksum=plan_checksum(plan))  # killed at once
    found = find_interrupted(rig.state)
    assert found.checksum == plan_checksum(plan) and not found.stale
    assert found.left == len(plan.changes)
    cid = _matched_containers(rig)[0]  # something changes upstream; a refresh sees it
    rig.change({"side": "qualytics", "kind": "containers", "op": "update", "id": cid,
                "set": {"quality_score": {**rig.container(cid)["quality_score"], "total": 1.5}}})
    rig.plan()
    assert find_interrupted(rig.state).stale
    rig.close()


def test_a_kept_tag_missing_from_a_qualytics_write_answer_is_written_back(tmp_path):
    rig = Rig(tmp_path, SPEC, push=False)
    plan = rig.plan()
    patches = []

    def drop_a_kept_tag(request, response):
        patches.append(request)
        if len(patches) > 1:
            return None
        body = response.json()
        for obj in body:  # as if someone's concurrent write had replaced the list
            obj["global_tags"] = [t for t in obj.get("global_tags") or () if t.get("type") == "external"]
        return httpx.Response(response.status_code, json=body)

    rig.transports["qualytics_transport"] = Hook(rig.transports["qualytics_transport"],
                                                 _is("PATCH", "/api/containers"), after=drop_a_kept_tag,
                                                 times=100)
    result = rig.apply(plan)
    kept = [c for c in rig.state.load_snapshot().containers.values()
            if any(t.type != "external" for t in c.tags) and any(
                ch.target.get("id") == c.id for ch in plan.changes if ch.target.get("kind") == "container")]
    assert kept, "the world has a container with a Qualytics tag that qatlan writes to"
    first = {o["id"]: o["tags"] for o in json.loads(patches[0].content)}
    again = [json.loads(p.content) for p in patches[1:]]
    restored = {o["id"]: o["tags"] for body in again for o in body if o["id"] in first}
    # the kept tags went out again, for the containers whose answer lacked them
    assert restored and all(set(first[i]) <= set(tags) for i, tags in restored.items())
    assert result.ok and not result.inconsistencies
    rig.close()
