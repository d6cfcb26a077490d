"""From a TARGET string to an ``nn.Module`` in eval mode, built without weight memory when possible.

TARGET forms:
  ``path/to/file.py:name``   a Python file, imported with its own directory on ``sys.path`` (a file
                             in a package as that package's module, from the outermost package's
                             directory: its relative imports work)
  ``package.module:name``    an importable module (from the working directory)
Behind those, the working directory and the project's (the nearest pyproject.toml's) are on
``sys.path`` too, as for ``python -m`` from the repository's root (``_import_roots``).
  ``zoo:name``               a built-in reference architecture (``rflint zoo`` lists them)
``name`` may be dotted (``Models.build``) and may be an ``nn.Module`` instance, an ``nn.Module``
class or any callable returning a module; keyword arguments are passed to classes and callables.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import inspect
import os
import sys
import threading
import types
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch
from torch import nn
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter, UninitializedTensorMixin

from rflint.errors import RflintError
from rflint.trace.hooks import hook_notes
from rflint.trace.sources import (
    PATCHING, Source, class_header, deepcopy_with_sites, installed_file, not_user_code, recording_sites,
)
from rflint.trace.tracing import wrapped_model


@dataclass
class LoadedModel:
    module: nn.Module
    label: str  # what the user asked for, for reports
    device: str  # "meta" (no weights allocated) or "cpu"
    factory_source: Source | None = None
    suggested_input: tuple[int, ...] | None = None  # zoo models know their natural size
    suggested_channels: int | None = None
    notes: list[str] = field(default_factory=list)  # code the trace leaves out (hooks.py)
    lazy: bool = False  # it has lazy layers (nn.LazyLinear ...), shaped by the first size analysed
    # built here (by a factory or class, or copied): rflint may put it in eval mode for good.  A
    # module instance the caller passed stays theirs: it is in eval mode only while rflint works
    # with it (``evaluating``), and its training flags are given back
    owned: bool = True
    # the TARGET string it was loaded from, from the working directory: what a suggested command
    # names (the label may be a config's name, relative to its pyproject.toml); None for objects
    target: str | None = None
    origin: Any = None  # the object the target names (a factory, a class, a zoo entry, a module)


# The user's own modules the previous target imported (its file's siblings, a package of the working
# directory), and the directories put on sys.path for it.  Each target imports its model as if it
# were alone: `from blocks import head` in exp2/model.py must not get exp1/blocks.py, cached in
# sys.modules by the target before it, nor depend on which target put its directory first on the
# path.  They stay loaded until the next target (a fixed model is pickled with them).
# the previous target's directories, sys.modules before it, and its file (or module)
_PREVIOUS: list[tuple[list[str], set[str], str | None]] = []
_LOCAL_PATHS: list[str] = []
# The global module hooks (register_module_forward_hook) a target's code registered: they run
# around every module of every later model, so they go with the target's modules
_LOCAL_HOOKS: list[tuple[dict, int]] = []
# The names of torch's namespaces as they were before the modules now loaded from the targets'
# directories were imported: what their code rebinds there (a wrapped F.interpolate, nn.Conv2d =
# MyConv) changed the next target's layers and findings, so it goes when those modules go.  While
# the next target has the same directories, its modules stay, and so does what they rebound (their
# import-time code does not run again: the second entry of one file must see its own patch).
_NAMES_BEFORE: list[list[tuple[Any, dict[str, Any]]]] = []
# Which rebindings go.  Under the Python API only those to functions and classes of the forgotten
# modules, so that a patch the caller made between two calls stays theirs.  In the CLI's own
# process (own_process()) also those to code of no module that stays loaded (a partial, a builtin,
# torch's own function under another name), and, when every module of the user's imported since
# goes, the names they added (a guard flag `torch._patched = True`, which made that module, imported
# again, skip its patch; a helper that stays may read what it added); a rebinding to
# code of a module that stays loaded (a shared helper outside the target's directories, imported
# once) stays with it, as it would in a fresh worker, which imports it again.
_EVERY_REBINDING: list[bool] = [False]
# Loads in progress: a factory that calls rflint.analyze on another model loads inside a load, and
# must not take its own model's modules and patches away from it (nested loads forget nothing).
_LOADING: list[int] = [0]


def own_process() -> None:
    """The CLI's process is its own: rebindings of torch names by a target's code go with the
    target's modules, as far as they can be told from the code that stays (cli/run.py calls
    this, as it calls gc.freeze())."""
    _EVERY_REBINDING[0] = True


def _torch_namespaces() -> list[Any]:
    """torch, torch.nn, torch.nn.functional, and the classes torch.nn exports (nn.Module,
    nn.Conv2d: a patched nn.Conv2d.__init__ changed every later model's convs), with torch.Tensor."""
    import torch.nn.functional as F

    classes = [value for value in vars(nn).values() if isinstance(value, type)]
    return [torch, nn, F, torch.Tensor, *classes]


def _names_given_back(before: list[tuple[Any, dict[str, Any]]], forgotten: set[str], all_forgotten: bool) -> None:
    """Each name that existed in ``before`` and now points elsewhere, set back, as _EVERY_REBINDING
    says (``forgotten``: the files of the modules forgotten).  Names added since are left, but in
    the CLI, when every module of the user's imported since is forgotten (``all_forgotten``), those
    they set (not modules: submodules, imported since, stay): a helper that stays may read its own."""
    every = _EVERY_REBINDING[0]
    staying: set[str] | None = None  # the files of the modules that stay loaded (worked out when needed)
    for space, names in before:
        now = vars(space)
        for name, value in names.items():
            current = now.get(name, value)
            if current is value:
                continue
            owner = _code_file(current)
            if owner not in forgotten and every and owner is not None and not owner.startswith(_TORCH_DIR):
                if staying is None:
                    staying = {os.path.abspath(f) for f in (getattr(m, "__file__", None) for m in list(sys.modules.values()))
                               if f} - forgotten
                if owner in staying:
                    continue  # a shared module's patch: the module stays, so does what it did
            if owner in forgotten or every:
                _set(space, name, value)
        if every and all_forgotten and isinstance(space, types.ModuleType):
            for name in [n for n, v in now.items() if n not in names and not isinstance(v, types.ModuleType)]:
                _set(space, name, _ABSENT)


def _user_module(module: Any) -> bool:
    """A module of the user's code: a file outside torch, the standard library and site-packages."""
    file = getattr(module, "__file__", None)
    return bool(file) and not file.startswith(_TORCH_DIR) and not installed_file(file)


_ABSENT = object()
_TORCH_DIR = os.path.dirname(torch.__file__) + os.sep


def _set(space: Any, name: str, value: Any) -> None:
    try:
        if value is _ABSENT:
            delattr(space, name)
        else:
            setattr(space, name, value)
    except (AttributeError, TypeError):  # a read-only slot: nothing code could rebind either
        pass


def _code_file(value: Any) -> str | None:
    """The file of ``value``'s code: a function's (a lambda, a wrapper: its code, not the name
    functools.wraps copied), a method's, a partial's function's, a class's module's; None for
    anything else (a builtin, an object)."""
    value = getattr(value, "__func__", value)
    value = getattr(value, "func", value) if isinstance(value, functools.partial) else value
    code = getattr(value, "__code__", None)
    if code is not None:
        file = code.co_filename
    elif isinstance(value, type):
        file = getattr(sys.modules.get(value.__module__), "__file__", None)
    else:
        return None
    return os.path.abspath(file) if file else None


def _standard_modules_first() -> None:
    """Import the standard modules that libraries under rflint import lazily while a model is
    analysed (sympy, which torch's meta kernels load, imports unicodedata; mpmath colorsys), before
    the target's directories go first on sys.path: a sibling unicodedata.py of the model's would be
    taken for them (tests/test_cli.py checks that rflint itself imports none later)."""
    for name in ("colorsys", "unicodedata"):
        importlib.import_module(name)


def _global_hook_tables() -> list[dict]:
    from torch.nn.modules import module as module_globals

    return [module_globals._global_forward_pre_hooks, module_globals._global_forward_hooks]


@contextlib.contextmanager
def _own_imports(roots: list[str], key: str | None = None) -> Iterator[None]:
    """Forget what the previous target imported from its directories (while it loaded, or later:
    a forward() that imports when traced) and the global hooks its code registered; put ``roots``
    (see :func:`_import_roots`) first on sys.path, in order, while this one loads.  A model object
    has no roots: nothing to import, and nothing forgotten (rflint fix analyses the fixed model, an
    object, and then pickles it, which needs its classes' modules).  A zoo model imports nothing
    either, but what the previous target's modules did to torch must not reach it: they are
    forgotten as for a target of other directories."""
    if _LOADING[0] > 1:  # a factory's own rflint.analyze: its model's modules, paths and patches stay
        added = [root for root in roots if root not in sys.path]
        sys.path[0:0] = added  # (only what the inner target needs, and only while it loads)
        try:
            yield
        finally:
            for root in added:
                if root in sys.path:
                    sys.path.remove(root)
        return
    if not roots and key != "zoo":
        yield
        return
    before, same_target = set(sys.modules), False
    if _PREVIOUS:  # what the previous target imported from its directories, at load or later
        # (forward() may import lazily, while it is traced): forgotten, so this one imports its own.
        # A target with the same directories would import the same modules: they stay (a second
        # entry of one file must not run its registry decorators again: "Net is already registered")
        previous_roots, before_previous, previous_key = _PREVIOUS.pop()
        if previous_roots == roots:
            before, same_target = before_previous, previous_key == key
        else:
            forgotten = [name for name in set(sys.modules) - before_previous
                         if name.partition(".")[0] != "rflint" and _found_under(sys.modules.get(name), previous_roots)]
            if _NAMES_BEFORE:  # what those modules rebound in torch goes with them
                files = {os.path.abspath(file) for file in (getattr(sys.modules.get(name), "__file__", None)
                                                            for name in forgotten) if file}
                staying = [name for name in set(sys.modules) - before_previous - set(forgotten)
                           if name.partition(".")[0] != "rflint" and _user_module(sys.modules.get(name))]
                _names_given_back(_NAMES_BEFORE.pop(), files, not staying)
            for name in forgotten:
                del sys.modules[name]  # (rflint itself, run from its checkout, stays)
            before = set(sys.modules)
    if not _NAMES_BEFORE:
        _NAMES_BEFORE.append([(space, dict(vars(space))) for space in _torch_namespaces()])
    if not same_target:  # a global module hook the previous target's code registered (the same
        for table, hook in _LOCAL_HOOKS:  # file again, its module kept, registers it no more)
            table.pop(hook, None)
        _LOCAL_HOOKS.clear()
    hooks_before = {id(table): set(table) for table in _global_hook_tables()}
    for entry in _LOCAL_PATHS:
        if entry in sys.path:  # the one inserted (a copy that was there before stays)
            sys.path.remove(entry)
    _LOCAL_PATHS.clear()
    _standard_modules_first()  # (no target's directory on sys.path now)
    _BASELINE.update(() if _BASELINE else sys.modules)
    sys.path[0:0] = roots
    _LOCAL_PATHS.extend(roots)
    _PREVIOUS.append((list(roots), before, key))
    try:
        yield
    finally:
        # (the directories stay first on sys.path: forward() may import from them while it is
        # traced, and a sibling statistics.py is its, as under `python train.py`; the standard
        # modules rflint itself imports later are imported before any target: cli/run.py)
        _LOCAL_HOOKS.extend((table, key) for table in _global_hook_tables()
                            for key in set(table) - hooks_before.get(id(table), set()))


# What was imported before the first target: rflint, torch and what they need.  A target's file
# that would import as one of those installed packages (a package of the user's named like one)
# is never put in their place (_import_file).
_BASELINE: set[str] = set()


def _found_under(module: Any, roots: list[str]) -> bool:
    """The module was imported from one of ``roots``: the longest sys.path entry its file lies
    under is a root.  (A venv or a standard library inside the project's directory is an entry of
    its own, deeper than the project's, so its modules are not the target's.)"""
    file = getattr(module, "__file__", None)
    if not file:
        return False
    file = os.path.abspath(file)
    best = ""
    for entry in sys.path:
        entry = os.path.abspath(entry or ".")
        if len(entry) > len(best) and file.startswith(os.path.join(entry, "")):
            best = entry
    return best in roots


_CONFIG_ROOT: list[str] = []  # imports_from's directory, for loads that name no root of their own


@contextlib.contextmanager
def imports_from(root: str | None) -> Iterator[None]:
    """Loads in this block import as a config's target does from ``root`` (the directory of the
    pyproject.toml that lists it), unless they name a root themselves: ``rflint sweep`` and
    ``rflint fix`` of a model the config lists, through the Python API that takes no root."""
    _CONFIG_ROOT.append(root or "")
    try:
        yield
    finally:
        _CONFIG_ROOT.pop()


def _import_roots(target: Any, root: str | None = None) -> list[str]:
    """Where a TARGET string's own modules live, for sys.path: first the directory of its file (of
    the outermost package the file is in: ``mynet/models/net.py`` imports as ``mynet.models.net``,
    so its relative imports work), or ``root`` (default: the working directory) for a
    package.module target; then the working directory and the project's (the nearest
    pyproject.toml's), so that ``scripts/export.py`` can import the repository's package and a
    package.module target resolves from a subdirectory, as under ``python -m`` from the project's
    root.  A config's target (``root``: the directory of its pyproject.toml) has that directory as
    its project's, before the working directory, wherever rflint runs from (``--config
    ml/pyproject.toml`` from the repository's root imports as a run in ml/ does).  None for zoo
    targets and objects."""
    if not isinstance(target, str) or target.startswith("zoo:"):
        return []
    root = root or (_CONFIG_ROOT[-1] if _CONFIG_ROOT else None) or None
    where = target.rpartition(":")[0]
    if _is_file(where):
        if not os.path.isfile(where):
            return []
        path = os.path.abspath(where)
        package = _package_of(path)
        # the package's directory, and the file's own (its sibling imports: `from blocks import x`)
        first = [package[0], os.path.dirname(path)] if package else [os.path.dirname(path)]
    else:
        first = [root or os.getcwd()]
    behind = (root, os.getcwd()) if root else (os.getcwd(), _project_dir())
    return list(dict.fromkeys(r for r in (*first, *behind) if r))


def _project_dir() -> str | None:
    """The directory of the nearest pyproject.toml at or above the working directory."""
    here = os.getcwd()
    while True:
        if os.path.isfile(os.path.join(here, "pyproject.toml")):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def _package_of(path: str) -> tuple[str, str] | None:
    """For a file inside a package (its directory has an ``__init__.py``): the directory the
    outermost package sits in and the file's dotted module name, as pytest imports test files in
    packages; None for a file that is not in one (or whose path is no dotted name)."""
    directory = os.path.dirname(path)
    stem = os.path.splitext(os.path.basename(path))[0]
    parts = [] if stem == "__init__" else [stem]
    while os.path.isfile(os.path.join(directory, "__init__.py")):
        parts.append(os.path.basename(directory))
        directory = os.path.dirname(directory)
    if len(parts) < (1 if stem == "__init__" else 2) or not all(p.isidentifier() for p in parts):
        return None
    return directory, ".".join(reversed(parts))


def _is_file(where: str) -> bool:
    """The part of a TARGET before the colon names a file (else a package.module)."""
    return where.endswith(".py") or os.sep in where or "/" in where


def _import_file(path: str) -> Any:
    if not os.path.isfile(path):
        raise RflintError(f"model file not found: {path}")
    path = os.path.abspath(path)  # (its directory is first on sys.path: _own_imports)
    package = _package_of(path)
    if package is not None:  # in a package: imported as its module (relative imports work)
        _forget_other_copy(package[1].partition(".")[0], package[0])
        try:
            return _import_module(package[1], path)
        except RflintError as err:  # the package cannot be imported (its __init__ needs a missing
            try:  # extension, it is named like a standard module): the file alone, as python runs it
                return _import_loose(path)
            except RflintError:
                raise err from None
    return _import_loose(path)


def _forget_other_copy(name: str, directory: str) -> None:
    """Drop the package ``name`` (and its modules) from sys.modules when it was imported from
    somewhere else than ``directory``: an installed copy of the project, or the same-named package
    of another target, imported before.  The file named on the command line is what is linted.
    rflint's own imports (torch, ...) stay: a package of the user's named like one of them is
    imported on its own (_import_loose)."""
    module = sys.modules.get(name)
    if module is None or (name in _BASELINE and _installed(module)):
        return
    where = os.path.join(directory, name)
    if any(os.path.abspath(p) == where for p in getattr(module, "__path__", None) or ()):
        return
    for loaded in [n for n in sys.modules if n == name or n.startswith(name + ".")]:
        del sys.modules[loaded]


def _installed(module: Any) -> bool:
    """The module comes with Python or an installed distribution (torch, numpy), not from a
    directory of the user's (a copy of their package they imported before calling rflint.analyze)."""
    file = getattr(module, "__file__", None)
    return not file or installed_file(os.path.abspath(file))


def _import_loose(path: str) -> Any:
    # import it under its own name, as `python file.py`'s siblings would (so classes have the qualified
    # names users write in [tool.rflint.layers]); a clashing, different module keeps its place
    stem = os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    existing = sys.modules.get(stem)
    same = existing is not None and os.path.abspath(getattr(existing, "__file__", "") or "") == path
    if same and getattr(existing, "__spec__", None) is not None:
        # imported already, and kept (the target before had the same directories, _own_imports):
        # not run again, which would register its classes a second time ("already registered")
        return existing
    name = stem if existing is None or same else "rflint_user_" + stem
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        try:
            with recording_sites():
                spec.loader.exec_module(module)  # module-level model instances get their sites too
        except BaseException:  # half run: not the module a later target of this file may reuse
            if sys.modules.get(name) is module:
                del sys.modules[name]
            raise
    except SyntaxError as err:
        raise RflintError(f"syntax error in {_at_line(path, err)}: {err.msg}") from err
    except SystemExit as err:  # a script's `sys.exit()` at import time: not rflint's exit code
        raise RflintError(f"importing {path} called {exit_call(err)}") from None
    except Exception as err:  # the user's module failed at import time
        hint = ""
        if isinstance(err, ImportError) and "no known parent package" in str(err):
            # a relative import in a directory without __init__.py (a namespace package)
            package = os.path.basename(os.path.dirname(path))
            hint = (f" (its relative imports need the package it is in: name it as a module, "
                    f"{package}.{os.path.splitext(os.path.basename(path))[0]}:NAME, from the directory above {package}/, "
                    f"or add {package}/__init__.py)")
        raise RflintError(f"importing {path} failed: {type(err).__name__}: {err}{hint}") from err
    return module


def _import_module(name: str, path: str | None = None) -> Any:
    """Import the module ``name`` (from the file ``path``, for a file target in a package)."""
    shown = path or name
    try:
        with recording_sites():
            return importlib.import_module(name)
    except SyntaxError as err:
        raise RflintError(f"syntax error in {_at_line(err.filename or shown, err)}: {err.msg}") from err
    except ModuleNotFoundError as err:
        if path is None and (err.name == name or name.startswith(f"{err.name}.")):
            raise RflintError(f"cannot import module {name!r}: {err}") from err
        raise RflintError(f"importing {shown} failed: {type(err).__name__}: {err}") from err
    except SystemExit as err:
        raise RflintError(f"importing {shown} called {exit_call(err)}") from None
    except Exception as err:
        raise RflintError(f"importing {shown} failed: {type(err).__name__}: {err}") from err


class _HardExit(SystemExit):
    """os._exit() called by a target's code while rflint loads it (_kept_process_state) or, in the
    CLI, while it traces and runs it (cli/isolation.py)."""


# The process that refuses os._exit() and the real one: a child that the target's code forks while
# it is refused (a multiprocessing pool at import, torch.compile's worker pool) ends with the real
# one, as multiprocessing's children always do; refused there, the child would carry on as a copy
# of rflint and print a second report.
_refusing_pid: int | None = None
_real_exit = os._exit


def refused_exit(status: int) -> None:
    """os._exit() in a target's code: it ended rflint on the spot, exit 0 and no word."""
    if os.getpid() != _refusing_pid:
        _real_exit(status)
    raise _HardExit(status)


def exited_while_run(name: str, err: SystemExit) -> str:
    """The error of a model whose code asked to exit while rflint traced or ran it (check's, per
    target; sweep's and fix's)."""
    return f"{name}: its code called {exit_call(err)} while rflint traced or ran it"


def exit_call(err: SystemExit) -> str:
    """How the code asked to exit: "sys.exit(5)", "os._exit(0)"."""
    return f"{'os._exit' if isinstance(err, _HardExit) else 'sys.exit'}({'' if err.code is None else repr(err.code)})"


def _at_line(path: str, err: SyntaxError) -> str:
    """"net.py:12", or the file alone when Python names no line (a NUL byte in the source)."""
    return f"{path}:{err.lineno}" if err.lineno else path


def _resolve(target: str) -> tuple[Any, str]:
    if target.startswith("zoo:"):
        from rflint import zoo

        try:
            return zoo.get(target[4:]), target
        except KeyError as err:
            raise RflintError(str(err.args[0])) from err
    from rflint.cli.values import target_problem  # (string checks only: the CLI makes them before torch loads)

    problem = target_problem(target)
    if problem is not None:
        raise RflintError(problem)
    where, sep, attr = target.rpartition(":")
    if ":" in where and not os.path.isfile(where) and _is_file(where.partition(":")[0]):
        raise RflintError(f"TARGET {target!r} has more than one colon: write path/to/file.py:name, "
                          f"e.g. {where.partition(':')[0]}:{where.partition(':')[2]}")
    if _is_file(where):
        module = _import_file(where)
    else:  # the working directory (or a config's) is first on sys.path (_own_imports), as under `python -m rflint`
        module = _import_module(where)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise RflintError(f"{where} has no attribute {attr!r}{_what_it_has(module) if obj is module else ''}")
        obj = getattr(obj, part)
    return obj, target


def _what_it_has(module: Any) -> str:
    """The factories and model classes a target's module defines itself (not what it imports):
    what the user probably meant to name."""
    own = getattr(module, "__name__", None)
    names = [name for name, value in vars(module).items()
             if not name.startswith("_") and getattr(value, "__module__", None) == own
             and (inspect.isfunction(value) or (inspect.isclass(value) and issubclass(value, nn.Module)))]
    if not names:
        return ""
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return f"; it defines {shown}"


def _missing_arguments(factory: Callable, kwargs: dict[str, Any]) -> list[str]:
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return []
    missing = []
    for name, param in sig.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.default is param.empty and name not in kwargs:
            missing.append(name)
    return missing


def _factory_source(factory: Any) -> Source | None:
    if inspect.isclass(factory):  # without inspect's parse of the whole file (sources.class_header)
        source = class_header(factory)
        return source if source is not None and not not_user_code(source.file) else None
    try:
        # through decorators that keep the function as __wrapped__ (functools.wraps, lru_cache, cache)
        factory = inspect.unwrap(factory)
        file = inspect.getsourcefile(factory)
        _, line = inspect.getsourcelines(factory)
    except (TypeError, OSError, ValueError):  # ValueError: a __wrapped__ cycle
        return None
    # a module instance of torch's own classes (nn.Sequential(...)) was not built in its class
    return Source(file, line) if file and not not_user_code(file) else None


def _call_factory(factory: Callable, kwargs: dict[str, Any], label: str,
                  devices: tuple[str, ...] = ("meta", "cpu")) -> tuple[nn.Module, str]:
    """Build on the meta device first (no weight memory); fall back to CPU if the factory can't."""
    missing = _missing_arguments(factory, kwargs)
    if missing:
        names = ", ".join(missing)
        raise RflintError(f"{label} needs arguments that were not given: {names} (pass them with --kwarg NAME=VALUE)")
    failed: Exception | None = None
    for device in devices:
        try:
            with recording_sites(), torch.device(device):
                built = factory(**kwargs)
        except TypeError as err:
            if "unexpected keyword argument" in str(err):
                raise RflintError(f"{label}: {err}") from err
            failed = err
            continue
        except (OSError, ImportError) as err:  # a missing checkpoint, a download, a package: no device cures it
            failed = err
            break
        except Exception as err:
            failed = err
            continue
        except SystemExit as err:  # not a meta-device problem: no point trying the CPU
            raise RflintError(f"{label} called {exit_call(err)}") from None
        if not isinstance(built, nn.Module):
            raise RflintError(f"{label} returned {type(built).__name__}, not a torch.nn.Module")
        return built, device
    # the last attempt's error: the CPU's, where the factory runs as in training ("Tensor.item()
    # cannot be called on meta tensors" is rflint's doing, a missing checkpoint behind it the cause)
    assert failed is not None
    said = f": {failed}" if str(failed).strip() else " (without a message)"  # (not "ValueError: ")
    raise RflintError(f"{label} raised {type(failed).__name__}{said}") from failed


def load_model(target: Any, kwargs: dict[str, Any] | None = None, label: str | None = None,
               real_weights: bool = False, root: str | None = None) -> LoadedModel:
    """Load TARGET (a string, an nn.Module, a class or a factory) and put it in eval mode.

    ``real_weights``: build factories on the CPU (for fixes that return a runnable model).
    ``root``: where a package.module target imports from (default: the working directory; a
    config's targets: its pyproject.toml's directory)."""
    # one load at a time (sources.PATCHING, re-entrant): sys.path, sys.modules, sys.argv, the working
    # directory and the warning filters are the process's, which two threads' loads would mix
    key = target.rpartition(":")[0] if isinstance(target, str) else None
    with PATCHING:
        _LOADING[0] += 1
        try:
            with _own_imports(_import_roots(target, root), key), _kept_process_state(target):
                # (the factory may import more of the user's modules)
                return _load_model(target, kwargs, label, real_weights)
        finally:
            _LOADING[0] -= 1


@contextlib.contextmanager
def _kept_process_state(target: Any) -> Iterator[None]:
    """While a TARGET string's file is imported and its factory runs: sys.argv is just the target
    (a model file that calls argparse's parse_args() at import read rflint's own flags and printed
    "rflint: error: unrecognized arguments"), os._exit() is an error instead of the end of rflint,
    and the working directory and the warning filters are given back after (an os.chdir made the next target "not found" and -o land elsewhere; a
    warnings.filterwarnings("error") failed the next targets).  Model objects are the caller's
    business: their process state is left alone."""
    if not isinstance(target, str):
        yield
        return
    argv, cwd = sys.argv, os.getcwd()
    sys.argv = [target]
    try:
        with warnings.catch_warnings(), exit_refused():
            yield
    finally:
        sys.argv = argv
        if os.getcwd() != cwd:
            os.chdir(cwd)


@contextlib.contextmanager
def exit_refused() -> Iterator[None]:
    """``os._exit()`` (also by its other name, ``posix._exit``) raises :class:`_HardExit` instead of
    ending the process: for a target's import and factory here, for the whole job in the CLI
    (cli/isolation.py)."""
    global _refusing_pid, _real_exit
    posix = sys.modules.get("posix")
    hard = os._exit, getattr(posix, "_exit", None)
    if hard[0] is not refused_exit:  # (nested: the CLI's job around a target's load)
        _real_exit = hard[0]
    _refusing_pid = os.getpid()
    os._exit = refused_exit
    if hard[1] is not None:
        posix._exit = refused_exit
    try:
        yield
    finally:
        os._exit = hard[0]
        if hard[1] is not None:
            posix._exit = hard[1]


def _load_model(target: Any, kwargs: dict[str, Any] | None, label: str | None, real_weights: bool) -> LoadedModel:
    kwargs = dict(kwargs or {})
    suggested_input = suggested_channels = None
    if isinstance(target, str):
        obj, resolved = _resolve(target)
        label = label or resolved  # a config's target keeps the name it has there (config.py)
    else:
        obj, label = target, label or getattr(target, "__name__", None) or _short_repr(target)
    origin = obj  # what the target names, resolved: loading it again imports nothing (Prepared.anew)
    # zoo entries carry their natural input size and channels
    if hasattr(obj, "factory") and hasattr(obj, "input_size"):
        suggested_input, suggested_channels = tuple(obj.input_size), obj.channels
        obj = obj.factory
    owned = True
    if isinstance(obj, nn.Module):
        if real_weights and _module_device(obj) == "meta":
            raise RflintError(f"{label} was built on the meta device: it has no weights to run with")
        if kwargs:
            raise RflintError(f"{label} is a module instance; --kwarg only applies to classes and factories")
        module, device, source = obj, _module_device(obj), _factory_source(type(obj))
        owned = False
        if has_lazy_layers(module):
            # a lazy layer takes its shape on the first call, which the analysis makes: on a copy,
            # or the caller's LazyConv2d would become a Conv2d without weights (with real_weights,
            # rflint.fixes gives the copy real ones by a first call on zeros)
            copied = deepcopy_with_sites(module)
            module, owned = copied if real_weights else _lazy_on_meta(copied), True
    elif callable(obj):
        module, device = _call_factory(obj, kwargs, label, ("cpu",) if real_weights else ("meta", "cpu"))
        source = _factory_source(obj)
    else:
        kind = type(obj).__name__
        raise RflintError(f"{label} is {'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind}, "
                          "not an nn.Module, class or factory")
    module = _unwrapped(module, label)
    if owned:
        module.eval()
    return LoadedModel(module, label, device, source, suggested_input, suggested_channels, hook_notes(module),
                       has_lazy_layers(module), owned=owned, target=target if isinstance(target, str) else None,
                       origin=origin)


def _short_repr(obj: Any) -> str:
    """How an object without a name is called in messages: its repr, cut short (an nn.Module's
    repr is its whole architecture), or its type's name."""
    if isinstance(obj, nn.Module):
        return type(obj).__name__
    text = repr(obj)
    return text if len(text) <= 40 else type(obj).__name__


def has_lazy_layers(module: nn.Module) -> bool:
    """Some layer (nn.LazyConv2d ...) has no weights yet: it takes their shape on its first call."""
    return any(isinstance(p, UninitializedTensorMixin) for p in module.parameters())


def _lazy_on_meta(module: nn.Module) -> nn.Module:
    """The lazy parameters and buffers of ``module`` (a copy) moved to the meta device, where its
    first call during the shape pass gives them their shapes without allocating them, as for a model
    a factory builds on meta."""
    for m in module.modules():
        for table, kind in ((m._parameters, UninitializedParameter), (m._buffers, UninitializedBuffer)):
            for name, t in list(table.items()):
                if isinstance(t, UninitializedTensorMixin):
                    table[name] = kind(device="meta", dtype=t.dtype)
    return module


@contextlib.contextmanager
def evaluating(loaded: LoadedModel) -> Iterator[None]:
    """The model in eval mode while rflint traces or runs it (a forward() that asks
    ``self.training`` is analysed as used for inference; norms take no batch statistics), and a
    caller's module given back with its own training flags."""
    if loaded.owned:
        yield
        return
    # counted per model, across threads: two threads analysing one instance must not hand it back
    # in training mode while the other still traces it (the second saw eval everywhere, saved no
    # flags, and the first restored them under it)
    key = id(loaded.module)
    with _EVAL_LOCK:
        entry = _EVALUATING.get(key)
        if entry is None:
            training = [m for m in loaded.module.modules() if m.training]
            for m in training:
                m.training = False
            entry = _EVALUATING[key] = [0, training]
        entry[0] += 1
    try:
        yield
    finally:
        with _EVAL_LOCK:
            entry[0] -= 1
            if entry[0] == 0:
                del _EVALUATING[key]
                for m in entry[1]:
                    m.training = True


_EVAL_LOCK = threading.Lock()
_EVALUATING: dict[int, list] = {}  # id(model) -> [analyses running, the modules to give training back to]


def _unwrapped(module: nn.Module, label: str) -> nn.Module:
    """The model inside the wrappers training code puts around it (DataParallel, DDP, torch.compile,
    an EMA's AveragedModel: tracing.wrapped_model).  A TorchScript module has no Python
    forward() for fx to trace: say so, rather than finding no layer in it."""
    while (inner := wrapped_model(module)) is not None:
        module = inner
    if isinstance(module, torch.jit.ScriptModule):
        raise RflintError(f"{label} is a TorchScript module, which torch.fx cannot trace; "
                          "give rflint the nn.Module it was scripted or traced from")
    if any(cls.__name__ == "_StatefulGraphModule" for cls in type(module).__mro__):  # no public name for it
        raise RflintError(f"{label} comes from torch.export (ExportedProgram.module()): its graph holds ATen ops, "
                          "not the layers rflint reads; give rflint the nn.Module it was exported from")
    return module


def _module_device(module: nn.Module) -> str:
    for tensor in list(module.parameters()) + list(module.buffers()):
        return "meta" if tensor.is_meta else "cpu"
    return "cpu"
