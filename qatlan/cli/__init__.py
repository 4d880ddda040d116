"""The `qatlan` command line: thin glue over the library, one module per command group.

    app.py     the root app and `main` (the console script); `qatlan sandbox` mounted lazily
    state.py   init, refresh, state list/show, history, force-unlock
    plan.py    plan, show, match
    apply.py   apply
    demo.py    demo: the whole loop against an in-process sandbox
    common.py  errors to messages and exit codes, shared options, opening config and state
"""

from qatlan.cli.app import app, main

__all__ = ["app", "main"]
