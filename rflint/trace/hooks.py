"""Forward hooks and per-instance forward() replacements: code that runs when a module is called
but is not in the forward() its class defines.

torch.fx traces the class's forward() and records a call of a leaf layer (a Conv2d) without its
hooks, and rflint's layer rules read the layer's own kernel and stride; so a hook that changes a
tensor (a pre-hook that downsamples, a forward hook that pools) is invisible to the analysis.  We
cannot model arbitrary hook code, so we say it: one note per module with such a hook.  (A hook
of a submodule of the user's own runs while fx traces through it, and is in the graph.)  Hooks that
torch itself installs (weight_norm, spectral_norm, quantization observers) change weights or watch
values, never the map, and are not mentioned.
"""

from __future__ import annotations

from typing import Any, Callable

from torch import nn
from torch.nn.modules import module as _module_globals


def _users(hooks: dict[int, Callable[..., Any]]) -> list[Callable[..., Any]]:
    """The hooks not installed by torch (theirs are functions or objects of torch's own modules)."""
    found = []
    for hook in hooks.values():
        owner = getattr(hook, "__module__", None) or type(hook).__module__ or ""
        if owner != "torch" and not owner.startswith("torch."):
            found.append(hook)
    return found


def _hook_name(hook: Callable[..., Any]) -> str:
    name = getattr(hook, "__qualname__", None) or type(hook).__name__
    return "a lambda" if name.endswith("<lambda>") else name


def _leaf(module: nn.Module) -> bool:
    """A module fx records as one call, hooks not run: a torch layer (fx's default leaf test), or a
    layer of the user's declared with @rflint.layer / [tool.rflint.layers] (tracing.py)."""
    from rflint.declared import spec_for

    owner = type(module).__module__
    return ((owner.startswith("torch.nn") or owner.startswith("torch.ao.nn")) and not isinstance(module, nn.Sequential)) \
        or spec_for(module) is not None


def hook_notes(model: nn.Module) -> list[str]:
    """One note per module whose calls run code that the traced graph leaves out: user forward
    hooks and pre-hooks, and a forward() replaced on the instance, of the model itself (fx traces
    its class's forward()) and of torch layers (recorded as one call).  A submodule of the user's
    own is traced through its call, hooks included, and needs no note."""
    notes = []
    global_hooks = [(kind, h) for kind, table in (("forward pre-hook", _module_globals._global_forward_pre_hooks),
                                                  ("forward hook", _module_globals._global_forward_hooks))
                    for h in _users(table)]
    if global_hooks:
        kind, hook = global_hooks[0]
        notes.append(f"a global {kind} ({_hook_name(hook)}) runs around every module: rflint "
                     "does not analyse it, so if it changes tensors the RFs are not what runs")
    if type(model).__call__ is nn.Module.__call__ and not any(
            m._forward_hooks or m._forward_pre_hooks or "forward" in m.__dict__ for m in model.modules()):
        return notes  # the common case, without building every module's path
    for path, module in model.named_modules():
        if path and not _leaf(module):
            continue
        pre = _users(getattr(module, "_forward_pre_hooks", None) or {})
        hooks = pre or _users(getattr(module, "_forward_hooks", None) or {})
        if hooks:
            kind = "forward pre-hook" if pre else "forward hook"
            what = f"has a {kind} ({_hook_name(hooks[0])}) that rflint does not analyse"
        elif not path and type(module).__call__ is not nn.Module.__call__ \
                and not type(module).__module__.startswith("torch."):
            what = (f"overrides __call__; rflint analyses {type(module).__name__}.forward, which fx traces without "
                    "it")
        elif "forward" in vars(module):
            what = f"has a forward() set on the instance; rflint analyses {type(module).__name__}.forward instead"
        else:
            continue
        notes.append(f"{path or type(model).__name__} {what}: if that code changes the tensors, the RFs from "
                     "there on are not what runs")
    return notes
