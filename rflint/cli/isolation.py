"""What a target's code may not change in the CLI's process: one job's model cannot end the run, write
into its report or change how the next target is analysed.

rflint runs the user's code (the model file's imports, the factory, ``forward()`` while traced) in
its own process, one target after another, and a CI gate reads its exit code and its stdout.  So,
while a job runs (:func:`model_code_guarded`):

- ``os._exit()`` (also as ``posix._exit``) raises instead of ending rflint: called in ``forward()``
  it ended the run on the spot with the model's status, exit 0 and no report, and the gate passed.
  The job reports it as its error ("its code called os._exit(0) while rflint traced or ran it").
- file descriptor 1 is the terminal's stderr: a ``subprocess.run(["echo", ...])``, an
  ``os.write(1, ...)`` or a C extension's printf went into a JSON or SARIF report on stdout
  (``print()`` is redirected at the Python level by the job itself).
- afterwards, the recursion limit (when the job lowered it: a model file that raises it for a deep
  net keeps that), the SIGINT / SIGTERM / SIGHUP handlers and ``sys.stderr`` are given back: a
  model file that ignores SIGINT made a later hanging target impossible to interrupt, one that
  replaced sys.stderr swallowed every later error.  (What a target's modules rebind in torch's
  namespaces goes with those modules: trace/loading.py, _NAMES_BEFORE.)

The Python API never does any of this to its caller: these are the CLI's process and its workers.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextmanager
def model_code_guarded() -> Iterator[None]:
    from rflint.trace.loading import exit_refused

    limit = sys.getrecursionlimit()
    stderr = sys.stderr
    main_thread = threading.current_thread() is threading.main_thread()
    handlers = {sig: signal.getsignal(sig) for sig in _SIGNALS} if main_thread else {}
    try:
        with exit_refused(), _fd1_to_stderr():
            yield
    finally:
        if sys.getrecursionlimit() < limit:  # lowered: the next target's trace may need the depth
            sys.setrecursionlimit(limit)
        sys.stderr = stderr
        for sig, handler in handlers.items():
            if handler is not None and signal.getsignal(sig) is not handler:
                signal.signal(sig, handler)


def _flushed() -> None:
    for stream in (sys.stdout, sys.__stdout__):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # closed, or None
            pass


@contextmanager
def _fd1_to_stderr() -> Iterator[None]:
    """Descriptor 1 pointed at descriptor 2 while the job runs, or at /dev/null when stderr is
    closed (``2>&-``: the model's output then went before the report on stdout).  With stdout
    closed (``>&-``) it is /dev/null for the job and closed again after: a model's ``os.write(1,
    ...)`` failed its import with EBADF."""
    _flushed()  # what was written before goes where it was meant to
    stderr_open = _is_open(2)  # before the dup below, which takes descriptor 2 when that is free
    try:  # (above 2: were 2 closed, a plain dup would take it, and the model's stderr be the report)
        saved: int | None = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
    except OSError:  # stdout closed: nothing of the report's to protect, but the model may write
        saved = None
    if stderr_open:
        os.dup2(2, 1)
    else:
        try:
            null = os.open(os.devnull, os.O_WRONLY)
        except OSError:  # no /dev/null either: leave descriptor 1 as it is
            if saved is not None:
                os.close(saved)
            yield
            return
        if null != 1:
            os.dup2(null, 1)
            os.close(null)
    try:
        yield
    finally:
        _flushed()  # what the job's code left in Python's buffers goes where fd 1 pointed then
        if saved is None:
            os.close(1)  # closed, as it was
        else:
            os.dup2(saved, 1)
            os.close(saved)


def standard_descriptors_open() -> None:
    """Descriptors 0, 1 and 2 open, on /dev/null where the caller closed them (``2>&-``): else the
    first file or pipe rflint opens takes the number, and a model's write to "stderr" (or stdout)
    lands in it: in the JSON report, or in a worker pool's pipe (the run hung).  Python's own
    sys.stdout / sys.stderr stay None for a descriptor that was closed at start.  The CLI's
    main() calls it first."""
    for fd in (0, 1, 2):
        if _is_open(fd):
            continue
        try:
            null = os.open(os.devnull, os.O_RDWR)
        except OSError:
            return
        if null != fd:
            os.dup2(null, fd)
            os.close(null)


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False
