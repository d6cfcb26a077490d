"""Parameters and multiply-accumulates (MACs) per node, from module attributes and meta shapes.

MACs count the multiply-accumulates of weight-bearing ops and products of activations (conv,
transposed conv, linear, matmul/bmm/addmm/baddbmm, two-operand einsum, scaled dot-product attention,
nn.MultiheadAttention, nn.Transformer{Encoder,Decoder}{,Layer}, recurrent layers): the number papers call "FLOPs" (one
MAC = one multiply-add).
nn.LSTM, nn.GRU and nn.RNN count their gates' products.  Pooling, normalisation and activations
count 0; they are a rounding error next to the convs.
All counts are per sample: a node's count over the whole run, divided by the batch size of the
model's input (``per_sample``), not by the node's own first dimension, which is not the batch in a
model that folds a clip's frames into it or lays tokens out sequence-first.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.fx as fx
from torch import nn

from rflint.trace.metaspec import is_tensor_like


_NUMEL = torch.Tensor.numel


def module_params(module: nn.Module) -> int:
    """``sum(p.numel() for p in module.parameters())`` (shared parameters once), walking the
    ``_modules`` / ``_parameters`` dicts directly: the generator layers of ``parameters()`` cost
    more than the counting on a leaf layer, and this runs for every layer of every trace."""
    if not module._modules:  # a leaf layer (the common call)
        return sum(map(_NUMEL, _own_params(module)))
    return count_params(module)[0]


def unique_params(module: nn.Module) -> list:
    """The module's parameters, each once (a leaf's own; a block's, its children's included)."""
    if not module._modules:
        return _own_params(module)
    return list({id(p): p for p in module.parameters()}.values())


def _own_params(leaf: nn.Module) -> list:
    """A leaf module's own parameters, each once (one tensor may be registered under two names)."""
    own = leaf._parameters
    if not own:  # activations, pools, dropout
        return []
    params = [p for p in own.values() if p is not None]
    if len(params) > 2 or (len(params) == 2 and params[0] is params[1]):
        params = list({id(p): p for p in params}.values())
    return params


def count_params(model: nn.Module) -> tuple[int, dict[int, int], bool]:
    """``module_params(model)`` (shared modules and tied parameters once) and, per leaf module (by
    ``id``), ``module_params`` of it, from one walk over the ``_modules`` / ``_parameters`` dicts
    in plain loops: the report needs the model's total and every called layer's own count, and
    two separate walks visited every module twice per trace.  A leaf's parameters are read once
    for both counts (``numel`` is a torch call).  The third value: two leaves share a parameter
    (a tied weight), which the ledger then counts once, at the first called."""
    total, leaves, seen_params, seen_modules, stack, tied = 0, {}, set(), set(), [model], False
    while stack:
        m = stack.pop()
        key = id(m)
        if key in seen_modules:
            continue
        seen_modules.add(key)
        children = m._modules
        if children:
            for p in m._parameters.values():
                if p is not None and id(p) not in seen_params:
                    seen_params.add(id(p))
                    total += _NUMEL(p)
            for child in children.values():
                if child is not None:
                    stack.append(child)
            continue
        own = 0  # a leaf: its own count and its share of the total, one numel per parameter
        for p in _own_params(m):
            n = _NUMEL(p)
            own += n
            if id(p) not in seen_params:
                seen_params.add(id(p))
                total += n
            else:  # a parameter of two leaves (a tied weight): the ledger then counts per parameter
                tied = True
        leaves[key] = own
    return total, leaves, tied


def _numel(value: Any) -> int:
    return value.numel() if is_tensor_like(value) else 0


def node_macs(node: fx.Node, module: nn.Module | None, values: dict) -> int:
    """One node's MACs in the whole run at once (run_program keeps each node's :func:`macs_rule` per
    trace instead)."""
    rule = macs_rule(node, module)
    return rule(values) if rule is not None else 0


MacsRule = Callable[[dict], int]  # the node's MACs in the whole run, from the values (meta shapes) of one analysis


