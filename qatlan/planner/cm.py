"""Custom metadata values: one grouped change per asset and set, attribute by attribute."""

from __future__ import annotations

from typing import Any

from qatlan import addresses
from qatlan.model import CM_ATTRIBUTES, CM_KIND, AAsset
from qatlan.normalize import normalize_cm
from qatlan.plan import Action
from qatlan.planner.context import Context, atlan_target


def plan_cm(ctx: Context, asset: AAsset, desired: dict[str, Any]) -> None:
    """Plan the set's values on `asset` towards `desired` ({} retires what qatlan owns)."""
    current = ctx.current_cm(asset) if asset.cm else {}
    if desired == current:  # the common case, before any normalising
        ctx.unchanged += len(desired)
        return
    address = addresses.cm(addresses.atlan_asset(asset.qualified_name), ctx.settings.cm_set_name)
    if not current:  # nothing there yet: write every value, nothing to own or to clash with
        _emit(ctx, asset, address, dict.fromkeys(desired), dict(desired))
        return
    before, after = _diff(ctx, asset, address, desired, current)
    if after:
        _emit(ctx, asset, address, before, after)


def _diff(ctx: Context, asset: AAsset, address: str, desired: dict[str, Any],
          current: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Attribute by attribute: (before, after) of what qatlan may change; conflicts recorded."""
    current = {a: v for a, v in ((a, normalize_cm(CM_KIND[a], v)) for a, v in current.items())
               if v is not None}
    owned = ctx.owned.get(address) or {}
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for attr, kind in CM_ATTRIBUTES:
        want, have = desired.get(attr), current.get(attr)
        if want == have:
            ctx.unchanged += want is not None
            continue
        mine = attr in owned and normalize_cm(kind, owned[attr]) == have
        if have is not None and not mine:
            if want is not None:
                ctx.conflict(f"{address}.{attr}", "cm_not_owned",
                             f"{ctx.settings.cm_set_name}.{attr} on {asset.qualified_name} holds "
                             f"{have!r}, which qatlan did not write; left as it is")
            continue
        before[attr], after[attr] = have, want
    return before, after


def _emit(ctx: Context, asset: AAsset, address: str, before: dict, after: dict) -> None:
    extra: dict[str, Any] = {}
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
    if all(v is None for v in before.values()):
        ctx.add(address, Action.CREATE, None, after, target)
    elif all(v is None for v in after.values()):
        ctx.add(address, Action.DELETE, before, None, target, "the Qualytics value is gone")
    else:
        ctx.add(address, Action.UPDATE, before, after, target)


def _hashes(ctx: Context, attrs: tuple[str, ...]) -> dict[str, str | None]:
    """{attribute: hashed name}, one shared (read-only) dict per attribute list: most
    assets change the same attributes, and a 200,000-column plan should stay small."""
    found = ctx.hash_maps.get(attrs)
    if found is None:
        found = ctx.hash_maps[attrs] = {a: ctx.cm_attr_hash.get(a) for a in attrs}
    return found
