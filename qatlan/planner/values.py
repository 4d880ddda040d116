"""What qatlan wants on an Atlan asset: custom metadata values, URLs, the announcement."""

from __future__ import annotations

import re
from typing import Any

from qatlan.model import SCORE_ATTRIBUTES, QContainer, QDatastore, QField, QualityScore
from qatlan.normalize import epoch_ms, normalize_cm, round_float

# UNCONFIRMED: the Qualytics UI URL forms (qualytics-api.md §6.6); see docs/conflict-rules.md.


def datastore_url(ui: str, ds: QDatastore) -> str | None:
    return f"{ui.rstrip('/')}/datastores/{ds.id}" if ui else None


def container_url(ui: str, c: QContainer) -> str | None:
    return f"{ui.rstrip('/')}/datastores/{c.datastore_id}/containers/{c.id}/overview" if ui else None


def field_url(ui: str, c: QContainer, f: QField) -> str | None:
    if not ui:
        return None
    return f"{ui.rstrip('/')}/datastores/{c.datastore_id}/containers/{c.id}/fields/{f.id}"


def anomalies_url(ui: str, c: QContainer) -> str | None:
    return f"{ui.rstrip('/')}/datastores/{c.datastore_id}/containers/{c.id}/anomalies" if ui else None


def desired_cm(score: QualityScore | None, checks: int | None, anomalies: int | None,
               url: str | None, last_scanned: str | None = None) -> dict[str, Any]:
    """{attribute: normalised value} for every attribute that has a value (None is not written).

    Hot path (once per column): written out rather than looped through `normalize_cm`.
    """
    out: dict[str, Any] = {}
    if score is not None:
        for attr, key in SCORE_ATTRIBUTES:
            value = getattr(score, key)
            if value is not None:
                value = round_float(float(value))
                if value is not None:
                    out[attr] = value
    for attr, value in (("Active Checks", checks), ("Active Anomalies", anomalies)):
        if value is not None:
            value = normalize_cm("int", value)
            if value is not None:
                out[attr] = value
    if url is not None:
        out["Qualytics URL"] = url
    if last_scanned is not None:
        scanned = epoch_ms(last_scanned)
        if scanned is not None:
            out["Last Scanned"] = scanned
    return out


#: the title of the announcement qatlan raises (`desired_announcement`): its mark
_TITLE = re.compile(r"Qualytics: [\d,]+ active anomal(y|ies)")


def is_qatlan_announcement(value: dict[str, Any] | None) -> bool:
    """Whether an announcement is in the form qatlan raises (a warning titled
    "Qualytics: N active anomalies"), whoever the state says raised it."""
    return (value is not None and value.get("type") == "warning"
            and _TITLE.fullmatch(str(value.get("title") or "")) is not None)


def is_qualytics_url(ui: str, url: str | None) -> bool:
    """Whether `url` points into the configured Qualytics UI (the mark of qatlan's Link)."""
    return bool(ui and url and url.startswith(ui.rstrip("/") + "/"))


def desired_announcement(c: QContainer, ui: str) -> dict[str, Any] | None:
    """The warning qatlan raises while a container has active anomalies (None: none wanted)."""
    n = c.active_anomalies or 0
    if n <= 0:
        return None
    noun = "anomaly" if n == 1 else "anomalies"
    message = f"Qualytics reports {n} active {noun} on {c.name}."
    url = anomalies_url(ui, c)
    if url:
        message += f" Review them in Qualytics: {url}"
    return {"type": "warning", "title": f"Qualytics: {n} active {noun}", "message": message}
