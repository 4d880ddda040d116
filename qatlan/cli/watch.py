"""`qatlan watch`: the long-running reconciler (glue over qatlan.watch)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import typer

from qatlan.cli.common import CONFIG_OPTION, STATE_OPTION, handle_errors, load, state_path

commands = typer.Typer()


@commands.command()
@handle_errors
def watch(
    log_format: str = typer.Option("text", "--log-format", help="text or json (one object per line)."),
    listen: str = typer.Option(None, "--listen", help="host:port to listen on (default: \\[watch] listen)."),
    lock_timeout: float = typer.Option(600.0, "--lock-timeout", min=0,
                                       help="Seconds each reconcile waits for a `qatlan plan`/`apply` run by hand."),
    config: Path = CONFIG_OPTION,
    state: Path = STATE_OPTION,
) -> None:
    """Sync on events: reconcile the tables that Atlan webhooks, Qualytics Flows and polling name.

    Runs until SIGTERM or Ctrl-C: the current batch finishes, queued tables stay in the state.

    Webhook secrets come from QATLAN_ATLAN_WEBHOOK_SECRET and QATLAN_QUALYTICS_FLOW_SECRET only (both required beyond loopback).

    GET /healthz and GET /metrics (Prometheus) are served on the same listener. See docs/watch.md.

    Example: qatlan watch --log-format json
    """
    import asyncio

    from qatlan.cli.common import fail
    from qatlan.watch import ATLAN_SECRET_ENV, QUALYTICS_SECRET_ENV, JsonFormatter, TextFormatter, Watcher

    if log_format not in ("text", "json"):
        raise fail(f"--log-format {log_format!r} is not text or json", hint="pass --log-format text or json")
    cfg = load(config)
    if listen is not None:
        cfg = cfg.model_copy(update={"watch": cfg.watch.model_validate({**cfg.watch.model_dump(), "listen": listen})})
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    log = logging.getLogger("qatlan.watch")
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
    watcher = Watcher(cfg, state_path(cfg, state),
                      atlan_secret=os.environ.get(ATLAN_SECRET_ENV) or None,
                      qualytics_secret=os.environ.get(QUALYTICS_SECRET_ENV) or None,
                      lock_timeout=lock_timeout)
    asyncio.run(watcher.run())
