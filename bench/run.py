"""Benchmark qatlan over real HTTP against the sandbox, per world size, and write the report.

    .venv/bin/python bench/run.py --sizes S,M [--out bench/results]

Sizes: S (tables=1000), M (tables=10000, ~200,000 columns), L (tables=100000; takes long).
For each size it writes `<out>/<size>.json`; `--ratelimit` (on by default with S) adds
`<out>/ratelimit.json`. Then it regenerates the results section of docs/performance.md from
every JSON file in `<out>` (`--no-report` skips that; `--report-only` only does that).
Work files (sandbox log, state, plans, qatlan's output) go to a temporary folder, kept with
`--keep`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from harness import ROOT, machine
from ratelimit import run_ratelimit
from report import update_docs
from sizes import SIZES, SizeRun

DEFAULT_OUT = ROOT / "bench" / "results"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="S,M", help="comma-separated: S, M, L (default S,M)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder (default bench/results)")
    parser.add_argument("--ratelimit", choices=("auto", "yes", "no"), default="auto",
                        help="the rate-limit run (auto: when S is among the sizes)")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive baseline")
    parser.add_argument("--no-apply", action="store_true",
                        help="stop after the first plan (no apply, no-op plan or no-op apply)")
    parser.add_argument("--no-report", action="store_true", help="do not update docs/performance.md")
    parser.add_argument("--report-only", action="store_true", help="only regenerate the report")
    parser.add_argument("--keep", action="store_true", help="keep the work folders")
    args = parser.parse_args(argv)
    args.sizes = [s.strip().upper() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in args.sizes if s not in SIZES]
    if unknown:
        parser.error(f"unknown size {unknown[0]!r}; sizes are {', '.join(SIZES)}")
    return args


def _log(message: str) -> None:
    print(message, flush=True)


def _work(name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"qatlan-bench-{name}-"))


def _write(out: Path, name: str, doc: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    _log(f"  -> {out / (name + '.json')}")


def run_sizes(args: argparse.Namespace) -> None:
    for size in args.sizes:
        workdir = _work(size)
        try:
            result = SizeRun(size, SIZES[size], workdir, log=_log).run(naive=not args.no_naive,
                                                                       apply=not args.no_apply)
            result["options"] = {"naive": not args.no_naive, "apply": not args.no_apply}
            result["machine"] = machine()
            result["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            _write(args.out, size, result)
        finally:
            if args.keep:
                _log(f"  work files: {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    if args.ratelimit == "yes" or (args.ratelimit == "auto" and "S" in args.sizes):
        workdir = _work("ratelimit")
        try:
            result = run_ratelimit(workdir, log=_log)
            result["machine"] = machine()
            _write(args.out, "ratelimit", result)
        finally:
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    started = time.monotonic()
    if not args.report_only:
        run_sizes(args)
        _log(f"done in {time.monotonic() - started:.0f} s")
    if not args.no_report:
        path = update_docs(args.out)
        _log(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
