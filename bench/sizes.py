"""One size: the sandbox in its own process and qatlan's steps against it, each measured.

Steps: full refresh; 1% of the assets change on both sides; incremental refresh; plan
(`--no-refresh --out`); planning time in-process on the same snapshot (bench/plan_time.py); first apply;
refresh; no-op plan; no-op apply; then the naive baseline on the same world.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import minimums
from harness import BENCH, PYTHON, QATLAN, SandboxProc, proc_rss_mb, run_child, write_config
from measure import child_record, measured_step, with_minimum

SIZES = {
    "S": "tables=1000,seed=1",
    "M": "tables=10000,seed=1",
    "L": "tables=100000,seed=1",
}
#: table containers the naive baseline syncs per size (None = all); the rest is extrapolated
NAIVE_SAMPLE = {"S": None, "M": 500, "L": 500}
CHANGE_SHARE = 0.01


def qatlan_has(*words: str) -> bool:
    """Whether this qatlan's CLI has the command (e.g. `qatlan has("apply")`)."""
    out = subprocess.run([*QATLAN, *words, "--help"], capture_output=True, text=True)
    return out.returncode == 0


def plan_flags() -> list[str]:
    out = subprocess.run([*QATLAN, "plan", "--help"], capture_output=True, text=True).stdout
    return ["--create-definitions"] if "--create-definitions" in out else []


# --------------------------------------------------------------------------- drift


def drift_changes(db: Path, share: float = CHANGE_SHARE) -> tuple[list[dict], dict[str, int]]:
    """Changes to `share` of the Atlan tables (an announcement) and of the table containers
    (a new score and scan time), picked evenly by key from the latest snapshot."""
    con_snapshot = minimums.latest_snapshot(db)
    with minimums._connect(db) as con:
        assets = minimums._records(con, "a.asset", con_snapshot)
        containers = minimums._records(con, "q.container", con_snapshot)
    tables = sorted(k for k, a in assets.items() if a.get("type_name") == "Table")
    tables_q = sorted((k for k, c in containers.items() if c.get("container_type") == "table"), key=int)
    picked_a = tables[:: max(1, round(1 / share))][: math.ceil(len(tables) * share)]
    picked_q = tables_q[:: max(1, round(1 / share))][: math.ceil(len(tables_q) * share)]
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    changes: list[dict] = [
        {"side": "atlan", "op": "update", "guid": g, "set": {"attributes": {
            "announcementType": "information", "announcementTitle": "Edited",
            "announcementMessage": "changed by bench/run.py"}}} for g in picked_a]
    for i, key in enumerate(picked_q):
        score = {d: float(40 + (i + j) % 50) for j, d in enumerate(
            ("total", "completeness", "coverage", "conformity", "consistency", "precision",
             "timeliness", "volumetrics", "accuracy"))}
        changes.append({"side": "qualytics", "kind": "containers", "op": "update", "id": int(key),
                        "set": {"quality_score": score, "last_scanned": now}})
    return changes, {"atlan_tables": len(picked_a), "qualytics_containers": len(picked_q),
                     "of_atlan_tables": len(tables), "of_table_containers": len(tables_q)}


# --------------------------------------------------------------------------- the run


