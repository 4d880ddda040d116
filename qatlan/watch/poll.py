"""Polling, the source of work keys that needs no webhook: what changed on either side since
the state last saw it, as keys of tables to reconcile.

- Qualytics: the container list of the synced datastores (pages of 100). A container whose
  `last_profiled`, `last_scanned`, active check or anomaly count differs from the state's
  (an operation finished, an anomaly was resolved, a check archived), or that is new or
  gone, is a `q:c:` key. This is the fall-back events.md names for deployments without a
  Flow; Qualytics' operation list would say the same per datastore (the sandbox has none).
- Atlan: tables, views and columns of the synced connections modified since the last poll
  (minus a margin for index lag), the archived ones included. One whose update time is newer
  than the state's record of it is an `a:` key of its table (tags, announcements and custom
  metadata all move the update time).

  An update that qatlan made itself is not a change (an *echo*): every apply records, for
  each asset it wrote, the asset's update time re-read before the write and read back after
  it (`echo_stamps`, `qatlan.apply.atlan`). A hit is skipped when a chain of such stamps
  leads from the state's update time of the asset to the hit's, i.e. every update since the
  state last read the asset was one of qatlan's writes. Known window: a person's write that
  lands between qatlan's re-read and its read-back is folded into qatlan's stamp, and waits
  for the periodic full resync (or the next event on that table).

What neither signal shows (a tag put on a Qualytics field by hand) waits for the periodic
full resync (`[watch] resync_every`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from qatlan.match import TABLE_TYPES
from qatlan.model import QContainer
from qatlan.planner import schema_holder, scope
from qatlan.state import State
from qatlan.watch.events import atlan_key, container_key

__all__ = ["ATLAN_MARK", "MARGIN_MS", "PollStopped", "is_echo", "poll_keys"]

#: the newest Atlan update time a poll saw (epoch ms), in `watch_marks`
ATLAN_MARK = "atlan_polled_ms"
#: how far back of that a poll reads: Atlan's search index lags its writes by seconds
#: (UNCONFIRMED how many; pyatlan calls search "eventually consistent"; what a poll misses
#: this way waits for the next full resync). Kept short: every asset written within the
#: margin comes back, page by page, on the poll's share of the rate limit
MARGIN_MS = 10 * 1000
_POLLED_TYPES = (*sorted(TABLE_TYPES), "Column")


def _signature(c: QContainer) -> tuple:
    return (c.last_profiled, c.last_scanned, c.active_checks, c.active_anomalies)


def is_echo(known: int | None, now: int | None, stamps: Iterable[tuple[int, int]]) -> bool:
    """Whether qatlan's own writes (their (before, after) update times) lead from the update
    time the state knows, `known`, to the one Atlan has `now`."""
    if not known or not now:
        return False
    reached, pairs = {known}, list(stamps)
    grew = True
    while grew and now not in reached:
        more = {after for before, after in pairs if before in reached} - reached
        reached |= more
        grew = bool(more)
    return now in reached


class PollStopped(Exception):
    """The watcher is stopping: the poll gave up between two pages (its keys are not lost:
    the next poll reads from the same watermark)."""


async def poll_keys(st: State, clients: Any, settings: Any, rules: Any,
                    stopping: Callable[[], bool] = lambda: False) -> list[str]:
    """Keys of the tables that changed on either side since the state last saw them.
    `stopping` is asked between Atlan result pages; when it says so, PollStopped."""
    sid = st.latest_snapshot_id()
    if sid is None:
        return []
    shared = st.load_shared(sid)
    sc = scope(shared, settings, rules, st.used_domains(sid) if settings.domains else None)
    ds_ids = sorted(sc.prefixes)
    keys: list[str] = []
    if ds_ids:
        now = {c.id: c for c in await clients.qualytics.containers(ds_ids)}
        known = {c.id: c for c in st.load_snapshot(sid, kinds=("q.container",)).containers.values()
                 if c.datastore_id in sc.prefixes}
        keys += [container_key(i) for i, c in now.items()
                 if i not in known or _signature(known[i]) != _signature(c)]
        keys += [container_key(i) for i in known if i not in now]
    conns = sorted({m.connection_qn for m in sc.matches.datastores.values()})
    if conns:
        # the newer of the poll's own mark and what the latest snapshot read: after a full
        # resync (or a refresh by hand) nothing older needs paging through again (at M, the
        # first sync's writes alone are ~200,000 columns: 20 minutes of a poll's budget)
        mark = max(int(st.watch_mark(ATLAN_MARK) or 0),
                   int(st.watermarks(sid).get("atlan_max_update_time") or 0))
        by_schema = {prefix: ds_id for ds_id, prefix in sc.prefixes.items()}
        hits = []
        async for a in clients.atlan.assets(conns, type_names=_POLLED_TYPES,
                                            modified_since_ms=max(0, int(mark) - MARGIN_MS)):
            hits.append(a)
            if len(hits) % 100 == 0 and stopping():
                raise PollStopped()
        stored = st.load_by_key(sid, "a.asset", [a.guid for a in hits])
        stamps = st.echo_stamps([a.guid for a in hits if a.guid in stored])
        newest = int(mark)
        for a in hits:
            newest = max(newest, a.update_time or 0)
            before = stored.get(a.guid)
            if before is not None and a.status == before.status and (
                    (a.update_time or 0) <= (before.update_time or 0)
                    or is_echo(before.update_time, a.update_time, stamps.get(a.guid, ()))):
                continue
            table = a.qualified_name if a.type_name in TABLE_TYPES else (a.parent_qn or "")
            if table and schema_holder(table, by_schema):
                keys.append(atlan_key(table))
        st.set_watch_mark(ATLAN_MARK, newest)
    return list(dict.fromkeys(keys))
