"""Where was each layer built?  (file, line) of the user-code line that constructed a module.

Findings point at the line that *builds* a layer (``self.conv2 = nn.Conv2d(...)``), because that is
the line a user edits and the line an inline ``# rflint: ignore[...]`` comment sits on.  Python does
not remember it, so while a model is being built we wrap ``nn.Module.__init__`` and record the first
stack frame that is neither inside torch or rflint (the zoo aside) nor inside the module's own
``__init__`` chain.
"""

from __future__ import annotations

import contextlib
import copy
import copyreg
import functools
import linecache
import os
import re
import sys
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
from torch import nn

_TORCH_DIR = os.path.dirname(torch.__file__) + os.sep
# rflint's own code is never the line a user edits (a GraphModule rflint's tracer makes, a model
# loaded from a file by a factory), except for the zoo's reference architectures
_RFLINT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_ZOO_DIR = os.path.join(_RFLINT_DIR, "zoo") + os.sep
_TRACE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep  # the tracers: they call forward()


# the standard library (copy, functools, contextlib frames between a layer's construction and the
# user's line) and typing_extensions (@deprecated wraps torch.ao's prepare_qat, which builds the
# QAT layers): never the line a user edits.  Packages installed beside the standard library
# (monai's layers, in a site-packages under it) are someone's model code, and stay.
_STDLIB_DIR = os.path.dirname(os.__file__) + os.sep
_INSTALLED = (os.path.join(_STDLIB_DIR, "site-packages") + os.sep, os.path.join(_STDLIB_DIR, "dist-packages") + os.sep)
def installed_file(file: str) -> bool:
    """The file comes with Python (the standard library) or an installed distribution (torch,
    numpy, in a site-packages): not from a directory of the user's project."""
    return "site-packages" in file or "dist-packages" in file or file.startswith(_STDLIB_DIR)


_WRAPPERS = tuple(os.path.splitext(getattr(sys.modules.get(name), "__file__", None) or "")[0]
                  for name in ("typing_extensions",) if sys.modules.get(name) is not None)


@functools.lru_cache(maxsize=4096)  # asked for every frame of every node's and module's stack: few files
def not_user_code(filename: str) -> bool:
    if filename.startswith((_TORCH_DIR, "<")):
        return True
    if filename.startswith(_STDLIB_DIR) and not filename.startswith(_INSTALLED):
        return True
    if _WRAPPERS and os.path.splitext(filename)[0] in _WRAPPERS:
        return True
    return filename.startswith(_RFLINT_DIR) and not filename.startswith(_ZOO_DIR)


# Held while rflint patches process-wide state: nn.Module.__init__ here, and (tracing.py) the
# functions torch.fx and rflint's tracers patch while they trace.  Re-entrant: a factory may call
# rflint.analyze itself.  Two threads analysing at once take turns in these parts.
PATCHING = threading.RLock()
_lock = PATCHING
_sites: "weakref.WeakKeyDictionary[nn.Module, Source]" = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Source:
    file: str
    line: int
    # the last line of the call that built the layer (or of forward()'s expression), when it spans
    # several: black moves a trailing "# rflint: ignore" to the closing parenthesis.  0: one line.
    # Not part of the place (equality, JSON): findings still point at ``line``
    end: int = field(default=0, compare=False)
    # the lines further out in user code whose calls led here, innermost first: `self.b2 =
    # conv_bn(...)` for a conv built in the helper conv_bn, the factory's `return DenseNet121(...)`
    # for a layer built inside an installed package.  An ignore comment there covers the layers the
    # call builds, and a report for a checkout points at the first of them inside it.
    callers: tuple["Source", ...] = field(default=(), compare=False)

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line}

    def places(self) -> tuple["Source", ...]:
        """This line and its callers' (innermost first)."""
        return (self, *self.callers)

    def lines(self) -> range:
        return range(self.line, max(self.line, self.end) + 1)


@functools.lru_cache(maxsize=1024)
def _positions(code: Any) -> tuple:
    return tuple(code.co_positions())


