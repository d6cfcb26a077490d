"""Where was each layer built?  (file, line) of the user-code line that constructed a module.

Findings point at the line that *builds* a layer (``self.conv2 = nn.Conv2d(...)``), because that is
the line a user edits and the line an inline ``# rflint: ignore[...]`` comment sits on.  Python does
not remember it, so while a model is being built we wrap ``nn.Module.__init__`` and record the first
stack frame that is neither inside torch nor inside the module's own ``__init__`` chain.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import weakref
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

_TORCH_DIR = os.path.dirname(torch.__file__) + os.sep
_TRACE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep  # rflint's own tracing machinery
_lock = threading.Lock()
_sites: "weakref.WeakKeyDictionary[nn.Module, Source]" = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Source:
    file: str
    line: int

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line}


def construction_site(module: nn.Module) -> Source | None:
    return _sites.get(module)


def _find_site(module: nn.Module) -> Source | None:
    frame = sys._getframe(2)  # the caller of Module.__init__
    while frame is not None:
        filename = frame.f_code.co_filename
        in_own_init = frame.f_code.co_name == "__init__" and frame.f_locals.get("self") is module
        if not in_own_init and not filename.startswith(_TORCH_DIR) and not filename.startswith("<"):
            return Source(filename, frame.f_lineno)
        frame = frame.f_back
    return None


@contextlib.contextmanager
def recording_sites() -> Iterator[None]:
    """Record the construction site of every module built inside the block."""
    with _lock:
        original = nn.Module.__init__

        def init(self, *args, **kwargs):
            original(self, *args, **kwargs)
            site = _find_site(self)
            if site is not None:
                _sites[self] = site

        nn.Module.__init__ = init
        try:
            yield
        finally:
            nn.Module.__init__ = original


def stack_trace_site(stack_trace: str | None) -> Source | None:
    """The innermost user frame of an fx node's recorded stack trace (the forward() call site)."""
    if not stack_trace:
        return None
    best = None
    for line in stack_trace.splitlines():
        line = line.strip()
        if not line.startswith('File "'):
            continue
        try:
            path, rest = line[6:].split('", line ', 1)
            lineno = int(rest.split(",", 1)[0])
        except ValueError:
            continue
        if not path.startswith((_TORCH_DIR, _TRACE_DIR)):
            best = Source(path, lineno)
    return best
