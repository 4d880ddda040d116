"""SIGKILL sweep of `qatlan apply`: kill it at random points, resume, and compare with a clean run.

    .venv/bin/python bench/kill_sweep.py --spec tables=500,seed=7 --trials 20 --stop 6
    .venv/bin/python bench/kill_sweep.py --spec tables=12,columns=4,seed=1 --trials 20 --stop 0.3

The sandbox runs in this process (so every Atlan bulk upsert it applies can be logged); qatlan
runs as the CLI, one child process per step, as a user or a scheduler would run it. First a
clean run on a fresh copy of the world gives the reference: `plan --out` then `apply`, then
every Qualytics score moves and `apply --auto-approve` runs again. Then each trial, on a
fresh copy of the world and a fresh state:

1. `qatlan plan --out plan.json`, then `qatlan apply plan.json`, killed at a random point: when
   the journal has a random number of rows (0: as soon as it holds the lock), the process is
   first stopped (SIGSTOP) for `--stop` seconds, so that requests in flight land, then killed
   (SIGKILL);
2. in half the trials `qatlan refresh` runs before the resume (the scheduled drift job);
3. `qatlan apply --auto-approve` resumes; in a third of the trials it is killed too, the
   same way, and resumed once more;
4. `qatlan apply --auto-approve` until it has nothing to do, the scores move as in the clean
   run, `qatlan apply --auto-approve` again, and `qatlan plan --detailed-exitcode`.

A trial passes when no Atlan entity was written twice with the same content, no asset has
more Links of the configured name than in the clean run, the final plan has no conflict the
clean run does not have (a lost ownership shows up as one: the config uses
`cm_edits = "keep"`), the final worlds are equal (custom metadata, tags, announcements,
Links, Qualytics tags), and the final `plan --detailed-exitcode` exits 0. The result is one
JSON document (and a summary line per trial on stderr); the exit code is 1 if a trial failed.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import copy
import json
import os
import random
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qatlan.sandbox import atlan_app
from qatlan.sandbox.generate import generate_world
from qatlan.sandbox.ops import FaultSettings, OpsSettings
from qatlan.sandbox.server import Sandbox, world_tokens
from qatlan.sandbox.world import World

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import write_config  # noqa: E402

BULK = "/api/meta/entity/bulk"
DEFAULT_CLI = [sys.executable, "-m", "qatlan"]
LINK_NAME = "Qualytics"


# --------------------------------------------------------------------------- the sandbox


class Writes:
    """Every Atlan entity the sandbox upserted, by content (its payload without the GUID)."""

    def __init__(self) -> None:
        self.seen: collections.Counter[str] = collections.Counter()
        self._original = atlan_app.bulk_upsert

        def logged(store: Any, persona: Any, body: Any, flags: Any) -> Any:
            answer = self._original(store, persona, body, flags)
            for e in (body or {}).get("entities") or ():
                self.seen[json.dumps({k: v for k, v in e.items() if k != "guid"}, sort_keys=True)] += 1
            return answer

        atlan_app.bulk_upsert = logged

    def close(self) -> None:
        atlan_app.bulk_upsert = self._original

    def repeated(self) -> int:
        return sum(1 for n in self.seen.values() if n > 1)

    def reset(self) -> None:
        self.seen.clear()


def project(world: World) -> dict[str, Any]:
    """What sync decides, by names (hashed names and GUIDs differ between runs)."""
    store = world.atlan
    tags = {d["name"]: d.get("displayName") for d in store.typedefs["classificationDefs"]}
    sets = {d["name"]: (d.get("displayName"), {a["name"]: a.get("displayName") for a in d.get("attributeDefs") or ()})
            for d in store.typedefs["businessMetadataDefs"]}
    by_guid = {e["guid"]: e for e in store.entities.values()}
    assets, links = {}, []
    for e in store.entities.values():
        if e["status"] != "ACTIVE":
            continue
        a = e["attributes"]
        if e["typeName"] == "Link":
            owner = by_guid.get((a.get("asset") or {}).get("guid"), {}).get("attributes", {}).get("qualifiedName")
            links.append([owner, a.get("name"), a.get("link")])
            continue
        cm = {}
        for set_hash, values in (e.get("businessAttributes") or {}).items():
            name, attrs = sets.get(set_hash, (set_hash, {}))
            cm[name] = {attrs.get(k, k): v for k, v in values.items() if v is not None}
        assets[a["qualifiedName"]] = {
            "tags": sorted(str(tags.get(c["typeName"], c["typeName"])) for c in e.get("classifications") or ()
                           if c.get("entityGuid") in (None, e["guid"])),
            "cm": {k: v for k, v in cm.items() if v},
            "announcement": [a.get("announcementType"), a.get("announcementTitle"), a.get("announcementMessage")],
        }
    q = world.qualytics
    q_tags = {f"{kind}/{o['id']}": sorted(o.get("tags") or ())
              for kind in ("containers", "fields") for o in q.all(kind)}
    return {"assets": assets, "links": sorted(links), "qualytics": q_tags}


def move_scores(world: World) -> None:
    """Every table container's score moves (the same way in every run)."""
    changes = []
    for c in world.qualytics.all("containers"):
        score = c.get("quality_score")
        if score and score.get("total") is not None:
            changes.append({"side": "qualytics", "kind": "containers", "op": "update", "id": c["id"],
                            "set": {"quality_score": {**score, "total": round(float(score["total"]) / 2 + 1, 1)}}})
    world.apply_changes(changes)


