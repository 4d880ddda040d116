"""Serve a generated sandbox world over real HTTP for the benchmarks, in its own process.

    .venv/bin/python bench/serve.py --spec tables=1000,seed=1 --ready /tmp/ready.json

Generates the world, starts the Atlan and Qualytics sandbox servers on free loopback ports,
then writes a small JSON "ready" file (URLs, tokens, the world's `meta`, how long generating
took) and serves until SIGTERM or Ctrl-C. The Atlan rate limit starts at `--atlan-rpm`
(default 0 = unlimited); the harness changes it through `PUT /_sandbox/limits`.

This is `qatlan sandbox up --generate SPEC --atlan-port 0 --qualytics-port 0` minus the
banner, plus the ready file (so the harness need not parse text or export a 2 GB world to
learn the mapping).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

from qatlan.sandbox.generate import generate_world
from qatlan.sandbox.ops import OpsSettings
from qatlan.sandbox.server import Sandbox, world_tokens
from qatlan.sandbox.world import World


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", required=True, help="generator spec, e.g. tables=1000,seed=1")
    parser.add_argument("--ready", required=True, type=Path, help="where to write the ready JSON")
    parser.add_argument("--atlan-rpm", type=int, default=0, help="Atlan rate limit (0 = none)")
    return parser.parse_args(argv)


def _build(spec: str, atlan_rpm: int) -> tuple[Sandbox, dict, float]:
    started = time.monotonic()
    doc = generate_world(spec)
    meta = dict(doc.get("meta") or {})
    tokens = world_tokens(doc)
    world = World(doc)
    del doc
    # the world lives as long as the process: keep the cyclic GC from re-scanning it on
    # every collection (the stores themselves pause GC while building their indexes)
    gc.collect()
    gc.freeze()
    sandbox = Sandbox(world, atlan_ops=OpsSettings(requests_per_minute=atlan_rpm))
    return sandbox, {"meta": meta, "tokens": tokens}, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    sandbox, info, seconds = _build(args.spec, args.atlan_rpm)
    sandbox.start("127.0.0.1", 0, 0)
    ready = {
        **info,
        "atlan_url": sandbox.atlan_url,
        "qualytics_url": sandbox.qualytics_url,
        "pid": os.getpid(),
        "build_seconds": round(seconds, 2),
    }
    tmp = args.ready.with_suffix(".tmp")
    tmp.write_text(json.dumps(ready), encoding="utf-8")
    tmp.replace(args.ready)  # the harness polls for this file: write it atomically
    sandbox.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
