"""dagzoo: a seeded zoo of random CNN DAGs plus a brute-force receptive-field oracle.

This module is an *independent* test oracle for rflint: it must never import rflint.

Spec format (plain JSON-able dict, so failing cases can be printed and replayed)::

    {
      "seed": int, "style": str,
      "ndim": 1 | 2 | 3,                 # number of spatial axes
      "channels": C,                     # every node carries C channels
      "input_size": (L0, L1, ...),       # spatial input size
      "nodes": [node0, node1, ...],      # topological order; node 0 is the input
    }

Each node is a dict with "op" and "inputs" (indices of earlier nodes), plus per-axis
parameter lists where relevant:

    op        module (named f"n{i}")           params
    --------  -------------------------------  ----------------------------------
    input     -                                -
    conv      nn.ConvNd(C, C, k, s, p, d)      k, s, d, p
    maxpool   nn.MaxPoolNd(k, s, p, d)         k, s, d, p
    avgpool   nn.AvgPoolNd(k, s, p)            k, s, p          (d == 1)
    convT     nn.ConvTransposeNd(C, C, k, s,   k, s, d, p, op
                 p, output_padding=op, d)
    upsample  nn.Upsample(scale_factor=f,      f, mode ("nearest" | "linear")
                 mode=nearest|(bi|tri)linear)
    relu      nn.ReLU()                        -
    bn        nn.BatchNormNd(C)                -
    frelu     (no module) torch.relu(x)        -
    add       (no module) a + b (+ c)          -
    mul       (no module) a * b (* c)          -
    cat       nn.ConvNd(len(inputs)*C, C, 1)   -   forward: n_i(torch.cat(inputs, 1))

The "cat" node is an RF layer too (a 1x1 conv applied to the channel concatenation),
so its input tensor is the concatenation (= union of the inputs' path sets).

RF semantics (per spatial axis, independently), states (r, j) per path:
    input:                   (1, 1)
    conv / maxpool / avgpool: (r + (k_eff - 1) * j, j * s)        k_eff = d*(k-1)+1
    convT:                   (r + (ceil(k_eff / s) - 1) * j, j / s)
    upsample nearest, f:     (r, j / f)
    upsample linear, f:      (r + j, j / f)
    elementwise:             unchanged
    merges:                  union of the inputs' path sets
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

import torch
from torch import nn

PATH_CAP = 100_000

RF_OPS = ("conv", "maxpool", "avgpool", "convT", "upsample", "cat")
MERGE_OPS = ("add", "mul", "cat")
ELEM_OPS = ("relu", "bn", "frelu")
STYLES = ("random", "forkjoin", "wide", "unet", "tiny", "jmix", "deepfork")


def k_eff(k: int, d: int) -> int:
    return d * (k - 1) + 1


# ----------------------------------------------------------------------------------
# spatial sizes (exact PyTorch output-size formulas)
# ----------------------------------------------------------------------------------
def _axis_out_size(node: dict, a: int, L: int) -> int:
    op = node["op"]
    if op in ("conv", "maxpool", "avgpool"):
        k, s, p = node["k"][a], node["s"][a], node["p"][a]
        d = node["d"][a] if op != "avgpool" else 1
        num = L + 2 * p - k_eff(k, d)
        if num < 0:
            return 0
        return num // s + 1
    if op == "convT":
        k, s, d, p, o = node["k"][a], node["s"][a], node["d"][a], node["p"][a], node["op_pad"][a]
        return (L - 1) * s - 2 * p + d * (k - 1) + o + 1
    if op == "upsample":
        return L * node["f"][a]
    return L


def node_out_size(node: dict, in_size: tuple) -> tuple:
    return tuple(_axis_out_size(node, a, L) for a, L in enumerate(in_size))


def spatial_sizes(spec: dict) -> list:
    """Spatial size of every node (recomputed from the spec; asserts merge compatibility)."""
    sizes = []
    for i, node in enumerate(spec["nodes"]):
        if node["op"] == "input":
            sizes.append(tuple(spec["input_size"]))
            continue
        ins = [sizes[j] for j in node["inputs"]]
        if node["op"] in MERGE_OPS:
            assert all(s == ins[0] for s in ins), (i, ins)
        sizes.append(node_out_size(node, ins[0]))
        assert all(L >= 1 for L in sizes[-1]), (i, sizes[-1])
    return sizes


# ----------------------------------------------------------------------------------
# the oracle (written straight from the semantics above)
# ----------------------------------------------------------------------------------
def _transfer_axis(node: dict, a: int, r: Fraction, j: Fraction) -> tuple:
    """Apply one op to one path state (r, j) on axis a."""
    op = node["op"]
    if op in ("conv", "maxpool", "avgpool"):
        d = node["d"][a] if op != "avgpool" else 1
        ke = k_eff(node["k"][a], d)
        return (r + (ke - 1) * j, j * node["s"][a])
    if op == "convT":
        ke = k_eff(node["k"][a], node["d"][a])
        s = node["s"][a]
        return (r + (math.ceil(Fraction(ke, s)) - 1) * j, j / s)
    if op == "upsample":
        f = node["f"][a]
        if node["mode"] == "nearest":
            return (r, j / f)
        return (r + j, j / f)
    if op in ELEM_OPS or op in MERGE_OPS:
        # merges: a path goes through exactly one input, the state is unchanged
        # ("cat" node's 1x1 conv: k_eff = 1, s = 1 -> unchanged as well)
        return (r, j)
    raise ValueError(op)


def path_state(spec: dict, path: list) -> tuple:
    """Fold the formulas along one explicit path [0, ..., v]; returns ((r, j) per axis)."""
    nodes = spec["nodes"]
    assert path[0] == 0
    state = [(Fraction(1), Fraction(1))] * spec["ndim"]
    for prev, v in zip(path, path[1:]):
        assert prev in nodes[v]["inputs"], (prev, v)
        state = [_transfer_axis(nodes[v], a, r, j) for a, (r, j) in enumerate(state)]
    return tuple(state)


def iter_paths(spec: dict, v: int):
    """Yield every input->v path as an explicit list of node indices (DFS, no memo)."""
    if v == 0:
        yield [0]
        return
    # a node may list the same input twice (e.g. x + x): that is two distinct edges,
    # hence two distinct paths.
    for u in spec["nodes"][v]["inputs"]:
        for p in iter_paths(spec, u):
            yield p + [v]


def path_counts(spec: dict) -> list:
    cnt = []
    for node in spec["nodes"]:
        cnt.append(1 if node["op"] == "input" else sum(cnt[u] for u in node["inputs"]))
    return cnt


def _oracle_ids(spec: dict):
    """Per-path enumeration with interned states, one spatial axis at a time.

    Returns (table, per_node) where per_node[i][a] is a list with one entry per
    input->node-i path (no de-duplication: its length is the number of paths), each
    entry an index into `table`, the list of distinct (r, j) states. A node's list is
    built by extending every path of every input with the node's op; the one-step
    arithmetic is memoised per distinct state (a pure speed-up: every entry is exactly
    the fold of the formulas along its path, cf. `path_state`).
    """
    nodes = spec["nodes"]
    ndim = spec["ndim"]
    counts = path_counts(spec)
    assert max(counts) <= PATH_CAP, max(counts)
    table: list = []
    index: dict = {}

    def intern(state):
        sid = index.get(state)
        if sid is None:
            sid = index[state] = len(table)
            table.append(state)
        return sid

    per_node = []
    for i, node in enumerate(nodes):
        if node["op"] == "input":
            per_node.append([[intern((Fraction(1), Fraction(1)))] for _ in range(ndim)])
            continue
        axes = []
        for a in range(ndim):
            memo: dict = {}
            lst = []
            for u in node["inputs"]:
                for sid in per_node[u][a]:
                    out = memo.get(sid)
                    if out is None:
                        out = memo[sid] = intern(_transfer_axis(node, a, *table[sid]))
                    lst.append(out)
            assert len(lst) == counts[i]
            axes.append(lst)
        per_node.append(axes)
    return table, per_node


def oracle_path_states(spec: dict) -> list:
    """For every node, the list of per-path states ((r, j) per axis), one per path."""
    table, per_node = _oracle_ids(spec)
    return [[tuple(table[sid] for sid in st) for st in zip(*axes)] for axes in per_node]


def _minmax_ids(table: list, axes_ids) -> list:
    res = []
    for ids in axes_ids:
        rs = [table[sid][0] for sid in set(ids)]
        res.append((min(rs), max(rs)))
    return res


def oracle(spec: dict) -> dict:
    """{node index: [(r_min, r_max) per axis]} for every node (node 0 = input)."""
    table, per_node = _oracle_ids(spec)
    return {i: _minmax_ids(table, axes) for i, axes in enumerate(per_node)}


def global_pool_sink(spec: dict) -> int | None:
    """The model's one output, when it is a pool whose one window reads the whole map on every axis
    (one output unit from more than one input, d == 1, k - p >= n; or an axis one pixel in and
    out): global pooling before nothing, not an RF layer (rflint's README, "Decisions")."""
    out = sinks(spec)
    if len(out) != 1 or spec["nodes"][out[0]]["op"] not in ("maxpool", "avgpool"):
        return None
    node = spec["nodes"][out[0]]
    sizes = spatial_sizes(spec)
    n_in, n_out = sizes[node["inputs"][0]], sizes[out[0]]
    for a in range(spec["ndim"]):
        d = node.get("d", [1] * spec["ndim"])[a]
        whole = n_out[a] == 1 < n_in[a] and d == 1 and node["k"][a] - node["p"][a] >= n_in[a]
        if not (whole or n_in[a] == n_out[a] == 1):
            return None
    return out[0]


def _rf_layer(spec: dict, i: int) -> bool:
    return spec["nodes"][i]["op"] in RF_OPS and i != global_pool_sink(spec)


def oracle_layers(spec: dict) -> dict:
    """{module name: (in_minmax, out_minmax)} for every RF layer of build_module(spec).

    in_minmax is over the layer's input tensor (for "cat": the concatenation, i.e. the
    union of all the inputs' paths); out_minmax over its output.
    """
    table, per_node = _oracle_ids(spec)
    ndim = spec["ndim"]
    res = {}
    for i, node in enumerate(spec["nodes"]):
        if not _rf_layer(spec, i):
            continue
        in_axes = [[sid for u in node["inputs"] for sid in per_node[u][a]] for a in range(ndim)]
        res[f"n{i}"] = (_minmax_ids(table, in_axes), _minmax_ids(table, per_node[i]))
    return res


def rf_ancestors(spec: dict) -> dict:
    """{name: set of names of RF layers strictly upstream} (for order checks)."""
    nodes = spec["nodes"]
    anc = []
    for i, node in enumerate(nodes):
        s = set()
        for u in node["inputs"]:
            s |= anc[u]
            if nodes[u]["op"] in RF_OPS:
                s.add(u)
        anc.append(s)
    return {
        f"n{i}": {f"n{u}" for u in anc[i]} for i, node in enumerate(nodes) if _rf_layer(spec, i)
    }


# ----------------------------------------------------------------------------------
# module builder
# ----------------------------------------------------------------------------------
_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONVT = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_MAXP = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_AVGP = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}
_BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_LINEAR_MODE = {1: "linear", 2: "bilinear", 3: "trilinear"}


