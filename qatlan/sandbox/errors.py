"""The sandbox's own errors, so that it imports nothing from the rest of qatlan.

    SandboxError        anything the sandbox reports to a person (bad host, busy port, ...)
    └── WorldError      a sandbox world document (or change, or generator spec) that does not validate

Same shape as the product's errors: a message for a person, and an optional one-line hint on
how to fix it. `qatlan sandbox` (cli.py) prints both; the admin API answers 400 with the message.
"""

from __future__ import annotations

__all__ = ["SandboxError", "WorldError"]


class SandboxError(Exception):
    """Base class of every error the sandbox reports to a user."""

    #: one line on how to fix it, printed after the message when set
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class WorldError(SandboxError):
    """A sandbox world document does not validate."""
