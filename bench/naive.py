"""The naive baseline: the sync a user would script with httpx, for comparison with qatlan.

    .venv/bin/python bench/naive.py --ready sandbox-ready.json [--sample N] [--out naive.json]

One read and one write per asset, no batching, no change detection, one request at a time:

1. list the containers of the mapped datastores (`GET /api/containers`, pages of 100);
2. for each table container: `GET /api/containers/{id}` and `GET /api/containers/{id}/fields`;
3. look the Atlan table up by qualifiedName (`GET /api/meta/entity/uniqueAttribute/type/Table`,
   then View and MaterialisedView when not found) and `POST` its custom metadata
   (`/api/meta/entity/guid/{guid}/businessmetadata/{set}`);
4. the same for each field and its Atlan column.

It writes only the quality facts (scores, counts, URL, last scan): no tags, no Links, no
announcements, no pull. It matches names exactly. So it does less than qatlan does, which
favours it in the comparison. The lookup uses Atlan's GET by unique attribute, the simplest
call for one asset by name.

`--sample N` syncs only every k-th table container (about N of them) and reports the measured
counts and times; the harness extrapolates them linearly and says so.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from harness import emit_json  # bench/ is on sys.path: this runs as a script

SET_NAME = "Qualytics"
DIMENSIONS = {"Completeness": "completeness", "Coverage": "coverage", "Conformity": "conformity",
              "Consistency": "consistency", "Precision": "precision", "Timeliness": "timeliness",
              "Volume": "volumetrics", "Accuracy": "accuracy"}
ATTRIBUTES = [("Quality Score", "float"), *[(d, "float") for d in DIMENSIONS], ("Active Checks", "int"),
              ("Active Anomalies", "int"), ("Qualytics URL", "string"), ("Last Scanned", "date")]
TABLE_TYPES = ("Table", "View", "MaterialisedView")


class Naive:
    def __init__(self, ready: dict[str, Any]):
        tokens = ready["tokens"]
        self.q = httpx.Client(base_url=ready["qualytics_url"], timeout=60,
                              headers={"Authorization": f"Bearer {next(iter(tokens['qualytics'].values()))}"})
        self.a = httpx.Client(base_url=ready["atlan_url"], timeout=60,
                              headers={"Authorization": f"Bearer {tokens['atlan']['qualytics-sync']}"})
        self.mapping = {m["datastore_id"]: m for m in ready["meta"]["mapping"] if m.get("visible_to_sync", True)}
        self.ui = ready["qualytics_url"]
        self.counts = {"containers": 0, "tables_written": 0, "columns_written": 0, "not_found": 0}

    def cm_set(self) -> tuple[str, dict[str, str]]:
        """The set's hashed name and {display name: hashed name}; created when missing."""
        defs = self.a.get("/api/meta/types/typedefs", params={"type": "BUSINESS_METADATA"}).json()
        for d in defs.get("businessMetadataDefs", []):
            if d["displayName"] == SET_NAME:
                return d["name"], {a["displayName"]: a["name"] for a in d["attributeDefs"]}
        body = {"businessMetadataDefs": [{
            "category": "BUSINESS_METADATA", "name": SET_NAME, "displayName": SET_NAME,
            "attributeDefs": [{"name": "", "displayName": n, "typeName": t, "isNew": True,
                               "cardinality": "SINGLE", "options": {"primitiveType": t}} for n, t in ATTRIBUTES]}]}
        created = self.a.post("/api/meta/types/typedefs", json=body)
        created.raise_for_status()
        d = created.json()["businessMetadataDefs"][0]
        return d["name"], {a["displayName"]: a["name"] for a in d["attributeDefs"]}

    def containers(self) -> list[dict[str, Any]]:
        out, page = [], 1
        while True:
            params = {"datastore": list(self.mapping), "page": page, "size": 100}
            body = self.q.get("/api/containers", params=params).json()
            out += body["items"]
            if page >= body["pages"]:
                return out
            page += 1

    def lookup(self, types: tuple[str, ...], qn: str) -> str | None:
        for type_name in types:
            r = self.a.get(f"/api/meta/entity/uniqueAttribute/type/{type_name}",
                           params={"attr:qualifiedName": qn, "ignoreRelationships": True})
            if r.status_code == 200:
                return r.json()["entity"]["guid"]
        return None

    def write(self, guid: str, set_hash: str, values: dict[str, Any]) -> None:
        r = self.a.post(f"/api/meta/entity/guid/{guid}/businessmetadata/{set_hash}", json=values)
        r.raise_for_status()

    def sync_container(self, c: dict[str, Any], set_hash: str, attrs: dict[str, str]) -> None:
        self.counts["containers"] += 1
        container = self.q.get(f"/api/containers/{c['id']}").json()
        fields = self.q.get(f"/api/containers/{c['id']}/fields").json()
        m = self.mapping[container["datastore"]["id"] if "datastore" in container else c["datastore_id"]]
        table_qn = f"{m['connection_qualified_name']}/{m['database']}/{m['schema']}/{container['name']}"
        guid = self.lookup(TABLE_TYPES, table_qn)
        if guid is None:
            self.counts["not_found"] += 1
            return
        metrics = container.get("metrics") or {}
        url = f"{self.ui}/datastores/{m['datastore_id']}/tables/{container['id']}"
        self.write(guid, set_hash, _values(attrs, metrics.get("quality_score"), metrics, url))
        self.counts["tables_written"] += 1
        for f in fields:
            col = self.lookup(("Column",), f"{table_qn}/{f['name']}")
            if col is None:
                self.counts["not_found"] += 1
                continue
            self.write(col, set_hash, _values(attrs, f.get("quality_score"), {}, f"{url}/fields/{f['id']}"))
            self.counts["columns_written"] += 1


def _values(attrs: dict[str, str], score: dict | None, metrics: dict, url: str) -> dict[str, Any]:
    score = score or {}
    out: dict[str, Any] = {attrs["Quality Score"]: score.get("total"), attrs["Qualytics URL"]: url}
    for name, key in DIMENSIONS.items():
        out[attrs[name]] = score.get(key)
    if metrics:
        out[attrs["Active Checks"]] = metrics.get("active_checks")
        out[attrs["Active Anomalies"]] = metrics.get("active_anomalies")
        scanned = metrics.get("last_scanned")
        if scanned:
            out[attrs["Last Scanned"]] = int(datetime.fromisoformat(scanned).timestamp() * 1000)
    return {k: v for k, v in out.items() if v is not None}


def run(ready: dict[str, Any], sample: int | None) -> dict[str, Any]:
    naive = Naive(ready)
    started = time.monotonic()
    set_hash, attrs = naive.cm_set()
    listed = naive.containers()
    tables = [c for c in listed if c.get("container_type") == "table"]
    step = max(1, len(tables) // sample) if sample else 1
    chosen = tables[::step][:sample] if sample else tables
    list_seconds = time.monotonic() - started
    for c in chosen:
        naive.sync_container(c, set_hash, attrs)
    return {"tables_total": len(tables), "tables_synced": len(chosen), "sampled": bool(sample),
            "containers_listed": len(listed), "setup_seconds": round(list_seconds, 3),
            "wall_s": round(time.monotonic() - started, 3), **naive.counts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ready", type=Path, required=True, help="bench/serve.py's ready file")
    parser.add_argument("--sample", type=int, default=None, help="sync about N table containers only")
    parser.add_argument("--out", type=Path, default=None, help="write the result JSON here")
    args = parser.parse_args(argv)
    emit_json(run(json.loads(args.ready.read_text()), args.sample), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
