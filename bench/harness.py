"""Process plumbing for the benchmarks: the sandbox process, child runs with their peak memory,
the sandbox admin API, and the qatlan config for a generated world.

Each qatlan step runs as its own child process; `run_child` waits for it with `os.wait4`, so
the peak RSS it reports is that child's own (`ru_maxrss`), not the harness's.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
VENV_BIN = Path(sys.executable).parent
#: how to run qatlan (QATLAN_BENCH_CLI overrides it, e.g. to try a development entry point)
QATLAN = shlex.split(os.environ.get("QATLAN_BENCH_CLI", "")) or [str(VENV_BIN / "qatlan")]
PYTHON = sys.executable
SYNC_PERSONA = "qualytics-sync"
_TICKS = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- children


@dataclass
class ChildRun:
    """One finished child process: exit code, wall time, CPU time and peak memory."""

    argv: list[str]
    returncode: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    stdout: str
    stderr: str


def run_child(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
              log: Path | None = None, timeout: float | None = None) -> ChildRun:
    """Run `argv` to the end. Its peak RSS is its own, measured by `bench/_peak.py` (a
    child's `ru_maxrss` would include this process's size); CPU time from `wait4`."""
    out_path = log.with_suffix(".out") if log else None
    err_path = log.with_suffix(".err") if log else None
    out = open(out_path, "w+") if out_path else subprocess.DEVNULL  # noqa: SIM115
    err = open(err_path, "w+") if err_path else subprocess.DEVNULL  # noqa: SIM115
    fd, peak_file = tempfile.mkstemp(prefix="qatlan-peak-")
    os.close(fd)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, str(BENCH / "_peak.py"), peak_file, *argv],
                            stdout=out, stderr=err, env=env, cwd=cwd)
    status, usage = _wait(proc, timeout)
    wall = time.monotonic() - started
    try:
        peak_kb = float(Path(peak_file).read_text() or 0)
    finally:
        os.unlink(peak_file)
    texts = []
    for handle in (out, err):
        if handle is subprocess.DEVNULL:
            texts.append("")
        else:
            handle.seek(0)
            texts.append(handle.read())
            handle.close()
    return ChildRun(argv, os.waitstatus_to_exitcode(status), wall, usage.ru_utime + usage.ru_stime,
                    peak_kb / 1024, texts[0], texts[1])


def _wait(proc: subprocess.Popen, timeout: float | None) -> tuple[int, Any]:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return status, usage
        if deadline is not None and time.monotonic() > deadline:
            proc.kill()
        time.sleep(0.02)


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, from /proc (0 when unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def proc_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# --------------------------------------------------------------------------- sandbox


@dataclass
class SandboxProc:
    """The sandbox servers in a separate process (bench/serve.py), with admin helpers."""

    spec: str
    workdir: Path
    serve_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    ready: dict[str, Any] = field(default_factory=dict)
    admin: dict[str, httpx.Client] = field(default_factory=dict)

    def start(self, timeout: float = 1800) -> "SandboxProc":
        ready_file = self.workdir / "sandbox-ready.json"
        ready_file.unlink(missing_ok=True)
        log = open(self.workdir / "sandbox.log", "w")  # noqa: SIM115
        argv = [PYTHON, str(BENCH / "serve.py"), "--spec", self.spec, "--ready", str(ready_file), *self.serve_args]
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not ready_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the sandbox did not start; see {self.workdir / 'sandbox.log'}")
            time.sleep(0.2)
        self.ready = json.loads(ready_file.read_text())
        for side in ("atlan", "qualytics"):
            self.admin[side] = httpx.Client(base_url=self.ready[f"{side}_url"], timeout=600)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        for client in self.admin.values():
            client.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> "SandboxProc":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, side: str, method: str, path: str, body: Any = None) -> Any:
        response = self.admin[side].request(method, f"/_sandbox/{path}", json=body)
        response.raise_for_status()
        return response.json()

    def reset_stats(self) -> None:
        for side in ("atlan", "qualytics"):
            self.call(side, "DELETE", "stats")

    def stats(self) -> dict[str, Any]:
        return {side: self.call(side, "GET", "stats") for side in ("atlan", "qualytics")}

    def set_atlan_limit(self, requests_per_minute: int) -> None:
        self.call("atlan", "PUT", "limits", {"requests_per_minute": requests_per_minute})

    def apply_changes(self, changes: list[dict[str, Any]]) -> None:
        for i in range(0, len(changes), 5000):
            self.call("atlan", "POST", "world/changes", {"changes": changes[i:i + 5000]})


# --------------------------------------------------------------------------- qatlan config


def write_config(path: Path, ready: dict[str, Any], *, atlan_rpm: int = 0,
                 atlan_batch_size: int | None = None) -> dict[str, str]:
    """Write qatlan.toml for the served world; returns the environment with the tokens.

    Mappings come from the world's `meta.mapping`, skipping the connection the sync persona
    cannot see (as tests/conftest.py does).
    """
    lines = [
        "[atlan]", f'url = "{ready["atlan_url"]}"', f"requests_per_minute = {atlan_rpm}",
        *([f"batch_size = {atlan_batch_size}"] if atlan_batch_size else []), "",
        "[qualytics]", f'url = "{ready["qualytics_url"]}"', "",
        "[state]", 'path = "state/qatlan.db"', "",
    ]
    for m in ready["meta"].get("mapping", []):
        if not m.get("visible_to_sync", True):
            continue
        lines += ["[[mappings]]", f"datastore_id = {m['datastore_id']}",
                  f'connection = "{m["connection_qualified_name"]}"',
                  f'database = "{m["database"]}"', f'schema = "{m["schema"]}"', ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    tokens = ready["tokens"]
    env = dict(os.environ)
    env.update({
        "ATLAN_API_TOKEN": tokens["atlan"][SYNC_PERSONA],
        "QUALYTICS_API_TOKEN": next(iter(tokens["qualytics"].values())),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    })
    return env


def machine() -> dict[str, Any]:
    """CPU count, memory and Python version of this machine."""
    mem_gb = 0.0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_gb = int(line.split()[1]) / 1024 / 1024
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"nproc": os.cpu_count(), "memory_gb": round(mem_gb, 1), "cpu": model,
            "python": sys.version.split()[0], "platform": sys.platform}


def emit_json(result: Any, out: Path | None) -> None:
    """A child script's result: printed as JSON, and written to `out` when given."""
    text = json.dumps(result, indent=2)
    if out:
        out.write_text(text)
    print(text)