# --------------------------------------------------------------------------- qatlan as a user runs it


@dataclass
class Qatlan:
    folder: Path
    env: dict[str, str]
    cli: list[str]
    force_unlock: bool = False  # for qatlan versions that do not take over a dead run's lock
    log: list[str] = field(default_factory=list)

    def command(self) -> list[str]:
        return list(self.cli)

    def start(self, *args: str) -> subprocess.Popen:
        out = (self.folder / f"step{len(self.log):02d}.log").open("w")
        self.log.append(" ".join(args))
        return subprocess.Popen(self.command() + list(args) + ["-c", str(self.folder / "qatlan.toml")],
                                env=self.env, cwd=self.folder, stdout=out, stderr=subprocess.STDOUT)

    def run(self, *args: str, timeout: float = 1800) -> tuple[int, str]:
        """A step that is not killed: in this process when the CLI is this qatlan (faster,
        and the same code), else as a child process."""
        if self.cli == DEFAULT_CLI:
            from typer.testing import CliRunner

            from qatlan.cli import app

            self.log.append(" ".join(args))
            result = CliRunner().invoke(app, [*args, "-c", str(self.folder / "qatlan.toml")], env=self.env)
            (self.folder / f"step{len(self.log) - 1:02d}.log").write_text(result.output)
            return result.exit_code, result.output
        proc = self.start(*args)
        code = proc.wait(timeout)
        return code, (self.folder / f"step{len(self.log) - 1:02d}.log").read_text()

    def killed(self, *args: str, rows: int | None = None, after: float | None = None,
               stop: float, timeout: float = 1800) -> str:
        """Run, and kill it when the journal has `rows` rows (0: once it holds the lock) or
        `after` seconds after it took the lock; says where it was killed ("finished" when it
        ended first)."""
        proc = self.start(*args)
        db = self.folder / "state" / "qatlan.db"
        started = time.monotonic()
        locked_at = None
        while proc.poll() is None and time.monotonic() - started < timeout:
            n = _rows(db, "SELECT count(*) FROM journal")
            if locked_at is None and (after is not None or not rows):
                if _rows(db, "SELECT count(*) FROM lock"):
                    locked_at = time.monotonic()
            if after is not None:
                due = locked_at is not None and time.monotonic() - locked_at >= after
            else:
                due = n >= rows if rows else locked_at is not None
            if due:
                proc.send_signal(signal.SIGSTOP)
                time.sleep(stop)
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                if self.force_unlock:
                    self._unlock(db)
                return f"{n} journal rows, {time.monotonic() - started - stop:.2f} s after start"
            time.sleep(0.002)
        proc.wait()
        return "finished"

    def _unlock(self, db: Path) -> None:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
            row = conn.execute("SELECT id FROM lock").fetchone()
        if row:
            self.run("force-unlock", row[0])


