"""What a plan run does: `PlanSettings`, built from qatlan.toml and the run's options."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["PlanSettings"]


@dataclass(frozen=True)
class PlanSettings:
    """What a run does. Every field has a default that suits a first run."""

    pull: bool = True  # Atlan tags → Qualytics external tags (--push-only turns it off)
    push: bool = True  # scores, tags, Link, announcement → Atlan (--pull-only turns it off)
    push_tags: bool = True
    announcements: bool = True  # part of push
    overwrite_tags: bool = False
    domains: tuple[str, ...] = ()  # Atlan domain names or GUIDs; empty = no filter
    cm_set_name: str = "Qualytics"
    link_name: str = "Qualytics"
    qualytics_ui_url: str = ""  # e.g. https://acme.qualytics.io
    integration_id: int | None = None
    max_removal_share: float = 0.2
    create_definitions: bool = True  # plan missing definitions (else their values wait)
    cm_edits: str = "restore"  # restore | keep: values in qatlan's set not written by this state
    allow_mass_removal: bool = False
    targets: tuple[str, ...] = ()  # fnmatch patterns on addresses or asset names
    excludes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}