def _make_module(node: dict, ndim: int, C: int):
    op = node["op"]
    t = tuple
    if op == "conv":
        return _CONV[ndim](C, C, t(node["k"]), stride=t(node["s"]), padding=t(node["p"]),
                           dilation=t(node["d"]))
    if op == "maxpool":
        return _MAXP[ndim](t(node["k"]), stride=t(node["s"]), padding=t(node["p"]),
                           dilation=t(node["d"]))
    if op == "avgpool":
        return _AVGP[ndim](t(node["k"]), stride=t(node["s"]), padding=t(node["p"]))
    if op == "convT":
        return _CONVT[ndim](C, C, t(node["k"]), stride=t(node["s"]), padding=t(node["p"]),
                            output_padding=t(node["op_pad"]), dilation=t(node["d"]))
    if op == "upsample":
        f = node["f"]
        sf = float(f[0]) if len(set(f)) == 1 else tuple(float(x) for x in f)
        mode = "nearest" if node["mode"] == "nearest" else _LINEAR_MODE[ndim]
        return nn.Upsample(scale_factor=sf, mode=mode)
    if op == "cat":
        return _CONV[ndim](len(node["inputs"]) * C, C, 1)
    if op == "relu":
        return nn.ReLU()
    if op == "bn":
        return _BN[ndim](C)
    return None  # input, add, mul, frelu


