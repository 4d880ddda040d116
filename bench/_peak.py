"""Run a command and write its own peak RSS (kilobytes) to a file: `_peak.py OUT ARGV...`.

Why a wrapper: on Linux a child's `ru_maxrss` starts from its parent's memory (the parent's
high-water mark when the child is spawned by vfork, its current size when forked), so a
benchmark process that read a big state would add its own size to every step it measures.
This wrapper is a fresh, small process: the command it starts reports only its own peak.
(Its CPU time comes back through the wrapper's rusage, which includes its waited-for child.)
"""

import os
import signal
import subprocess
import sys


def main() -> int:
    out, argv = sys.argv[1], sys.argv[2:]
    proc = subprocess.Popen(argv)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, _f: proc.send_signal(s))
    while True:
        try:
            _, status, usage = os.wait4(proc.pid, 0)
            break
        except InterruptedError:
            continue
    with open(out, "w", encoding="utf-8") as f:
        f.write(str(usage.ru_maxrss))
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
