"""Plan addresses: the one place that builds and parses them.

    atlan:<qualifiedName>#<part>                       a value on an Atlan asset
    qualytics:<datastore>[/<container>[/<field>]]#<part>  a tag on a Qualytics asset
    atlan:typedef#tag:<Name>   atlan:typedef#cm:<Set>     Atlan definitions

with part `tag:<name>`, `cm:<Set>`, `announcement` or `link`. An address without its part is
an *asset* (`atlan:<qualifiedName>`, `qualytics:<datastore>/<container>`). Names keep the
source's spelling; a custom metadata conflict names one attribute as `<address>.<attribute>`.
Pure string functions, no other import.
"""

from __future__ import annotations

__all__ = [
    "TYPEDEF_PREFIX",
    "announcement",
    "atlan_asset",
    "cm",
    "is_typedef",
    "link",
    "parse",
    "qualytics_asset",
    "side",
    "tag",
    "typedef_cm",
    "typedef_tag",
]

#: what every definition address starts with
TYPEDEF_PREFIX = "atlan:typedef#"
_PART_MARKERS = ("#tag:", "#cm:")
_PART_WORDS = ("#announcement", "#link")


# --------------------------------------------------------------------------- building


def atlan_asset(qualified_name: str) -> str:
    """`atlan:<qualifiedName>`."""
    return f"atlan:{qualified_name}"


def qualytics_asset(datastore: str, container: str | None = None, field: str | None = None) -> str:
    """`qualytics:<datastore>[/<container>[/<field>]]` (names as Qualytics spells them)."""
    path = datastore if container is None else f"{datastore}/{container}"
    return f"qualytics:{path}" if field is None else f"qualytics:{path}/{field}"


def tag(asset: str, name: str) -> str:
    return f"{asset}#tag:{name}"


def cm(asset: str, set_name: str) -> str:
    return f"{asset}#cm:{set_name}"


def announcement(asset: str) -> str:
    return f"{asset}#announcement"


def link(asset: str) -> str:
    return f"{asset}#link"


def typedef_tag(name: str) -> str:
    return f"{TYPEDEF_PREFIX}tag:{name}"


def typedef_cm(set_name: str) -> str:
    return f"{TYPEDEF_PREFIX}cm:{set_name}"


# --------------------------------------------------------------------------- parsing


def is_typedef(address: str) -> bool:
    return address.startswith(TYPEDEF_PREFIX)


def side(address: str) -> str:
    """`atlan` or `qualytics`."""
    return address.partition(":")[0]


def parse(address: str) -> tuple[str, str]:
    """Split an address into (asset, part): `atlan:Q#tag:PII` → (`atlan:Q`, `tag:PII`).

    The part starts at the first `#tag:` / `#cm:`, or is a trailing `#announcement` /
    `#link`, so qualifiedNames that contain `#` still parse. Most addresses hold one `#`,
    which is the fast path.
    """
    if address.count("#") == 1:
        asset, _, part = address.partition("#")
        if part.startswith(("tag:", "cm:")) or part in ("announcement", "link"):
            return asset, part
        return address, ""
    best = -1
    for marker in _PART_MARKERS:
        i = address.find(marker)
        if i >= 0 and (best < 0 or i < best):
            best = i
    for word in _PART_WORDS:
        if address.endswith(word):
            i = len(address) - len(word)
            if best < 0 or i < best:
                best = i
    if best < 0:
        return address, ""
    return address[:best], address[best + 1:]
