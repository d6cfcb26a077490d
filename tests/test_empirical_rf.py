"""rflint's r_max against an empirical oracle: the gradient footprint of real units.

For each case a model is built in float64 with weights uniform in [0.5, 1.5] (no activations; max pools
replaced by average pools / all-ones depthwise convs with the same geometry for the oracle only).  For a
block of interior output units, the gradient of the unit (summed over output channels) w.r.t. the input
is computed; per spatial axis the extent (last - first + 1) of input positions with non-negligible
gradient (> 1e-9 * max) is taken, and the empirical r_max is the maximum over the units.  It is
compared with rflint's r_max of the model's output tensor (node_rf of the fx output's argument, per
model-input axis), analysed statically at the same input shape.

The path oracle (tests/dagzoo.py) checks the dynamic program with the spec's per-op formulas; this
one checks the formulas themselves against what torch computes.  The cases are the ops where the
two agree by the spec; where the spec's numbers are an upper bound or leave offsets out (README:
"Hard-to-trace models"), there is no case here.
"""
import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import rflint

# the notes rflint gives on purpose (unknown ops, opaque leaves) are not what these tests are about
pytestmark = pytest.mark.filterwarnings("ignore")


class Fn(nn.Module):
    """forward(x) = fn(self, x); submodules passed as kwargs."""

    def __init__(self, fn, **mods):
        super().__init__()
        self.fn = fn
        for k, v in mods.items():
            setattr(self, k, v)

    def forward(self, x):
        return self.fn(self, x)


def init_generic(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    model.double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.rand(p.shape, generator=g, dtype=torch.float64) + 0.5)
    model.eval()
    return model


