"""Text for an apply result (rendering only; the CLI writes it)."""

from __future__ import annotations

from qatlan._apply.result import ApplyResult, Outcome

__all__ = ["summary"]

#: changes not applied listed one by one up to this many
LIST_LIMIT = 20


def summary(result: ApplyResult) -> str:
    """Terraform-style closing lines: resources, the other outcomes, requests, what was left."""
    n = result.counts()
    head = "Apply complete!" if result.ok else "Apply finished with errors!"
    lines = [f"{head} Resources: {n['added']} added, {n['changed']} changed, {n['destroyed']} destroyed."]
    others = [f"{n[o.value]} {o.value}" for o in (Outcome.ALREADY, Outcome.DRIFTED, Outcome.FAILED, Outcome.SKIPPED)]
    lines.append("  Also: " + ", ".join(others) + (f"; {n['earlier']} settled by an earlier run of this plan"
                                                  if n["earlier"] else "") + ".")
    lines.append(_requests(result))
    lines += _not_applied(result)
    if n["drifted"]:
        lines.append("Drifted changes were not written: their targets changed since the plan. "
                     "Run `qatlan plan` to see what to do now.")
    return "\n".join(lines)


def _requests(result: ApplyResult) -> str:
    parts = []
    for service, label in (("atlan", "Atlan"), ("qualytics", "Qualytics")):
        total = result.requests.get(service, 0)
        writes = sum(v for k, v in result.writes.items() if k.startswith(service + " "))
        parts.append(f"{total} to {label} ({writes} writes)")
    return "  Requests: " + ", ".join(parts) + "."


def _not_applied(result: ApplyResult) -> list[str]:
    shown = [r for r in result.results
             if not r.earlier and r.outcome in (Outcome.DRIFTED, Outcome.SKIPPED)]
    if not shown:
        return []
    lines = ["Not applied:"]
    lines += [f"  {r.address} ({r.outcome.value}): {r.error}" for r in shown[:LIST_LIMIT]]
    if len(shown) > LIST_LIMIT:
        lines.append(f"  ... and {len(shown) - LIST_LIMIT} more")
    return lines
