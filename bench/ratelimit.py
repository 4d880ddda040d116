"""The rate-limit run: how close qatlan's apply gets to Atlan's limit without a 429.

The sandbox's Atlan limit and qatlan's own `[atlan] requests_per_minute` are both set to
`LIMIT`; a world big enough that the first apply's Atlan requests last over a minute is
refreshed and planned (unmeasured), then the apply runs while a thread samples the Atlan
request count every second. The sustained rate is the Atlan requests of the apply divided
by the time between its first and last Atlan request; the busiest 60-second window is
reported too.
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
#: 3x the S world: S's first apply makes too few Atlan requests to last a minute at 2,400/min
SPEC = "tables=3000,seed=1"


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
    """Sustained rate between the first and last Atlan request, and the busiest 60 s."""
    moving = [(t, n) for t, n, _ in samples]
    if len(moving) < 2 or moving[-1][1] == 0:
        return {"atlan_requests": moving[-1][1] if moving else 0}
    first = next(i for i, (_, n) in enumerate(moving) if n > 0)
    last = next(i for i in range(len(moving) - 1, -1, -1) if moving[i][1] < moving[-1][1]) + 1
    t0 = moving[max(0, first - 1)][0]
    t1 = moving[min(last, len(moving) - 1)][0]
    span = max(1e-6, t1 - t0)
    total = moving[-1][1]
    busiest = 0
    for i, (t, n) in enumerate(moving):
        later = [m for u, m in moving[i:] if u - t <= 60.0]
        busiest = max(busiest, later[-1] - n)
    per_min = total / span * 60
    return {"atlan_requests": total, "active_seconds": round(span, 1),
            "sustained_per_minute": round(per_min, 1), "sustained_share": round(per_min / limit, 3),
            "busiest_60s": busiest, "busiest_60s_share": round(busiest / limit, 3)}


def run_ratelimit(workdir: Path, spec: str = SPEC, limit: int = LIMIT, log=print) -> dict[str, Any]:
    """The whole rate-limit run in its own sandbox."""
    config = workdir / "qatlan.toml"
    with SandboxProc(spec, workdir) as sandbox:
        env = write_config(config, sandbox.ready, atlan_rpm=limit)
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
        result = {"spec": spec, "limit": limit, "client_requests_per_minute": limit,
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
