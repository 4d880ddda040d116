"""The Link resource and the anomaly announcement on a matched table or view."""

from __future__ import annotations

from typing import Any

from qatlan import addresses
from qatlan.model import AAsset, ALink
from qatlan.normalize import normalize
from qatlan.plan import Action
from qatlan.planner.context import Context, announcement_value, atlan_target


def _link_target(ctx: Context, asset: AAsset, name: str, link: ALink | None) -> dict[str, Any]:
    return atlan_target(asset, "link", link_name=name,
                        link_qualified_name=f"{asset.qualified_name}/{name}",
                        link_guid=link.guid if link else None)


def plan_link(ctx: Context, asset: AAsset, url: str | None) -> None:
    """One Link named `link_name` → `url` (None retires qatlan's Link).

    qatlan's Link has the idempotent qualifiedName `<assetQN>/<link_name>`, so a rerun finds it
    instead of adding a second. A Link of that name that qatlan does not own is a conflict.
    """
    address = addresses.link(addresses.atlan_asset(asset.qualified_name))
    owned = ctx.owned_value(address)
    name = (owned or {}).get("name") if url is None else ctx.settings.link_name
    if name is None:
        return
    links = ctx.links_of(asset.guid)
    mine = next((l for l in links if l.qualified_name == f"{asset.qualified_name}/{name}"), None)
    current = {"name": mine.name, "url": mine.url} if mine else None
    if url is None:
        if mine is not None and owned is not None and current == owned:
            ctx.add(address, Action.DELETE, current, None, _link_target(ctx, asset, name, mine),
                    "the Qualytics asset is gone")
        return
    desired = {"name": name, "url": url}
    if current == desired:
        ctx.unchanged += 1
    elif mine is not None:
        if owned is not None and current == owned:
            ctx.add(address, Action.UPDATE, current, desired, _link_target(ctx, asset, name, mine))
        else:
            ctx.conflict(address, "link_not_owned",
                         f"Link {mine.qualified_name} points to {mine.url!r}; qatlan did not set "
                         "that, so it is left as it is")
    else:
        _create_link(ctx, asset, address, desired, links)


def _create_link(ctx: Context, asset: AAsset, address: str, desired: dict, links: list[ALink]) -> None:
    same_name = [l for l in links if l.name == desired["name"]]
    if any(l.url == desired["url"] for l in same_name):
        ctx.unchanged += 1
    elif same_name:
        ctx.conflict(address, "link_not_owned",
                     f"{asset.qualified_name} already has a Link named {desired['name']!r} that "
                     "qatlan did not create; no second one is added")
    else:
        ctx.add(address, Action.CREATE, None, desired, _link_target(ctx, asset, desired["name"], None))


def plan_announcement(ctx: Context, asset: AAsset, desired: dict[str, Any] | None) -> None:
    """Raise, update or clear qatlan's warning; never touch someone else's announcement."""
    address = addresses.announcement(addresses.atlan_asset(asset.qualified_name))
    current = normalize(announcement_value(asset.announcement))
    desired = normalize(desired)
    if desired == current:
        ctx.unchanged += desired is not None
        return
    owned = ctx.owned_value(address)
    mine = owned is not None and owned == current
    target = atlan_target(asset, "announcement")
    if current is None:
        ctx.add(address, Action.CREATE, None, desired, target)
    elif mine and desired is None:
        ctx.add(address, Action.DELETE, current, None, target, "no active anomalies left")
    elif mine:
        ctx.add(address, Action.UPDATE, current, desired, target)
    elif desired is not None or owned is not None:
        who = "changed since qatlan raised it" if owned is not None else "not raised by qatlan"
        ctx.conflict(address, "announcement_not_owned",
                     f"the announcement on {asset.qualified_name} is {who}; it is left in place")
