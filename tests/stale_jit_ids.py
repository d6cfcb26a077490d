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

from torch.jit import _builtins


def drop_stale_jit_builtin_ids() -> int:
    """Remove the table's entries whose object is gone; returns how many.

    Every builtin is callable and tracked by the garbage collector (functions, builtin functions),
    so an id no live callable has is the id of a freed op; the objects torch registers up front
    are kept in ``_builtin_ops`` and always stay.
    """
    table = _builtins._get_builtin_table()
    registered = {id(fn) for fn, _ in _builtins._builtin_ops}
    live = {id(obj) for obj in gc.get_objects() if callable(obj)}
    stale = [key for key in table if key not in registered and key not in live]
    for key in stale:
        del table[key]
    return len(stale)
