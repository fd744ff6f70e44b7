"""Error types every layer of curate may raise; the CLI shows them as one line (exit 2), never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix (missing model, unknown language, …): shown as one line, no traceback."""