def sinks(spec: dict) -> list:
    used = set()
    for node in spec["nodes"]:
        used.update(node["inputs"])
    return [i for i in range(len(spec["nodes"])) if i not in used]


class DagNet(nn.Module):
    def __init__(self, spec: dict):
        super().__init__()
        self._ops = [(n["op"], tuple(n["inputs"])) for n in spec["nodes"]]
        self._sinks = tuple(sinks(spec))
        for i, node in enumerate(spec["nodes"]):
            m = _make_module(node, spec["ndim"], spec["channels"])
            if m is not None:
                self.add_module(f"n{i}", m)

    def forward(self, x):
        vals = []
        for i, (op, ins) in enumerate(self._ops):
            if op == "input":
                v = x
            elif op == "add":
                v = vals[ins[0]]
                for u in ins[1:]:
                    v = v + vals[u]
            elif op == "mul":
                v = vals[ins[0]]
                for u in ins[1:]:
                    v = v * vals[u]
            elif op == "cat":
                v = getattr(self, f"n{i}")(torch.cat([vals[u] for u in ins], 1))
            elif op == "frelu":
                v = torch.relu(vals[ins[0]])
            else:
                v = getattr(self, f"n{i}")(vals[ins[0]])
            vals.append(v)
        if len(self._sinks) == 1:
            return vals[self._sinks[0]]
        return tuple(vals[s] for s in self._sinks)


