"""Tags both ways on one matched pair, with ownership and the overwrite_tags rule.

    push: Qualytics' own tags (not external) → Atlan tags, by display name
    pull: direct Atlan tags not written by qatlan → external tags in Qualytics
    clash: a name on both sides, Qualytics' own tag vs an Atlan tag qatlan did not write
           overwrite_tags=false → a conflict, nothing moves either way
           overwrite_tags=true  → pull converts the Qualytics tag to external; push skips it
Names compare case-insensitively (`fold`); addresses keep the source's spelling.

An external tag of the configured Atlan integration that matches an Atlan tag on the pair is
recognisably pulled (by qatlan or by Qualytics' own sync): one this state has no record of is
adopted. One whose Atlan tag is gone is not removed without a record: overwrite_tags turns a
Qualytics tag into the integration's external tag on every asset that carries it, so the
integration alone does not say who put it there. Atlan tags carry no writer: one without a
record stays a person's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qatlan import addresses
from qatlan.model import AAsset, QTag
from qatlan.normalize import fold
from qatlan.plan import Action
from qatlan.planner.context import Context, atlan_target, tag_definition


@dataclass(frozen=True, slots=True)
class Pair:
    """A matched Qualytics asset and its Atlan asset."""

    q_address: str
    q_target: dict[str, Any]
    q_tags: tuple[QTag, ...]
    asset: AAsset
    q_label: str


def split_q_tags(tags: tuple[QTag, ...]) -> tuple[dict[str, QTag], dict[str, QTag]]:
    own: dict[str, QTag] = {}
    external: dict[str, QTag] = {}
    for t in tags:
        (external if t.external else own).setdefault(fold(t.name), t)
    return own, external


def plan_tags(ctx: Context, pair: Pair) -> None:
    s = ctx.settings
    pushing, pulling = s.push and s.push_tags, s.pull
    atlan_asset = addresses.atlan_asset(pair.asset.qualified_name)
    if not (pushing or pulling) or not (pair.q_tags or pair.asset.tags
                                          or pair.q_address in ctx.owned_tags
                                          or atlan_asset in ctx.owned_tags):
        return
    a_tags = ctx.atlan_tags(pair.asset)
    a_owned = ctx.owned_tags.get(atlan_asset, {})
    human = {f: d for f, d in a_tags.items() if f not in a_owned}
    q_own, q_ext = split_q_tags(pair.q_tags)
    clashes = sorted(set(q_own) & set(human))
    for f in clashes:
        _clash(ctx, pair, q_own[f], human[f])
    if pushing:
        _push(ctx, pair, q_own, a_tags, a_owned, set(clashes))
    if pulling:
        _pull(ctx, pair, human, q_own, q_ext)


def _q_tag_target(ctx: Context, pair: Pair, name: str) -> dict[str, Any]:
    return {**pair.q_target, "part": "tag", "tag": name,
            "integration_id": ctx.settings.integration_id}


def _clash(ctx: Context, pair: Pair, q_tag: QTag, atlan_name: str) -> None:
    address = addresses.tag(pair.q_address, q_tag.name)
    where = f"{pair.q_label} and {pair.asset.qualified_name}"
    if ctx.settings.overwrite_tags and ctx.settings.pull:
        ctx.add(address, Action.UPDATE, {"name": q_tag.name, "type": q_tag.type},
                {"name": q_tag.name, "type": "external"}, _q_tag_target(ctx, pair, q_tag.name),
                f"overwrite_tags: the Atlan tag {atlan_name!r} wins")
    elif ctx.settings.overwrite_tags:
        ctx.conflict(address, "tag_conflict",
                     f"tag {q_tag.name!r} is on both {where}; overwrite_tags = true converts "
                     "the Qualytics tag on a run that pulls")
    else:
        ctx.conflict(address, "tag_conflict",
                     f"tag {q_tag.name!r} is a Qualytics tag and an Atlan tag not set by qatlan "
                     f"({where}); overwrite_tags = false leaves both")


def _push(ctx: Context, pair: Pair, q_own: dict[str, QTag], a_tags: dict[str, str],
          a_owned: dict[str, str], clashes: set[str]) -> None:
    asset = pair.asset
    hashes = ctx.atlan_tag_hashes(asset) if a_owned else {}
    atlans = ctx.atlan_owned_tag_names() if ctx.settings.overwrite_tags else set()
    for f, q_tag in sorted(q_own.items()):
        if f in clashes or (f in atlans and f not in a_owned):
            continue  # overwrite_tags: a tag people use in Atlan is Atlan's, not pushed
        if f in a_tags:
            ctx.unchanged += 1
            continue
        _push_create(ctx, asset, q_tag.name, f)
    for f, key in sorted(a_owned.items()):
        if f in a_tags and f not in q_own:
            ctx.add(key, Action.DELETE, {"name": a_tags[f]}, None,
                    atlan_target(asset, "tag", tag=a_tags[f], tag_hash=hashes[f][1]),
                    "the Qualytics tag is gone")


def _push_create(ctx: Context, asset: AAsset, name: str, f: str) -> None:
    known = ctx.tag_by_fold.get(f)
    address = addresses.tag(addresses.atlan_asset(asset.qualified_name), name)
    extra: dict[str, Any] = {}
    if known is None:
        ctx.tag_spellings[f].add(name)
        definition = ctx.tag_definitions.get(f)
        if definition is None:
            definition = ctx.tag_definitions[f] = tag_definition(name)
        if not ctx.need(definition, address):
            return
        extra["needs"] = [definition.address]
    target = atlan_target(asset, "tag", tag=known[1] if known else name,
                          tag_hash=known[0] if known else None, **extra)
    ctx.add(address, Action.CREATE, None, {"name": name}, target)


def _integration_tag(ctx: Context, tag: QTag) -> bool:
    """An external tag of the configured Atlan integration (of any, when none is configured)."""
    wanted = ctx.settings.integration_id
    return tag.external and (wanted is None or tag.integration_id == wanted)


def _pull(ctx: Context, pair: Pair, human: dict[str, str], q_own: dict[str, QTag],
          q_ext: dict[str, QTag]) -> None:
    recorded = ctx.owned_tags.get(pair.q_address, {})
    for f, display in sorted(human.items()):
        if f in q_ext and f not in recorded and _integration_tag(ctx, q_ext[f]):
            value = {"name": display, "type": "external"}
            ctx.add(addresses.tag(pair.q_address, display), Action.ADOPT, value, value,
                    {**_q_tag_target(ctx, pair, display), "adopt": 1},
                    "taken over: an external tag of the Atlan integration, not recorded in this state")
        elif f in q_ext:
            ctx.unchanged += 1
        elif f in q_own:
            continue  # a clash on this asset, decided by _clash
        elif f in ctx.q_own_tag_defs:
            _pull_over_own_tag(ctx, pair, display, ctx.q_own_tag_defs[f])
        else:
            ctx.add(addresses.tag(pair.q_address, display), Action.CREATE, None,
                    {"name": display, "type": "external"}, _q_tag_target(ctx, pair, display))
    retire_q_tags(ctx, pair.q_address, pair.q_target, q_ext, keep=human)


def _pull_over_own_tag(ctx: Context, pair: Pair, display: str, q_def: Any) -> None:
    """The Atlan tag's name is a Qualytics tag of its own (global...) not on this asset.

    Qualytics tag names are unique, so the Atlan tag can only arrive by converting that tag
    to external: `overwrite_tags = true` plans the attachment with a conversion; otherwise
    it is a tag conflict and both are left as they are."""
    address = addresses.tag(pair.q_address, display)
    if ctx.settings.overwrite_tags:
        target = {**_q_tag_target(ctx, pair, display), "convert": True, "tag": q_def.name}
        ctx.add(address, Action.CREATE, None, {"name": q_def.name, "type": "external"}, target,
                f"overwrite_tags: the Qualytics {q_def.type} tag {q_def.name!r} becomes external")
    else:
        ctx.conflict(address, "tag_conflict",
                     f"tag {display!r} is an Atlan tag on {pair.asset.qualified_name} and a Qualytics "
                     f"{q_def.type} tag; overwrite_tags = false leaves the Qualytics tag and skips "
                     "the Atlan one")


def retire_q_tags(ctx: Context, q_address: str, q_target: dict[str, Any],
                  q_ext: dict[str, QTag], keep: dict[str, str]) -> None:
    """Delete the external tags qatlan attached whose Atlan tag is gone (not in `keep`)."""
    for f, key in sorted(ctx.owned_tags.get(q_address, {}).items()):
        if f in q_ext and f not in keep:
            name = q_ext[f].name
            ctx.add(key, Action.DELETE, {"name": name, "type": "external"}, None,
                    {**q_target, "part": "tag", "tag": name,
                     "integration_id": ctx.settings.integration_id},
                    "the Atlan tag is gone")


def retire_atlan_tags(ctx: Context, asset: AAsset) -> None:
    """Delete the tags qatlan attached to an asset whose Qualytics side is gone."""
    hashes = ctx.atlan_tag_hashes(asset)
    for f, key in sorted(ctx.owned_tags.get(addresses.atlan_asset(asset.qualified_name), {}).items()):
        if f in hashes:
            display, h = hashes[f]
            ctx.add(key, Action.DELETE, {"name": display}, None,
                    atlan_target(asset, "tag", tag=display, tag_hash=h),
                    "the Qualytics asset is gone")
