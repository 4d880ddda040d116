"""The rate-limit run: how close qatlan's apply gets to Atlan's limit without a 429.

The sandbox's Atlan limit and qatlan's own `[atlan] requests_per_minute` are both set to
`LIMIT`. The S world is refreshed and planned (unmeasured), then its first apply runs while
a thread samples the Atlan request count every second. With the default batch size the S
apply makes fewer Atlan requests than one minute's budget, which says nothing about the
sustained rate (a limiter that allows a burst passes a short run at once), so this run uses
`[atlan] batch_size = BATCH_SIZE`: about three minutes' budget, from the same plan. The sustained
rate is the apply's Atlan requests divided by the time between its first and last Atlan
request; the busiest 60-second window is reported too.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from harness import QATLAN, SandboxProc, proc_cpu_seconds, run_child, write_config
from measure import child_record, summarize_stats
from sizes import plan_flags

LIMIT = 2400
#: the S world: bigger worlds make the sandbox's own index search the bottleneck
SPEC = "tables=1000,seed=1"
#: entities per bulk write in this run, so that the S apply needs about three minutes at LIMIT
BATCH_SIZE = 3


class Sampler(threading.Thread):
    """Samples (seconds since start, Atlan request count, 429 count) every `every` seconds."""

    def __init__(self, sandbox: SandboxProc, every: float = 1.0):
        super().__init__(daemon=True)
        self.sandbox, self.every = sandbox, every
        self.samples: list[tuple[float, int, int]] = []
        self.stop_event = threading.Event()
        self.started_at = time.monotonic()

    def run(self) -> None:
        while not self.stop_event.is_set():
            stats = self.sandbox.call("atlan", "GET", "stats")
            t = time.monotonic() - self.started_at
            self.samples.append((t, stats["total"]["count"], int(stats["total"]["status"].get("429", 0))))
            self.stop_event.wait(self.every)


def rates(samples: list[tuple[float, int, int]], limit: int) -> dict[str, Any]:
    """The apply's Atlan request rate from the 1-second samples.

    `per_minute`: requests in each 60 s from the first request (the last one may be partial);
    `sustained_per_minute`: the mean over the complete minutes (over the whole active time
    when there is none); `average_per_minute`: over the active time (a sliding-window limit
    lets one minute's budget through at once, so for short runs it can exceed the limit);
    `longest_stall_s`: the longest time with no Atlan request while the apply still had some
    to make (e.g. waiting out a 429's Retry-After).
    """
    moving = [(t, n) for t, n, _ in samples]
    if len(moving) < 2 or moving[-1][1] == 0:
        return {"atlan_requests": moving[-1][1] if moving else 0}
    total = moving[-1][1]
    first = next(i for i, (_, n) in enumerate(moving) if n > 0)
    last = next(i for i, (_, n) in enumerate(moving) if n == total)
    t0, t1 = moving[max(0, first - 1)][0], moving[last][0]
    span = max(1e-6, t1 - t0)
    minutes = [_count_at(moving, t0 + 60 * (k + 1)) - _count_at(moving, t0 + 60 * k)
               for k in range(int(span // 60) + 1)]
    complete = minutes[: int(span // 60)]
    sustained = sum(complete) / len(complete) if complete else total / span * 60
    return {"atlan_requests": total, "active_seconds": round(span, 1), "per_minute": minutes,
            "complete_minutes": len(complete),
            "sustained_per_minute": round(sustained, 1), "sustained_share": round(sustained / limit, 3),
            "average_per_minute": round(total / span * 60, 1),
            "busiest_60s": _busiest(moving), "busiest_60s_share": round(_busiest(moving) / limit, 3),
            "longest_stall_s": round(_longest_stall(moving[first - 1 if first else 0: last + 1]), 1)}


def _count_at(moving: list[tuple[float, int]], t: float) -> int:
    inside = [n for u, n in moving if u <= t]
    return inside[-1] if inside else 0


def _busiest(moving: list[tuple[float, int]]) -> int:
    return max(_count_at(moving, t + 60.0) - n for t, n in moving)


def _longest_stall(moving: list[tuple[float, int]]) -> float:
    longest, since = 0.0, None
    for (t, n), (u, m) in zip(moving, moving[1:]):
        if m == n:
            since = t if since is None else since
            longest = max(longest, u - since)
        else:
            since = None
    return longest


def run_ratelimit(workdir: Path, spec: str = SPEC, limit: int = LIMIT, batch_size: int = BATCH_SIZE,
                  log=print) -> dict[str, Any]:
    """The whole rate-limit run in its own sandbox."""
    config = workdir / "qatlan.toml"
    with SandboxProc(spec, workdir) as sandbox:
        env = write_config(config, sandbox.ready, atlan_rpm=limit, atlan_batch_size=batch_size)
        sandbox.set_atlan_limit(limit)
        prep = [run_child([*QATLAN, "refresh", "--full", "-c", str(config)], env=env, log=workdir / "refresh")]
        plan_file = workdir / "plan.json"
        flags = plan_flags()
        prep.append(run_child([*QATLAN, "plan", "--no-refresh", *flags, "--out", str(plan_file), "-c", str(config)],
                              env=env, log=workdir / "plan"))
        if any(p.returncode != 0 for p in prep) or not plan_file.exists():
            return {"spec": spec, "limit": limit, "error": [p.stderr[-500:] for p in prep]}
        sandbox.set_atlan_limit(limit)  # a fresh 60 s window: the refresh's requests do not count
        sandbox.reset_stats()
        sampler = Sampler(sandbox)
        cpu_before = proc_cpu_seconds(sandbox.pid)
        sampler.start()
        run = run_child([*QATLAN, "apply", str(plan_file), "-c", str(config)], env=env, log=workdir / "apply")
        time.sleep(1.1)
        sampler.stop_event.set()
        sampler.join()
        stats = summarize_stats(sandbox.stats())
        result = {"spec": spec, "limit": limit, "client_requests_per_minute": limit, "batch_size": batch_size,
                  "apply": {**child_record(run), "sandbox_cpu_s": round(proc_cpu_seconds(sandbox.pid) - cpu_before, 3),
                            "requests": stats},
                  "rates": rates(sampler.samples, limit),
                  "atlan_429": stats["atlan"]["status_429"], "qualytics_429": stats["qualytics"]["status_429"],
                  "samples": sampler.samples}
    r = result["rates"]
    log(f"rate limit: {r.get('atlan_requests')} Atlan requests, sustained {r.get('sustained_per_minute')}/min "
        f"({r.get('sustained_share', 0):.0%} of {limit}), 429s: {result['atlan_429']}")
    (workdir / "ratelimit.json").write_text(json.dumps(result))
    return result
