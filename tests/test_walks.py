"""rflint's own module-tree walks agree with torch's ``parameters()`` and ``named_modules()``."""

from __future__ import annotations

import pytest
from torch import nn

from rflint.engine import prepare
from rflint.engine.costs import module_params
from rflint.zoo import ZOO


class Shared(nn.Module):
    """One conv registered under two names, and a parameter tied between two layers."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 3, 3)
        self.b = self.a
        self.c = nn.Linear(4, 4)
        self.d = nn.Linear(4, 4)
        self.d.weight = self.c.weight

    def forward(self, x):
        return self.b(self.a(x))


@pytest.mark.parametrize("name", sorted(ZOO))
def test_parameter_count_and_module_table_match_torch(name):
    model = ZOO[name].factory()
    assert module_params(model) == sum(p.numel() for p in model.parameters())
    traced = prepare(model).traced
    table = traced.modules
    for path, module in traced.gm.named_modules():
        assert table[path] is module


def test_shared_modules_and_tied_parameters_count_once():
    model = Shared()
    # a: 3*3*3*3 + 3 = 84; c: 16 + 4 = 20; d: its own bias 4 (the weight is c's)
    assert module_params(model) == 84 + 20 + 4 == sum(p.numel() for p in model.parameters())
    traced = prepare(model, channels=3).traced
    # fx names a module by its first path, so both calls are to "a"
    assert {n.target for n in traced.order if n.op == "call_module"} == {"a"}
    assert traced.modules["a"] is model.a
