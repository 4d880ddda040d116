"""The main pass: every matched datastore, container and field, in snapshot order."""

from __future__ import annotations

from typing import Any

from qatlan import addresses
from qatlan.model import AAsset, QContainer
from qatlan.planner.cm import plan_cm
from qatlan.planner.context import Context
from qatlan.planner.resources import plan_announcement, plan_link
from qatlan.planner.tags import Pair, plan_tags
from qatlan.planner.values import (
    container_url,
    datastore_url,
    desired_announcement,
    desired_cm,
    field_url,
)


def q_target(kind: str, id_: int, datastore_id: int, container_id: int | None = None) -> dict[str, Any]:
    return {"side": "qualytics", "kind": kind, "id": id_, "datastore_id": datastore_id,
            "container_id": container_id}


def walk(ctx: Context) -> None:
    _datastores(ctx)
    _containers(ctx)
    _fields(ctx)


def _pair(ctx: Context, pair: Pair, cm: dict[str, Any]) -> None:
    since = len(ctx.changes)
    if ctx.settings.push:
        plan_cm(ctx, pair.asset, cm)
    plan_tags(ctx, pair)
    atlan = addresses.atlan_asset(pair.asset.qualified_name)
    ctx.visited.add(atlan)
    _sourced(ctx, since, pair.q_address, atlan)


def _sourced(ctx: Context, since: int, q_address: str, atlan: str) -> None:
    """Record in the target of each change made since `since` the asset on the other side
    its value comes from (`source`: audit only, `qatlan log`; apply never reads it)."""
    for change in ctx.changes[since:]:
        change.target.setdefault("source", atlan if change.address.startswith("qualytics:")
                                 else q_address)


def _datastores(ctx: Context) -> None:
    s, ui = ctx.snapshot, ctx.settings.qualytics_ui_url
    for ds_id, m in ctx.matches.datastores.items():
        if m.schema_guid is None or not m.schema_in_scope:
            continue
        ds = s.datastores[ds_id]
        pair = Pair(addresses.qualytics_asset(ds.name), q_target("datastore", ds.id, ds.id), ds.tags,
                    s.assets[m.schema_guid], f"datastore {ds.name}")
        _pair(ctx, pair, desired_cm(ds.score, ds.active_checks, ds.active_anomalies,
                                    datastore_url(ui, ds)))


def _containers(ctx: Context) -> None:
    s, settings = ctx.snapshot, ctx.settings
    ui = settings.qualytics_ui_url
    for cid, guid in ctx.matches.containers.items():
        c = s.containers[cid]
        asset = s.assets[guid]
        pair = Pair(container_address(ctx, c), q_target("container", c.id, c.datastore_id, c.id),
                    c.tags, asset, f"container {c.name}")
        url = container_url(ui, c)
        _pair(ctx, pair, desired_cm(c.score, c.active_checks, c.active_anomalies, url,
                                    c.last_scanned))
        if settings.push:
            since = len(ctx.changes)
            _table_resources(ctx, c, asset, url)
            _sourced(ctx, since, pair.q_address, addresses.atlan_asset(asset.qualified_name))


def _table_resources(ctx: Context, c: QContainer, asset: AAsset, url: str | None) -> None:
    if url is not None:
        plan_link(ctx, asset, url)
    if ctx.settings.announcements and c.active_anomalies is not None:
        plan_announcement(ctx, asset, desired_announcement(c, ctx.settings.qualytics_ui_url))


def container_address(ctx: Context, c: QContainer, field: str | None = None) -> str:
    """The address of a container (or of one of its fields); a datastore the snapshot lacks
    is named by its id."""
    ds = ctx.snapshot.datastores.get(c.datastore_id)
    return addresses.qualytics_asset(ds.name if ds else str(c.datastore_id), c.name, field)


def _fields(ctx: Context) -> None:
    s, ui = ctx.snapshot, ctx.settings.qualytics_ui_url
    prefixes: dict[int, str] = {}
    for fid, guid in ctx.matches.fields.items():
        f = s.fields[fid]
        c = s.containers[f.container_id]
        prefix = prefixes.get(c.id)
        if prefix is None:
            prefix = prefixes[c.id] = container_address(ctx, c)
        pair = Pair(f"{prefix}/{f.name}", q_target("field", f.id, c.datastore_id, c.id), f.tags,
                    s.assets[guid], f"field {c.name}.{f.name}")
        _pair(ctx, pair, desired_cm(f.score, f.active_checks, f.active_anomalies,
                                    field_url(ui, c, f)))