def macs_rule(node: fx.Node, module: nn.Module | None) -> MacsRule | None:
    """How the node's MACs follow from the shapes, worked out once per trace; None for the nodes
    that never count any (norms, activations, merges, pools: most of a graph)."""
    if module is not None:
        if type(module) in _NO_MACS:
            return None
        if isinstance(module, nn.modules.conv._ConvTransposeNd):
            return _scaled(node, node.args[0], (module.out_channels // module.groups) * math.prod(module.kernel_size))
        if isinstance(module, nn.modules.conv._ConvNd):
            return _scaled(node, node, (module.in_channels // module.groups) * math.prod(module.kernel_size))
        if isinstance(module, nn.Linear):
            return _scaled(node, node, module.in_features)
        if isinstance(module, nn.MultiheadAttention):
            return _multihead_attention(node, module)
        if isinstance(module, nn.RNNBase):
            return _recurrent(node, module)
        if isinstance(module, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer, nn.TransformerEncoder,
                               nn.TransformerDecoder, nn.Transformer)):
            return _transformer(node, module)
        return None
    name = getattr(node.target, "__name__", str(node.target))
    if name in ("conv1d", "conv2d", "conv3d", "linear", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"):
        # positional or by keyword: F.conv2d(input=x, weight=w)
        args = list(node.args) + [node.kwargs.get(key) for key in ("input", "weight")[len(node.args):]]
        if len(args) < 2 or args[1] is None:
            return None
        source = args[0] if name.startswith("conv_transpose") else node
        weight = args[1]

        def weighted(values: dict) -> int:
            w = values.get(weight)
            if not is_tensor_like(w):
                return 0
            per_output = w.shape[-1] if name == "linear" else math.prod(w.shape[1:])
            return _numel(values.get(source)) * per_output
        return weighted
    if name in ("matmul", "bmm", "mm", "__matmul__") and node.args:
        return _product(node, node.args[0])
    if name in ("addmm", "baddbmm"):  # bias + a @ b: a Linear written out
        first = _argument(node, 1, "mat1" if name == "addmm" else "batch1")
        return _product(node, first) if first is not None else None
    if name == "einsum":
        return _einsum_rule(node)
    if name == "scaled_dot_product_attention":
        return _attention_rule(node)
    if (getattr(node.target, "__module__", None), name) in _WINDOW_ATTENTION:
        return _window_attention_rule(node)
    return None


# torchvision's Swin attention functions (fx keeps them whole: engine/ops/library.py)
_WINDOW_ATTENTION = {("torchvision.models.swin_transformer", "shifted_window_attention"),
                     ("torchvision.models.video.swin_transformer", "shifted_window_attention_3d")}


def _window_attention_rule(node: fx.Node) -> MacsRule:
    """torchvision's shifted_window_attention(x, qkv_weight, proj_weight, bias, window_size, ...) on
    a channels-last map (B, *spatial, C), padded up to whole windows: per position of the padded
    map the qkv and output projections (the weights' sizes) and the attention within its window of
    N positions (q k^T and the scores times v: 2 N C)."""
    x, qkv, proj = (_argument(node, i, key) for i, key in enumerate(("input", "qkv_weight", "proj_weight")))
    window = _argument(node, 4, "window_size")

    def rule(values: dict) -> int:
        inp, wq, wp = (values.get(a) for a in (x, qkv, proj))
        size = values.get(window) if isinstance(window, fx.Node) else window
        if not all(is_tensor_like(t) for t in (inp, wq, wp)) or not isinstance(size, (list, tuple)):
            return 0
        sides, c = inp.shape[1:-1], inp.shape[-1]
        if len(sides) != len(size) or not all(isinstance(w, int) and w > 0 for w in size):
            return 0
        positions = inp.shape[0] * math.prod(-(-s // w) * w for s, w in zip(sides, size))
        return positions * (_numel(wq) + _numel(wp) + 2 * math.prod(size) * c)
    return rule


def _argument(node: fx.Node, index: int, keyword: str) -> Any:
    """The call's argument at ``index``, or given by ``keyword``; None when it has neither."""
    return node.args[index] if len(node.args) > index else node.kwargs.get(keyword)


def _product(node: fx.Node, first: Any) -> MacsRule:
    """A matrix product: each output element sums over the first factor's last dim."""
    def product(values: dict) -> int:
        a = values.get(first)
        if not is_tensor_like(a) or a.dim() == 0:
            return 0
        return _numel(values.get(node)) * a.shape[-1]
    return product


def _einsum_rule(node: fx.Node) -> MacsRule | None:
    """torch.einsum of two operands: one MAC per combination of the values of every letter (the
    letters kept index the output, the others are summed over).  One operand (a transpose, a sum)
    multiplies nothing; three or more are contracted pairwise in an order torch picks: not counted."""
    from rflint.engine.ops.tensors import _without_ellipsis

    equation, *operands = node.args if node.args else (None,)
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = list(operands[0])
    if not isinstance(equation, str) or len(operands) != 2:
        return None
    if "->" not in equation:  # implicit output: the letters that occur once, in alphabetical order
        letters = equation.replace(" ", "").replace("...", "").replace(",", "")
        equation += "->" + ("..." if "..." in equation else "") + "".join(sorted(c for c in set(letters) if letters.count(c) == 1))

    def rule(values: dict) -> int:
        shapes = [getattr(values.get(o), "shape", None) for o in operands]
        inputs, out = equation.replace(" ", "").split("->")
        subscripts = inputs.split(",")
        if "..." in equation:
            subscripts, out = _without_ellipsis(subscripts, out, shapes)
        if subscripts is None or any(shape is None or len(shape) != len(sub) for sub, shape in zip(subscripts, shapes)):
            return 0
        sizes: dict[str, int] = {}
        for sub, shape in zip(subscripts, shapes):
            for letter, size in zip(sub, shape):
                sizes[letter] = max(sizes.get(letter, 1), int(size))  # (a broadcast 1 meets the size)
        return math.prod(sizes.values())
    return rule


def _attention_rule(node: fx.Node) -> MacsRule:
    """F.scaled_dot_product_attention(q, k, v): q k^T (L x S scores of E each) and the scores
    times v (L x Ev of S each), per batch and head: (numel(q) / E) * S * (E + Ev)."""
    q, k, v = (_argument(node, i, name) for i, name in enumerate(("query", "key", "value")))

    def rule(values: dict) -> int:
        shapes = [getattr(values.get(x), "shape", None) for x in (q, k, v)]
        if any(shape is None or len(shape) < 2 for shape in shapes):
            return 0
        (e, s, ev) = shapes[0][-1], shapes[1][-2], shapes[2][-1]
        return math.prod(shapes[0][:-1]) * s * (e + ev)
    return rule


_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _recurrent(node: fx.Node, module: nn.RNNBase) -> MacsRule:
    """nn.LSTM / nn.GRU / nn.RNN over a (T, N, I) input ((N, T, I) with batch_first, (T, I)
    unbatched): per step, direction and layer, each gate's input and hidden products, gates *
    H * (I_l + H_out), and an LSTM's projection to proj_size, H * proj_size; I_l is the input size
    for the first layer, H_out * directions for the others (H_out: proj_size, else H).  A packed
    sequence (its steps vary per sample) counts 0."""
    x = _argument(node, 0, "input")
    h = module.hidden_size
    out = getattr(module, "proj_size", 0) or h
    directions = 2 if module.bidirectional else 1
    per_step = sum(_GATES.get(module.mode, 1) * h * ((module.input_size if layer == 0 else out * directions) + out)
                   + (h * out if out != h else 0) for layer in range(module.num_layers))

    def rule(values: dict) -> int:
        inp = values.get(x)
        if not is_tensor_like(inp) or inp.dim() not in (2, 3):
            return 0
        steps = inp.shape[0] * (inp.shape[1] if inp.dim() == 3 else 1)  # time steps x samples, either layout
        return steps * directions * per_step
    return rule


def _multihead_attention(node: fx.Node, module: nn.MultiheadAttention) -> MacsRule:
    """nn.MultiheadAttention(query, key, value): the projections of query, key and value to
    embed_dim, the attention (q k^T and its product with v, embed_dim in all heads together) and
    the output projection, for the N sequences of the batch (its second dim, or its first with
    batch_first; an unbatched (L, E) query is one)."""
    query, key, value = (_argument(node, i, name) for i, name in enumerate(("query", "key", "value")))
    e = module.embed_dim

    def rule(values: dict) -> int:
        q, k, v = (values.get(x) for x in (query, key, value))
        if not all(is_tensor_like(x) and x.dim() >= 2 for x in (q, k, v)):
            return 0
        n = 1 if q.dim() == 2 else q.shape[0] if module.batch_first else q.shape[1]
        tokens_q, tokens_k = q.numel() // q.shape[-1], k.numel() // k.shape[-1]
        # source length per sequence, with the learnt key and value bias and the zero attention
        # each adding one position
        s = tokens_k // max(n, 1) + (module.bias_k is not None) + bool(module.add_zero_attn)
        projections = (tokens_q * q.shape[-1] + tokens_k * k.shape[-1] + tokens_k * v.shape[-1]) * e
        return projections + 2 * tokens_q * s * e + tokens_q * e * e
    return rule


def _transformer(node: fx.Node, module: nn.Module) -> MacsRule | None:
    """nn.TransformerEncoderLayer / DecoderLayer / Encoder / Decoder and nn.Transformer, leaves to
    torch.fx: each layer's attention (as nn.MultiheadAttention's rule counts it) and feed-forward
    Linear pair, on its first argument's tokens (a decoder's cross-attention on the memory's too;
    nn.Transformer's decoder reads its encoder's output, of its source's shape)."""
    if isinstance(module, nn.Transformer):
        stages = [(list(module.encoder.layers), 0, None), (list(module.decoder.layers), 1, 0)]
    elif isinstance(module, (nn.TransformerEncoder, nn.TransformerDecoder)):
        stages = [(list(module.layers), 0, 1)]
    else:
        stages = [([module], 0, 1)]
    first = stages[0][0][0] if stages[0][0] else None
    if not all(isinstance(layer, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer))
               for layers, _, _ in stages for layer in layers) or first is None:
        return None
    keyword = ("src", "tgt") if isinstance(module, nn.Transformer) else \
        ("src" if isinstance(first, nn.TransformerEncoderLayer) else "tgt", "memory")
    operands = [_argument(node, 0, keyword[0]), _argument(node, 1, keyword[1])]

    def rule(values: dict) -> int:
        given = [values.get(x) for x in operands]
        total = 0
        for layers, which, memory in stages:
            x, mem = given[which], (given[memory] if memory is not None else None)
            if not is_tensor_like(x) or x.dim() < 2:
                return total
            total += sum(_transformer_layer(layer, x, mem) for layer in layers)
        return total
    return rule


def _transformer_layer(layer: nn.Module, x: Any, mem: Any) -> int:
    """One encoder or decoder layer's MACs on tokens ``x`` (and memory ``mem``)."""
    attn = layer.self_attn
    e, tokens = attn.embed_dim, x.numel() // x.shape[-1]
    n = 1 if x.dim() == 2 else x.shape[0] if attn.batch_first else x.shape[1]
    total = 4 * tokens * e * e + 2 * tokens * (tokens // max(n, 1)) * e  # projections, attention
    if isinstance(layer, nn.TransformerDecoderLayer) and is_tensor_like(mem) and mem.dim() >= 2:
        source = mem.numel() // mem.shape[-1]
        total += 2 * tokens * e * e + 2 * source * e * e + 2 * tokens * (source // max(n, 1)) * e
    return total + 2 * tokens * layer.linear1.in_features * layer.linear1.out_features  # the feed-forward pair


# exact classes that never count MACs (the isinstance checks below cost more than this lookup, on
# most of a network's modules); subclasses still take the checks
_NO_MACS = frozenset({
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm1d,
    nn.InstanceNorm2d, nn.InstanceNorm3d, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Sigmoid,
    nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.Mish, nn.ELU, nn.Dropout, nn.Dropout2d, nn.Dropout3d,
    nn.Identity, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, nn.Flatten, nn.Upsample,
})


def _scaled(node: fx.Node, counted: Any, factor: int) -> MacsRule:
    """``factor`` MACs per element of ``counted`` (the output, or a transposed conv's input)."""
    def rule(values: dict) -> int:
        return _numel(values.get(counted)) * factor
    return rule


def per_sample(order: list[fx.Node], values: dict) -> int:
    """The batch size the counts of one run are divided by: the first dimension of the model's
    first tensor input (forward(self, *xs): of its first element); 1 without one."""
    for node in order:
        if node.op != "placeholder":
            break
        value = values.get(node)
        if isinstance(value, (tuple, list)) and value:
            value = value[0]
        if is_tensor_like(value) and value.dim() > 0:
            return max(int(value.shape[0]), 1)
    return 1