def build_module(spec: dict) -> nn.Module:
    return DagNet(spec).eval()  # eval: BatchNorm must accept 1x1-sized maps


# ----------------------------------------------------------------------------------
# the generator
# ----------------------------------------------------------------------------------
class _Gen:
    def __init__(self, rng: random.Random, ndim: int, C: int, input_size: tuple,
                 max_size: int, path_cap: int = PATH_CAP):
        self.rng = rng
        self.ndim = ndim
        self.C = C
        self.input_size = tuple(input_size)
        self.max_size = max_size
        self.path_cap = path_cap
        self.nodes = [{"op": "input", "inputs": []}]
        self.sizes = [self.input_size]
        self.paths = [1]
        self.nuse = [0]

    # -- bookkeeping --------------------------------------------------------------
    def add(self, node: dict) -> int:
        size = node_out_size(node, self.sizes[node["inputs"][0]])
        assert all(L >= 1 for L in size), (node, size)
        if node["op"] in MERGE_OPS:
            assert all(self.sizes[u] == self.sizes[node["inputs"][0]] for u in node["inputs"])
        self.nodes.append(node)
        self.sizes.append(size)
        self.paths.append(sum(self.paths[u] for u in node["inputs"]))
        self.nuse.append(0)
        for u in node["inputs"]:
            self.nuse[u] += 1
        return len(self.nodes) - 1

    def spec(self, seed, style) -> dict:
        return {
            "seed": seed, "style": style, "ndim": self.ndim, "channels": self.C,
            "input_size": list(self.input_size), "nodes": self.nodes,
        }

    # -- per-axis parameter samplers ------------------------------------------------
    def _w(self, choices):
        vals, weights = zip(*choices)
        return self.rng.choices(vals, weights)[0]

    def conv_node(self, x: int, *, same=None, stride=None, odd=False, kmax=7) -> dict:
        """Conv on node x. same: 'same'-style padding (k_eff-1)//2; stride: fixed per-axis
        stride (int or list); odd: force odd k_eff (exact size preservation)."""
        rng = self.rng
        if same is None:
            same = rng.random() < 0.75
        for _ in range(50):
            k, s, d, p = [], [], [], []
            for a in range(self.ndim):
                ka = rng.randint(1, kmax)
                da = self._w([(1, 6), (2, 2), (3, 1)]) if ka > 1 else 1
                if odd and k_eff(ka, da) % 2 == 0:
                    ka = ka - 1 if ka > 1 else ka + 1
                    if k_eff(ka, da) % 2 == 0:
                        da = 1
                        ka = 3
                if stride is None:
                    sa = self._w([(1, 6), (2, 3), (3, 1)])
                else:
                    sa = stride[a] if isinstance(stride, (list, tuple)) else stride
                ke = k_eff(ka, da)
                pa = (ke - 1) // 2 if same else rng.randint(0, (ke - 1) // 2)
                k.append(ka); s.append(sa); d.append(da); p.append(pa)
            node = {"op": "conv", "inputs": [x], "k": k, "s": s, "d": d, "p": p}
            if self._ok(node):
                return node
        return {"op": "conv", "inputs": [x], "k": [1] * self.ndim, "s": self._fixed(stride),
                "d": [1] * self.ndim, "p": [0] * self.ndim}

    def pool_node(self, x: int, kind: str, *, same=None, stride=None, odd=False) -> dict:
        rng = self.rng
        if same is None:
            same = rng.random() < 0.6
        for _ in range(50):
            k, s, d, p = [], [], [], []
            for a in range(self.ndim):
                ka = rng.randint(1, 4)
                da = 1
                if kind == "maxpool" and ka > 1 and not same:
                    da = self._w([(1, 3), (2, 1)])
                if odd and ka % 2 == 0:
                    ka -= 1
                if stride is None:
                    sa = self._w([(1, 2), (2, 3), (3, 1)])
                else:
                    sa = stride[a] if isinstance(stride, (list, tuple)) else stride
                ke = k_eff(ka, da)
                pmax = min(ka // 2, (ke - 1) // 2)
                pa = pmax if same else rng.randint(0, pmax)
                k.append(ka); s.append(sa); d.append(da); p.append(pa)
            node = {"op": kind, "inputs": [x], "k": k, "s": s, "p": p}
            if kind == "maxpool":
                node["d"] = d
            if self._ok(node):
                return node
        node = {"op": kind, "inputs": [x], "k": [1] * self.ndim, "s": self._fixed(stride),
                "p": [0] * self.ndim}
        if kind == "maxpool":
            node["d"] = [1] * self.ndim
        return node

    def convT_node(self, x: int, *, exact=None) -> dict:
        """ConvTranspose on x; exact: pick padding/output_padding so out == L * s."""
        rng = self.rng
        if exact is None:
            exact = rng.random() < 0.8
        k, s, d, p, o = [], [], [], [], []
        for a in range(self.ndim):
            sa = self._w([(2, 6), (1, 1), (3, 1)])
            da = self._w([(1, 4), (2, 1)])
            ka = rng.randint(1, 5)
            ke = k_eff(ka, da)
            pa, oa = None, None
            if exact and ke >= sa:
                pa = -(-(ke - sa) // 2)
                oa = 2 * pa - (ke - sa)
                if oa >= max(sa, da):
                    pa = None
            if pa is None:
                pa = rng.randint(0, max(0, (ke - 1) // 2))
                oa = rng.randint(0, max(sa, da) - 1)
            k.append(ka); s.append(sa); d.append(da); p.append(pa); o.append(oa)
        return {"op": "convT", "inputs": [x], "k": k, "s": s, "d": d, "p": p, "op_pad": o}

    def upsample_node(self, x: int) -> dict:
        rng = self.rng
        if rng.random() < 0.8:
            f = [2] * self.ndim
        else:
            f = [rng.choice([2, 3]) for _ in range(self.ndim)]
        return {"op": "upsample", "inputs": [x], "f": f,
                "mode": rng.choice(["nearest", "linear"])}

    def _fixed(self, stride) -> list:
        if stride is None:
            return [1] * self.ndim
        if isinstance(stride, (list, tuple)):
            return list(stride)
        return [stride] * self.ndim

    def _ok(self, node: dict) -> bool:
        in_size = self.sizes[node["inputs"][0]]
        if node["op"] == "avgpool" and any(L < k for L, k in zip(in_size, node["k"])):
            return False  # AvgPool3d (meta/CPU) insists on input >= kernel
        size = node_out_size(node, in_size)
        return all(1 <= L <= self.max_size for L in size)

    def random_op(self, x: int, *, allow_up=True) -> dict:
        rng = self.rng
        ops = [("conv", 10), ("maxpool", 2), ("avgpool", 2), ("elem", 1.5)]
        if allow_up:
            ops += [("convT", 1.5), ("upsample", 1.5)]
        for _ in range(20):
            kind = self._w(ops)
            if kind == "conv":
                node = self.conv_node(x)
            elif kind in ("maxpool", "avgpool"):
                node = self.pool_node(x, kind)
            elif kind == "convT":
                node = self.convT_node(x)
            elif kind == "upsample":
                node = self.upsample_node(x)
            else:
                node = {"op": rng.choice(ELEM_OPS), "inputs": [x]}
            if self._ok(node):
                return node
        return self.conv_node(x)

    def merge(self, ins: list, kind=None) -> int | None:
        if len(ins) < 2:
            return ins[0] if ins else None
        if sum(self.paths[u] for u in ins) > self.path_cap:
            return None
        kind = kind or self._w([("add", 4), ("mul", 2), ("cat", 3)])
        return self.add({"op": kind, "inputs": list(ins)})

    def merge_candidates(self, i: int) -> list:
        return [u for u in range(len(self.nodes)) if u != i and self.sizes[u] == self.sizes[i]]

    def same_branch(self, x: int, stride, depth: int) -> int:
        """A branch of `depth` ops from x whose output size depends only on `stride`
        (all 'same'-padded, odd k_eff); stride applied on the first op."""
        cur = x
        for t in range(depth):
            st = stride if t == 0 else 1
            kind = self._w([("conv", 6), ("maxpool", 1), ("avgpool", 1), ("elem", 1)])
            if kind == "conv":
                node = self.conv_node(cur, same=True, stride=st, odd=True)
            elif kind in ("maxpool", "avgpool"):
                node = self.pool_node(cur, kind, same=True, stride=st, odd=True)
            else:
                if st != 1 and st != [1] * self.ndim:
                    node = self.conv_node(cur, same=True, stride=st, odd=True)
                else:
                    node = {"op": self.rng.choice(ELEM_OPS), "inputs": [cur]}
            cur = self.add(node)
        return cur


def _input_size(rng: random.Random, ndim: int, style: str) -> tuple:
    if style in ("tiny", "jmix"):
        return tuple(rng.randint(3, 12) for _ in range(ndim))
    base = {1: [96, 144, 192, 216, 288], 2: [48, 72, 96], 3: [16, 24, 36]}[ndim]
    return tuple(rng.choice(base) for _ in range(ndim))


def _max_size(ndim: int) -> int:
    return {1: 1024, 2: 192, 3: 48}[ndim]


def _gen_random(g: _Gen, n_ops: int, p_merge=0.3):
    rng = g.rng
    while len(g.nodes) < n_ops + 1:
        cur = len(g.nodes) - 1
        if rng.random() < p_merge and len(g.nodes) > 2:
            # merge: prefer groups containing recent / unused nodes
            pivot = rng.choice(range(max(0, cur - 4), cur + 1))
            cands = g.merge_candidates(pivot)
            if cands:
                rng.shuffle(cands)
                cands.sort(key=lambda u: g.nuse[u] > 0)  # unused first (stable)
                ins = [pivot] + cands[: rng.choice([1, 1, 2])]
                if rng.random() < 0.05:
                    ins.append(pivot)  # x + x style duplicate edge
                if g.merge(ins) is not None:
                    continue
        unused = [u for u in range(1, len(g.nodes)) if g.nuse[u] == 0]
        if unused and rng.random() < 0.5:
            x = rng.choice(unused)
        else:
            x = rng.choice(range(max(0, cur - 5), cur + 1))
        g.add(g.random_op(x))


def _gen_forkjoin(g: _Gen, n_blocks: int, max_branches=3):
    rng = g.rng
    x = 0
    if rng.random() < 0.5:
        x = g.add(g.conv_node(0, same=True, stride=1, odd=True))
    for _ in range(n_blocks):
        stride = 1
        if rng.random() < 0.2 and all(L >= 4 for L in g.sizes[x]):
            stride = [rng.choice([1, 2]) for _ in range(g.ndim)]
        nb = rng.randint(2, max_branches)
        if g.paths[x] * nb > g.path_cap:
            nb = g.path_cap // g.paths[x]
        if nb < 2:
            break
        outs = []
        for b in range(nb):
            if b > 0 and stride == 1 and rng.random() < 0.25:
                outs.append(x)  # identity skip branch
            else:
                outs.append(g.same_branch(x, stride, rng.randint(1, 2)))
        y = g.merge(outs)
        if y is None:
            break
        x = y
        if rng.random() < 0.3:
            x = g.add(g.random_op(x, allow_up=False) if rng.random() < 0.5
                      else g.conv_node(x, same=True, stride=1, odd=True))
        if rng.random() < 0.15 and max(g.sizes[x]) * 2 <= g.max_size:
            x = g.add(g.upsample_node(x) if rng.random() < 0.5 else g.convT_node(x))
    g.add(g.conv_node(x))


def _gen_wide(g: _Gen, n_branches: int, rounds: int):
    rng = g.rng
    x = g.add(g.conv_node(0, same=True, stride=1, odd=True))
    for _ in range(rounds):
        stride = 1 if rng.random() < 0.6 else [rng.choice([1, 2]) for _ in range(g.ndim)]
        if stride != 1 and any(L < 4 for L in g.sizes[x]):
            stride = 1
        outs = [g.same_branch(x, stride, rng.randint(1, 3)) for _ in range(n_branches)]
        # hierarchical random merges, 2-3 at a time, until one remains
        while len(outs) > 1:
            rng.shuffle(outs)
            m = min(len(outs), rng.choice([2, 3]))
            y = g.merge(outs[:m])
            if y is None:
                break
            outs = [y] + outs[m:]
        x = outs[0]
        x = g.add(g.random_op(x, allow_up=False))
    g.add(g.conv_node(x))


def _gen_unet(g: _Gen, depth: int):
    rng = g.rng
    x = g.add(g.conv_node(0, same=True, stride=1, odd=True))
    skips = [x]
    for _ in range(depth):
        if any(L < 4 for L in g.sizes[x]):
            break
        if rng.random() < 0.5:
            x = g.add(g.conv_node(x, same=True, stride=2, odd=True))
        else:
            x = g.add(g.pool_node(x, rng.choice(["maxpool", "avgpool"]), same=True, stride=2,
                                  odd=True))
        if rng.random() < 0.5:
            # a small fork-join at this level
            b = g.same_branch(x, 1, rng.randint(1, 2))
            x = g.merge([x, b]) or b
        else:
            x = g.add(g.conv_node(x, same=True, stride=1, odd=True))
        skips.append(x)
    skips.pop()
    while skips:
        skip = skips.pop()
        if rng.random() < 0.5:
            up = g.convT_node(x, exact=True)
            up["s"] = [2] * g.ndim
            # re-pick exact padding for stride 2
            for a in range(g.ndim):
                ke = k_eff(up["k"][a], up["d"][a])
                if ke < 2:
                    up["k"][a], up["d"][a], ke = 2, 1, 2
                pa = -(-(ke - 2) // 2)
                oa = 2 * pa - (ke - 2)
                up["p"][a], up["op_pad"][a] = pa, oa
        else:
            up = {"op": "upsample", "inputs": [x], "f": [2] * g.ndim,
                  "mode": rng.choice(["nearest", "linear"])}
        x = g.add(up)
        if g.sizes[x] == g.sizes[skip]:
            x = g.merge([x, skip], rng.choice(["add", "cat", "mul"])) or x
        x = g.add(g.conv_node(x, same=True, stride=1, odd=True))
    g.add(g.conv_node(x))


def _gen_deepfork(g: _Gen):
    """Long chain of 2-way diamonds: path count 2^n up to the cap (~65k paths)."""
    rng = g.rng
    x = 0
    n = 16 if g.path_cap >= 2 ** 16 else int(math.log2(g.path_cap))
    for _ in range(n):
        a = g.same_branch(x, 1, 1)
        b = g.same_branch(x, 1, rng.randint(1, 2)) if rng.random() < 0.7 else x
        x = g.merge([a, b], rng.choice(["add", "add", "mul", "cat"]))
    g.add(g.conv_node(x))


def _gen_jmix(g: _Gen, rounds: int):
    """Random short chains (any padding/stride, up-sampling too) from one node, then merge
    whatever happens to share a spatial size: produces unions of states with *different*
    jumps (e.g. a stride-3 path and a k=3 unpadded path both ending at size 1)."""
    rng = g.rng
    x = 0
    for _ in range(rounds):
        ends = []
        for _ in range(rng.randint(4, 8)):
            cur = x
            for _ in range(rng.randint(1, 2)):
                node = g.random_op(cur)
                if node["op"] == "conv" and rng.random() < 0.5:
                    node = g.conv_node(cur, same=False, kmax=5)
                cur = g.add(node)
            ends.append(cur)
        groups: dict = {}
        for e in ends:
            groups.setdefault(g.sizes[e], []).append(e)
        best = max(groups.values(), key=len)
        y = g.merge(best[:3]) if len(best) >= 2 else None
        x = y if y is not None else rng.choice(ends)
    g.add(g.conv_node(x))


def generate(seed: int, ndim: int | None = None, style: str | None = None,
             path_cap: int = PATH_CAP) -> dict:
    """A random DAG spec, reproducible from (seed, ndim, style)."""
    rng = random.Random(seed)
    if ndim is None:
        ndim = 1 + seed % 3
    if style is None:
        style = rng.choice(["random", "random", "forkjoin", "wide", "unet", "tiny", "tiny",
                            "jmix", "jmix", "deepfork"])
    C = rng.randint(2, 4)
    g = _Gen(rng, ndim, C, _input_size(rng, ndim, style), _max_size(ndim), path_cap)
    if style == "random":
        _gen_random(g, rng.randint(6, 30))
    elif style == "tiny":
        _gen_random(g, rng.randint(6, 25), p_merge=0.45)
    elif style == "forkjoin":
        _gen_forkjoin(g, rng.randint(3, 14))
    elif style == "wide":
        _gen_wide(g, rng.randint(4, 12), rng.randint(1, 3))
    elif style == "unet":
        _gen_unet(g, rng.randint(1, 4))
    elif style == "jmix":
        _gen_jmix(g, rng.randint(2, 5))
    elif style == "deepfork":
        _gen_deepfork(g)
    else:
        raise ValueError(style)
    spec = g.spec(seed, style)
    spatial_sizes(spec)  # validates
    return spec


# ----------------------------------------------------------------------------------
# helpers for tests / debugging
# ----------------------------------------------------------------------------------
def describe(spec: dict) -> str:
    lines = [f"seed={spec.get('seed')} style={spec.get('style')} ndim={spec['ndim']} "
             f"C={spec['channels']} input_size={tuple(spec['input_size'])}"]
    sizes = spatial_sizes(spec)
    for i, node in enumerate(spec["nodes"]):
        params = {k: v for k, v in node.items() if k not in ("op", "inputs")}
        lines.append(f"  n{i}: {node['op']}{tuple(node['inputs'])} {params} -> {sizes[i]}")
    return "\n".join(lines)


def run_meta(spec: dict):
    """Build on the meta device, fx-trace, and run a forward; returns (module, output)."""
    with torch.device("meta"):
        m = build_module(spec)
    gm = torch.fx.symbolic_trace(m)
    x = torch.empty(1, spec["channels"], *spec["input_size"], device="meta")
    return m, gm(x)