def _frame_site(frame: Any) -> Source:
    """The frame's file and line, with the last line of the expression it is running (the call
    in progress): ``nn.Conv2d(\n 64, 64, 3\n)  # rflint: ignore[RF001]`` as black writes it."""
    line = frame.f_lineno
    try:
        start, end, _, _ = _positions(frame.f_code)[frame.f_lasti // 2]
    except (IndexError, ValueError, TypeError):
        return Source(frame.f_code.co_filename, line)
    return Source(frame.f_code.co_filename, line, end if start == line and end and end > line else 0)


def construction_site(module: nn.Module) -> Source | None:
    return _sites.get(module)


def copied_module(module: nn.Module) -> nn.Module:
    """``copy.deepcopy(module)``, also of a module holding a computed tensor as a plain attribute:
    the deprecated ``torch.nn.utils.weight_norm`` keeps ``weight`` so, a tensor with a grad_fn,
    which deepcopy refuses ("Only Tensors created explicitly by the user ...").  Its copy is the
    value detached; its hook computes it again at the next call."""
    memo: dict[int, object] = {}
    for m in module.modules():
        for value in vars(m).values():
            if isinstance(value, torch.Tensor) and not value.is_leaf:
                memo[id(value)] = value.detach().clone()
    return copy.deepcopy(module, memo)


def deepcopy_with_sites(module: nn.Module) -> nn.Module:
    """:func:`copied_module` whose submodules keep their originals' construction sites: the
    tracers that run a copy (real weights, lazy layers, meta copies) still point findings at the
    line that built each layer, where its ``# rflint: ignore`` comment sits, not at forward()."""
    copied = copied_module(module)
    # deepcopy keeps the module tree's shape and sharing, and modules() visits both in one order
    for original, twin in zip(module.modules(), copied.modules()):
        site = _sites.get(original)
        if site is not None:
            _sites[twin] = site
    return copied


def _find_site(module: nn.Module) -> Source | None:
    frame = sys._getframe(2)  # the caller of Module.__init__
    while frame is not None:
        filename = frame.f_code.co_filename
        in_own_init = frame.f_code.co_name == "__init__" and frame.f_locals.get("self") is module
        if not in_own_init and not not_user_code(filename):
            site = _frame_site(frame)
            callers = _callers(frame.f_back, site)
            return Source(site.file, site.line, site.end, callers) if callers else site
        if not in_own_init and filename.startswith(_AO_DIR):
            site = _made_from(frame, module)
            if site is not None:
                return site
        if not in_own_init and filename.startswith(_RFLINT_DIR) and not filename.startswith(_ZOO_DIR):
            return None  # built by rflint itself (a traced GraphModule): the frames further out are the CLI's
        frame = frame.f_back
    return None


_AO_DIR = os.path.join(_TORCH_DIR, "ao") + os.sep  # quantization: fusing, prepare_qat
_MAX_CALLERS = 12  # a model's nesting of blocks and helpers is rarely deeper


def _callers(frame: Any, site: Source) -> tuple[Source, ...]:
    """The user-code lines further out on the stack, up to rflint's own frame that called the
    factory (or the stack's end), innermost first; torch's and the standard library's frames in
    between are passed over.  One tuple object per distinct chain (``_CHAINS``): the layers a loop
    builds share it, and the rules and reports look each chain up once, by identity."""
    out: list[Source] = []
    last = (site.file, site.line)
    while frame is not None and len(out) < 50 * _MAX_CALLERS:  # (a runaway recursion: bounded)
        filename = frame.f_code.co_filename
        if filename.startswith(_RFLINT_DIR) and not filename.startswith(_ZOO_DIR):
            break  # the loader: the factory's caller is rflint
        if not not_user_code(filename):
            caller = _frame_site(frame)
            if (caller.file, caller.line) != last:  # (a comprehension's frame runs on its line's)
                out.append(caller)
                last = (caller.file, caller.line)
        frame = frame.f_back
    if len(out) > _MAX_CALLERS:  # the innermost calls, and the outermost: the factory's line
        out = out[:_MAX_CALLERS - 1] + out[-1:]
    key = tuple((site.file, site.line, site.end) for site in out)
    chain = _CHAINS.get(key)
    if chain is None:
        chain = _CHAINS[key] = tuple(out)
        _CHAIN_DICTS[id(chain)] = [site.as_dict() for site in chain]
    return chain


# every chain of callers seen, kept for the process's life (a few per model file, never freed, so
# an id stays its chain's): equal chains are one object, and a chain's identity stands for it
# (suppression's caches; callers_as_dicts)
_CHAINS: dict[tuple, tuple[Source, ...]] = {(): ()}
_CHAIN_DICTS: dict[int, list[dict]] = {id(()): []}


def callers_as_dicts(chain: tuple[Source, ...]) -> list[dict]:
    """A chain of callers as JSON: made once per chain (reports list it for every finding)."""
    out = _CHAIN_DICTS.get(id(chain))
    return out if out is not None else [site.as_dict() for site in chain]


def _made_from(frame: Any, module: nn.Module) -> Source | None:
    """The site of a module of yours that torch.ao builds ``module`` from, as an argument of the
    function doing it: ``prepare_qat``'s QAT conv from your conv (``from_float(cls, mod)``), a fused
    ConvBnReLU2d from your conv, bn and relu (``fuse_conv_bn_relu(is_qat, conv, bn, relu)``).  Its
    findings then point at your layer's line, where its ignore comment sits, not at the factory's."""
    code = frame.f_code
    for name in code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]:
        value = frame.f_locals.get(name)
        if value is not module and isinstance(value, nn.Module):
            site = _sites.get(value)
            if site is not None:
                return site
    return None


