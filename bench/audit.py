"""Audit at scale: state size and `qatlan log` time after drift cycles (issue 14).

    .venv/bin/python bench/audit.py [--spec tables=10000,seed=1] [--cycles 10] [--out bench/audit]

Against the sandbox over HTTP: a first sync (`qatlan apply --auto-approve`), then `--cycles`
drift cycles, each changing 1% of the table containers' scores and 1% of the Atlan tables'
announcements (new values every cycle) and applying again. Then it measures, each as its own
process (wall, CPU, peak RSS): `plan --no-refresh` twice (the second reuses the first: issue 13), `qatlan log` on the table
with the most changes (best of 3),
`qatlan log --json`, `qatlan state diff`, `qatlan state show --at 1`, and last `qatlan state
prune --keep-snapshots 2` (file size before and after). Writes `<out>/audit.json` and the
"Audit at M" section of docs/performance.md (between its markers).
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness import QATLAN, ROOT, SandboxProc, machine, run_child, write_config
from measure import child_record

DOC = ROOT / "docs" / "performance.md"
START, END = "<!-- audit:start -->", "<!-- audit:end -->"
SHARE = 0.01
DIMENSIONS = ("total", "completeness", "coverage", "conformity", "consistency", "precision",
              "timeliness", "volumetrics", "accuracy")


def _size_mb(db: Path) -> float:
    return round(sum(p.stat().st_size for p in db.parent.glob(db.name + "*")) / 1024 / 1024, 1)


def _latest(con: sqlite3.Connection, kind: str) -> dict[str, dict[str, Any]]:
    rows = con.execute("SELECT key, data FROM records WHERE kind = ? AND valid_to IS NULL", [kind])
    return {key: json.loads(data) for key, data in rows}


def drift(db: Path, cycle: int) -> list[dict[str, Any]]:
    """1% of table containers get new scores, 1% of Atlan tables a new announcement."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        assets, containers = _latest(con, "a.asset"), _latest(con, "q.container")
    tables = sorted(k for k, a in assets.items() if a.get("type_name") == "Table")
    tables_q = sorted((k for k, c in containers.items() if c.get("container_type") == "table"), key=int)
    step_a, step_q = max(1, round(1 / SHARE)), max(1, round(1 / SHARE))
    picked_a = tables[cycle % step_a::step_a][: math.ceil(len(tables) * SHARE)]
    picked_q = tables_q[cycle % step_q::step_q][: math.ceil(len(tables_q) * SHARE)]
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    changes: list[dict[str, Any]] = [
        {"side": "atlan", "op": "update", "guid": g, "set": {"attributes": {
            "announcementType": "information", "announcementTitle": f"Edited in cycle {cycle}",
            "announcementMessage": "changed by bench/audit.py"}}} for g in picked_a]
    for i, key in enumerate(picked_q):
        score = {d: float(20 + (i + j + 7 * cycle) % 70) for j, d in enumerate(DIMENSIONS)}
        changes.append({"side": "qualytics", "kind": "containers", "op": "update", "id": int(key),
                        "set": {"quality_score": score, "last_scanned": now}})
    return changes


