"""rflint's own module-tree walks agree with torch's ``parameters()`` and ``named_modules()``."""

from __future__ import annotations

import pytest
import torch
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


@pytest.mark.parametrize("name", ["resnet18", "densenet121", "inception", "unet"])
def test_one_walk_counts_the_model_and_every_leaf(name):
    """count_params: the model's total as torch counts it, and per leaf module its own count."""
    from rflint.engine.costs import count_params

    model = ZOO[name].factory()
    total, leaves, _ = count_params(model)
    assert total == sum(p.numel() for p in model.parameters())
    want = {id(m): sum(p.numel() for p in m.parameters()) for m in model.modules() if not m._modules}
    assert leaves == want


def test_one_walk_counts_shared_modules_and_tied_parameters_once():
    """a: 84 (registered twice, listed once); c: 20; d: 16 + 4 = 20 counted as a leaf of its own,
    4 more in the total (its weight is c's)."""
    from rflint.engine.costs import count_params

    model = Shared()
    total, leaves, tied = count_params(model)
    assert total == 84 + 20 + 4
    assert leaves == {id(model.a): 84, id(model.c): 20, id(model.d): 20} and tied  # d's weight is c's


def test_a_parameter_registered_twice_in_one_leaf_counts_once():
    """One 3x4 Parameter under two names in one leaf: 12, in the leaf's own count and in the total
    (torch's parameters() lists it once too)."""
    from rflint.engine.costs import count_params, module_params

    leaf = nn.Module()
    leaf.w = nn.Parameter(torch.zeros(3, 4))
    leaf.v = leaf.w
    model = nn.Sequential(leaf)
    total, leaves, tied = count_params(model)
    assert total == 12 == sum(p.numel() for p in model.parameters())
    assert leaves == {id(leaf): 12} and not tied  # (one leaf: nothing to count twice)
    assert module_params(leaf) == 12
