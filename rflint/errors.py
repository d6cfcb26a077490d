"""The one exception type users see.

Every problem caused by the user's input (a missing file, a factory that raises, an untraceable
model, a nonsense size) is raised as :class:`RflintError` with a one-line, self-contained message.
The CLI prints that line and exits with code 2; anything else is a bug in rflint and keeps its
traceback.
"""

from __future__ import annotations

import contextlib
import re


class RflintError(Exception):
    """A user-facing error: ``str(err)`` is the whole message, one line."""


def first_sentence(err: BaseException, limit: int = 400) -> str:
    """The start of an exception's message for a one-line error: its first line, continued over the
    next ones while the sentence runs on (torch.fx's "...a torch.fx.Node object,\ninstead create a
    new copy..." was cut after the comma); an indented line (code, a traceback) ends it."""
    lines = str(err).strip().splitlines()
    if not lines:
        return type(err).__name__
    text = lines[0].strip()
    for line in lines[1:]:  # (a line that ends a clause may be the whole message: "input must be 224 px")
        if not line.strip() or line[:1].isspace() or not text.endswith(_RUNS_ON) or len(text) > limit:
            break
        text += " " + line.strip()
    return text


def what_raised(err: BaseException) -> str:
    """"ValueError: no such depth", or for an exception without a message (a bare ``assert``) its
    name alone, not "AssertionError: AssertionError"."""
    if not str(err).strip():
        return f"{type(err).__name__} (without a message)"
    return f"{type(err).__name__}: {first_sentence(err)}"


_RUNS_ON = (",", ";", "(", " and", " or", " of", " the", " to", " a")  # a sentence broken mid-way


# The engine words its advice for the command line, rflint's main face.  A Python caller passes
# arguments instead of flags: these are the same pieces of advice in the API's words.
_API_WORDS = (
    ("(use --input, e.g. --input 224)", "(pass input_size, e.g. input_size=224)"),
    ("set --channels, e.g. --channels 3", "pass channels, e.g. channels=3"),
    ("give one --input-shape per input, e.g. --input-shape 1,3,32,32 --input-shape 1,10",
     "give one shape per input, e.g. input_shapes=[(1, 3, 32, 32), (1, 10)]"),
    ("the C of --input-shape N,C,...", "the C of each input shape (N, C, ...)"),
    ("pass --channels", "pass channels"),
    ("(pass them with --kwarg NAME=VALUE)", "(pass them in kwargs={'NAME': value})"),
    ("; --kwarg only applies to classes and factories", "; kwargs only apply to classes and factories"),
    ("(name layers with --layers to force it)", "(name them with layers=[...] to force it)"),
    ("with --input-shape 1,1,L", "with input_shapes=[(1, 1, L)]"),
)


def in_api_words(message: str) -> str:
    """``message`` with its command-line advice ("set --channels 3") in the API's words."""
    if "--" not in message:
        return message
    # the factory's missing arguments, by name: kwargs={'depth': ..., 'width': ...}
    message = re.sub(r"not given: ([\w, ]+) \(pass them with --kwarg NAME=VALUE\)",
                     lambda m: "not given: {} (pass them in kwargs={{{}}})".format(
                         m.group(1), ", ".join(f"'{name.strip()}': ..." for name in m.group(1).split(","))), message)
    for cli, api in _API_WORDS:
        message = message.replace(cli, api)
    return re.sub(r"set --channels (\d+)", r"pass channels=\1", message)


@contextlib.contextmanager
def api_words(active: bool = True):
    """Re-raise an RflintError from the block with its advice in the API's words (same exception,
    same traceback)."""
    try:
        yield
    except RflintError as err:
        if active and err.args and isinstance(err.args[0], str):
            err.args = (in_api_words(err.args[0]), *err.args[1:])
        raise