class SizeRun:
    def __init__(self, size: str, spec: str, workdir: Path, log=print):
        self.size, self.spec, self.workdir, self.log = size, spec, workdir, log
        self.config = workdir / "qatlan.toml"
        self.db = workdir / "state" / "qatlan.db"
        self.steps: list[dict[str, Any]] = []
        self.env: dict[str, str] = {}
        self.plan_time: dict[str, Any] | None = None

    def step(self, sandbox: SandboxProc, name: str, *args: str, minimum=None) -> dict[str, Any]:
        argv = [*QATLAN, *args, "-c", str(self.config)]
        shown = "qatlan " + " ".join(a if not a.startswith("/") else Path(a).name for a in args)
        record = measured_step(sandbox, name, argv, env=self.env, logdir=self.workdir, shown=shown)
        if callable(minimum):
            minimum = minimum()
        self.steps.append(with_minimum(record, minimum))
        req = record["requests"]
        self.log(f"  {name:<22} {record['wall_s']:8.1f} s  {req['total']:>7} requests "
                 f"({req['reads']} reads, {req['writes']} writes)  rc={record['returncode']}")
        return record

    def run(self, naive: bool = True, apply: bool = True) -> dict[str, Any]:
        started = time.monotonic()
        with SandboxProc(self.spec, self.workdir) as sandbox:
            self.env = write_config(self.config, sandbox.ready)
            sandbox.set_atlan_limit(0)
            self.log(f"{self.size}: sandbox up in {time.monotonic() - started:.1f} s "
                     f"({self.spec}; RSS {proc_rss_mb(sandbox.pid):.0f} MB)")
            drift = self._qatlan_steps(sandbox, apply)
            baseline = self._naive(sandbox) if naive else None
            sandbox_rss = proc_rss_mb(sandbox.pid)
            info = {"build_seconds": sandbox.ready["build_seconds"], "rss_mb_at_end": round(sandbox_rss, 1)}
        return {"size": self.size, "spec": self.spec, "summary": sandbox.ready["meta"].get("summary"),
                "sandbox": info, "drift": drift, "steps": self.steps, "plan_time": self.plan_time,
                "naive": baseline, "wall_s": round(time.monotonic() - started, 1)}

    def _qatlan_steps(self, sandbox: SandboxProc, apply: bool = True) -> dict[str, Any]:
        full = self.step(sandbox, "refresh_full", "refresh", "--full",
                         minimum=lambda: minimums.refresh_minimum(self.db, minimums.latest_snapshot(self.db)))
        changes, drift = drift_changes(self.db)
        sandbox.apply_changes(changes)
        self._incremental(sandbox, "refresh_incremental")
        if not qatlan_has("plan"):
            self.log("  (qatlan plan is not available: the plan and apply steps are skipped)")
            return {**drift, "full_refresh_requests": full["requests"]["total"]}
        flags = plan_flags()
        plan1, plan2 = self.workdir / "plan.json", self.workdir / "plan-noop.json"
        self.step(sandbox, "plan", "plan", "--no-refresh", *flags, "--out", str(plan1),
                  minimum={"reads": 0, "writes": 0, "atlan": 0, "qualytics": 0})
        self._plan_summary(plan1)
        # the same plan again, nothing changed in between: the stored plan is reused
        self.step(sandbox, "plan_again", "plan", "--no-refresh", *flags, "--out",
                  str(self.workdir / "plan-again.json"),
                  minimum={"reads": 0, "writes": 0, "atlan": 0, "qualytics": 0})
        self.plan_time = self._plan_time()  # on the snapshot the first plan was made from
        if not apply:
            self.log("  (--no-apply: the apply steps are skipped)")
        elif qatlan_has("apply") and plan1.exists():
            self.step(sandbox, "apply", "apply", str(plan1), minimum=lambda: self._apply_min(plan1))
            self._incremental(sandbox, "refresh_after_apply")
            self.step(sandbox, "plan_noop", "plan", "--no-refresh", *flags, "--out", str(plan2),
                      minimum={"reads": 0, "writes": 0, "atlan": 0, "qualytics": 0})
            self._plan_summary(plan2)
            if plan2.exists():
                self.step(sandbox, "apply_noop", "apply", str(plan2), minimum=lambda: self._apply_min(plan2))
            # in sync and nothing changed since: the stored (empty) plan is reused
            self.step(sandbox, "plan_noop_again", "plan", "--no-refresh", *flags, "--out",
                      str(self.workdir / "plan-noop-again.json"),
                      minimum={"reads": 0, "writes": 0, "atlan": 0, "qualytics": 0})
        return {**drift, "full_refresh_requests": full["requests"]["total"], "plan_flags": flags}

    def _incremental(self, sandbox: SandboxProc, name: str) -> dict[str, Any]:
        prev = minimums.latest_snapshot(self.db)
        dirty = minimums.dirty_containers(self.db)
        return self.step(sandbox, name, "refresh", minimum=lambda: minimums.refresh_minimum(
            self.db, minimums.latest_snapshot(self.db), prev, dirty))

    def _plan_summary(self, path: Path) -> None:
        """Record the saved plan's summary and its changes by part in the last step."""
        if not path.exists():
            return
        plan = json.loads(path.read_text()).get("plan", {})
        parts: dict[str, int] = {}
        for change in plan.get("changes", []):
            part = change["address"].rsplit("#", 1)[-1].split(":", 1)[0]
            side = change["address"].split(":", 1)[0]
            key = f"{side} {part} {change['action']}"
            parts[key] = parts.get(key, 0) + 1
        self.steps[-1]["plan_summary"] = {**plan.get("summary", {}), "by_part": parts}

    @staticmethod
    def _apply_min(path: Path) -> dict[str, Any]:
        doc = json.loads(path.read_text())
        return minimums.apply_minimum(doc.get("plan", doc))

    def _plan_time(self) -> dict[str, Any] | None:
        out = self.workdir / "plan_time.json"
        argv = [PYTHON, str(BENCH / "plan_time.py"), "--config", str(self.config), "--out", str(out)]
        argv += ["--create-definitions"] if "--create-definitions" in plan_flags() else []
        run = run_child(argv, env=self.env, log=self.workdir / "plan_time")
        if run.returncode != 0 or not out.exists():
            self.log(f"  plan_time failed: {run.stderr.strip().splitlines()[-1:]}")
            return {"error": run.stderr.strip().splitlines()[-3:], **child_record(run)}
        result = json.loads(out.read_text())
        result["process"] = child_record(run)
        self.log(f"  {'plan_time (in-process)':<22} match+plan {result['best']['total_s']:.2f} s, "
                 f"peak RSS {result['peak_rss_mb']:.0f} MB")
        return result

    def _naive(self, sandbox: SandboxProc) -> dict[str, Any]:
        sample = NAIVE_SAMPLE.get(self.size)
        out = self.workdir / "naive.json"
        argv = [PYTHON, str(BENCH / "naive.py"), "--ready", str(self.workdir / "sandbox-ready.json"),
                "--out", str(out)] + (["--sample", str(sample)] if sample else [])
        record = measured_step(sandbox, "naive", argv, env=self.env, logdir=self.workdir,
                               shown="bench/naive.py" + (f" --sample {sample}" if sample else ""))
        record["result"] = json.loads(out.read_text()) if out.exists() else None
        record["extrapolated"] = extrapolate(record) if sample else None
        shown = record["extrapolated"] or record
        self.log(f"  {'naive' + (' (sampled)' if sample else ''):<22} {record['wall_s']:8.1f} s  "
                 f"{record['requests']['total']:>7} requests"
                 + (f" -> extrapolated {shown['requests']:.0f} requests, {shown['wall_s']:.0f} s" if sample else ""))
        return record


