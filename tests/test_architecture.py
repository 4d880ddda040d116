"""The package's shape: no import cycle, no upward arrow, one public face per package.

Read with the standard library's `ast` over every file of `qatlan/` (imports inside
functions included), so a cycle hidden behind a lazy import fails too. docs/architecture.md
describes the layers this checks.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "qatlan"

#: low to high: a package may import only from lower layers (and from itself)
LAYERS: list[set[str]] = [
    {"errors", "model", "normalize", "addresses", "_gc"},
    {"config"},
    {"plan"},
    {"match"},
    {"planner"},
    {"clients", "state"},
    {"apply"},
    {"refresh", "audit"},
    {"pipeline"},
    {"render"},
    {"watch"},
    {"cli"},
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}

#: each package's public face, pinned: changing it is a deliberate API change
PUBLIC = {
    "qatlan.config": ["AtlanConfig", "Config", "MappingConfig", "QualyticsConfig", "StateConfig",
                      "SyncConfig", "URL_ENV", "WATCH_KINDS", "WatchConfig", "init_config", "load_config", "parse_config",
                      "render_template"],
    "qatlan.plan": ["Tally", "FORMAT_VERSION", "PLAN_FILE_VERSION", "Action", "Change", "Conflict", "FileChanges", "LazyList",
                    "Plan", "SavedPlan", "StreamedChanges", "canonical_pieces", "canonical_sections", "definitions_of", "each_change",
                    "iter_json", "open_plan_file", "own", "peek_plan_file", "plan_checksum", "tally",
                    "read_plan_file", "read_saved_plan", "sign", "signature_ok", "split_array", "write_plan_file",
                    "PlanFileWriter"],
    "qatlan.match": ["LEVELS", "SKIP_REASONS", "TABLE_TYPES", "DatastoreMatch", "MatchResult",
                     "in_scope", "match", "match_datastores", "resolve_domains", "rules_by_datastore"],
    "qatlan.planner": ["ChangeSink", "PART_TYPES", "Part", "PlanSettings", "Scope", "check_removals",
                       "human_tag_names", "outside_assets", "owned_item_count", "owned_tag_index",
                       "part_snapshot", "plan", "plan_partitioned", "removal_count", "schema_holder",
                       "scope", "split"],
    "qatlan.clients": ["ASSET_TYPES", "READ_LIMIT", "RETRY_STATUSES", "AtlanClient", "Clients",
                       "Entities", "HttpClient", "HttpStats", "Names", "QualyticsClient", "gather",
                       "last_call_seconds", "open_clients", "reset_call_seconds"],
    "qatlan.state": ["INTENT", "RUN_OUTCOMES", "SCHEMA_VERSION", "LockInfo", "RecordVersion", "RunRecord", "State"],
    "qatlan.apply": ["ApplyResult", "ChangeResult", "Inconsistency", "Interrupted", "Outcome",
                     "Settled", "apply_plan", "apply_plan_async", "find_interrupted", "settle_intents",
                     "settle_open_intents"],
    "qatlan.render": ["GITHUB_LIMIT", "Progress", "apply_summary", "change_lines", "fmt", "human",
                      "human_pieces", "json", "json_pieces", "markdown", "match_json", "match_report",
                      "missing_lines", "record_history", "diff_text", "log_table", "state_at_text", "refresh_summary", "runs_table",
                      "set_no_color", "snapshots_table", "status_line", "use_color"],
    "qatlan.audit": ["CANNED_QUERIES", "DiffEntry", "Event", "asset_log", "audit_app", "flatten", "names_of", "readable_history", "state_at", "state_diff"],
    "qatlan.watch": ["ATLAN_SECRET_ENV", "AtlanEvent", "EventError", "JsonFormatter", "ListenError", "Outcome", "QUALYTICS_SECRET_ENV", "QualyticsEvent", "Reconciler", "TextFormatter", "WatchMetrics", "Watcher", "atlan_key", "build_app", "check_listen", "container_key", "datastore_key", "kind_of", "parse_atlan", "parse_key", "parse_qualytics", "poll_keys", "split_by_kind"],
    "qatlan.cli": ["app", "main"],
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}


def _bound(path: Path) -> set[str]:
    """Names a package's `__init__` binds itself (imports, functions, classes, assignments)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update(a.asname or a.name.split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


BOUND = {name: _bound(path) for name, path in MODULES.items() if path.name == "__init__.py"}


def _imports(name: str, path: Path) -> set[str]:
    """The qatlan modules `name` imports, anywhere in the file (a `from X import y` of a
    submodule y counts as importing X.y, unless X's `__init__` binds y itself)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                own = alias.name in BOUND.get(base, ()) and base != package
                found.add(sub if sub in MODULES and not own else base)
    return {m for m in found if m == "qatlan" or m.startswith("qatlan.")}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle():
    # `qatlan` itself (the version) is imported by many and imports nothing
    assert GRAPH["qatlan"] == set()
    assert _cycle(GRAPH) is None, " -> ".join(_cycle(GRAPH) or [])


def test_a_cycle_is_found_when_there_is_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_every_package_is_in_a_layer():
    packages = {_top(m) for m in MODULES} - {"", "sandbox", "__main__"}
    assert packages == set(LAYER), packages ^ set(LAYER)


def test_no_arrow_runs_upward_or_sideways():
    wrong = []
    for module, imported in GRAPH.items():
        source = _top(module)
        if source in ("", "sandbox", "__main__"):
            continue
        for target in imported:
            dest = _top(target)
            if dest in ("", source):
                continue
            if dest == "sandbox":
                if source != "cli":
                    wrong.append(f"{module} -> {target} (only the CLI mounts the sandbox)")
            elif LAYER[dest] >= LAYER[source]:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_other_packages_are_reached_through_their_public_face():
    wrong = []
    for module, imported in GRAPH.items():
        source = _top(module)
        for target in imported:
            dest = _top(target)
            if dest in ("", source) or source in ("", "__main__") or dest == "sandbox":
                continue
            if target != f"qatlan.{dest}":
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_the_sandbox_imports_nothing_of_the_product():
    for module, imported in GRAPH.items():
        if _top(module) == "sandbox":
            assert {m for m in imported if _top(m) not in ("", "sandbox")} == set(), module


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_each_package_s_public_face_is_pinned(package):
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(PUBLIC[package])
    assert all(hasattr(module, name) for name in module.__all__)
