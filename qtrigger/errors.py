"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class QTriggerError(Exception):
    """A user-facing error: bad input, bad config, missing tool.

    The message is a single line that names the file/key/value and what was expected.
    """
