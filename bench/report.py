"""Render bench/results/*.json as Markdown and put it in docs/performance.md between markers.

    .venv/bin/python bench/report.py [--out bench/results]

Every number in the section comes from the JSON files; nothing is typed by hand. A target a
figure misses is marked **MISS** with the figure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from harness import ROOT
from measure import bound_by

DOC = ROOT / "docs" / "performance.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
ORDER = ("S", "M", "L")
STEP_NAMES = {
    "refresh_full": "full refresh", "refresh_incremental": "incremental refresh (1% changed)",
    "plan": "plan --no-refresh", "plan_again": "plan again, nothing changed", "apply": "first apply", "refresh_after_apply": "refresh after apply",
    "plan_noop": "no-op plan", "apply_noop": "no-op apply", "plan_noop_again": "no-op plan again",
}
PLAN_TIME_S, PLAN_MEM_MB, WITHIN = 5.0, 1024.0, 1.10
#: CPU seconds a plan with nothing changed since the last one may take (issue 13)
PLAN_AGAIN_CPU_S = 5.0
#: issue 15: a change reaches the other side within this many seconds at p95
WATCH_P95_S = 10.0


def _n(x: Any) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:,.1f}" if x < 100 else f"{x:,.0f}"
    return f"{x:,}"


def _sec(x: float | None) -> str:
    """Seconds of latency, to the hundredth (a 10.02 s p95 misses a 10 s goal)."""
    return "–" if x is None else f"{x:,.2f}"


def _ratio(actual: int, minimum: int | None) -> str:
    if minimum is None:
        return "–"
    if minimum == 0:
        return "0 needed" if actual == 0 else f"**{actual} over 0**"
    return f"{actual / minimum:.2f}×"


def load(out: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json"))}


# --------------------------------------------------------------------------- sections


def machine_section(results: dict[str, Any]) -> list[str]:
    any_result = next(iter(results.values()))
    m = any_result.get("machine", {})
    dates = sorted({r.get("finished_at", "")[:10] for r in results.values() if r.get("finished_at")})
    return [
        f"Machine: {m.get('nproc')} CPUs ({m.get('cpu') or 'unknown model'}), {m.get('memory_gb')} GB memory, "
        f"Python {m.get('python')}, {m.get('platform')}. Run on {', '.join(dates) or 'unknown date'}. "
        "The sandbox and qatlan share these CPUs.", "",
    ]


def step_table(r: dict[str, Any]) -> list[str]:
    cores = (r.get("machine") or {}).get("nproc") or 1
    lines = [
        "| step | wall s | qatlan peak RSS MB | requests Atlan / Qualytics | reads (min, ratio) | "
        "writes (min, ratio) | 429s | bound by |",
        "|---|---:|---:|---|---|---|---:|---|",
    ]
    for s in r["steps"]:
        req, m = s["requests"], s.get("minimum") or {}
        rc = "" if s["returncode"] == 0 else f" (exit {s['returncode']})"
        lines.append(
            f"| {STEP_NAMES.get(s['step'], s['step'])}{rc} | {_n(s['wall_s'])} | {_n(s['peak_rss_mb'])} | "
            f"{_n(req['atlan']['total'])} / {_n(req['qualytics']['total'])} | "
            f"{_n(req['reads'])} ({_n(m.get('reads'))}, {_ratio(req['reads'], m.get('reads'))}) | "
            f"{_n(req['writes'])} ({_n(m.get('writes'))}, {_ratio(req['writes'], m.get('writes'))}) | "
            f"{req['status_429']} | {bound_by(s, cores)} |")
    return lines


def endpoint_details(r: dict[str, Any]) -> list[str]:
    lines = ["<details><summary>Requests by endpoint and method, per step</summary>", "",
             "| step | side | method | path | count | statuses |", "|---|---|---|---|---:|---|"]
    for s in r["steps"] + ([r["naive"]] if r.get("naive") else []):
        for side in ("atlan", "qualytics"):
            for e in s["requests"][side]["endpoints"]:
                statuses = ", ".join(f"{k}: {v}" for k, v in sorted(e["status"].items()))
                lines.append(f"| {s['step']} | {side} | {e['method']} | `{e['path']}` | {_n(e['count'])} | {statuses} |")
    return lines + ["", "</details>", ""]


def plan_time_line(r: dict[str, Any]) -> list[str]:
    pt = r.get("plan_time")
    if not pt or "best" not in pt:
        return [f"Planning time: not measured ({(pt or {}).get('error', 'no result')})."]
    best, snap = pt["best"], pt["snapshot"]
    return [
        f"Planning time (in-process, `match()` + `plan()` on the latest snapshot of {_n(snap['assets'])} "
        f"Atlan assets and {_n(snap['fields'])} Qualytics fields, {_n(pt['plan_changes'])} changes planned; "
        f"best of {len(pt['runs'])}): **{best['total_s']:.2f} s** (match {best['match_s']:.2f} s, plan "
        f"{best['plan_s']:.2f} s); loading the snapshot from the state took {snap['load_s']:.2f} s. Memory: "
        f"peak RSS {_n(pt['peak_rss_mb'])} MB for the whole process (snapshot loaded: {_n(pt['rss_after_load_mb'])} MB; "
        f"match + plan added {_n(pt['peak_rss_growth_mb'])} MB; tracemalloc peak of match + plan "
        f"{_n(pt['tracemalloc_peak_mb'])} MB).",
    ]


def _step(r: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((s for s in r["steps"] if s["step"] == name), None)


def target_rows(size: str, r: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(target, figure, met) for one size."""
    rows = []
    for s in r["steps"]:
        m, req = s.get("minimum"), s["requests"]
        if not m:
            continue
        label = STEP_NAMES.get(s["step"], s["step"])
        for kind in ("reads", "writes"):
            if m[kind] == 0 and req[kind] == 0:
                continue
            ok = req[kind] <= m[kind] * WITHIN if m[kind] else req[kind] == 0
            rows.append((f"{size} {label}: {kind} within 10% of the minimum",
                         f"{_n(req[kind])} vs {_n(m[kind])} ({_ratio(req[kind], m[kind])})", ok))
    for name, what in (("plan_again", "the first plan again"), ("plan_noop_again", "the no-op plan again")):
        again = _step(r, name)
        if again:
            rows.append((f"{size} {what}, nothing changed, under {PLAN_AGAIN_CPU_S:.0f} s CPU",
                         f"{again['cpu_s']:.1f} s CPU, {_n(again['peak_rss_mb'])} MB peak RSS",
                         again["cpu_s"] < PLAN_AGAIN_CPU_S))
    noop_plan = _step(r, "plan_noop")
    if noop_plan and "plan_summary" in noop_plan:
        summary = noop_plan["plan_summary"]
        changes = summary.get("add", 0) + summary.get("change", 0) + summary.get("destroy", 0)
        parts = ", ".join(f"{n} {k}" for k, n in sorted(summary.get("by_part", {}).items()))
        rows.append((f"{size} no-op plan (after apply and refresh): no changes",
                     f"{changes} changes" + (f" ({parts})" if parts else ""), changes == 0))
    noop = _step(r, "apply_noop")
    if noop:
        rows.append((f"{size} no-op apply: zero writes", f"{noop['requests']['writes']} writes",
                     noop["requests"]["writes"] == 0))
    full, inc = _step(r, "refresh_full"), _step(r, "refresh_incremental")
    if full and inc:
        share = inc["requests"]["total"] / max(1, full["requests"]["total"])
        rows.append((f"{size} incremental refresh under 10% of a full refresh's requests",
                     f"{_n(inc['requests']['total'])} vs {_n(full['requests']['total'])} ({share:.1%})", share < 0.10))
    pt = r.get("plan_time") or {}
    if size == "M" and "best" in pt:
        rows.append(("M planning time < 5 s", f"{pt['best']['total_s']:.2f} s", pt["best"]["total_s"] < PLAN_TIME_S))
        rows.append(("M planning memory < 1 GB", f"{_n(pt['peak_rss_mb'])} MB peak RSS",
                     pt["peak_rss_mb"] < PLAN_MEM_MB))
    failed = [s["step"] for s in r["steps"] if s["returncode"] != 0]
    rows.append((f"{size} every step exits 0", ", ".join(failed) or "all 0", not failed))
    return rows


