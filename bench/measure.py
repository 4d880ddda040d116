"""One measured step: reset the sandbox statistics, run a child, collect what it cost.

A step's record holds the child's exit code, wall and CPU time and peak RSS, the sandbox's
CPU time during the step, and the requests both servers saw, by endpoint and method, split
into reads and writes, with the 429s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import ChildRun, SandboxProc, proc_cpu_seconds, run_child

SEARCH = "/api/meta/search/indexsearch"


def is_read(method: str, path: str) -> bool:
    """GETs and the Atlan index search read; every other method writes."""
    return method == "GET" or (method == "POST" and path == SEARCH)


def summarize_stats(stats: dict[str, Any]) -> dict[str, Any]:
    """Per side: total, reads, writes, 429s and the endpoints; plus the totals."""
    out: dict[str, Any] = {}
    for side, s in stats.items():
        endpoints = [{"method": e["method"], "path": e["path"], "count": e["count"],
                      "kind": "read" if is_read(e["method"], e["path"]) else "write",
                      "status": e["status"]} for e in s["endpoints"]]
        out[side] = {
            "total": s["total"]["count"],
            "reads": sum(e["count"] for e in endpoints if e["kind"] == "read"),
            "writes": sum(e["count"] for e in endpoints if e["kind"] == "write"),
            "status_429": int(s["total"]["status"].get("429", 0)),
            "rate_limited": s.get("rate_limited", 0),
            "endpoints": endpoints,
        }
    out["total"] = sum(out[s]["total"] for s in stats)
    out["reads"] = sum(out[s]["reads"] for s in stats)
    out["writes"] = sum(out[s]["writes"] for s in stats)
    out["status_429"] = sum(out[s]["status_429"] for s in stats)
    return out


def _tail(text: str, lines: int = 8) -> list[str]:
    return [line.rstrip() for line in text.strip().splitlines()[-lines:]]


def child_record(run: ChildRun) -> dict[str, Any]:
    return {
        "returncode": run.returncode,
        "wall_s": round(run.wall_s, 3),
        "cpu_s": round(run.cpu_s, 3),
        "peak_rss_mb": round(run.peak_rss_mb, 1),
        "stdout_tail": _tail(run.stdout),
        "stderr_tail": _tail(run.stderr, 4),
    }


def measured_step(sandbox: SandboxProc, name: str, argv: list[str], *, env: dict[str, str],
                  logdir: Path, shown: str | None = None) -> dict[str, Any]:
    """Run `argv` as one step with fresh sandbox statistics."""
    sandbox.reset_stats()
    cpu_before = proc_cpu_seconds(sandbox.pid)
    run = run_child(argv, env=env, log=logdir / name)
    sandbox_cpu = proc_cpu_seconds(sandbox.pid) - cpu_before
    record = {"step": name, "command": shown or " ".join(argv), **child_record(run),
              "sandbox_cpu_s": round(sandbox_cpu, 3), "requests": summarize_stats(sandbox.stats())}
    return record


def with_minimum(record: dict[str, Any], minimum: dict[str, Any] | None) -> dict[str, Any]:
    """Add the minimum and the ratios actual / minimum (None where the minimum is 0)."""
    record["minimum"] = minimum
    if minimum is None:
        return record
    req = record["requests"]
    record["ratio"] = {
        "reads": round(req["reads"] / minimum["reads"], 3) if minimum["reads"] else None,
        "writes": round(req["writes"] / minimum["writes"], 3) if minimum["writes"] else None,
        "total": round(req["total"] / (minimum["reads"] + minimum["writes"]), 3)
        if minimum["reads"] + minimum["writes"] else None,
    }
    return record


def bound_by(record: dict[str, Any], cores: int) -> str:
    """What limited the step's wall time, judged from the CPU time qatlan and the sandbox
    used during it (each is one Python process: at most about one core)."""
    wall = record.get("wall_s") or 0
    if wall <= 0:
        return "-"
    mine = record.get("cpu_s", 0) / wall
    theirs = record.get("sandbox_cpu_s", 0) / wall
    busy = f"qatlan {mine:.0%}, sandbox {theirs:.0%} of a core"
    if mine + theirs >= 0.85 * cores:
        verdict = "the machine's CPUs"
    elif mine >= 0.6 and mine >= theirs:
        verdict = "qatlan's CPU"
    elif theirs >= 0.6:
        verdict = "the sandbox's CPU"
    else:
        verdict = "round trips"
    return f"{verdict} ({busy})"
