"""`GET /_sandbox/records/{kind}/{key}`: one stored record, outside the API's rate limit."""

from __future__ import annotations

import httpx

from qatlan.sandbox.generate import generate_world
from qatlan.sandbox.ops import OpsSettings
from qatlan.sandbox.server import Sandbox
from qatlan.sandbox.world import World


def test_a_record_is_read_as_stored_even_when_the_api_budget_is_spent():
    world = World(generate_world("tables=3,seed=1"))
    sb = Sandbox(world, atlan_ops=OpsSettings(requests_per_minute=1))
    guid = next(iter(world.atlan.entities))
    container = world.qualytics.all("containers")[0]
    with httpx.Client(transport=sb.atlan_transport(), base_url="http://atlan.sandbox") as a, \
            httpx.Client(transport=sb.qualytics_transport(), base_url="http://qualytics.sandbox") as q:
        for _ in range(3):
            got = a.get(f"/_sandbox/records/entities/{guid}")
            assert got.status_code == 200 and got.json() == world.atlan.get(guid)
        assert q.get(f"/_sandbox/records/containers/{container['id']}").json()["name"] == container["name"]
        assert a.get("/_sandbox/records/entities/nope").status_code == 404
        assert q.get("/_sandbox/records/containers/999999").status_code == 404
        assert q.get("/_sandbox/records/containers/x").status_code == 404
