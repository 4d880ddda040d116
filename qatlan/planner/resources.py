"""The Link resource and the anomaly announcement on a matched table or view.

Both carry qatlan's mark, so a value this state has no record of (a lost state, another
qatlan, Qualytics' own integration) is still recognised and taken over: a Link named
`link_name` that points into the configured Qualytics UI, and a warning titled
"Qualytics: N active anomalies". Anything else is a person's, left alone and reported.
"""

from __future__ import annotations

from typing import Any

from qatlan import addresses
from qatlan.model import AAsset, ALink
from qatlan.normalize import normalize
from qatlan.plan import Action
from qatlan.planner.context import Context, announcement_value, atlan_target
from qatlan.planner.values import is_qatlan_announcement, is_qualytics_url

#: why a value this state has no record of is taken over
_TAKEN = "taken over: qatlan's mark, not recorded in this state"


def _link_target(ctx: Context, asset: AAsset, name: str, link: ALink | None,
                 adopt: bool = False) -> dict[str, Any]:
    target = atlan_target(asset, "link", link_name=name,
                          link_qualified_name=link.qualified_name if link else f"{asset.qualified_name}/{name}",
                          link_guid=link.guid if link else None)
    if adopt:
        target["adopt"] = 1
    return target


def _value(link: ALink | None) -> dict[str, Any] | None:
    return {"name": link.name, "url": link.url} if link else None


def _find_mine(ctx: Context, asset: AAsset, name: str, owned: Any) -> ALink | None:
    """qatlan's Link on the asset: the one with qatlan's qualifiedName `<assetQN>/<name>`,
    else the one Link of that name the state recorded, else (no record) the one Link of that
    name that points into the Qualytics UI."""
    named = [l for l in ctx.links_of(asset.guid) if l.name == name]
    ours = f"{asset.qualified_name}/{name}"
    for found in ([l for l in named if l.qualified_name == ours],
                  [l for l in named if owned is not None and _value(l) == owned],
                  [l for l in named if owned is None
                   and is_qualytics_url(ctx.settings.qualytics_ui_url, l.url)]):
        if len(found) == 1:
            return found[0]
    return None


def plan_link(ctx: Context, asset: AAsset, url: str | None) -> None:
    """One Link named `link_name` → `url` (None retires qatlan's Link).

    qatlan's Link has the idempotent qualifiedName `<assetQN>/<link_name>`, so a rerun finds it
    instead of adding a second. A Link of that name that is not qatlan's is a conflict. After
    `link_name` changed, qatlan's Link under the old name is renamed in place (an update).
    """
    address = addresses.link(addresses.atlan_asset(asset.qualified_name))
    owned = ctx.owned_value(address)
    name = (owned or {}).get("name") if url is None else ctx.settings.link_name
    if name is None:
        return
    if url is not None and owned is not None and owned.get("name") not in (None, name):
        if _rename_link(ctx, asset, address, owned, {"name": name, "url": url}):
            return
    mine = _find_mine(ctx, asset, name, owned)
    current = _value(mine)
    if url is None:
        if mine is not None and owned is not None and current == owned:
            ctx.add(address, Action.DELETE, current, None, _link_target(ctx, asset, name, mine),
                    "the Qualytics asset is gone")
        return
    desired = {"name": name, "url": url}
    if mine is None:
        _create_link(ctx, asset, address, desired)
    elif current == desired and owned == current:
        ctx.unchanged += 1
    elif current == desired:
        ctx.add(address, Action.ADOPT, current, current, _link_target(ctx, asset, name, mine, True),
                _TAKEN)
    elif owned is not None and current == owned:
        ctx.add(address, Action.UPDATE, current, desired, _link_target(ctx, asset, name, mine))
    elif is_qualytics_url(ctx.settings.qualytics_ui_url, mine.url):
        ctx.add(address, Action.UPDATE, current, desired, _link_target(ctx, asset, name, mine, True),
                _TAKEN if owned is None else "edited in Atlan since the last apply: restored")
    else:
        ctx.conflict(address, "link_not_owned",
                     f"Link {mine.qualified_name} points to {mine.url!r}; qatlan did not set "
                     "that, so it is left as it is")


def _rename_link(ctx: Context, asset: AAsset, address: str, owned: dict, desired: dict) -> bool:
    """Rename qatlan's Link from its old name (the one the state recorded) to `link_name`;
    False when there is no such Link to rename (gone, or edited since): plan as usual."""
    old = _find_mine(ctx, asset, owned["name"], owned)
    if old is None or _value(old) != owned:
        return False
    if any(l.name == desired["name"] for l in ctx.links_of(asset.guid)):
        ctx.conflict(address, "link_not_owned",
                     f"{asset.qualified_name} already has a Link named {desired['name']!r} that "
                     f"qatlan did not create; its Link {owned['name']!r} is not renamed")
        return True
    ctx.add(address, Action.UPDATE, owned, desired, _link_target(ctx, asset, desired["name"], old),
            f"link_name changed from {owned['name']!r}: qatlan's Link is renamed")
    return True


def _create_link(ctx: Context, asset: AAsset, address: str, desired: dict) -> None:
    same_name = [l for l in ctx.links_of(asset.guid) if l.name == desired["name"]]
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
    owned = ctx.owned_value(address)
    target = atlan_target(asset, "announcement")
    if desired == current:
        if current is not None and owned != current:  # qatlan's form, but not its record
            ctx.add(address, Action.ADOPT, current, current, {**target, "adopt": 1}, _TAKEN)
        else:
            ctx.unchanged += desired is not None
        return
    mine = owned is not None and owned == current
    if current is None:
        ctx.add(address, Action.CREATE, None, desired, target)
    elif mine and desired is None:
        ctx.add(address, Action.DELETE, current, None, target, "no active anomalies left")
    elif mine:
        ctx.add(address, Action.UPDATE, current, desired, target)
    elif is_qatlan_announcement(current):
        why = _TAKEN if owned is None else "edited in Atlan since the last apply: restored"
        if desired is None:
            ctx.add(address, Action.DELETE, current, None, {**target, "adopt": 1},
                    f"no active anomalies left; {why}")
        else:
            ctx.add(address, Action.UPDATE, current, desired, {**target, "adopt": 1}, why)
    elif desired is not None or owned is not None:
        who = "changed since qatlan raised it" if owned is not None else "not raised by qatlan"
        ctx.conflict(address, "announcement_not_owned",
                     f"the announcement on {asset.qualified_name} is {who}; it is left in place")
