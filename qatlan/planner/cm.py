"""Custom metadata values: one grouped change per asset and set, attribute by attribute."""

from __future__ import annotations

from typing import Any

from qatlan import addresses
from qatlan.model import CM_ATTRIBUTES, CM_KIND, AAsset
from qatlan.normalize import normalize_cm
from qatlan.plan import Action
from qatlan.planner.context import Context, atlan_target


def plan_cm(ctx: Context, asset: AAsset, desired: dict[str, Any]) -> None:
    """Plan the set's values on `asset` towards `desired` ({} retires what qatlan owns).

    The set is qatlan's: with `cm_edits = "restore"` (the default) a value in it that this
    state did not record (a lost state, another qatlan, Qualytics' own integration) or that
    was edited in Atlan since the last apply is taken over: restored to Qualytics' value, or
    adopted as it is when it already equals it. With `"keep"` such a value is a conflict.
    """
    current = ctx.current_cm(asset) if asset.cm else {}
    address = addresses.cm(addresses.atlan_asset(asset.qualified_name), ctx.settings.cm_set_name)
    if desired == current:  # the common case, before any normalising
        if not current or ctx.owned.get(address) == current or ctx.settings.cm_edits != "restore":
            ctx.unchanged += len(desired)
            return
    if not current:  # nothing there yet: write every value, nothing to own or to clash with
        _emit(ctx, asset, address, dict.fromkeys(desired), dict(desired), 0, None)
        return
    _diff(ctx, asset, address, desired, current)


def _diff(ctx: Context, asset: AAsset, address: str, desired: dict[str, Any],
          current: dict[str, Any]) -> None:
    """Attribute by attribute: what qatlan may change or take over; conflicts recorded."""
    current = {a: v for a, v in ((a, normalize_cm(CM_KIND[a], v)) for a, v in current.items())
               if v is not None}
    owned = ctx.owned.get(address) or {}
    restore = ctx.settings.cm_edits == "restore"
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    taken = edited = 0
    for attr, kind in CM_ATTRIBUTES:
        want, have = desired.get(attr), current.get(attr)
        recorded = attr in owned
        mine = recorded and normalize_cm(kind, owned[attr]) == have
        if have is not None and not mine and restore:  # qatlan's set, not (or no longer) its record
            taken += 1
            edited += recorded
            before[attr], after[attr] = have, want
            continue
        if want == have:
            ctx.unchanged += want is not None
            continue
        if have is not None and not mine:
            if want is not None:
                ctx.conflict(f"{address}.{attr}", "cm_not_owned",
                             f"{ctx.settings.cm_set_name}.{attr} on {asset.qualified_name} holds "
                             f"{have!r}, which qatlan did not write; left as it is "
                             '([sync] cm_edits = "keep")')
            continue
        before[attr], after[attr] = have, want
    if after:
        _emit(ctx, asset, address, before, after, taken, _reason(taken, edited))


def _reason(taken: int, edited: int) -> str | None:
    if not taken:
        return None
    if edited == taken:
        return "edited in Atlan since the last apply: restored"
    return ("taken over: values in qatlan's custom metadata set that this state had not "
            "recorded" + ("; some edited in Atlan since the last apply" if edited else ""))


def _emit(ctx: Context, asset: AAsset, address: str, before: dict, after: dict, taken: int,
          reason: str | None) -> None:
    extra: dict[str, Any] = {"adopt": taken} if taken else {}
    missing = [a for a in after if a not in ctx.cm_attr_hash] if ctx.cm_incomplete else ()
    if missing:
        definition = ctx.cm_definition
        if not ctx.need(definition, address):
            for attr in missing:
                before.pop(attr), after.pop(attr)
            if not after:
                return
        else:
            extra["needs"] = [definition.address]
    target = atlan_target(asset, "cm", set=ctx.settings.cm_set_name, set_hash=ctx.cm_set_hash,
                          attributes=_hashes(ctx, tuple(after)), **extra)
    if before == after:
        ctx.add(address, Action.ADOPT, before, after, target, reason)
    elif all(v is None for v in before.values()):
        ctx.add(address, Action.CREATE, None, after, target, reason)
    elif all(v is None for v in after.values()):
        ctx.add(address, Action.DELETE, before, None, target, reason or "the Qualytics value is gone")
    else:
        ctx.add(address, Action.UPDATE, before, after, target, reason)


def _hashes(ctx: Context, attrs: tuple[str, ...]) -> dict[str, str | None]:
    """{attribute: hashed name}, one shared (read-only) dict per attribute list: most
    assets change the same attributes, and a 200,000-column plan should stay small."""
    found = ctx.hash_maps.get(attrs)
    if found is None:
        found = ctx.hash_maps[attrs] = {a: ctx.cm_attr_hash.get(a) for a in attrs}
    return found
