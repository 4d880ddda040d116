"""The GitHub Action (action.yml) and the example workflows (docs/examples/workflows/).

1. They validate against the GitHub JSON schemas that check-jsonschema bundles
   (`vendor.github-actions`, `vendor.github-workflows`).
2. The action's steps run, in order, against a live sandbox, the way the runner runs a
   composite action: `${{ }}` expressions and `if:` conditions evaluated, `run:` steps under
   bash with GITHUB_OUTPUT/GITHUB_ACTION_PATH, `actions/cache/restore|save` and
   `actions/upload-artifact` played by small stand-ins (a cache keyed like GitHub's: exact key,
   else the newest entry under a restore-keys prefix; entries immutable), and a fake `gh` on
   PATH that keeps the pull request's comments in a file. Two runs from two fresh workspaces
   (two CI jobs): the first posts one comment, the second updates that same comment, found by
   its marker, and the state's history carries over through the cache.

The install step is not run here (it pip-installs from the network); qatlan comes from this
interpreter instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import QUALYTICS_TOKEN, TOKENS_ENV, make_sandbox
from stateful_apply import write_live_config

yaml = pytest.importorskip("yaml", reason="PyYAML is in the test extra: pip install -e '.[test]'")

ROOT = Path(__file__).resolve().parent.parent
ACTION = ROOT / "action.yml"
WORKFLOWS = sorted((ROOT / "docs" / "examples" / "workflows").glob("*.yml"))
MARKER = re.compile(r"<!-- qatlan:plan checksum=([0-9a-f]{64}) serial=(\d+) -->")
sys.path.insert(0, str(ROOT / "action"))
import comment as comment_script  # noqa: E402  (action/comment.py)


# -- 1. schemas ------------------------------------------------------------------------------

def check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess:
    pytest.importorskip("check_jsonschema", reason="check-jsonschema is in the test extra")
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema,
                           *map(str, files)], capture_output=True, text=True)


def test_the_action_validates_against_the_github_action_schema():
    done = check_jsonschema("vendor.github-actions", ACTION)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_example_workflows_validate_against_the_github_workflow_schema():
    assert {p.name for p in WORKFLOWS} >= {"qatlan-drift.yml", "qatlan-pr-plan.yml", "qatlan-apply.yml"}
    done = check_jsonschema("vendor.github-workflows", *WORKFLOWS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  plan:\n    steps:\n      - run: qatlan plan\n")  # no runs-on
    assert check_jsonschema("vendor.github-workflows", broken).returncode != 0


def test_the_example_workflows_use_the_action_and_guard_the_apply():
    docs = {p.name: yaml.safe_load(p.read_text()) for p in WORKFLOWS}
    for name, doc in docs.items():
        text = (WORKFLOWS[0].parent / name).read_text()
        assert "pip install qatlan" not in text and "--edit-last" not in text, name
        steps = [s for job in doc["jobs"].values() for s in job.get("steps", [])]
        assert any(str(s.get("uses", "")).startswith("actions/setup-python@") for s in steps), name
        assert "concurrency" in doc, name  # one runner at a time on the state
    pr = docs["qatlan-pr-plan.yml"]
    assert pr["permissions"]["pull-requests"] == "write"
    apply_jobs = [j for j in docs["qatlan-apply.yml"]["jobs"].values() if "environment" in j]
    assert apply_jobs and any("qatlan apply" in str(s.get("run", "")) for s in apply_jobs[0]["steps"])


# -- 2. the action's steps against the sandbox ----------------------------------------------

FAKE_GH = r'''
import json, os, re, sys
if not os.environ.get("GH_TOKEN"):
    sys.exit("gh: GH_TOKEN is not set")
db_path = os.environ["FAKE_GH_DB"]
db = json.load(open(db_path))
args = sys.argv[1:]
assert args.pop(0) == "api", args
method, paginate, body_file, rest = "GET", False, None, []
while args:
    a = args.pop(0)
    if a in ("--method", "-X"):
        method = args.pop(0)
    elif a == "--paginate":
        paginate = True
    elif a == "--input":
        body_file = args.pop(0)
    else:
        rest.append(a)
path = rest[0].split("?")[0]
db["calls"].append([method, path])
on_issue = re.fullmatch(r"repos/([^/]+/[^/]+)/issues/(\d+)/comments", path)
one = re.fullmatch(r"repos/([^/]+/[^/]+)/issues/comments/(\d+)", path)
if method == "GET" and on_issue:
    items = [c for c in db["comments"] if [c["repo"], c["issue"]] == [on_issue[1], int(on_issue[2])]]
    pages = [items[i:i + 2] for i in range(0, len(items), 2)] or [[]]  # 2 a page: several pages
    out = "".join(json.dumps(p) for p in (pages if paginate else pages[:1]))
elif method == "POST" and on_issue:
    c = {"id": 9000 + len(db["comments"]), "repo": on_issue[1], "issue": int(on_issue[2]),
         "body": json.load(open(body_file))["body"]}
    db["comments"].append(c)
    out = json.dumps(c)
elif method == "PATCH" and one:
    c = next(c for c in db["comments"] if c["id"] == int(one[2]))
    c["body"] = json.load(open(body_file))["body"]
    out = json.dumps(c)
else:
    sys.exit(f"gh: unexpected {method} {path}")
json.dump(db, open(db_path, "w"))
print(out)
'''


class Runner:
    """Runs action.yml's steps as the Actions runner would, for one job."""

    def __init__(self, tmp: Path, *, cache: Path, artifacts: Path, env: dict[str, str]):
        self.tmp, self.cache, self.artifacts, self.env = tmp, cache, artifacts, env
        self.action = yaml.safe_load(ACTION.read_text())

    # expressions: the subset action.yml uses (contexts, 'strings', == != && || ! ( ), cancelled())
    def value(self, expr: str, ctx: dict[str, Any]) -> Any:
        def lookup(path: str) -> Any:
            node: Any = ctx
            for part in path.split("."):
                node = node.get(part, "") if isinstance(node, dict) else ""
            return "" if node is None else node

        out, names = [], {}
        for tok in re.findall(r"'[^']*'|&&|\|\||==|!=|!|\(|\)|[A-Za-z_][\w.-]*\(\)|[A-Za-z_][\w.-]*|\S", expr):
            if tok == "&&":
                out.append(" and ")
            elif tok == "||":
                out.append(" or ")
            elif tok == "!":
                out.append(" not ")
            elif tok in ("==", "!=", "(", ")") or tok.startswith("'"):
                out.append(f" {tok} ")
            elif tok.endswith("()"):
                out.append({"cancelled()": " False ", "always()": " True ",
                            "success()": f" {not ctx['failed']} ", "failure()": f" {ctx['failed']} "}[tok])
            else:
                key = f"v{len(names)}"
                names[key] = lookup(tok)
                out.append(f" {key} ")
        return eval("".join(out), {"__builtins__": {}}, names)  # noqa: S307 - our own file

    def render(self, text: Any, ctx: dict[str, Any]) -> str:
        return re.sub(r"\$\{\{(.*?)\}\}", lambda m: str(self.value(m[1], ctx)), str(text))

    def run(self, workspace: Path, *, github: dict[str, Any], inputs: dict[str, str]) -> dict[str, Any]:
        ctx: dict[str, Any] = {"github": github, "steps": {}, "failed": False, "inputs": {}}
        for name, spec in self.action["inputs"].items():
            ctx["inputs"][name] = inputs.get(name, self.render(spec.get("default", ""), ctx))
        for step in self.action["runs"]["steps"]:
            sid = step["id"]
            cond = str(step.get("if", "success()")).strip()
            cond = cond[3:-2] if cond.startswith("${{") else cond
            if not self.value(cond, ctx):
                ctx["steps"][sid] = {"outputs": {}, "skipped": True}
                continue
            if sid == "install":  # pip from the network: qatlan comes from this interpreter
                ctx["steps"][sid] = {"outputs": {}}
                continue
            with_ = {k: self.render(v, ctx) for k, v in step.get("with", {}).items()}
            if "uses" in step:
                outputs = self.uses(step["uses"], with_, workspace)
            else:
                outputs, ok = self.shell(step, ctx, workspace)
                ctx["failed"] = ctx["failed"] or not ok
            ctx["steps"][sid] = {"outputs": outputs}
        ctx["outputs"] = {k: self.render(v["value"], ctx) for k, v in self.action["outputs"].items()}
        return ctx

    def shell(self, step: dict[str, Any], ctx: dict[str, Any], workspace: Path) -> tuple[dict[str, str], bool]:
        output = self.tmp / "github_output"
        output.write_text("")
        env = {**self.env, **{k: self.render(v, ctx) for k, v in step.get("env", {}).items()},
               "GITHUB_OUTPUT": str(output), "GITHUB_ACTION_PATH": str(ROOT),
               "GITHUB_PATH": str(self.tmp / "github_path"), "RUNNER_TEMP": str(self.tmp)}
        cwd = workspace / self.render(step.get("working-directory", "."), ctx)
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
                               self.render(step["run"], ctx)], cwd=cwd, env=env, capture_output=True, text=True)
        self.log.append((step["id"], done.returncode, done.stdout, done.stderr))
        outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
        return outputs, done.returncode == 0

    def uses(self, uses: str, with_: dict[str, str], workspace: Path) -> dict[str, str]:
        name = uses.split("@")[0]
        if name in ("actions/cache/restore", "actions/cache/save"):
            path = workspace / with_["path"]
            entries = sorted(self.cache.iterdir(), key=lambda p: p.stat().st_mtime_ns) if self.cache.exists() else []
            if name.endswith("save"):
                entry = self.cache / with_["key"]
                if not entry.exists() and path.exists():  # GitHub's cache entries are immutable
                    entry.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(path, entry)
                return {}
            hit = [e for e in entries if e.name == with_["key"]]
            for prefix in with_.get("restore-keys", "").splitlines():
                hit = hit or [e for e in entries if e.name.startswith(prefix.strip())][-1:]
            if hit:
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(hit[0], path)
                return {"cache-hit": str(hit[0].name == with_["key"]).lower(), "cache-matched-key": hit[0].name}
            return {"cache-hit": "false"}
        if name == "actions/upload-artifact":
            shutil.copytree(workspace / with_["path"], self.artifacts / with_["name"], dirs_exist_ok=True)
            return {}
        raise AssertionError(f"action.yml uses {uses}, which this test does not play")


