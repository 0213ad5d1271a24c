"""The one exception type the CLI turns into a one-line message and exit status 2."""

from __future__ import annotations


class QTriggerError(Exception):
    """A user-facing error: bad input, bad config, missing tool.

    The message is a single line that names the file/key/value and what was expected.
    """


def one_line(text: object) -> str:
    """The first non-empty line of ``text`` (stripped), for messages that must stay on one line."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"
