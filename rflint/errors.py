"""The one exception type users see.

Every problem caused by the user's input (a missing file, a factory that raises, an untraceable
model, a nonsense size) is raised as :class:`RflintError` with a one-line, self-contained message.
The CLI prints that line and exits with code 2; anything else is a bug in rflint and keeps its
traceback.
"""


class RflintError(Exception):
    """A user-facing error: ``str(err)`` is the whole message, one line."""