@pytest.mark.http
@pytest.mark.slow
def test_the_action_posts_one_comment_updates_it_on_the_next_run_and_keeps_the_history(tmp_path):
    import httpx

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(f"#!{sys.executable}\n{FAKE_GH}")
    (bin_dir / "qatlan").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m qatlan "$@"\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    db = tmp_path / "gh.json"
    other = [{"id": n, "repo": "acme/data", "issue": 7, "body": f"an unrelated comment {n}"} for n in (1, 2, 3)]
    db.write_text(json.dumps({"comments": other, "calls": []}))
    env = {**os.environ, **TOKENS_ENV, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "FAKE_GH_DB": str(db), "GITHUB_REPOSITORY": "acme/data"}
    env.pop("QATLAN_STATE", None)
    env.pop("QATLAN_CONFIG", None)
    runner = Runner(tmp_path, cache=tmp_path / "cache", artifacts=tmp_path / "artifacts", env=env)
    runner.log = []

    def job(run_id: int) -> tuple[dict[str, Any], Path]:
        workspace = tmp_path / f"checkout-{run_id}"  # each job starts from a fresh checkout
        workspace.mkdir()
        shutil.copy(config, workspace / "qatlan.toml")
        github = {"run_id": run_id, "run_attempt": 1, "job": "plan", "token": "t0ken",
                  "event": {"pull_request": {"number": 7}}}
        ctx = runner.run(workspace, github=github, inputs={})
        assert not ctx["failed"], runner.log
        return ctx, workspace

    def comments() -> list[dict[str, Any]]:
        return json.loads(db.read_text())["comments"]

    sb = make_sandbox("tables=6,columns=3,seed=2").start()
    try:
        (tmp_path / "cfg").mkdir()
        config = write_live_config(tmp_path / "cfg", sb)  # its [state] path is overridden by the action

        first, ws1 = job(101)
        assert first["outputs"]["exitcode"] == "2"  # nothing synced yet: changes present
        plan1 = json.loads((ws1 / "qatlan-plan" / "plan.json").read_text())
        mine = [c for c in comments() if MARKER.search(c["body"])]
        assert len(mine) == 1 and len(comments()) == 4
        assert MARKER.search(mine[0]["body"]).groups() == (plan1["checksum"], str(plan1["plan"]["base"]["serial"]))
        assert first["outputs"]["comment-id"] == str(mine[0]["id"])
        assert "### qatlan plan" in mine[0]["body"]
        assert json.loads((tmp_path / "artifacts" / "qatlan-plan" / "plan.json").read_text()) == plan1
        assert (ws1 / "state" / "qatlan.db").exists() and not (tmp_path / "cfg" / "state").exists()
        assert [e.name for e in (tmp_path / "cache").iterdir()] == ["qatlan-state-101-1-plan"]

        # someone tags a matched Qualytics field by hand: the next plan differs
        field = next(f for f in sb.world.qualytics.all("fields"))
        tag = next(t["name"] for t in sb.world.qualytics.all("global_tags") if t.get("type") == "global")
        with httpx.Client(base_url=sb.qualytics_url, headers={"Authorization": f"Bearer {QUALYTICS_TOKEN}"}) as q:
            q.patch("/api/fields", json=[{"id": field["id"], "tags": [tag]}]).raise_for_status()

        second, ws2 = job(102)
        assert second["steps"]["restore"]["outputs"]["cache-matched-key"] == "qatlan-state-101-1-plan"
        plan2 = json.loads((ws2 / "qatlan-plan" / "plan.json").read_text())
        assert plan2["checksum"] != plan1["checksum"]
        mine2 = [c for c in comments() if MARKER.search(c["body"])]
        assert len(mine2) == 1 and mine2[0]["id"] == mine[0]["id"]  # the same comment, edited
        assert MARKER.search(mine2[0]["body"]).groups() == (plan2["checksum"], str(plan2["plan"]["base"]["serial"]))
        assert [c["body"] for c in comments() if not MARKER.search(c["body"])] == [c["body"] for c in other]
        calls = [c for c in json.loads(db.read_text())["calls"] if c[0] != "GET"]
        assert [c[0] for c in calls] == ["POST", "PATCH"]

        # the history carried over: the second job's state holds both jobs' snapshots
        listed = subprocess.run(["qatlan", "state", "list", "--state", str(ws2 / "state" / "qatlan.db"),
                                 "-c", str(ws2 / "qatlan.toml")], env=env, capture_output=True, text=True)
        assert listed.returncode == 0, listed.stderr
        snapshots = [line.split()[0] for line in listed.stdout.splitlines() if re.match(r"\s+\d+\s", line)]
        assert sorted(snapshots) == ["1", "2"], listed.stdout
        assert sorted(e.name for e in (tmp_path / "cache").iterdir()) == ["qatlan-state-101-1-plan",
                                                                           "qatlan-state-102-1-plan"]
    finally:
        sb.stop()


