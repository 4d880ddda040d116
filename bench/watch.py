"""`qatlan watch` against an M world at Atlan's 400 requests/min (issue 15): how long a change
takes to reach the other side, and at what cost, next to a 1-minute `plan && apply` cron.

    .venv/bin/python bench/watch.py [--spec tables=10000,seed=1] [--events 50] [--out FILE]

The sandbox runs in its own process (bench/serve.py) and POSTs signed Atlan webhooks and
Qualytics Flow actions to a `qatlan watch` process over loopback HTTP. Steps:

1. the first sync, `qatlan apply --auto-approve`, with the rate limit lifted (setup only);
2. `qatlan watch` at 400 requests/min (its first full resync, then events);
3. **events**: `--events` changes one every 3 s, in turn a new quality score on a container
   (a scan: the Flow names the datastore), its anomalies resolved (the Flow names the
   container), an Atlan tag put on a column by a person (the webhook names the column);
   each is timed from the change to its effect on the other side, read through
   `/_sandbox/records` (outside the rate limit);
4. **loss**: every event lost; 9 changes land through polling (`poll_interval`, 60 s);
5. **duplicates**: every event delivered twice and reordered; 9 changes; writes counted
   after everything settled, against those when each change had landed;
6. **cron**: the watcher stopped, `--events` changes made at once, then one
   `qatlan apply --auto-approve` (a cron's tick): a change waits for the next tick (uniform
   over the minute) and then the run.

Requests are counted by the sandbox (all of qatlan's, minus the benchmark's own tag writes).
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import QATLAN, SandboxProc, emit_json, machine, proc_cpu_seconds, proc_rss_mb, run_child, write_config  # noqa: E402

ATLAN_SECRET, FLOW_SECRET = "bench-atlan-webhook-secret", "bench-qualytics-flow-secret"
ATLAN_RPM = 400
SPACING = 3.0
LAND_TIMEOUT = 180.0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spec", default="tables=10000,seed=1")
    p.add_argument("--events", type=int, default=50)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/qatlan-bench-watch"))
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "watch.json")
    return p.parse_args(argv)


def _log(msg: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class _Tag:
    def __init__(self, hashed_name: str, display_name: str):
        self.hashed_name, self.display_name = hashed_name, display_name


def _summary(latencies: list[float]) -> dict[str, float]:
    if not latencies:
        return {}
    return {"n": len(latencies), "p50_s": round(_pct(latencies, 0.5), 2),
            "p95_s": round(_pct(latencies, 0.95), 2), "max_s": round(max(latencies), 2),
            "mean_s": round(statistics.mean(latencies), 2)}


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.work = args.workdir
        self.work.mkdir(parents=True, exist_ok=True)
        for old in self.work.glob("state*"):
            if old.is_dir():
                for f in old.iterdir():
                    f.unlink()
        self.sb = SandboxProc(args.spec, self.work)
        self.port = _free_port()
        self.watch: subprocess.Popen | None = None
        self.result: dict[str, Any] = {"spec": args.spec, "events": args.events, "atlan_rpm": ATLAN_RPM,
                                       "machine": machine()}
        self.tag_writes = 0
        self.turn = 0

    # ---- set-up
    def config(self, rpm: int, **watch: Any) -> None:
        self.env = write_config(self.work / "qatlan.toml", self.sb.ready, atlan_rpm=rpm)
        settings = {"listen": f"127.0.0.1:{self.port}", "poll_interval": "60s", "debounce": 2, **watch}
        with (self.work / "qatlan.toml").open("a", encoding="utf-8") as f:
            f.write("\n[watch]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items()))
        self.env.update({"QATLAN_ATLAN_WEBHOOK_SECRET": ATLAN_SECRET, "QATLAN_QUALYTICS_FLOW_SECRET": FLOW_SECRET})

    def qatlan(self, *args: str, timeout: float = 7200) -> Any:
        return run_child([*QATLAN, *args], env=self.env, cwd=self.work, timeout=timeout,
                         log=self.work / f"{args[0]}-{int(time.time())}")

    def start_watch(self) -> None:
        log = open(self.work / "watch.log", "a")  # noqa: SIM115
        self.watch = subprocess.Popen([*QATLAN, "watch", "--log-format", "json"], env=self.env,
                                      cwd=self.work, stdout=log, stderr=log)
        self.cpu0 = 0.0
        deadline = time.monotonic() + 3600
        while self.health().get("reconciles", 0) < 1:
            if self.watch.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"qatlan watch did not start; see {self.work / 'watch.log'}")
            time.sleep(1)

    def stop_watch(self) -> dict[str, float]:
        assert self.watch is not None
        cpu, rss = proc_cpu_seconds(self.watch.pid), proc_rss_mb(self.watch.pid)
        self.watch.send_signal(signal.SIGTERM)
        code = self.watch.wait(300)
        self.watch = None
        return {"cpu_s": round(cpu, 1), "rss_mb_at_end": round(rss, 1), "exit": code}

    def health(self) -> dict[str, Any]:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return {}

    def deliver(self, **faults: Any) -> None:
        url = f"http://127.0.0.1:{self.port}"
        self.sb.call("atlan", "PUT", "webhooks", {"url": url + "/webhooks/atlan", "secret": ATLAN_SECRET, **faults})
        self.sb.call("qualytics", "PUT", "flows", {"url": url + "/webhooks/qualytics", "secret": FLOW_SECRET, **faults})

    def idle(self, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = sum(self.sb.call(side, "GET", path)["stats"]["pending"]
                          for side, path in (("atlan", "webhooks"), ("qualytics", "flows")))
            if pending == 0 and self.health().get("queued") == 0:
                return
            time.sleep(0.5)
        raise RuntimeError("the watcher did not go idle")

    # ---- what to change
    def pick(self) -> None:
        """Matched pairs from the state (read-only), the CM set's hashes, and the containers
        with active anomalies."""
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from qatlan.config import load_config
        from qatlan.match import match
        from qatlan.state import State

        cfg = load_config(self.work / "qatlan.toml", env=self.env)
        with State.open_readonly(self.work / "state" / "qatlan.db") as st:
            snap = st.load_snapshot()
        m = match(snap, cfg.mappings)
        cm = next(d for d in snap.cm_defs.values() if d.display_name == "Qualytics")
        self.cm_hash, self.score_hash = cm.hashed_name, cm.attr_hash("Quality Score")
        self.containers = sorted(m.containers.items())
        busy = {c.id for c in snap.containers.values() if (c.active_anomalies or 0) > 0}
        self.busy = [(cid, g) for cid, g in self.containers if cid in busy]
        self.fields = sorted(m.fields.items())
        self.q_token = next(iter(self.sb.ready["tokens"]["qualytics"].values()))
        self.a_admin = self.sb.ready["tokens"]["atlan"].get("admin") or next(iter(self.sb.ready["tokens"]["atlan"].values()))
        # tags a person makes in Atlan now: no Qualytics tag has their names (a same-name
        # Qualytics tag is a conflict that the default skip rule leaves alone)
        made = httpx.post(f"{self.sb.ready['atlan_url']}/api/meta/types/typedefs", timeout=60,
                          headers={"Authorization": f"Bearer {self.a_admin}"},
                          json={"classificationDefs": [
                              {"name": "", "displayName": f"Watch Bench {i}", "description": "",
                               "superTypes": [], "attributeDefs": [], "entityTypes": []} for i in range(3)]})
        made.raise_for_status()
        self.tag_writes += 1
        self.tags = [_Tag(d["name"], d["displayName"]) for d in made.json()["classificationDefs"]]

    def record(self, side: str, kind: str, key: Any) -> dict[str, Any] | None:
        r = self.sb.admin[side].get(f"/_sandbox/records/{kind}/{key}")
        return r.json() if r.status_code == 200 else None

    def change(self, kind: str) -> tuple[str, Any]:
        """Make one change; returns (kind, a check that is true once it landed)."""
        self.turn += 1
        if kind == "score":
            cid, guid = self.containers[(self.turn * 37) % len(self.containers)]
            self.what = f"score of container {cid} → table {guid}"
            total = round(1 + (self.turn * 7.31) % 97, 2)
            current = self.record("qualytics", "containers", cid) or {}
            score = {**(current.get("quality_score") or {}), "total": total}
            self.sb.call("qualytics", "POST", "world/changes", {"changes": [{
                "side": "qualytics", "kind": "containers", "op": "update", "id": cid,
                "set": {"quality_score": score, "last_scanned": datetime.now(timezone.utc).isoformat()}}]})
            return kind, lambda: ((self.record("atlan", "entities", guid) or {}).get("businessAttributes") or {}
                                  ).get(self.cm_hash, {}).get(self.score_hash) == total
        if kind == "anomaly":
            cid, guid = self.busy.pop(0)
            while not str(((self.record("atlan", "entities", guid) or {}).get("attributes") or {}
                           ).get("announcementTitle") or "").startswith("Qualytics: ") and self.busy:
                cid, guid = self.busy.pop(0)  # a person's announcement: qatlan leaves it
            self.what = f"anomalies of container {cid} resolved → table {guid}"
            with httpx.Client(base_url=self.sb.ready["qualytics_url"], timeout=60,
                              headers={"Authorization": f"Bearer {self.q_token}"}) as q:
                found = q.get("/api/anomalies", params={"container": cid, "status": "Active", "size": 100}).json()
            ids = [a["id"] for a in found.get("items", [])]
            self.sb.call("qualytics", "POST", "world/changes", {"changes": [
                {"side": "qualytics", "kind": "anomalies", "op": "update", "id": i, "set": {"status": "Resolved"}}
                for i in ids]})
            return kind, lambda: not ((self.record("atlan", "entities", guid) or {}).get("attributes") or {}
                                      ).get("announcementTitle")
        fid, guid = self.fields[(self.turn * 101) % len(self.fields)]
        have = set((self.record("atlan", "entities", guid) or {}).get("classificationNames") or ())
        tag = next(t for t in self.tags if t.hashed_name not in have)
        self.what = f"tag {tag.display_name} on column {guid} → field {fid}"
        r = httpx.post(f"{self.sb.ready['atlan_url']}/api/meta/entity/guid/{guid}/classifications",
                       json=[{"typeName": tag.hashed_name}], headers={"Authorization": f"Bearer {self.a_admin}"},
                       timeout=60)
        r.raise_for_status()
        self.tag_writes += 1

        def landed() -> bool:
            tags = (self.record("qualytics", "fields", fid) or {}).get("tags") or ()
            return tag.display_name in [t if isinstance(t, str) else t.get("name") for t in tags]
        return kind, landed

    def run_events(self, n: int, kinds: tuple[str, ...], spacing: float = SPACING) -> list[dict[str, Any]]:
        pending: list[dict[str, Any]] = []
        done: list[dict[str, Any]] = []
        next_at = time.monotonic()
        made = 0
        while made < n or pending:
            now = time.monotonic()
            if made < n and now >= next_at:
                kind = kinds[made % len(kinds)]
                if kind == "anomaly" and not self.busy:
                    kind = "score"
                k, check = self.change(kind)
                pending.append({"kind": k, "at": time.monotonic(), "check": check, "what": self.what})
                made += 1
                next_at += spacing
            for p in list(pending):
                if p["check"]():
                    done.append({"kind": p["kind"], "latency_s": round(time.monotonic() - p["at"], 3)})
                    pending.remove(p)
                elif time.monotonic() - p["at"] > LAND_TIMEOUT:
                    done.append({"kind": p["kind"], "latency_s": None, "what": p["what"]})
                    pending.remove(p)
            time.sleep(0.05)
        return done

    # ---- the run
    def stats(self) -> dict[str, int]:
        out = {}
        for side in ("atlan", "qualytics"):
            eps = self.sb.call(side, "GET", "stats")["endpoints"]
            out[side] = sum(e["count"] for e in eps)
            out[side + "_writes"] = sum(e["count"] for e in eps if e["method"] != "GET" and "search" not in e["path"])
        return out

    def main(self) -> dict[str, Any]:
        r = self.result
        _log(f"sandbox {self.args.spec}")
        self.sb.start()
        try:
            self.config(0)
            _log("first sync (rate limit lifted)")
            first = self.qatlan("apply", "--auto-approve")
            r["first_sync"] = {"exit": first.returncode, "wall_s": round(first.wall_s, 1)}
            self.sb.set_atlan_limit(ATLAN_RPM)
            self.config(ATLAN_RPM)
            _log("qatlan watch: its first full resync")
            t0 = time.monotonic()
            self.start_watch()
            r["watch_start_s"] = round(time.monotonic() - t0, 1)
            self.pick()
            r["phases"] = {}
            for name, faults, n, kinds in (
                    ("events", {}, self.args.events, ("score", "anomaly", "tag")),
                    ("loss", {"loss": 1.0}, 9, ("score", "anomaly", "tag")),
                    ("duplicates", {"duplicate": 1.0, "reorder": True, "seed": 3}, 9, ("score", "anomaly", "tag"))):
                _log(f"phase {name}: {n} changes")
                self.deliver(**faults)
                self.sb.reset_stats()
                tag_before = self.tag_writes
                started = time.monotonic()
                events = self.run_events(n, kinds)
                landed = self.stats()
                self.idle()
                time.sleep(5)
                self.idle()
                after = self.stats()
                own = self.tag_writes - tag_before
                latencies = [e["latency_s"] for e in events if e["latency_s"] is not None]
                r["phases"][name] = {
                    "latency": _summary(latencies),
                    "by_kind": {k: _summary([e["latency_s"] for e in events if e["kind"] == k and e["latency_s"] is not None])
                                for k in kinds},
                    "not_landed": [e["what"] for e in events if e["latency_s"] is None],
                    "wall_s": round(time.monotonic() - started, 1),
                    "requests": {"atlan": after["atlan"] - own, "qualytics": after["qualytics"]},
                    "requests_per_event": {"atlan": round((after["atlan"] - own) / n, 1),
                                           "qualytics": round(after["qualytics"] / n, 1)},
                    "writes_when_landed": landed["atlan_writes"] - own + landed["qualytics_writes"],
                    "writes_after_settling": after["atlan_writes"] - own + after["qualytics_writes"],
                }
                _log(json.dumps(r["phases"][name]))
            r["watch_process"] = self.stop_watch()
            _log("cron: the same kind of changes, then one `qatlan apply`")
            self.sb.call("atlan", "DELETE", "webhooks")
            self.sb.call("qualytics", "DELETE", "flows")
            for i in range(self.args.events):
                kind = ("score", "anomaly", "tag")[i % 3]
                self.change(kind if kind != "anomaly" or self.busy else "score")
            self.sb.reset_stats()
            tick = self.qatlan("apply", "--auto-approve")
            s = self.stats()
            r["cron"] = {"exit": tick.returncode, "run_wall_s": round(tick.wall_s, 1),
                         "run_cpu_s": round(tick.cpu_s, 1), "peak_rss_mb": round(tick.peak_rss_mb, 1),
                         "requests": {"atlan": s["atlan"], "qualytics": s["qualytics"]},
                         "requests_per_event": {"atlan": round(s["atlan"] / self.args.events, 1),
                                                "qualytics": round(s["qualytics"] / self.args.events, 1)},
                         "latency_model": {"p50_s": round(30 + tick.wall_s, 1), "p95_s": round(57 + tick.wall_s, 1),
                                           "max_s": round(60 + tick.wall_s, 1)}}
            _log(json.dumps(r["cron"]))
        finally:
            if self.watch is not None:
                self.watch.kill()
            self.sb.stop()
        r["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return r


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    result = Bench(args).main()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    emit_json(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