def _rows(db: Path, sql: str) -> int:
    if not db.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as conn:
            return conn.execute(sql).fetchone()[0]
    except sqlite3.Error:
        return 0


# --------------------------------------------------------------------------- the sweep


@dataclass
class Trial:
    n: int
    killed_at: str
    refresh_before_resume: bool
    resume_killed_at: str | None
    repeated_writes: int = 0
    duplicate_links: int = 0
    extra_conflicts: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    final_exit: int | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (not self.repeated_writes and not self.duplicate_links and not self.extra_conflicts
                and not self.differences and self.final_exit == 0)


class Sweep:
    def __init__(self, spec: str, work: Path, *, latency_ms: float = 0.0,
                 cli: list[str] | None = None, force_unlock: bool = False, cm_edits: str = "keep"):
        self.cm_edits = cm_edits
        self.doc = generate_world(spec)
        self.work = work
        self.cli = cli or DEFAULT_CLI
        self.force_unlock = force_unlock
        self.writes = Writes()
        self.sb = Sandbox(World(copy.deepcopy(self.doc)), atlan_ops=OpsSettings(requests_per_minute=0))
        self.sb.start("127.0.0.1", 0, 0)
        if latency_ms:  # slows the bulk writes so that a kill lands mid-way in a small world
            self.sb.atlan_app.ops.set_faults(FaultSettings(latency_min_ms=latency_ms, methods=("POST",),
                                                           paths=(BULK,)))

    def close(self) -> None:
        self.sb.stop()
        self.writes.close()

    def _fresh(self, name: str) -> Qatlan:
        self.sb.world.replace(copy.deepcopy(self.doc))
        self.writes.reset()
        folder = self.work / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        ready = {"atlan_url": self.sb.atlan_url, "qualytics_url": self.sb.qualytics_url,
                 "meta": self.doc.get("meta") or {}, "tokens": world_tokens(self.doc)}
        env = write_config(folder / "qatlan.toml", ready)
        if self.cm_edits != "none":
            with (folder / "qatlan.toml").open("a") as f:
                f.write(f'\n[sync]\ncm_edits = "{self.cm_edits}"\n')
        return Qatlan(folder, {**env, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}, self.cli,
                      self.force_unlock)

    def _finish(self, q: Qatlan) -> tuple[list[str], int]:
        for _ in range(3):
            code, out = q.run("apply", "--auto-approve", "--create-definitions")
            if code != 0 or "No changes." in out:
                break
        move_scores(self.sb.world)
        q.run("apply", "--auto-approve", "--create-definitions")
        code, out = q.run("plan", "--detailed-exitcode", "--json")
        conflicts = sorted(c["address"] for c in json.loads(out[out.index("{"):]).get("conflicts", ())) \
            if "{" in out else []
        return conflicts, code

    def reference(self) -> None:
        q = self._fresh("clean")
        code, out = q.run("plan", "--create-definitions", "--out", str(q.folder / "plan.json"))
        assert code in (0, 2), out
        started = time.monotonic()  # as a child process, like the applies that get killed
        proc = q.start("apply", str(q.folder / "plan.json"))
        code = proc.wait()
        self.apply_seconds = time.monotonic() - started
        assert code == 0, (q.folder / f"step{len(q.log) - 1:02d}.log").read_text()[-2000:]
        self.changes = json.loads((q.folder / "plan.json").read_text())["plan"].get("summary", {})
        self.conflicts, code = self._finish(q)
        assert code == 0, "the clean run does not converge"
        self.world = project(self.sb.world)
        self.links = collections.Counter(l[0] for l in self.world["links"] if l[1] == LINK_NAME)
        self.rows = _rows(q.folder / "state" / "qatlan.db", "SELECT count(*) FROM journal")

    def trial(self, n: int, rng: random.Random, stop: float) -> Trial:
        started = time.monotonic()
        q = self._fresh(f"trial{n:02d}")
        q.run("plan", "--create-definitions", "--out", str(q.folder / "plan.json"))
        killed_at = q.killed("apply", str(q.folder / "plan.json"), stop=stop, **self._point(rng))
        refresh = rng.random() < 0.5
        if refresh:
            q.run("refresh")
        resume_killed = None
        if rng.random() < 1 / 3:
            resume_killed = q.killed("apply", "--auto-approve", "--create-definitions", stop=stop, **self._point(rng))
        conflicts, code = self._finish(q)
        world = project(self.sb.world)
        links = collections.Counter(l[0] for l in world["links"] if l[1] == LINK_NAME)
        t = Trial(n, killed_at, refresh, resume_killed, repeated_writes=self.writes.repeated(),
                  duplicate_links=sum(1 for a, k in links.items() if k > self.links.get(a, 0)),
                  extra_conflicts=sorted(set(conflicts) - set(self.conflicts)),
                  differences=_differences(self.world, world), final_exit=code,
                  seconds=round(time.monotonic() - started, 1))
        return t

    def _point(self, rng: random.Random) -> dict[str, Any]:
        """A random point: a number of journal rows (0: as soon as it holds the lock), or a
        time after it took the lock, within 90% of the clean apply's duration."""
        if rng.random() < 0.5:
            return {"rows": rng.choice([0, *range(1, max(self.rows, 2))])}
        return {"after": rng.uniform(0, 0.9 * self.apply_seconds)}