def targets_section(results: dict[str, Any]) -> list[str]:
    lines = ["| target | figure | met |", "|---|---|---|"]
    for size in ORDER:
        if size in results:
            for target, figure, ok in target_rows(size, results[size]):
                lines.append(f"| {target} | {figure} | {'yes' if ok else '**MISS**'} |")
    if "S" in results and "M" in results:
        total = results["S"]["wall_s"] + results["M"]["wall_s"]
        lines.append(f"| S and M size runs together under 10 minutes | {_n(total)} s | "
                     f"{'yes' if total < 600 else '**MISS**'} |")
    rl = results.get("ratelimit")
    if rl and "rates" in rl:
        share = _rates(rl).get("sustained_share") or 0
        lines.append(f"| rate limit: sustained Atlan rate ≥ 95% of {rl['limit']}/min, no 429 | "
                     f"{share:.0%}, {rl['atlan_429']} 429s | {'yes' if share >= 0.95 and not rl['atlan_429'] else '**MISS**'} |")
    w = results.get("watch")
    if w and "phases" in w:
        events, loss, dup = (w["phases"].get(k, {}) for k in ("events", "loss", "duplicates"))
        p95 = (events.get("latency") or {}).get("p95_s")
        ok = p95 is not None and p95 <= WATCH_P95_S and not events.get("not_landed")
        lines.append(f"| watch at M: a change reaches the other side within {WATCH_P95_S:.0f} s at p95 "
                     f"({(events.get('latency') or {}).get('n', 0)} events) | p95 {_sec(p95)} s | {'yes' if ok else '**MISS**'} |")
        lost = loss.get("not_landed") or []
        lines.append(f"| watch, every event lost: every change lands by polling | {len(lost)} not landed | "
                     f"{'yes' if loss.get('latency') and not lost else '**MISS**'} |")
        extra = (dup.get("writes_after_settling") or 0) - (dup.get("writes_when_landed") or 0)
        lines.append(f"| watch, every event twice and reordered: no extra write | {extra} extra | "
                     f"{'yes' if dup and extra == 0 and not dup.get('not_landed') else '**MISS**'} |")
    return lines + [""]


