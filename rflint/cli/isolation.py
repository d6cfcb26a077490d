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
- afterwards, the names in ``torch``, ``torch.nn``, ``torch.nn.functional``, ``torch.Tensor`` and
  ``nn.Module`` that the job rebound are given back, as are the recursion limit, the SIGINT /
  SIGTERM / SIGHUP handlers and ``sys.stderr``: a model file that wraps ``F.interpolate`` or sets
  ``nn.Conv2d = MyConv`` changed the next target's layers, findings and SARIF fingerprints, and
  the result depended on the order of the targets and on --jobs.  Names a job added are left (a
  submodule imported, a cache); only names that existed before and now point elsewhere go back.

The Python API never does any of this to its caller: these are the CLI's process and its workers.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator

_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextmanager
def model_code_guarded() -> Iterator[None]:
    namespaces = _namespaces()
    before = [(space, dict(vars(space))) for space in namespaces]
    limit = sys.getrecursionlimit()
    stderr = sys.stderr
    main_thread = threading.current_thread() is threading.main_thread()
    handlers = {sig: signal.getsignal(sig) for sig in _SIGNALS} if main_thread else {}
    try:
        with _exit_refused(), _fd1_to_stderr():
            yield
    finally:
        for space, names in before:
            _rebound_names_restored(space, names)
        if sys.getrecursionlimit() != limit:
            sys.setrecursionlimit(limit)
        sys.stderr = stderr
        for sig, handler in handlers.items():
            if handler is not None and signal.getsignal(sig) is not handler:
                signal.signal(sig, handler)


def _namespaces() -> list[Any]:
    torch = sys.modules.get("torch")
    if torch is None:  # nothing of torch's to protect yet (the job imports it: then it is fresh)
        return []
    import torch.nn.functional as F
    from torch import nn

    return [torch, nn, F, torch.Tensor, nn.Module]


def _rebound_names_restored(space: Any, names: dict[str, Any]) -> None:
    now = vars(space)
    for name, value in names.items():
        if now.get(name, value) is not value:
            try:
                setattr(space, name, value)
            except (AttributeError, TypeError):  # a read-only slot: nothing a job could rebind either
                pass


@contextmanager
def _exit_refused() -> Iterator[None]:
    from rflint.trace.loading import refused_exit

    posix = sys.modules.get("posix")  # os._exit is posix._exit: code may call it by either name
    hard = os._exit, getattr(posix, "_exit", None)
    os._exit = refused_exit
    if hard[1] is not None:
        posix._exit = refused_exit
    try:
        yield
    finally:
        os._exit = hard[0]
        if hard[1] is not None:
            posix._exit = hard[1]


def _flushed() -> None:
    for stream in (sys.stdout, sys.__stdout__):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # closed, or None
            pass


@contextmanager
def _fd1_to_stderr() -> Iterator[None]:
    """Descriptor 1 pointed at descriptor 2 while the job runs; nothing when either is closed."""
    _flushed()  # what was written before goes where it was meant to
    try:
        saved = os.dup(1)
    except OSError:  # stdout closed (>&-): nothing of the report's to protect
        yield
        return
    try:
        os.dup2(2, 1)
    except OSError:  # stderr closed: leave stdout as it is
        os.close(saved)
        yield
        return
    try:
        yield
    finally:
        _flushed()  # what the job's code left in Python's buffers goes where fd 1 pointed then
        os.dup2(saved, 1)
        os.close(saved)