def _differences(a: dict[str, Any], b: dict[str, Any], limit: int = 20) -> list[str]:
    out = []
    for key in ("assets", "qualytics"):
        for name in sorted(set(a[key]) | set(b[key])):
            if a[key].get(name) != b[key].get(name):
                out.append(f"{key} {name}: {a[key].get(name)!r} != {b[key].get(name)!r}")
    if a["links"] != b["links"]:
        out.append(f"links: {len(a['links'])} != {len(b['links'])}")
    return out[:limit]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default="tables=500,seed=7")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--stop", type=float, default=6.0, help="seconds stopped before each kill")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to each bulk write")
    parser.add_argument("--work", type=Path, default=Path("bench/results/kill-sweep"))
    parser.add_argument("--out", type=Path, help="write the JSON result here too")
    parser.add_argument("--cli", help="the qatlan command to run (default: this Python's -m qatlan)")
    parser.add_argument("--cm-edits", default="keep", choices=["keep", "restore", "none"],
                        help="[sync] cm_edits (none: leave it out, for older versions)")
    parser.add_argument("--force-unlock", action="store_true",
                        help="release a killed run's lock with force-unlock (older qatlan versions)")
    args = parser.parse_args(argv)
    result = run_sweep(args.spec, args.trials, args.stop, args.seed, args.work, args.latency_ms,
                       cli=shlex.split(args.cli) if args.cli else None, force_unlock=args.force_unlock,
                       cm_edits=args.cm_edits)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0 if result["failed"] == 0 else 1


def run_sweep(spec: str, trials: int, stop: float, seed: int, work: Path,
              latency_ms: float = 0.0, *, cli: list[str] | None = None,
              force_unlock: bool = False, cm_edits: str = "keep") -> dict[str, Any]:
    """The sweep as a function (tests/test_apply_kill.py runs a small one)."""
    sweep = Sweep(spec, work, latency_ms=latency_ms, cli=cli, force_unlock=force_unlock,
                  cm_edits=cm_edits)
    try:
        sweep.reference()
        rng = random.Random(seed)
        done = []
        for n in range(trials):
            t = sweep.trial(n, rng, stop)
            print(f"trial {n}: killed at {t.killed_at}; refresh before resume: "
                  f"{t.refresh_before_resume}; resume killed at: {t.resume_killed_at}: "
                  f"{'ok' if t.ok else 'FAILED'} ({t.seconds} s)", file=sys.stderr)
            done.append(t)
    finally:
        sweep.close()
    return {"spec": spec, "stop_seconds": stop, "seed": seed, "plan": sweep.changes,
            "clean_apply_seconds": round(sweep.apply_seconds, 1),
            "journal_rows": sweep.rows, "trials": [{**asdict(t), "ok": t.ok} for t in done],
            "failed": sum(1 for t in done if not t.ok)}


if __name__ == "__main__":
    raise SystemExit(main())