_DEEPCOPY_CODE = copy.deepcopy.__code__  # copy.deepcopy asks for the reduction itself: reductor(4)


def _reduce_keeping_site(self: nn.Module, protocol: int) -> Any:
    """object.__reduce_ex__, with a rebuild that gives the copy its original's site: a factory
    that returns ``copy.deepcopy(net)`` (or stacks ``deepcopy(layer)``) left its layers without
    one, so every finding pointed at the factory and ``# rflint: ignore`` on the layer's line
    silenced nothing.  On nn.Module only while a factory runs (recording_sites); __reduce_ex__,
    not __deepcopy__, because torch's parametrize gives a class its own deep copy only when it
    has none (hasattr), and every class has a __reduce_ex__."""
    reduced = object.__reduce_ex__(self, protocol)
    site = _sites.get(self)
    if site is None or not isinstance(reduced, tuple) or reduced[0] is not copyreg.__newobj__ \
            or sys._getframe(1).f_code is not _DEEPCOPY_CODE:  # a pickle (torch.save in the factory) stays rflint-free
        return reduced
    return (_rebuilt_at, (site, *reduced[1]), *reduced[2:])


def _rebuilt_at(site: Source, cls: type, *args: Any) -> Any:
    obj = cls.__new__(cls, *args)
    _sites[obj] = site
    return obj


@contextlib.contextmanager
def recording_sites() -> Iterator[None]:
    """Record the construction site of every module built inside the block, and give a deep copy
    of a module its original's."""
    with _lock:
        original = nn.Module.__init__
        had_reduce = "__reduce_ex__" in vars(nn.Module)  # not in torch 2.x; if it ever is, keep it

        def init(self, *args, **kwargs):
            original(self, *args, **kwargs)
            site = _find_site(self)
            if site is not None:
                _sites[self] = site

        nn.Module.__init__ = init
        if not had_reduce:
            nn.Module.__reduce_ex__ = _reduce_keeping_site
        try:
            yield
        finally:
            nn.Module.__init__ = original
            if not had_reduce:
                del nn.Module.__reduce_ex__


def current_user_site() -> Source | None:
    """The innermost frame of the running stack outside torch and rflint (its zoo aside): while
    fx records a node, the line of forward() that created it.  A few frame hops, unlike fx's own
    record_stack_traces, which symbolizes a whole traceback per node (seconds on big models)."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not not_user_code(filename):
            return _frame_site(frame)
        if filename.startswith(_RFLINT_DIR) and not filename.startswith((_TRACE_DIR, _ZOO_DIR)):
            return None  # past the tracer into rflint's engine: forward() was generated code (a GraphModule's)
        frame = frame.f_back
    return None


def node_site(node) -> Source | None:
    """Where an fx node was created in user code (recorded by rflint's tracers)."""
    return node.meta.get("rflint_site")


def calling_module(node: "torch.fx.Node") -> str:
    """The path of the innermost module whose forward() was running when fx traced the node ("" at
    the model's own forward())."""
    stack = node.meta.get("nn_module_stack") or {}
    return next(reversed(stack.values()))[0] if stack else ""


def node_label(node: "torch.fx.Node") -> str:
    """A node as the layer table names it: a module call by its path, a function by the module
    whose forward() calls it and its fx name ("layer1.0.add")."""
    if node.op == "call_module":
        return str(node.target)
    owner = calling_module(node)
    return f"{owner}.{node.name}" if owner else node.name


@functools.lru_cache(maxsize=256)  # a class does not move while the process runs
def class_header(cls: type) -> Source | None:
    """Where ``class <Name>`` is written: the file of its module, the first line defining that name,
    from its decorators on.  (inspect.getsourcelines parses the whole file for a class: milliseconds
    on a large one, and compile() in two threads at once can fail in CPython 3.11: "AST constructor
    recursion depth mismatch".)"""
    module = sys.modules.get(cls.__module__)
    file = getattr(module, "__file__", None)
    if not file:
        return None
    header = re.compile(rf"\s*class\s+{re.escape(cls.__name__)}\b")
    lines = linecache.getlines(file)
    # the class's own methods say where it is (two classes of one name in a file: a test's local
    # Nets): the nearest header above the first of them; else the first header of that name
    starts = [code.co_firstlineno for code in (getattr(v, "__code__", None) for v in vars(cls).values())
              if code is not None and code.co_filename == file]
    candidates = range(min(starts), 0, -1) if starts else range(1, len(lines) + 1)
    for number in candidates:
        if number <= len(lines) and header.match(lines[number - 1]):
            while number > 1 and lines[number - 2].lstrip().startswith("@"):  # its decorators come first
                number -= 1
            return Source(file, number)
    return None