def oracle_rmax(model, in_shape, P=4, seed=0, units=None, allow_border=False, pick=None, positive=False):
    """Per spatial axis, the max over chosen output units of (last - first + 1) of input positions
    with nonzero gradient (summed over channels).  Units: P consecutive positions per axis starting
    at the output centre (grid product), unless ``units`` given (list of spatial index tuples or 'all')."""
    torch.manual_seed(seed)
    x = torch.randn(in_shape, dtype=torch.float64)
    if positive:
        x = x.abs() + 0.5
    x.requires_grad_(True)
    y = model(x)
    if pick is not None:
        y = pick(y)
    nd = len(in_shape) - 2
    out_sp = y.shape[2:]
    assert len(out_sp) == nd, (y.shape, in_shape)
    if units == "all":
        units = list(itertools.product(*[range(n) for n in out_sp]))
    elif units is None:
        per = [range(max(0, n // 2 - P // 2), min(n, n // 2 - P // 2 + P)) for n in out_sp]
        units = list(itertools.product(*per))
    ext = [0] * nd
    for u in units:
        (g,) = torch.autograd.grad(y[(0, slice(None)) + tuple(u)].sum(), x, retain_graph=True)
        ga = g[0].abs().sum(0)
        m = ga > 1e-9 * ga.max()
        if not m.any():
            continue
        for ax in range(nd):
            other = tuple(a for a in range(nd) if a != ax)
            proj = m
            for d in reversed(other):  # one axis at a time: torch < 2.2 takes no tuple of dims here
                proj = proj.any(dim=d)
            idx = proj.nonzero().flatten()
            lo, hi = int(idx.min()), int(idx.max())
            if not allow_border:
                assert lo > 0 and hi < in_shape[2 + ax] - 1, f"unit {u} touches border on axis {ax}: {lo}..{hi}"
            ext[ax] = max(ext[ax], hi - lo + 1)
    return tuple(ext)


def rflint_analysis(model, in_shape):
    return rflint.analyze(model, input_shapes=[tuple(in_shape)])


def rflint_rmax(model, in_shape):
    """rflint's r_max of the output tensor per model-input axis (None: axis mixed away; 'global')."""
    a = rflint_analysis(model, in_shape)
    arg = a.traced.order[-1].args[0]
    if isinstance(arg, (tuple, list)):
        arg = arg[0]
    rf = a.node_rf[arg]
    if rf is None or rf.is_global or not rf.axes:
        return "global"
    by = {}
    for axis in rf.axes:
        by[axis.origin] = max(by.get(axis.origin, axis.r_max), axis.r_max)
    return tuple(by.get(i) for i in range(len(in_shape) - 2))


# ============================ case catalogue ============================
C = 2
CASES = {}


def case(name, shape, **kw):
    def deco(builder):
        CASES[name] = (builder, shape, kw)
        return builder
    return deco


def same(m):
    return lambda: (m(), None)


def reg(name, shape, factory, **kw):
    CASES[name] = (lambda: (factory(), None), shape, kw)


def conv(nd, *a, **k):
    return getattr(nn, f"Conv{nd}d")(*a, **k)


def surrogate_maxpool(nd, k, s, p, d, c=C):
    """depthwise all-ones conv with the max pool's geometry (for the oracle only)."""
    m = conv(nd, c, c, k, stride=s, padding=p, dilation=d, groups=c, bias=False)
    return m


# ---------------- single convs ----------------
for nd, n in ((1, 96), (2, 40), (3, 20)):
    reg(f"conv{nd}d_k3", (1, C) + (n,) * nd, lambda nd=nd: conv(nd, C, C, 3, padding=1))
    reg(f"conv{nd}d_k5_s2_p2", (1, C) + (n,) * nd, lambda nd=nd: conv(nd, C, C, 5, stride=2, padding=2))
    reg(f"conv{nd}d_k3_d3", (1, C) + (n,) * nd, lambda nd=nd: conv(nd, C, C, 3, dilation=3, padding=3))
    reg(f"conv{nd}d_same_k4_d2", (1, C) + (n,) * nd, lambda nd=nd: conv(nd, C, C, 4, dilation=2, padding="same"))
reg("conv2d_k3x5_s2x1", (1, C, 40, 40), lambda: conv(2, C, C, (3, 5), stride=(2, 1), padding=(1, 2)))
reg("conv2d_grouped", (1, 4, 40, 40), lambda: conv(2, 4, 4, 3, groups=2, padding=1))
reg("conv2d_depthwise_s2", (1, 4, 40, 40), lambda: conv(2, 4, 4, 5, groups=4, stride=2, padding=2))
reg("conv2d_asym_pad", (1, C, 40, 40),
    lambda: Fn(lambda s, x: s.c(F.pad(x, (2, 0, 0, 1))), c=conv(2, C, C, 3)))
reg("conv_chain_strided_dilated", (1, C, 96),
    lambda: nn.Sequential(conv(1, C, C, 3, stride=2, padding=1), conv(1, C, C, 3, dilation=2, padding=2),
                          conv(1, C, C, 5, stride=3), conv(1, C, C, 3, padding=1)))
reg("depthwise_separable", (1, 4, 48, 48),
    lambda: nn.Sequential(conv(2, 4, 4, 3, groups=4, padding=1), conv(2, 4, 8, 1),
                          conv(2, 8, 8, 3, groups=8, stride=2, padding=1), conv(2, 8, 4, 1)))

# ---------------- pools ----------------
for nd, n in ((1, 96), (2, 40), (3, 20)):
    reg(f"avgpool{nd}d_k3_s2", (1, C) + (n,) * nd, lambda nd=nd: getattr(nn, f"AvgPool{nd}d")(3, 2, 1))
    CASES[f"maxpool{nd}d_k3_s2"] = (
        lambda nd=nd: (getattr(nn, f"MaxPool{nd}d")(3, 2, 1), getattr(nn, f"AvgPool{nd}d")(3, 2, 1)),
        (1, C) + (n,) * nd, {})
reg("avgpool2d_ceil", (1, C, 41, 41), lambda: nn.AvgPool2d(3, 2, ceil_mode=True))
reg("avgpool2d_count_include_pad_false", (1, C, 40, 40), lambda: nn.AvgPool2d(3, 1, 1, count_include_pad=False))
CASES["maxpool2d_dilated"] = (lambda: (nn.MaxPool2d(3, 2, padding=1, dilation=2),
                                       surrogate_maxpool(2, 3, 2, 1, 2)), (1, C, 40, 40), {})
CASES["maxpool1d_dilated_ceil"] = (lambda: (nn.MaxPool1d(3, 2, padding=1, dilation=3, ceil_mode=True),
                                            surrogate_maxpool(1, 3, 2, 1, 3)), (1, C, 97), {})
CASES["f_max_pool2d_fn"] = (lambda: (Fn(lambda s, x: s.c(F.max_pool2d(x, 2, 2)), c=conv(2, C, C, 3, padding=1)),
                                     Fn(lambda s, x: s.c(F.avg_pool2d(x, 2, 2)), c=conv(2, C, C, 3, padding=1))),
                            (1, C, 40, 40), {})
reg("lppool2d_p2_k3_s2", (1, C, 40, 40), lambda: nn.Sequential(conv(2, C, C, 1), nn.LPPool2d(2, 3, 2)), positive=True)
reg("lppool2d_alone", (1, C, 40, 40), lambda: nn.LPPool2d(2, 3, 2), positive=True)
reg("lppool1d_p3_k4_s3_ceil", (1, C, 97), lambda: nn.Sequential(conv(1, C, C, 1), nn.LPPool1d(3, 4, 3, ceil_mode=True)), positive=True)
reg("adaptive_7to3", (1, C, 7, 7), lambda: nn.AdaptiveAvgPool2d(3), units="all", allow_border=True)
reg("adaptive_5to3", (1, C, 5, 5), lambda: nn.AdaptiveAvgPool2d(3), units="all", allow_border=True)
reg("adaptive_1to7", (1, C, 1, 1), lambda: nn.AdaptiveAvgPool2d(7), units="all", allow_border=True)
reg("adaptive_13to5_1d", (1, C, 13), lambda: nn.AdaptiveAvgPool1d(5), units="all", allow_border=True)
reg("conv_then_adaptive_20to6", (1, C, 20, 20),
    lambda: nn.Sequential(conv(2, C, C, 3), nn.AdaptiveAvgPool2d(6)), units="all", allow_border=True)
reg("adaptive_20to6_then_conv", (1, C, 20, 20),
    lambda: nn.Sequential(nn.AdaptiveAvgPool2d(6), conv(2, C, C, 3)), units="all", allow_border=True)
reg("adaptive_8to12_then_conv", (1, C, 8, 8),
    lambda: nn.Sequential(nn.AdaptiveAvgPool2d(12), conv(2, C, C, 3)), units="all", allow_border=True)

# ---------------- transposed convs ----------------
for (k, s, p, op, d) in ((2, 2, 0, 0, 1), (3, 2, 1, 1, 1), (4, 2, 1, 0, 1), (3, 3, 0, 0, 1), (4, 3, 1, 2, 1),
                         (3, 2, 1, 0, 2), (3, 2, 2, 1, 3), (5, 3, 2, 0, 2), (2, 3, 0, 0, 1), (7, 2, 3, 1, 1)):
    reg(f"convT1d_k{k}_s{s}_p{p}_op{op}_d{d}", (1, C, 48),
        lambda k=k, s=s, p=p, op=op, d=d: nn.ConvTranspose1d(C, C, k, s, p, op, dilation=d), P=6)
reg("convT2d_k3_s2", (1, C, 24, 24), lambda: nn.ConvTranspose2d(C, C, 3, 2, 1, 1), P=4)
reg("convT3d_k4_s2", (1, C, 10, 10, 10), lambda: nn.ConvTranspose3d(C, C, 4, 2, 1), P=3)
reg("convT_then_conv3", (1, C, 48),
    lambda: nn.Sequential(nn.ConvTranspose1d(C, C, 2, 2), conv(1, C, C, 3, padding=1)), P=6)
reg("conv_s2_convT_k2", (1, C, 96),
    lambda: nn.Sequential(conv(1, C, C, 3, stride=2, padding=1), nn.ConvTranspose1d(C, C, 2, 2)), P=6)
reg("enc3_dec3_convT", (1, C, 128),
    lambda: nn.Sequential(*[conv(1, C, C, 3, stride=2, padding=1) for _ in range(3)],
                          *[nn.ConvTranspose1d(C, C, 2, 2) for _ in range(3)]), P=8)

# ---------------- upsampling ----------------
def up(mode, nd=2, ac=None, sf=2.0, size=None):
    kw = {} if ac is None else {"align_corners": ac}
    if size is not None:
        return Fn(lambda s, x: s.c(F.interpolate(x, size=size, mode=mode, **kw)), c=conv(nd, C, C, 1))
    return Fn(lambda s, x: s.c(F.interpolate(x, scale_factor=sf, mode=mode, **kw)), c=conv(nd, C, C, 1))


for mode, ac in (("nearest", None), ("nearest-exact", None), ("bilinear", False), ("bilinear", True), ("bicubic", False),
                 ("bicubic", True)):
    for sf in (2.0, 3.0, 1.5, 0.5, 2.5):
        reg(f"interp_{mode}_ac{ac}_x{sf}", (1, C, 24, 24), lambda mode=mode, ac=ac, sf=sf: up(mode, ac=ac, sf=sf), P=6)
reg("interp_bilinear_size_37", (1, C, 24, 24), lambda: up("bilinear", ac=False, size=(37, 37)), P=6)
reg("interp_bilinear_ac_size_37", (1, C, 24, 24), lambda: up("bilinear", ac=True, size=(37, 37)), P=6)
reg("interp_nearest_size_37", (1, C, 24, 24), lambda: up("nearest", size=(37, 37)), P=6)
reg("interp_trilinear_x2", (1, C, 12, 12, 12), lambda: up("trilinear", nd=3, ac=False, sf=2.0), P=3)
reg("interp_trilinear_aniso_1_2_2", (1, C, 12, 12, 12),
    lambda: Fn(lambda s, x: s.c(F.interpolate(x, scale_factor=(1, 2, 2), mode="trilinear")), c=conv(3, C, C, 1)), P=3)
reg("interp_linear1d_x3", (1, C, 40), lambda: up("linear", nd=1, ac=False, sf=3.0), P=6)
reg("upsample_module_bilinear", (1, C, 24, 24),
    lambda: nn.Sequential(conv(2, C, C, 1), nn.Upsample(scale_factor=2, mode="bilinear")), P=4)
reg("upsample_nearest_then_conv3", (1, C, 40),
    lambda: nn.Sequential(nn.Upsample(scale_factor=2), conv(1, C, C, 3, padding=1)), P=6)
reg("upsample_bilinear_then_conv3", (1, C, 40),
    lambda: nn.Sequential(nn.Upsample(scale_factor=2, mode="linear"), conv(1, C, C, 3, padding=1)), P=6)
reg("conv_s2_up_nearest2", (1, C, 96),
    lambda: nn.Sequential(conv(1, C, C, 3, stride=2, padding=1), nn.Upsample(scale_factor=2)), P=6)

# ---------------- pixel shuffle / slicing / unfold ----------------
reg("pixelshuffle2", (1, 8, 24, 24), lambda: nn.Sequential(conv(2, 8, 8, 3, padding=1), nn.PixelShuffle(2)), P=4)
reg("pixelunshuffle2", (1, C, 40, 40), lambda: nn.Sequential(nn.PixelUnshuffle(2), conv(2, 4 * C, C, 1)), P=4)
reg("pixelunshuffle3_conv3", (1, C, 48, 48), lambda: nn.Sequential(nn.PixelUnshuffle(3), conv(2, 9 * C, C, 3, padding=1)))
reg("slice_stride2_then_conv3", (1, C, 96),
    lambda: Fn(lambda s, x: s.c(x[..., ::2]), c=conv(1, C, C, 3, padding=1)))
reg("slice_stride3_2d", (1, C, 48, 48),
    lambda: Fn(lambda s, x: s.c(x[:, :, ::3, ::2]), c=conv(2, C, C, 3, padding=1)))
reg("focus_space_to_depth", (1, C, 40, 40),
    lambda: Fn(lambda s, x: s.c(torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], 1)),
               c=conv(2, 4 * C, C, 3, padding=1)))
reg("unfold_fold_pair", (1, C, 24, 24),
    lambda: Fn(lambda s, x: s.c(F.fold(F.unfold(x, 3, padding=1), (24, 24), 3, padding=1)), c=conv(2, C, C, 1)))
reg("x_unfold_frames_1d", (1, C, 96),
    lambda: Fn(lambda s, x: s.c(x.unfold(2, 5, 2).mean(-1)), c=conv(1, C, C, 3, padding=1)))

# ---------------- merges ----------------
reg("diamond_add_k3_k7", (1, C, 40, 40),
    lambda: Fn(lambda s, x: s.a(x) + s.b(x), a=conv(2, C, C, 3, padding=1), b=conv(2, C, C, 7, padding=3)))
reg("diamond_cat_s2", (1, C, 96),
    lambda: Fn(lambda s, x: s.d(torch.cat([s.a(x), s.b(s.c(x))], 1)), a=conv(1, C, C, 3, stride=2, padding=1),
               c=conv(1, C, C, 5, padding=2), b=conv(1, C, C, 3, stride=2, padding=1), d=conv(1, 2 * C, C, 3, padding=1)))
reg("diamond_mul", (1, C, 40, 40),
    lambda: Fn(lambda s, x: s.a(x) * s.b(x), a=conv(2, C, C, 3, padding=1), b=conv(2, C, C, 5, padding=2)))
reg("diamond_offcentre_union", (1, C, 64),
    lambda: Fn(lambda s, x: s.a(F.pad(x, (4, 0))[..., :64]) + s.b(x), a=conv(1, C, C, 3, padding=1), b=conv(1, C, C, 3, padding=1)))
reg("aspp_1_6_12_18", (1, C, 96, 96),
    lambda: Fn(lambda s, x: s.o(torch.cat([s.a(x), s.b(x), s.c(x), s.d(x)], 1)),
               a=conv(2, C, C, 1), b=conv(2, C, C, 3, padding=6, dilation=6), c=conv(2, C, C, 3, padding=12, dilation=12),
               d=conv(2, C, C, 3, padding=18, dilation=18), o=conv(2, 4 * C, C, 1)), P=2)


def res_block():
    return Fn(lambda s, x: s.c2(s.c1(x)) + s.sc(x), c1=conv(2, C, 4, 3, stride=2, padding=1), c2=conv(2, 4, 4, 3, padding=1),
              sc=conv(2, C, 4, 1, stride=2))


reg("residual_s2_projection", (1, C, 40, 40), res_block)
reg("residual_two_blocks", (1, C, 64, 64),
    lambda: Fn(lambda s, x: s.b2(s.b1(x)), b1=res_block(),
               b2=Fn(lambda s, x: s.c2(s.c1(x)) + s.sc(x), c1=conv(2, 4, 4, 3, stride=2, padding=1),
                     c2=conv(2, 4, 4, 3, padding=1), sc=conv(2, 4, 4, 1, stride=2))))


def se_gate(detach):
    def f(s, x):
        y = s.c(x)
        g = torch.sigmoid(s.fc(y.mean((2, 3))))[:, :, None, None]
        return y * (g.detach() if detach else g)
    return Fn(f, c=conv(2, C, C, 3, padding=1), fc=nn.Linear(C, C))


CASES["se_gate"] = (lambda: (se_gate(False), se_gate(True)), (1, C, 40, 40), {})
reg("se_gate_undetached_oracle", (1, C, 40, 40), lambda: se_gate(False), allow_border=True)


def unet(decoder):
    def f(s, x):
        e1 = s.e1(x)
        e2 = s.e2(s.p(e1))
        e3 = s.e3(s.p(e2))
        d2 = s.d2(torch.cat([s.u2(e3), e2], 1))
        return s.d1(torch.cat([s.u1(d2), e1], 1))
    ups = dict(u2=nn.ConvTranspose2d(C, C, 2, 2), u1=nn.ConvTranspose2d(C, C, 2, 2)) if decoder == "convT" else \
        dict(u2=nn.Upsample(scale_factor=2, mode="bilinear"), u1=nn.Upsample(scale_factor=2, mode="bilinear"))
    return Fn(f, e1=conv(2, C, C, 3, padding=1), e2=conv(2, C, C, 3, padding=1), e3=conv(2, C, C, 3, padding=1),
              p=nn.AvgPool2d(2), d2=conv(2, 2 * C, C, 3, padding=1), d1=conv(2, 2 * C, C, 3, padding=1), **ups)


reg("unet_convT", (1, C, 64, 64), lambda: unet("convT"), P=4)
reg("unet_bilinear", (1, C, 64, 64), lambda: unet("bilinear"), P=4)

# ---------------- misc ----------------
def identity_grid_sample(x, size, mode="bilinear"):
    """F.grid_sample of ``x`` on the identity affine grid of ``size``: a resize by sampling."""
    grid = F.affine_grid(torch.eye(2, 3, dtype=x.dtype)[None], [1, C, *size], align_corners=False)
    return F.grid_sample(x, grid, mode=mode, align_corners=False)


reg("grid_sample_identity_bilinear", (1, C, 24, 24),
    lambda: Fn(lambda s, x: s.c(identity_grid_sample(x, (17, 17))), c=conv(2, C, C, 3)), P=4)
reg("grid_sample_identity_same_size", (1, C, 24, 24),
    lambda: Fn(lambda s, x: s.c(identity_grid_sample(x, (24, 24))), c=conv(2, C, C, 3)), P=4)
reg("einsum_channels", (1, C, 40, 40),
    lambda: Fn(lambda s, x: s.c(torch.einsum("nchw,dc->ndhw", x, s.w)), c=conv(2, C, C, 3, padding=1), w=nn.Parameter(torch.ones(C, C))))
reg("matmul_channels_last", (1, C, 40, 40),
    lambda: Fn(lambda s, x: s.c((x.permute(0, 2, 3, 1) @ s.w).permute(0, 3, 1, 2)), c=conv(2, C, C, 3, padding=1),
               w=nn.Parameter(torch.ones(C, C))))
reg("linear_channels_last", (1, C, 40, 40),
    lambda: Fn(lambda s, x: s.l(s.c(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2), c=conv(2, C, C, 3, padding=1), l=nn.Linear(C, C)))
reg("roll_then_conv", (1, C, 64),
    lambda: Fn(lambda s, x: s.c2(torch.roll(s.c(x), 3, dims=2)), c=conv(1, C, C, 3, padding=1), c2=conv(1, C, C, 3, padding=1)))
reg("flip_add_diamond", (1, C, 65),
    lambda: Fn(lambda s, x: s.c(x) + torch.flip(s.c(x), dims=[2]), c=conv(1, C, C, 3, padding=1)), P=1)
reg("roll_add_diamond", (1, C, 64),
    lambda: Fn(lambda s, x: s.c(x) + torch.roll(s.c(x), 5, dims=2), c=conv(1, C, C, 3, padding=1)))
for mode in ("reflect", "replicate", "circular"):
    reg(f"pad_{mode}_conv5", (1, C, 40, 40),
        lambda mode=mode: Fn(lambda s, x: s.c(F.pad(x, (2, 2, 2, 2), mode=mode)), c=conv(2, C, C, 5)))
reg("conv_padding_mode_circular", (1, C, 40, 40), lambda: conv(2, C, C, 5, padding=2, padding_mode="reflect"))
reg("max_unpool_like_nearest_then_pool", (1, C, 96),
    lambda: nn.Sequential(conv(1, C, C, 3, stride=2, padding=1), nn.AvgPool1d(2), nn.Upsample(scale_factor=4), conv(1, C, C, 3, padding=1)), P=8)

# ---------------- round 2 ----------------
reg("fn_avgpool_only", (1, C, 40, 40), lambda: Fn(lambda s, x: F.avg_pool2d(x, 3, 2)))
reg("fn_interp_only", (1, C, 24, 24), lambda: Fn(lambda s, x: F.interpolate(x, scale_factor=2, mode="bilinear")))
for sf in (0.7, 0.75, 1.5):
    for mode in ("nearest", "bilinear"):
        reg(f"interp_{mode}_x{sf}_then_conv3", (1, C, 60),
            lambda sf=sf, mode=mode: Fn(lambda s, x: s.c(F.interpolate(x, scale_factor=sf, mode="linear" if mode == "bilinear" else mode)),
                                        c=conv(1, C, C, 3, padding=1)), P=8)
for sf, mode in ((0.5, "bilinear"), (0.7, "bilinear"), (0.5, "bicubic"), (0.3, "bilinear"), (0.7, "bicubic")):
    reg(f"interp_{mode}_antialias_x{sf}", (1, C, 64, 64),
        lambda sf=sf, mode=mode: Fn(lambda s, x: s.c(F.interpolate(x, scale_factor=sf, mode=mode, antialias=True)),
                                    c=conv(2, C, C, 1)), P=6)
reg("interp_area_x0.5", (1, C, 40, 40), lambda: Fn(lambda s, x: s.c(F.interpolate(x, scale_factor=0.5, mode="area")), c=conv(2, C, C, 1)))
reg("interp_area_size_13", (1, C, 40, 40), lambda: Fn(lambda s, x: s.c(F.interpolate(x, size=(13, 13), mode="area")), c=conv(2, C, C, 1)), P=6)
reg("interp_bilinear_same_size", (1, C, 24, 24), lambda: Fn(lambda s, x: s.c(F.interpolate(x, size=(24, 24), mode="bilinear")), c=conv(2, C, C, 3)))
reg("interp_bilinear_1x2", (1, C, 24, 24), lambda: Fn(lambda s, x: s.c(F.interpolate(x, scale_factor=(1, 2), mode="bilinear")), c=conv(2, C, C, 3)))
reg("adaptive_max_7to3", (1, C, 7, 7), lambda: nn.AdaptiveMaxPool2d(3), units="all", allow_border=True, positive=True)
CASES["adaptive_max_13to5_surrogate"] = (lambda: (nn.AdaptiveMaxPool1d(5), nn.AdaptiveAvgPool1d(5)), (1, C, 13), dict(units="all", allow_border=True))
reg("pixelshuffle2_conv3_conv3", (1, 8, 24, 24),
    lambda: nn.Sequential(nn.PixelShuffle(2), conv(2, 2, 2, 3, padding=1), conv(2, 2, 2, 3, padding=1)), P=4)
reg("convT_k3s2_conv3_2d", (1, C, 24, 24),
    lambda: nn.Sequential(nn.ConvTranspose2d(C, C, 3, 2, 1, 1), conv(2, C, C, 3, padding=1)), P=4)
reg("conv_k2_s3_chain", (1, C, 96), lambda: nn.Sequential(conv(1, C, C, 2, stride=3), conv(1, C, C, 3)))
reg("avgpool_k2_s3_divisor", (1, C, 40, 40), lambda: nn.Sequential(conv(2, C, C, 1), nn.AvgPool2d(2, 3, divisor_override=1), conv(2, C, C, 3)))
reg("slice_offset_crop", (1, C, 64), lambda: Fn(lambda s, x: s.c(x[..., 1::2][..., 3:-3]), c=conv(1, C, C, 3)))
reg("narrow_then_conv", (1, C, 64), lambda: Fn(lambda s, x: s.c(torch.narrow(x, 2, 5, 40)), c=conv(1, C, C, 3)))
for mode in ("nearest", "bicubic"):
    reg(f"grid_sample_identity_{mode}_17", (1, C, 24, 24),
        lambda mode=mode: Fn(lambda s, x: s.c(identity_grid_sample(x, (17, 17), mode=mode)), c=conv(2, C, C, 1)), P=4)
reg("grid_sample_identity_bilinear_17_1x1", (1, C, 24, 24),
    lambda: Fn(lambda s, x: s.c(identity_grid_sample(x, (17, 17))), c=conv(2, C, C, 1)), P=4)
reg("grid_sample_up_2x_then_conv3", (1, C, 16, 16),
    lambda: Fn(lambda s, x: s.c(identity_grid_sample(x, (32, 32))), c=conv(2, C, C, 3)), P=4)
reg("conv_stride2_then_grid_identity", (1, C, 32, 32),
    lambda: Fn(lambda s, x: identity_grid_sample(s.c(x), (16, 16)), c=conv(2, C, C, 3, stride=2, padding=1)), P=4)
reg("einsum_transpose_hw", (1, C, 40, 48),
    lambda: Fn(lambda s, x: s.c2(torch.einsum("nchw->ncwh", s.c(x))).transpose(2, 3), c=conv(2, C, C, (3, 1), padding=(1, 0)), c2=conv(2, C, C, (5, 1), padding=(2, 0))))
reg("permute_hw_conv", (1, C, 40, 48),
    lambda: Fn(lambda s, x: s.c2(s.c(x).permute(0, 1, 3, 2)).permute(0, 1, 3, 2), c=conv(2, C, C, (3, 1), padding=(1, 0)), c2=conv(2, C, C, (5, 1), padding=(2, 0))))
reg("stack_mean_branches", (1, C, 40, 40),
    lambda: Fn(lambda s, x: torch.stack([s.a(x), s.b(x)], 0).sum(0), a=conv(2, C, C, 3, padding=1), b=conv(2, C, C, 5, padding=2)))
reg("where_merge", (1, C, 40, 40),
    lambda: Fn(lambda s, x: torch.maximum(s.a(x), s.b(x)) + s.b(x), a=conv(2, C, C, 3, padding=1), b=conv(2, C, C, 9, padding=4)))
reg("unfold_module_then_reshape", (1, C, 24, 24),
    lambda: Fn(lambda s, x: s.c(s.u(x).view(1, C * 9, 24, 24)), u=nn.Unfold(3, padding=1), c=conv(2, C * 9, C, 1)))

# ---------------- round 3 ----------------
CASES["fn_maxpool_default_stride"] = (lambda: (Fn(lambda s, x: s.c2(F.max_pool2d(s.c(x), 3)), c=conv(2, C, C, 1), c2=conv(2, C, C, 3)),
                                                Fn(lambda s, x: s.c2(F.avg_pool2d(s.c(x), 3)), c=conv(2, C, C, 1), c2=conv(2, C, C, 3))), (1, C, 60, 60), {})
CASES["fn_maxpool_stride_none_kw"] = (lambda: (Fn(lambda s, x: s.c2(F.max_pool2d(s.c(x), kernel_size=3, stride=None)), c=conv(2, C, C, 1), c2=conv(2, C, C, 3)),
                                                Fn(lambda s, x: s.c2(F.avg_pool2d(s.c(x), 3)), c=conv(2, C, C, 1), c2=conv(2, C, C, 3))), (1, C, 60, 60), {})
CASES["fn_maxpool_stride_emptylist"] = (lambda: (Fn(lambda s, x: s.c2(F.max_pool2d(s.c(x), 3, [])), c=conv(2, C, C, 1), c2=conv(2, C, C, 3)),
                                                  Fn(lambda s, x: s.c2(F.avg_pool2d(s.c(x), 3)), c=conv(2, C, C, 1), c2=conv(2, C, C, 3))), (1, C, 60, 60), {})
reg("fn_avgpool_stride_none", (1, C, 60, 60), lambda: Fn(lambda s, x: s.c2(F.avg_pool2d(s.c(x), 3, None)), c=conv(2, C, C, 1), c2=conv(2, C, C, 3)))
reg("fn_avgpool1d_default", (1, C, 96), lambda: Fn(lambda s, x: s.c2(F.avg_pool1d(s.c(x), 4)), c=conv(1, C, C, 1), c2=conv(1, C, C, 3)))
reg("fn_lppool2d_default", (1, C, 60, 60), lambda: Fn(lambda s, x: s.c2(F.lp_pool2d(s.c(x), 2, 3)), c=conv(2, C, C, 1), c2=conv(2, C, C, 3)), positive=True)
reg("lppool_module_default_stride", (1, C, 60, 60), lambda: nn.Sequential(conv(2, C, C, 1), nn.LPPool2d(2, 3), conv(2, C, C, 3)), positive=True)
reg("maxpool_module_default_stride_avg", (1, C, 60, 60), lambda: nn.Sequential(conv(2, C, C, 1), nn.AvgPool2d(3), conv(2, C, C, 3)))
reg("fn_conv2d_positional", (1, C, 60, 60),
    lambda: Fn(lambda s, x: s.c2(F.conv2d(x, s.w, None, 2, 2, 2)), w=nn.Parameter(torch.ones(C, C, 3, 3)), c2=conv(2, C, C, 3)))
reg("fn_conv_transpose1d_kw", (1, C, 40),
    lambda: Fn(lambda s, x: s.c2(F.conv_transpose1d(x, s.w, stride=2, padding=1, output_padding=1, dilation=2)), w=nn.Parameter(torch.ones(C, C, 3)), c2=conv(1, C, C, 3)), P=6)
reg("convT2d_aniso_s12_k34", (1, C, 24, 24), lambda: nn.ConvTranspose2d(C, C, (3, 4), (1, 2), (1, 1)), P=4)
reg("convT2d_grouped", (1, 4, 24, 24), lambda: nn.ConvTranspose2d(4, 4, 4, 2, 1, groups=4), P=4)
reg("convT_s1_k3", (1, C, 40), lambda: nn.ConvTranspose1d(C, C, 3, 1, 1))
reg("conv3d_aniso", (1, C, 12, 24, 24), lambda: nn.Sequential(conv(3, C, C, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
                                                                conv(3, C, C, (3, 1, 1), padding=(1, 0, 0)), nn.AvgPool3d((2, 1, 3), (2, 1, 1))), P=3)
reg("convT3d_aniso", (1, C, 8, 10, 10), lambda: nn.ConvTranspose3d(C, C, (1, 4, 3), (1, 2, 2), (0, 1, 1)), P=3)
CASES["maxpool2d_dilation_aniso"] = (lambda: (nn.Sequential(conv(2, C, C, 1), nn.MaxPool2d((3, 2), (1, 2), (1, 0), dilation=(2, 3))),
                                               nn.Sequential(conv(2, C, C, 1), surrogate_maxpool(2, (3, 2), (1, 2), (1, 0), (2, 3)))), (1, C, 40, 40), {})
reg("mean_over_H_then_conv", (1, C, 24, 32), lambda: Fn(lambda s, x: s.c2(s.c(x).mean(2, keepdim=True)), c=conv(2, C, C, 3, padding=1), c2=conv(2, C, C, 1)), allow_border=True)
reg("coord_att_strip_gate", (1, C, 24, 32),
    lambda: Fn(lambda s, x: s.c(x) * torch.sigmoid(s.g(x.mean(3, keepdim=True))), c=conv(2, C, C, 3, padding=1), g=conv(2, C, C, (3, 1), padding=(1, 0))), allow_border=True)
reg("cat_along_width", (1, C, 40, 40),
    lambda: Fn(lambda s, x: s.o(torch.cat([s.a(x), s.b(x)], 3)), a=conv(2, C, C, 3, padding=1), b=conv(2, C, C, 5, padding=2), o=conv(2, C, C, 1)))
reg("repeat_interleave_up2_conv3", (1, C, 40), lambda: Fn(lambda s, x: s.c(x.repeat_interleave(2, dim=2)), c=conv(1, C, C, 3, padding=1)), P=6)
reg("space_to_depth_view", (1, C, 40, 40),
    lambda: Fn(lambda s, x: s.c(x.view(1, C, 20, 2, 20, 2).permute(0, 3, 5, 1, 2, 4).reshape(1, 4 * C, 20, 20)), c=conv(2, 4 * C, C, 3, padding=1)))
reg("depth_to_space_view", (1, 8, 20, 20),
    lambda: Fn(lambda s, x: s.c(s.a(x).view(1, 2, 2, 2, 20, 20).permute(0, 1, 4, 2, 5, 3).reshape(1, 2, 40, 40)), a=conv(2, 8, 8, 3, padding=1), c=conv(2, 2, C, 1)), P=4)
reg("f_pixel_shuffle_fn", (1, 8, 20, 20), lambda: Fn(lambda s, x: F.pixel_unshuffle(F.pixel_shuffle(s.a(x), 2), 2), a=conv(2, 8, 8, 3, padding=1)))
reg("interp_recompute_sf", (1, C, 25, 25),
    lambda: Fn(lambda s, x: s.c(F.interpolate(x, scale_factor=1.5, mode="bilinear", recompute_scale_factor=True)), c=conv(2, C, C, 1)), P=6)
reg("interp_nearest3d_size", (1, C, 10, 10, 10),
    lambda: Fn(lambda s, x: s.c(F.interpolate(x, size=(20, 15, 10), mode="nearest")), c=conv(3, C, C, 1)), P=3)
reg("tile_repeat_w", (1, C, 24, 24), lambda: Fn(lambda s, x: s.c(s.a(x).repeat(1, 1, 1, 2)), a=conv(2, C, C, 3, padding=1), c=conv(2, C, C, 1)))
reg("avgpool3d_ceil_cip", (1, C, 21, 21, 21), lambda: nn.Sequential(conv(3, C, C, 1), nn.AvgPool3d(3, 2, 1, ceil_mode=True, count_include_pad=False), conv(3, C, C, 3)), P=3)
CASES["cat_along_width"] = (CASES["cat_along_width"][0], (1, C, 40, 40), dict(units=[(20, w) for w in (18, 19, 20, 21, 58, 59, 60, 61)]))
CASES["tile_repeat_w"] = (CASES["tile_repeat_w"][0], (1, C, 24, 24), dict(units=[(12, w) for w in (10, 11, 12, 34, 35, 36)]))
reg("coord_att_strip_gate_h7", (1, C, 24, 32),
    lambda: Fn(lambda s, x: s.c(x) * torch.sigmoid(s.g(x.mean(3, keepdim=True))), c=conv(2, C, C, 3, padding=1), g=conv(2, C, C, (7, 1), padding=(3, 0))), allow_border=True)
reg("strip_pool_add_h7", (1, C, 24, 32),
    lambda: Fn(lambda s, x: s.c(x) + s.g(x.mean(3, keepdim=True)), c=conv(2, C, C, 3, padding=1), g=conv(2, C, C, (7, 1), padding=(3, 0))), allow_border=True)

# ---------------- round 4 ----------------
reg("convT1d_k3_s3_d2", (1, C, 40), lambda: nn.ConvTranspose1d(C, C, 3, 3, 1, dilation=2), P=6)
reg("adaptive_1x3", (1, C, 12, 12), lambda: nn.Sequential(conv(2, C, C, 1), nn.AdaptiveAvgPool2d((1, 3))), units="all", allow_border=True)
reg("adaptive_none_x3", (1, C, 12, 12), lambda: nn.Sequential(conv(2, C, C, 3, padding=1), nn.AdaptiveAvgPool2d((None, 3))), units="all", allow_border=True)
reg("upsampling_bilinear2d_module", (1, C, 20, 20), lambda: nn.Sequential(conv(2, C, C, 1), nn.UpsamplingBilinear2d(scale_factor=2)), P=4)
reg("upsampling_nearest2d_module", (1, C, 20, 20), lambda: nn.Sequential(conv(2, C, C, 1), nn.UpsamplingNearest2d(size=(40, 30))), P=4)
reg("upsample_size_module_bicubic", (1, C, 20, 20), lambda: nn.Sequential(conv(2, C, C, 1), nn.Upsample(size=(50, 30), mode="bicubic")), P=6)
reg("convT_output_size_arg", (1, C, 24, 24), lambda: Fn(lambda s, x: s.t(x, output_size=[48, 48]), t=nn.ConvTranspose2d(C, C, 3, 2, 1)), P=4)
reg("torch_namespace_ops", (1, C, 60, 60),
    lambda: Fn(lambda s, x: torch.avg_pool1d(torch.max_pool2d(torch.conv2d(x, s.w, None, 1, 1), 3, 2, 1).mean(2), 3, 2), w=nn.Parameter(torch.ones(C, C, 3, 3))), allow_border=True)
reg("index_select_stride2", (1, C, 64),
    lambda: Fn(lambda s, x: s.c(torch.index_select(x, 2, torch.arange(0, 64, 2))), c=conv(1, C, C, 3, padding=1)))
reg("torch_diff", (1, C, 64), lambda: Fn(lambda s, x: torch.diff(s.c(x), dim=2), c=conv(1, C, C, 3, padding=1)))
reg("shift_slice_diff", (1, C, 64), lambda: Fn(lambda s, x: s.c(x)[..., 3:] - s.c(x)[..., :-3], c=conv(1, C, C, 3, padding=1)))
reg("cumsum_w", (1, C, 64), lambda: Fn(lambda s, x: torch.cumsum(s.c(x), 2), c=conv(1, C, C, 3, padding=1)), allow_border=True)
reg("fft_spectral_conv", (1, C, 32, 32),
    lambda: Fn(lambda s, x: torch.fft.irfft2(torch.fft.rfft2(s.c(x)) * 2, s=(32, 32)), c=conv(2, C, C, 3, padding=1)), allow_border=True)
reg("sort_w", (1, C, 64), lambda: Fn(lambda s, x: torch.sort(s.c(x), dim=2).values, c=conv(1, C, C, 3, padding=1)), allow_border=True)
reg("whole_map_pool_then_conv", (1, C, 8, 8), lambda: nn.Sequential(conv(2, C, C, 3, padding=1), nn.AvgPool2d(2), nn.AvgPool2d(4), nn.Upsample(scale_factor=4), conv(2, C, C, 3, padding=1)), allow_border=True)
reg("conv_same_even_k", (1, C, 40), lambda: nn.Sequential(conv(1, C, C, 4, padding="same"), conv(1, C, C, 2, padding="same")))
reg("conv_padding_valid", (1, C, 40), lambda: nn.Sequential(conv(1, C, C, 4, padding="valid", stride=2), conv(1, C, C, 3, padding="valid")))
reg("fn_conv1d_tuple_args", (1, C, 64), lambda: Fn(lambda s, x: F.conv1d(x, s.w, stride=(2,), padding=(1,), dilation=(3,), groups=1), w=nn.Parameter(torch.ones(C, C, 3))))
reg("fn_adaptive_max_indices", (1, C, 13), lambda: Fn(lambda s, x: s.c(F.adaptive_avg_pool1d(x, 5)), c=conv(1, C, C, 1)), units="all", allow_border=True)

# ---------------- round 5: reshapes / layout ----------------
reg("x_unfold_2d_patches", (1, C, 48, 48),
    lambda: Fn(lambda s, x: s.c(x.unfold(2, 5, 2).unfold(3, 3, 1).mean(-1).mean(-1)), c=conv(2, C, C, 3, padding=1)))
reg("x_unfold_negdim", (1, C, 48, 48),
    lambda: Fn(lambda s, x: s.c(x.unfold(-1, 5, 2).mean(-1)), c=conv(2, C, C, 3, padding=1)))
reg("fold_channels_into_batch", (1, C, 40, 40),
    lambda: Fn(lambda s, x: s.c2(s.c(x.reshape(C, 1, 40, 40)).reshape(1, C, 40, 40)), c=conv(2, 1, 1, 5, padding=2), c2=conv(2, C, C, 3, padding=1)))
reg("unsqueeze_conv3d", (1, C, 40, 40),
    lambda: Fn(lambda s, x: s.c2(s.c(x.unsqueeze(2)).squeeze(2)), c=conv(3, C, C, (1, 5, 3), padding=(0, 2, 1)), c2=conv(2, C, C, 3, padding=1)))
reg("axial_conv1d_rows", (1, C, 32, 40),
    lambda: Fn(lambda s, x: s.c2(s.c(x.permute(0, 2, 1, 3).reshape(32, C, 40)).reshape(1, 32, C, 40).permute(0, 2, 1, 3)),
               c=conv(1, C, C, 5, padding=2), c2=conv(2, C, C, (3, 1), padding=(1, 0))))
reg("mixffn_tokens", (1, C, 32, 32),
    lambda: Fn(lambda s, x: s.d(s.l(x.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(1, C, 32, 32)),
               l=nn.Linear(C, C), d=conv(2, C, C, 3, padding=1, groups=C)))
reg("view_hw_merge_split", (1, C, 32, 32),
    lambda: Fn(lambda s, x: s.d(x.view(1, C, 32 * 32).view(1, C, 32, 32)), d=conv(2, C, C, 3, padding=1)))
reg("zeropad_module_asym", (1, C, 40, 40), lambda: nn.Sequential(nn.ZeroPad2d((2, 0, 1, 0)), conv(2, C, C, 3, stride=2), nn.ReflectionPad2d(1), conv(2, C, C, 3)))
reg("avgpool_k1_s2_resnetd", (1, C, 40, 40), lambda: nn.Sequential(conv(2, C, C, 3, padding=1), nn.AvgPool2d(1, 2), conv(2, C, C, 3, padding=1)))
reg("resnetd_shortcut", (1, C, 40, 40),
    lambda: Fn(lambda s, x: s.m2(s.m1(x)) + s.sc(s.p(x)), m1=conv(2, C, C, 3, stride=2, padding=1), m2=conv(2, C, C, 3, padding=1),
               p=nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False), sc=conv(2, C, C, 1)))
reg("aspp_with_image_pool", (1, C, 48, 48),
    lambda: Fn(lambda s, x: s.o(torch.cat([s.a(x), F.interpolate(s.g(x.mean((2, 3), keepdim=True)), size=(48, 48), mode="bilinear")], 1)),
               a=conv(2, C, C, 3, padding=6, dilation=6), g=conv(2, C, C, 1), o=conv(2, 2 * C, C, 1)), allow_border=True)


# cases where rflint agrees with the oracle (names only; numbers come from the oracle at test time)
AGREE = [
    "conv1d_k3",
    "conv1d_k5_s2_p2",
    "conv1d_k3_d3",
    "conv1d_same_k4_d2",
    "conv2d_k3",
    "conv2d_k5_s2_p2",
    "conv2d_k3_d3",
    "conv2d_same_k4_d2",
    "conv3d_k3",
    "conv3d_k5_s2_p2",
    "conv3d_k3_d3",
    "conv3d_same_k4_d2",
    "conv2d_k3x5_s2x1",
    "conv2d_grouped",
    "conv2d_depthwise_s2",
    "conv2d_asym_pad",
    "conv_chain_strided_dilated",
    "depthwise_separable",
    "avgpool1d_k3_s2",
    "maxpool1d_k3_s2",
    "avgpool2d_k3_s2",
    "maxpool2d_k3_s2",
    "avgpool3d_k3_s2",
    "maxpool3d_k3_s2",
    "avgpool2d_ceil",
    "avgpool2d_count_include_pad_false",
    "maxpool2d_dilated",
    "maxpool1d_dilated_ceil",
    "f_max_pool2d_fn",
    "lppool2d_p2_k3_s2",
    "lppool1d_p3_k4_s3_ceil",
    "adaptive_7to3",
    "adaptive_5to3",
    "adaptive_1to7",
    "adaptive_13to5_1d",
    "conv_then_adaptive_20to6",
    "convT1d_k2_s2_p0_op0_d1",
    "convT1d_k3_s2_p1_op1_d1",
    "convT1d_k4_s2_p1_op0_d1",
    "convT1d_k3_s3_p0_op0_d1",
    "convT1d_k4_s3_p1_op2_d1",
    "convT1d_k3_s2_p1_op0_d2",
    "convT1d_k3_s2_p2_op1_d3",
    "convT1d_k5_s3_p2_op0_d2",
    "convT1d_k2_s3_p0_op0_d1",
    "convT1d_k7_s2_p3_op1_d1",
    "convT2d_k3_s2",
    "convT3d_k4_s2",
    "convT_then_conv3",
    "conv_s2_convT_k2",
    "enc3_dec3_convT",
    "interp_nearest_acNone_x2.0",
    "interp_nearest_acNone_x3.0",
    "interp_nearest_acNone_x1.5",
    "interp_nearest_acNone_x0.5",
    "interp_nearest_acNone_x2.5",
    "interp_nearest-exact_acNone_x2.0",
    "interp_nearest-exact_acNone_x3.0",
    "interp_nearest-exact_acNone_x1.5",
    "interp_nearest-exact_acNone_x0.5",
    "interp_nearest-exact_acNone_x2.5",
    "interp_bilinear_acFalse_x2.0",
    "interp_bilinear_acFalse_x3.0",
    "interp_bilinear_acFalse_x1.5",
    "interp_bilinear_acFalse_x0.5",
    "interp_bilinear_acFalse_x2.5",
    "interp_bilinear_acTrue_x2.0",
    "interp_bilinear_acTrue_x3.0",
    "interp_bilinear_acTrue_x1.5",
    "interp_bilinear_acTrue_x0.5",
    "interp_bilinear_acTrue_x2.5",
    "interp_bicubic_acFalse_x2.0",
    "interp_bicubic_acFalse_x3.0",
    "interp_bicubic_acFalse_x1.5",
    "interp_bicubic_acFalse_x0.5",
    "interp_bicubic_acFalse_x2.5",
    "interp_bicubic_acTrue_x2.0",
    "interp_bicubic_acTrue_x3.0",
    "interp_bicubic_acTrue_x1.5",
    "interp_bicubic_acTrue_x0.5",
    "interp_bicubic_acTrue_x2.5",
    "interp_bilinear_size_37",
    "interp_bilinear_ac_size_37",
    "interp_nearest_size_37",
    "interp_trilinear_x2",
    "interp_trilinear_aniso_1_2_2",
    "interp_linear1d_x3",
    "upsample_module_bilinear",
    "upsample_nearest_then_conv3",
    "upsample_bilinear_then_conv3",
    "conv_s2_up_nearest2",
    "pixelshuffle2",
    "pixelunshuffle2",
    "pixelunshuffle3_conv3",
    "slice_stride2_then_conv3",
    "slice_stride3_2d",
    "x_unfold_frames_1d",
    "diamond_add_k3_k7",
    "diamond_cat_s2",
    "diamond_mul",
    "aspp_1_6_12_18",
    "residual_s2_projection",
    "residual_two_blocks",
    "se_gate",
    "unet_bilinear",
    "einsum_channels",
    "matmul_channels_last",
    "linear_channels_last",
    "roll_then_conv",
    "flip_add_diamond",
    "pad_reflect_conv5",
    "pad_replicate_conv5",
    "pad_circular_conv5",
    "conv_padding_mode_circular",
    "interp_bilinear_antialias_x0.5",
    "interp_bilinear_antialias_x0.7",
    "interp_bicubic_antialias_x0.5",
    "interp_bilinear_antialias_x0.3",
    "interp_bicubic_antialias_x0.7",
    "interp_area_x0.5",
    "interp_area_size_13",
    "interp_bilinear_same_size",
    "interp_bilinear_1x2",
    "adaptive_max_7to3",
    "adaptive_max_13to5_surrogate",
    "pixelshuffle2_conv3_conv3",
    "convT_k3s2_conv3_2d",
    "conv_k2_s3_chain",
    "avgpool_k2_s3_divisor",
    "slice_offset_crop",
    "narrow_then_conv",
    "grid_sample_identity_nearest_17",
    "grid_sample_identity_bicubic_17",
    "grid_sample_identity_bilinear_17_1x1",
    "grid_sample_up_2x_then_conv3",
    "einsum_transpose_hw",
    "permute_hw_conv",
    "stack_mean_branches",
    "where_merge",
    "fn_maxpool_default_stride",
    "fn_maxpool_stride_none_kw",
    "fn_maxpool_stride_emptylist",
    "fn_avgpool_stride_none",
    "fn_avgpool1d_default",
    "fn_lppool2d_default",
    "lppool_module_default_stride",
    "maxpool_module_default_stride_avg",
    "fn_conv2d_positional",
    "fn_conv_transpose1d_kw",
    "convT2d_aniso_s12_k34",
    "convT2d_grouped",
    "convT_s1_k3",
    "conv3d_aniso",
    "convT3d_aniso",
    "maxpool2d_dilation_aniso",
    "cat_along_width",
    "repeat_interleave_up2_conv3",
    "space_to_depth_view",
    "depth_to_space_view",
    "interp_recompute_sf",
    "interp_nearest3d_size",
    "tile_repeat_w",
    "avgpool3d_ceil_cip",
    "adaptive_none_x3",
    "upsampling_bilinear2d_module",
    "upsampling_nearest2d_module",
    "upsample_size_module_bicubic",
    "convT_output_size_arg",
    "index_select_stride2",
    "conv_same_even_k",
    "conv_padding_valid",
    "fn_conv1d_tuple_args",
    "fn_adaptive_max_indices",
    "x_unfold_2d_patches",
    "x_unfold_negdim",
    "fold_channels_into_batch",
    "unsqueeze_conv3d",
    "axial_conv1d_rows",
    "zeropad_module_asym",
    "avgpool_k1_s2_resnetd",
    "resnetd_shortcut",
]


def _build(name):
    builder, shape, kw = CASES[name]
    torch.manual_seed(0)
    rflint_model, oracle_model = builder()
    oracle_model = oracle_model if oracle_model is not None else rflint_model
    init_generic(rflint_model)
    init_generic(oracle_model)
    return rflint_model, oracle_model, shape, kw


def _as_num(values):
    return tuple(None if v is None else float(v) for v in values)


@pytest.mark.parametrize("name", AGREE)
def test_rflint_r_max_matches_gradient_footprint(name):
    rflint_model, oracle_model, shape, kw = _build(name)
    empirical = oracle_rmax(oracle_model, shape, **kw)
    got = rflint_rmax(rflint_model, shape)
    assert got != "global", f"{name}: rflint says global, oracle {empirical}"
    assert _as_num(got) == _as_num(empirical), f"{name}: rflint {got} vs oracle {empirical}"


# ============================ bugs this oracle found (fixed) ============================
class StripGate(nn.Module):
    """Coordinate-attention-like gate: (N,C,H,1) gate broadcast over W.  Oracle with the gate detached
    (the spec leaves modulation out), so along W a unit sees only the 3x3 conv: 3 px."""

    def __init__(self, detach=False):
        super().__init__()
        self.detach = detach
        self.c = nn.Conv2d(C, C, 3, padding=1)
        self.g = nn.Conv2d(C, C, (7, 1), padding=(3, 0))

    def forward(self, x):
        gate = torch.sigmoid(self.g(x.mean(3, keepdim=True)))
        return self.c(x) * (gate.detach() if self.detach else gate)


def test_final_r_max_keeps_every_axis_of_last_spatial_tensor():
    shape = (1, C, 24, 32)
    oracle_model = init_generic(StripGate(detach=True))
    empirical = oracle_rmax(oracle_model, shape, allow_border=True)
    assert empirical[1] == 3
    a = rflint_analysis(init_generic(StripGate()), shape)
    # final_r_max / final_r_min were (7, None): taken from the gate's conv g, which has no W axis
    assert a.final_r_max[1] is not None and float(a.final_r_max[1]) == empirical[1]
    assert a.final_layer == "c" and a.final_r_min == (3, 3)  # by hand: c is the 3x3 conv on the map


def test_lppool_only_model_is_analysed():
    # was "nothing to lint": LPPool was missing from the spatial layers
    shape = (1, C, 40, 40)
    model = init_generic(nn.LPPool2d(2, 3, 2))
    empirical = oracle_rmax(model, shape, positive=True)
    assert _as_num(rflint_rmax(model, shape)) == _as_num(empirical)


@pytest.mark.parametrize("name", ["fn_avgpool_only", "fn_interp_only"])
def test_functional_only_model_is_analysed(name):
    # was "nothing to lint": only modules were looked at for a spatial layer
    rflint_model, oracle_model, shape, kw = _build(name)
    empirical = oracle_rmax(oracle_model, shape, **kw)
    assert _as_num(rflint_rmax(rflint_model, shape)) == _as_num(empirical)