def watch_section(results: dict[str, Any]) -> list[str]:
    w = results.get("watch")
    if not w or "phases" not in w:
        return ["The watch benchmark was not run (`bench/watch.py`).", ""]
    rows = []
    for name, label in (("events", "events delivered"), ("loss", "every event lost (polling)"),
                        ("duplicates", "every event twice, reordered")):
        ph = w["phases"].get(name)
        if not ph:
            continue
        lat, per = ph.get("latency") or {}, ph.get("requests_per_event") or {}
        rows.append(f"| {label} | {lat.get('n', 0)} | {_sec(lat.get('p50_s'))} | {_sec(lat.get('p95_s'))} | "
                    f"{_sec(lat.get('max_s'))} | {_n(per.get('atlan'))} / {_n(per.get('qualytics'))} | "
                    f"{_n(ph.get('writes_when_landed'))} → {_n(ph.get('writes_after_settling'))} | "
                    f"{len(ph.get('not_landed') or [])} |")
    cron, proc = w.get("cron") or {}, w.get("watch_process") or {}
    model, per = cron.get("latency_model") or {}, cron.get("requests_per_event") or {}
    return [
        f"World `{w['spec']}`, Atlan at {_n(w['atlan_rpm'])} requests/min, `qatlan watch` (debounce 2 s, "
        f"poll 60 s); changes one every 3 s (a score from a scan, anomalies resolved, an Atlan tag on a "
        f"column), each timed from the change to its effect on the other side. The watcher's start (its "
        f"first full resync) took {_n(w.get('watch_start_s'))} s; over the run it used {_n(proc.get('cpu_s'))} s "
        f"CPU and ended at {_n(proc.get('rss_mb_at_end'))} MB RSS.",
        "",
        "| phase | changes landed | p50 s | p95 s | max s | requests per change, Atlan / Qualytics | "
        "writes when landed → after settling | not landed |",
        "|---|---:|---:|---:|---:|---|---|---:|",
        *rows,
        f"| 1-minute cron (`qatlan apply --auto-approve` after {w['events']} changes) | {w['events']} | "
        f"{_n(model.get('p50_s'))} | {_n(model.get('p95_s'))} | {_n(model.get('max_s'))} | "
        f"{_n(per.get('atlan'))} / {_n(per.get('qualytics'))} | – | 0 |",
        "",
        f"The cron's latencies are modelled: a change waits for the next tick (30 s on average, 57 s at "
        f"p95) and then the run ({_n(cron.get('run_wall_s'))} s wall, {_n(cron.get('run_cpu_s'))} s CPU, "
        f"{_n(cron.get('peak_rss_mb'))} MB peak RSS).",
        "",
    ]


