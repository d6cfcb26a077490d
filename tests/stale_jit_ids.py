"""A workaround for a torch.jit bug that made scripting a Conv2d fail at random in this test suite.

torch.jit._builtins maps ``id(op)`` to a builtin's name, and ``torch.jit.script`` looks every
attribute of a module up in that table.  When ``torch.library`` adds an overload to an operator
whose packet already exists (importing ``torch.ao.quantization`` does it for
``quantize_per_tensor`` and three more), ``torch._ops._refresh_packet`` swaps the packet's op
object: the old one is freed, its id stays in the table.  A list made later at the same address
(``Conv2d._reversed_padding_repeated_twice``) is then taken for a builtin, and scripting fails
with "builtin cannot be used as a value" -- or not, depending on where the allocator puts the
list.  CI failed so on a test that passes alone (kornia saw the same error in its CI).

rflint itself never scripts; only tests that build a TorchScript module need this.
"""

import gc
import sys

import torch
from torch.jit import _builtins


def _registered_ids() -> set[int]:
    """The ids of every object the table may legitimately name: torch's up-front builtins (kept
    in ``_builtin_ops``), the functions torch.jit registers by hand (attributes of torch's
    modules), the op each operator packet holds now, and, as a fallback, every callable the
    garbage collector sees (it does not see objects ``gc.freeze()`` moved away, which the CLI
    does in-process)."""
    ids = {id(fn) for fn, _ in _builtins._builtin_ops}
    for name, module in list(sys.modules.items()):
        if module is not None and (name == "torch" or name.startswith("torch.")):
            ids.update(id(value) for value in list(vars(module).values()) if callable(value))
    for namespace in list(vars(torch.ops).values()):
        if isinstance(namespace, torch._ops._OpNamespace):
            ids.update(id(packet._op) for packet in list(vars(namespace).values())
                       if isinstance(packet, torch._ops.OpOverloadPacket))
    ids.update(id(obj) for obj in gc.get_objects() if callable(obj))
    return ids


def drop_stale_jit_builtin_ids() -> int:
    """Remove the table's entries whose object is gone; returns how many."""
    table = _builtins._get_builtin_table()
    registered = _registered_ids()
    stale = [key for key in table if key not in registered]
    for key in stale:
        del table[key]
    return len(stale)
