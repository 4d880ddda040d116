"""The configured Atlan data domains: names or GUIDs to GUIDs, and whether an asset is in them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from qatlan.errors import ConfigError
from qatlan.model import AAsset, ADomain
from qatlan.normalize import fold

__all__ = ["in_scope", "resolve_domains"]


def in_scope(asset: AAsset | None, domain_guids: frozenset[str] | None) -> bool:
    """Whether an asset is inside the configured domains (None: no domain filter)."""
    if domain_guids is None:
        return True
    return asset is not None and not domain_guids.isdisjoint(asset.domain_guids)


def resolve_domains(domains: Mapping[str, ADomain], names_or_guids: Iterable[str],
                    assets: Mapping[str, AAsset] | None = None, *,
                    used: Iterable[str] | None = None) -> frozenset[str]:
    """The GUIDs of the named domains (names or GUIDs) and all their subdomains.

    Raises ConfigError for an unknown name, a name several domains share (asking for the
    GUID), and, when `assets` (or `used`: the domain GUIDs of the ACTIVE assets) is given,
    a domain (with its subdomains) that holds no ACTIVE asset: a silent empty sync would
    look like success.
    """
    if used is not None:
        used = set(used)
    elif assets is not None:
        used = {g for a in assets.values() if a.status == "ACTIVE" for g in a.domain_guids}
    selected: set[str] = set()
    for ref in names_or_guids:
        root = _find_domain(domains, ref)
        tree = _subtree(domains, root)
        if used is not None and used.isdisjoint(tree):
            raise ConfigError(
                f"Atlan domain {ref!r} (with its subdomains) holds no asset the token can see",
                hint="check the domain in qatlan.toml, and that the Atlan persona can read its assets",
            )
        selected |= tree
    return frozenset(selected)


def _find_domain(domains: Mapping[str, ADomain], ref: str) -> ADomain:
    if ref in domains:
        return domains[ref]
    found = [d for d in domains.values() if d.name == ref]
    if not found:
        found = [d for d in domains.values() if fold(d.name) == fold(ref)]
    if not found:
        raise ConfigError(f"Atlan domain {ref!r} not found",
                          hint="use the domain's exact name or its GUID in qatlan.toml")
    if len(found) > 1:
        guids = ", ".join(sorted(d.guid for d in found))
        raise ConfigError(f"several Atlan domains are named {ref!r}",
                          hint=f"name the one you mean by its GUID: {guids}")
    return found[0]


def _subtree(domains: Mapping[str, ADomain], root: ADomain) -> set[str]:
    """The root and every domain below it (by parent link or by qualifiedName prefix)."""
    children: dict[str, list[ADomain]] = defaultdict(list)
    for d in domains.values():
        if d.parent_qn:
            children[d.parent_qn].append(d)
    prefix = root.qualified_name + "/"
    tree = {root.guid} | {d.guid for d in domains.values() if d.qualified_name.startswith(prefix)}
    todo = [root]
    while todo:
        for child in children.get(todo.pop().qualified_name, ()):
            if child.guid not in tree:
                tree.add(child.guid)
                todo.append(child)
    return tree