def _sum(r: dict[str, Any], names: tuple[str, ...], key: str) -> float:
    steps = [s for s in r["steps"] if s["step"] in names]
    if key == "wall_s":
        return sum(s["wall_s"] for s in steps)
    return sum(s["requests"]["total"] for s in steps)


_FIRST = ("refresh_full", "plan", "apply")
_AGAIN = ("refresh_after_apply", "plan_noop", "apply_noop")


def _naive_row(size: str, r: dict[str, Any]) -> tuple[str, list[str]]:
    """One row of the naive comparison and its notes."""
    naive = r["naive"]
    ext, done = naive.get("extrapolated"), naive.get("result") or {}
    n_req = ext["requests"] if ext else naive["requests"]["total"]
    n_wall = ext["wall_s"] if ext else done.get("wall_s", naive["wall_s"])
    mark = " (extrapolated)" if ext else ""
    row = f"| {size} | {_n(n_req)}{mark} | {_n(n_wall)}{mark} | "
    if _step(r, "apply"):
        q_req, q_wall = _sum(r, _FIRST, "total"), _sum(r, _FIRST, "wall_s")
        a_req, a_wall = _sum(r, _AGAIN, "total"), _sum(r, _AGAIN, "wall_s")
        row += (f"{_n(q_req)} | {_n(q_wall)} | {n_req / max(1, q_req):.1f}× | {n_wall / max(1e-9, q_wall):.1f}× | "
                f"{_n(a_req)} | {_n(a_wall)} | {n_req / max(1, a_req):.0f}× |")
    else:
        row += "not measured (run without apply) | – | – | – | – | – | – |"
    notes = []
    if ext:
        notes.append(f"{size}: the naive run was {ext['note']}; measured "
                     f"{_n(naive['requests']['total'])} requests in {_n(done.get('wall_s'))} s.")
    cores = (r.get("machine") or {}).get("nproc") or 1
    held = [STEP_NAMES.get(s["step"], s["step"]) for s in r["steps"]
            if s["step"] in _FIRST + _AGAIN and bound_by(s, cores).startswith("the sandbox")]
    if held:
        notes.append(f"{size}: bound by the sandbox's CPU: qatlan's {', '.join(held)} (see Limits of the "
                     "sandbox), so the time ratios say more about the sandbox than about qatlan there.")
    notes.append(f"{size}: the naive script wrote custom metadata on {_n(done.get('tables_written'))} tables and "
                 f"{_n(done.get('columns_written'))} columns of the {_n(done.get('tables_synced'))} table containers "
                 f"it synced ({_n(done.get('not_found'))} lookups found nothing).")
    return row, notes