def busiest_table(db: Path) -> str:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        row = con.execute(
            "SELECT asset, count(*) FROM asset_changes WHERE asset LIKE 'atlan:%' AND part LIKE 'cm:%' "
            "GROUP BY asset ORDER BY count(*) DESC, asset LIMIT 1").fetchone()
    return row[0].split(":", 1)[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default="tables=10000,seed=1")
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "audit")
    parser.add_argument("--no-report", action="store_true", help="do not update docs/performance.md")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="qatlan-bench-audit-"))
    config, db = work / "qatlan.toml", work / "state" / "qatlan.db"
    result: dict[str, Any] = {"spec": args.spec, "cycles": args.cycles, "machine": machine(), "steps": {}}
    started = time.monotonic()

    def qatlan(name: str, *words: str, env: dict[str, str]) -> dict[str, Any]:
        run = run_child([*QATLAN, *words, "-c", str(config)], env=env, cwd=work, log=work / name)
        record = child_record(run)
        print(f"  {name:<24} {record['wall_s']:8.1f} s wall {record['cpu_s']:7.1f} s CPU "
              f"{record['peak_rss_mb']:7.0f} MB  rc={record['returncode']}", flush=True)
        if record["returncode"] not in (0, 2):
            raise SystemExit(f"{name} failed: {record['stderr_tail']}")
        return record

    with SandboxProc(args.spec, work) as sandbox:
        env = write_config(config, sandbox.ready)
        sandbox.set_atlan_limit(0)
        result["steps"]["first_sync"] = qatlan("first_sync", "apply", "--auto-approve", env=env)
        cycles = []
        for cycle in range(1, args.cycles + 1):
            sandbox.apply_changes(drift(db, cycle))
            cycles.append(qatlan(f"cycle_{cycle}", "apply", "--auto-approve", env=env))
        result["steps"]["cycles_wall_s"] = round(sum(c["wall_s"] for c in cycles), 1)
    result["state_mb"] = _size_mb(db)
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        result["rows"] = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                          for t in ("snapshots", "records", "plans", "plan_changes", "journal", "runs")}
    # issue 13: a plan with nothing changed since the last one reuses it (in sync here)
    result["steps"]["plan_noop"] = qatlan("plan_noop", "plan", "--no-refresh", "--out",
                                          str(work / "noop.json"), env=env)
    result["steps"]["plan_noop_again"] = qatlan("plan_noop_again", "plan", "--no-refresh", "--out",
                                                str(work / "noop-again.json"), env=env)
    table = busiest_table(db)
    result["asset"] = table
    logs = [qatlan(f"log_{i}", "log", table, env=env) for i in range(3)]
    result["steps"]["log"] = min(logs, key=lambda r: r["wall_s"])
    result["steps"]["log_json"] = qatlan("log_json", "log", table, "--json", env=env)
    result["log_events"] = len(json.loads((work / "log_json.out").read_text())["events"])
    result["steps"]["state_diff"] = qatlan("state_diff", "state", "diff", env=env)
    result["steps"]["state_show_at"] = qatlan("state_show_at", "state", "show", table, "--at", "1", env=env)
    result["steps"]["prune"] = qatlan("prune", "state", "prune", "--keep-snapshots", "2", env=env)
    result["state_mb_after_prune"] = _size_mb(db)
    result["wall_s"] = round(time.monotonic() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "audit.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    if not args.no_report:
        update_docs(result)
    print(f"-> {args.out / 'audit.json'}")
    return 0


def render(r: dict[str, Any]) -> str:
    s = r["steps"]
    rows = [("first sync (`apply --auto-approve`)", s["first_sync"]),
            (f"`qatlan log` on the busiest table ({r['log_events']} events; best of 3)", s["log"]),
            ("`qatlan log --json`", s["log_json"]), ("`qatlan state diff` (last two snapshots)", s["state_diff"]),
            ("`qatlan state show TABLE --at 1`", s["state_show_at"]),
            ("`qatlan state prune --keep-snapshots 2`", s["prune"])]
    if "plan_noop" in s:
        rows[1:1] = [("`plan --no-refresh` in sync (walks the snapshot)", s["plan_noop"]),
                     ("the same plan again, nothing changed (reuses the stored plan)", s["plan_noop_again"])]
    lines = [f"World `{r['spec']}`, {r['cycles']} drift cycles (1% of table scores and of Atlan "
             f"table announcements each, applied each time; {s['cycles_wall_s']} s in all). "
             f"Machine: {r['machine'].get('nproc')} CPUs, shared.", "",
             "| step | wall s | CPU s | peak RSS MB |", "|---|---|---|---|"]
    lines += [f"| {name} | {x['wall_s']:.2f} | {x['cpu_s']:.2f} | {x['peak_rss_mb']:.0f} |" for name, x in rows]
    met = s["log"]["wall_s"] < 1.0
    lines += ["", f"- `qatlan log` on one asset under 1 s: **{'yes' if met else 'MISS'}** "
              f"({s['log']['wall_s']:.2f} s wall, {s['log']['cpu_s']:.2f} s CPU).",
              f"- State after the cycles: {r['state_mb']} MB ({', '.join(f'{k} {v:,}' for k, v in r['rows'].items())}); "
              f"after `state prune --keep-snapshots 2`: {r['state_mb_after_prune']} MB."]
    return "\n".join(lines)


def update_docs(r: dict[str, Any], doc: Path = DOC) -> None:
    text = doc.read_text(encoding="utf-8")
    if START not in text:
        text = text.rstrip("\n") + f"\n\n## Audit at M\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{START}\n{render(r)}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
