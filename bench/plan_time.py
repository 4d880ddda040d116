"""Planning time, in-process: load the state's latest snapshot, then time `match()` + `plan()`.

    .venv/bin/python bench/plan_time.py --config qatlan.toml [--repeat 2] [--out FILE]

Only the pure functions are timed: no HTTP, no state writes. Loading the snapshot is timed
separately. Memory: the process's peak RSS before and after matching and planning (the
growth is what match + plan needed on top of the loaded snapshot), and, in one more run,
the peak of Python allocations made during match + plan as `tracemalloc` counts them
(tracemalloc slows the code down, so that run is not timed).
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from harness import emit_json  # bench/ is on sys.path: this runs as a script
from qatlan.config import load_config
from qatlan.match import match, resolve_domains
from qatlan.planner import plan
from qatlan.pipeline import PlanOptions, settings_from
from qatlan.state import State


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _once(snapshot: Any, settings: Any, rules: Any, owned: Any, base: Any) -> tuple[float, float, Any]:
    domain_guids = None
    started = time.perf_counter()
    if settings.domains:
        domain_guids = resolve_domains(snapshot.domains, settings.domains, snapshot.assets)
    matches = match(snapshot, rules, domain_guids)
    matched = time.perf_counter()
    result = plan(snapshot, settings, rules=rules, owned=owned, matches=matches, base=base,
                  created_at="2026-01-01T00:00:00Z")
    return matched - started, time.perf_counter() - matched, result


def measure(config_path: Path, repeat: int, create_definitions: bool) -> dict[str, Any]:
    config = load_config(config_path)
    settings = settings_from(config, PlanOptions(create_definitions=create_definitions))
    rules = config.mappings
    with State.open(Path(config.state.path)) as state:
        started = time.perf_counter()
        snapshot = state.load_snapshot()
        load_s = time.perf_counter() - started
        owned = state.owned()
        base = {"lineage": state.lineage, "serial": state.serial, "snapshot_id": state.latest_snapshot_id()}
    gc.collect()
    rss_before, peak_before = _rss_mb(), _peak_mb()
    runs = []
    for _ in range(max(1, repeat)):
        match_s, plan_s, result = _once(snapshot, settings, rules, owned, base)
        runs.append({"match_s": round(match_s, 3), "plan_s": round(plan_s, 3),
                     "total_s": round(match_s + plan_s, 3)})
        del result
        gc.collect()
    peak_after = _peak_mb()
    tracemalloc.start()
    _, _, result = _once(snapshot, settings, rules, owned, base)
    traced_peak = tracemalloc.get_traced_memory()[1] / 1024 / 1024
    tracemalloc.stop()
    best = min(runs, key=lambda r: r["total_s"])
    return {
        "snapshot": {"assets": len(snapshot.assets), "fields": len(snapshot.fields),
                     "containers": len(snapshot.containers), "load_s": round(load_s, 3)},
        "plan_changes": len(result.changes), "plan_unchanged": result.unchanged,
        "runs": runs, "best": best,
        "rss_after_load_mb": round(rss_before, 1),
        "peak_rss_mb": round(max(peak_after, peak_before), 1),
        "peak_rss_growth_mb": round(max(0.0, peak_after - rss_before), 1),
        "tracemalloc_peak_mb": round(traced_peak, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="qatlan.toml of the run")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs (the best is reported)")
    parser.add_argument("--create-definitions", action="store_true", help="as `qatlan plan` with it")
    parser.add_argument("--out", type=Path, default=None, help="write the result JSON here")
    args = parser.parse_args(argv)
    emit_json(measure(args.config, args.repeat, args.create_definitions), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