def naive_section(results: dict[str, Any]) -> list[str]:
    rows, notes = [], []
    for size in ORDER:
        r = results.get(size)
        if r and r.get("naive"):
            row, more = _naive_row(size, r)
            rows.append(row)
            notes += more
    if not rows:
        return ["The naive baseline was not run.", ""]
    intro = ["qatlan's first sync is its full refresh, plan and first apply. Its next sync is the refresh, "
             "plan and apply after that, with nothing left to write; its refresh re-reads what the first "
             "apply wrote. The naive script has no change detection, so every run costs what its first "
             "run costs. Time ratios compare a one-request-at-a-time script with qatlan's concurrent "
             "requests, both against the same sandbox.", ""]
    header = ["| size | naive requests | naive wall s | qatlan first sync: requests | wall s | requests ratio | "
              "time ratio | qatlan next sync: requests | wall s | requests ratio |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    return intro + header + rows + [""] + [f"- {n}" for n in notes] + [""]


def ratelimit_section(results: dict[str, Any]) -> list[str]:
    rl = results.get("ratelimit")
    if not rl:
        return ["The rate-limit run was not run.", ""]
    if "rates" not in rl:
        return [f"The rate-limit run failed: {rl.get('error')}", ""]
    r, a = _rates(rl), rl["apply"]
    busy = a["sandbox_cpu_s"] / max(1e-9, a["wall_s"])
    minutes = ", ".join(_n(m) for m in r.get("per_minute", []))
    return [
        f"World `{rl['spec']}`, `[atlan] batch_size = {rl.get('batch_size')}`; the sandbox's Atlan limit and "
        f"qatlan's `[atlan] requests_per_minute` both {_n(rl['limit'])}. First apply: {_n(a['wall_s'])} s wall, "
        f"exit {a['returncode']}, {_n(a['requests']['atlan']['total'])} Atlan and "
        f"{_n(a['requests']['qualytics']['total'])} Qualytics requests; the sandbox was busy {busy:.0%} of "
        f"the time{' (so it did not limit the rate)' if busy < 0.5 else ' (it may have limited the rate)'}. "
        f"Atlan requests per minute from the first: {minutes}.",
        "",
        "| Atlan requests | active s | sustained /min (complete minutes) | share of the limit | "
        "average /min over the active time | busiest 60 s | longest stall s | Atlan 429s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {_n(r.get('atlan_requests'))} | {_n(r.get('active_seconds'))} | {_n(r.get('sustained_per_minute'))} "
        f"({r.get('complete_minutes')}) | {(r.get('sustained_share') or 0):.0%} | {_n(r.get('average_per_minute'))} | "
        f"{_n(r.get('busiest_60s'))} | {_n(r.get('longest_stall_s'))} | {rl['atlan_429']} |",
        "",
        "A stall is time with no Atlan request while the apply still had requests to make.",
        "",
    ]


def _rates(rl: dict[str, Any]) -> dict[str, Any]:
    """The rates, recomputed from the raw samples when the JSON has them."""
    if rl.get("samples"):
        from ratelimit import rates

        return rates([tuple(x) for x in rl["samples"]], rl["limit"])
    return rl["rates"]


def render(results: dict[str, Any]) -> str:
    sizes = [s for s in ORDER if s in results]
    lines = ["_Generated by `bench/run.py` from `bench/results/*.json`; do not edit by hand._", ""]
    if not sizes:
        return "\n".join(lines + ["No results yet: run `.venv/bin/python bench/run.py --sizes S,M`.", ""])
    lines += machine_section({s: results[s] for s in sizes})
    lines += ["### Targets", ""] + targets_section(results)
    for size in sizes:
        r = results[size]
        summary = (r.get("summary") or {})
        q, a = summary.get("qualytics", {}), summary.get("atlan", {})
        lines += [f"### {size}: `{r['spec']}`", "",
                  f"World: {_n(q.get('containers'))} Qualytics containers, {_n(q.get('fields'))} fields; "
                  f"{_n(a.get('entities'))} Atlan entities ({_n(a.get('Column'))} columns). Sandbox built in "
                  f"{_n(r['sandbox']['build_seconds'])} s; its RSS at the end {_n(r['sandbox']['rss_mb_at_end'])} MB. "
                  f"Drift before the incremental refresh: announcements on {_n(r['drift']['atlan_tables'])} of "
                  f"{_n(r['drift']['of_atlan_tables'])} Atlan tables, new scores on "
                  f"{_n(r['drift']['qualytics_containers'])} of {_n(r['drift']['of_table_containers'])} table containers. "
                  f"Whole size run: {_n(r['wall_s'])} s."
                  + (" Run with `--no-apply`: the apply, no-op plan and no-op apply steps were not run."
                     if (r.get("options") or {}).get("apply") is False else ""), ""]
        lines += step_table(r) + [""] + plan_time_line(r) + [""] + endpoint_details(r)
    lines += ["### Naive baseline", ""] + naive_section(results)
    lines += ["### Rate-limit run", ""] + ratelimit_section(results)
    lines += ["### qatlan watch", ""] + watch_section(results)
    return "\n".join(lines)


def update_docs(out: Path, doc: Path = DOC) -> Path:
    """Replace the text between the markers of `doc` with the rendered results."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else f"# Performance\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{START}\n{render(load(out))}\n{END}{tail}", encoding="utf-8")
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="results folder")
    args = parser.parse_args(argv)
    print(update_docs(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