def extrapolate(record: dict[str, Any]) -> dict[str, Any] | None:
    """Scale a sampled naive run linearly to every table container (per-container costs)."""
    result = record.get("result")
    if not result or not result["tables_synced"]:
        return None
    factor = result["tables_total"] / result["tables_synced"]
    req = record["requests"]
    fixed = _fixed_requests(req)
    setup, wall = result["setup_seconds"], result["wall_s"]
    scaled = {k: round(fixed[k] + (req[k] - fixed[k]) * factor) for k in ("reads", "writes")}
    return {
        "factor": round(factor, 3),
        **scaled,
        "requests": scaled["reads"] + scaled["writes"],
        "wall_s": round(setup + (wall - setup) * factor, 1),
        "note": f"measured on {result['tables_synced']:,} of {result['tables_total']:,} table containers "
                f"(every {round(factor)}th), scaled linearly",
    }


def _fixed_requests(req: dict[str, Any]) -> dict[str, int]:
    """Requests made once per run (typedefs, the container list), not per container."""
    fixed = {"reads": 0, "writes": 0}
    for side in ("atlan", "qualytics"):
        for e in req[side]["endpoints"]:
            if e["path"] in ("/api/meta/types/typedefs", "/api/containers"):
                fixed["reads" if e["kind"] == "read" else "writes"] += e["count"]
    return fixed


__all__ = ["SIZES", "SizeRun", "drift_changes", "extrapolate", "plan_flags", "qatlan_has"]