def test_a_failing_plan_fails_the_action_after_saving_the_state_and_posts_no_comment(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text("#!/bin/sh\necho called >> \"$FAKE_GH_LOG\"; exit 1\n")
    (bin_dir / "qatlan").write_text("#!/bin/sh\necho 'Error: cannot reach Atlan' >&2; exit 1\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "FAKE_GH_LOG": str(tmp_path / "gh.log"), "GITHUB_REPOSITORY": "acme/data"}
    runner = Runner(tmp_path, cache=tmp_path / "cache", artifacts=tmp_path / "artifacts", env=env)
    runner.log = []
    (tmp_path / "ws").mkdir()
    ctx = runner.run(tmp_path / "ws", github={"run_id": 5, "run_attempt": 1, "job": "plan", "token": "t",
                                              "event": {"pull_request": {"number": 3}}}, inputs={})
    assert ctx["outputs"]["exitcode"] == "1"
    assert ctx["failed"]  # the result step fails the job
    assert ctx["steps"]["comment"].get("skipped")
    assert not (tmp_path / "gh.log").exists()


def test_comment_fit_cuts_at_a_line_and_closes_what_it_opened():
    body = "<!-- qatlan:plan checksum=x serial=1 -->\n<details><summary>Changes</summary>\n\n```diff\n" + \
        "".join(f"+ change {i}\n" for i in range(20000))
    cut = comment_script.fit(body, limit=5000)
    assert len(cut) <= 5000
    assert cut.count("```") == 2 and cut.count("</details>") == 1
    assert "cut here" in cut
    assert comment_script.fit("short", limit=5000) == "short"
