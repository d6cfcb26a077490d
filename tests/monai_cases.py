"""Every network in ``monai.networks.nets``, built with simple arguments: the monai zoo survey.

Each public name of ``monai.networks.nets`` that is an ``nn.Module`` class or a function returning
one is exactly one of:
  * a :class:`Case`: a constructor call with small arguments and the smallest input size its
    forward() accepts (checked by running it on a real CPU tensor, see :func:`validate`);
  * in ``EXCLUDED`` with the reason it cannot be built with simple arguments or is not an image
    network (abstract bases, text models, several required inputs, torchvision/transformers
    backbones, ...);
  * an alias of another name (the very same object), listed by :func:`aliases`.

``python tests/monai_cases.py`` runs the survey: for every case, forward() on CPU, then
``rflint.analyze``; it prints the table (class, args, size, result, trace method or error).
tests/test_monai_zoo.py turns the same list into tests.
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
import time
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

warnings.filterwarnings("ignore")

import torch  # noqa: E402
from torch import nn  # noqa: E402

try:
    import monai.networks.nets as N  # noqa: E402
except ImportError:  # the test module skips itself
    N = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Case:
    name: str  # the public name in monai.networks.nets
    kwargs: dict = field(default_factory=dict)
    size: tuple[int, ...] = (32, 32)  # spatial input size (H, W) or (D, H, W)
    channels: int = 1
    build: Callable[[], nn.Module] | None = None  # when the constructor needs objects, not literals
    args: str | None = None  # how `build` calls it, for the table
    requires: tuple[str, ...] = ()  # optional packages the model needs (monai imports them lazily)
    slow: bool = False
    known_failure: str | None = None  # rflint's error at the time of the survey (xfail, strict)

    @property
    def id(self) -> str:
        return self.name

    def factory(self) -> Callable[[], nn.Module]:
        if self.build is not None:
            return self.build
        cls = getattr(N, self.name)
        kwargs = self.kwargs
        # a fresh copy per call: some constructors mutate their list arguments (SPADENet's channels)
        fn = lambda: cls(**copy.deepcopy(kwargs))  # noqa: E731
        fn.__name__ = self.name  # rflint labels the model with it
        return fn

    @property
    def call(self) -> str:
        if self.args is not None:
            return self.args
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in self.kwargs.items())})"

    @property
    def shape(self) -> tuple[int, ...]:
        return (1, self.channels, *self.size)

    def available(self) -> bool:
        return all(importlib.util.find_spec(p) is not None for p in self.requires)


# ------------------------------------------------------------------------------ builders

def _netadapter() -> nn.Module:
    backbone = N.resnet10(spatial_dims=2, n_input_channels=1, num_classes=2)
    return N.NetAdapter(backbone, num_classes=2, dim=2, pool=None)


def _dints() -> nn.Module:
    space = N.TopologyInstance(channel_mul=0.25, num_blocks=2, num_depths=2, spatial_dims=2, use_downsample=True)
    return N.DiNTS(space, in_channels=1, num_classes=2, spatial_dims=2)


_netadapter.__name__ = "NetAdapter"
_dints.__name__ = "DiNTS"

_B0_BLOCKS = ["r1_k3_s11_e1_i32_o16_se0.25", "r2_k3_s22_e6_i16_o24_se0.25", "r1_k5_s22_e6_i24_o40_se0.25"]
_SMALL_DIFF = dict(num_res_blocks=1, channels=(8, 8), attention_levels=(False, True), norm_num_groups=4)


# ------------------------------------------------------------------------------ the cases

CASES: list[Case] = [
    Case("AHNet", dict(layers=(1, 1, 1, 1), spatial_dims=2, in_channels=1, out_channels=2), (128, 128)),
    Case("AttentionUnet", dict(spatial_dims=2, in_channels=1, out_channels=2, channels=(4, 8, 16), strides=(2, 2)), (4, 4)),
    Case("AutoEncoder", dict(spatial_dims=2, in_channels=1, out_channels=1, channels=(4, 8, 16), strides=(2, 2, 2)), (16, 16)),
    Case("AutoencoderKL", dict(spatial_dims=2, in_channels=1, out_channels=1, num_res_blocks=1, channels=(8, 8),
                               attention_levels=(False, True), latent_channels=2, norm_num_groups=4), (4, 4),
         requires=("einops",)),
    Case("BasicUNet", dict(spatial_dims=2, in_channels=1, out_channels=2, features=(4, 4, 8, 8, 16, 4)), (32, 32)),
    Case("BasicUNetPlusPlus", dict(spatial_dims=2, in_channels=1, out_channels=2, features=(4, 4, 8, 8, 16, 4)), (32, 32)),
    Case("Classifier", dict(in_shape=(1, 16, 16), classes=2, channels=(4, 8), strides=(2, 2)), (16, 16)),
    Case("Critic", dict(in_shape=(1, 16, 16), channels=(4, 8), strides=(2, 2)), (16, 16)),
    Case("DenseNet", dict(spatial_dims=2, in_channels=1, out_channels=2, init_features=8, growth_rate=4,
                          block_config=(2, 2, 2, 2), bn_size=2), (32, 32)),
    Case("DenseNet121", dict(spatial_dims=2, in_channels=1, out_channels=2, init_features=8, growth_rate=4), (32, 32)),
    Case("DenseNet169", dict(spatial_dims=2, in_channels=1, out_channels=2, init_features=8, growth_rate=4), (32, 32)),
    Case("DenseNet201", dict(spatial_dims=2, in_channels=1, out_channels=2, init_features=8, growth_rate=4), (32, 32)),
    Case("DenseNet264", dict(spatial_dims=2, in_channels=1, out_channels=2, init_features=8, growth_rate=4), (32, 32)),
    Case("DiNTS", size=(16, 16), build=_dints,
         args="DiNTS(TopologyInstance(channel_mul=0.25, num_blocks=2, num_depths=2, spatial_dims=2), "
              "in_channels=1, num_classes=2, spatial_dims=2)"),
    Case("Discriminator", dict(in_shape=(1, 16, 16), channels=(4, 8), strides=(2, 2)), (16, 16)),
    Case("DynUNet", dict(spatial_dims=2, in_channels=1, out_channels=2, kernel_size=[3, 3, 3], strides=[1, 2, 2],
                         upsample_kernel_size=[2, 2], filters=[4, 8, 16]), (8, 8)),
    Case("EfficientNet", dict(blocks_args_str=_B0_BLOCKS, spatial_dims=2, in_channels=3, num_classes=2,
                              image_size=32), (32, 32), channels=3),
    Case("EfficientNetBN", dict(model_name="efficientnet-b0", pretrained=False, spatial_dims=2, in_channels=3,
                                num_classes=2), (32, 32), channels=3),
    Case("EfficientNetBNFeatures", dict(model_name="efficientnet-b0", pretrained=False, spatial_dims=2,
                                        in_channels=3, num_classes=2), (32, 32), channels=3),
    Case("EfficientNetEncoder", dict(model_name="efficientnet-b0", pretrained=False, spatial_dims=2,
                                     in_channels=3), (32, 32), channels=3),
    Case("FlexUNet", dict(in_channels=1, out_channels=2, backbone="efficientnet-b0", pretrained=False,
                          decoder_channels=(16, 8, 8, 4, 4), spatial_dims=2), (32, 32)),
    Case("Generator", dict(latent_shape=(1, 4, 4), start_shape=(8, 4, 4), channels=(4, 1), strides=(2, 2)), (4, 4)),
    Case("GlobalNet", dict(image_size=[16, 16], spatial_dims=2, in_channels=2, num_channel_initial=4, depth=2),
         (16, 16), channels=2),
    Case("HighResBlock", dict(spatial_dims=2, in_channels=4, out_channels=4), (8, 8), channels=4),
    Case("HighResNet", dict(spatial_dims=2, in_channels=1, out_channels=2), (16, 16)),
    Case("HoVerNet", dict(mode="fast", in_channels=3, np_out_channels=2, decoder_padding=True), (256, 256),
         channels=3, slow=True),
    Case("LocalNet", dict(spatial_dims=2, in_channels=2, num_channel_initial=4, extract_levels=(0, 1, 2)),
         (8, 8), channels=2),
    Case("MaskedAutoEncoderViT", dict(in_channels=1, img_size=8, patch_size=4, hidden_size=16, mlp_dim=16, num_layers=1,
                                      num_heads=2, decoder_hidden_size=16, decoder_mlp_dim=16, decoder_num_layers=1,
                                      decoder_num_heads=2, spatial_dims=2), (8, 8), requires=("einops",)),
    Case("MedNeXt", dict(spatial_dims=2, init_filters=4, in_channels=1, out_channels=2, kernel_size=3,
                         blocks_down=(1, 1, 1, 1), blocks_bottleneck=1, blocks_up=(1, 1, 1, 1)), (32, 32)),
    Case("MedNeXtB", dict(spatial_dims=2, in_channels=1, out_channels=2, kernel_size=3), (32, 32)),
    Case("MedNeXtL", dict(spatial_dims=2, in_channels=1, out_channels=2, kernel_size=3), (32, 32)),
    Case("MedNeXtM", dict(spatial_dims=2, in_channels=1, out_channels=2, kernel_size=3), (32, 32)),
    Case("MedNeXtS", dict(spatial_dims=2, in_channels=1, out_channels=2, kernel_size=3), (32, 32)),
    Case("MultiScalePatchDiscriminator", dict(num_d=2, num_layers_d=2, spatial_dims=2, channels=4, in_channels=1,
                                              minimum_size_im=32), (32, 32)),
    Case("NetAdapter", size=(32, 32), build=_netadapter,
         args="NetAdapter(resnet10(spatial_dims=2, n_input_channels=1, num_classes=2), num_classes=2, dim=2, pool=None)"),
    Case("PatchDiscriminator", dict(spatial_dims=2, channels=4, in_channels=1, num_layers_d=2), (16, 16)),
    Case("Quicknat", dict(num_classes=2, num_channels=1, num_filters=4), (32, 32)),
    Case("RegUNet", dict(spatial_dims=2, in_channels=2, num_channel_initial=4, depth=2), (4, 4), channels=2),
    Case("Regressor", dict(in_shape=(1, 16, 16), out_shape=(2,), channels=(4, 8), strides=(2, 2)), (16, 16)),
    Case("ResNet", dict(block="basic", layers=[1, 1, 1, 1], block_inplanes=[4, 8, 16, 32], spatial_dims=2,
                        n_input_channels=1, num_classes=2), (32, 32)),
    Case("ResNetBlock", dict(in_planes=4, planes=4, spatial_dims=2), (8, 8), channels=4),
    Case("ResNetBottleneck", dict(in_planes=16, planes=4, spatial_dims=2), (8, 8), channels=16),
    Case("ResNetEncoder", dict(model_name="resnet10", pretrained=False, spatial_dims=2, in_channels=1), (32, 32)),
    Case("ResNetFeatures", dict(model_name="resnet10", pretrained=False, spatial_dims=2, in_channels=1), (32, 32)),
    Case("SENet", dict(spatial_dims=2, in_channels=3, block="se_resnet_bottleneck", layers=(1, 1, 1, 1), groups=1,
                       reduction=4, inplanes=16, num_classes=2), (32, 32), channels=3),
    Case("SENet154", dict(spatial_dims=2, in_channels=3, num_classes=2), (32, 32), channels=3, slow=True),
    Case("SEResNeXt101", dict(spatial_dims=2, in_channels=3, num_classes=2), (32, 32), channels=3, slow=True),
    Case("SEResNeXt50", dict(spatial_dims=2, in_channels=3, num_classes=2), (32, 32), channels=3),
    Case("SEResNet101", dict(spatial_dims=2, in_channels=3, num_classes=2), (32, 32), channels=3, slow=True),
    Case("SEResNet152", dict(spatial_dims=2, in_channels=3, num_classes=2), (32, 32), channels=3, slow=True),
    Case("SEResNet50", dict(spatial_dims=2, in_channels=3, num_classes=2), (32, 32), channels=3),
    Case("SPADENet", dict(spatial_dims=2, in_channels=1, out_channels=1, label_nc=3, input_shape=(16, 16),
                          channels=[4, 8], z_dim=8, is_vae=False), (16, 16), channels=3),
    Case("SegResNet", dict(spatial_dims=2, init_filters=8, in_channels=1, out_channels=2), (8, 8)),
    Case("SegResNetDS", dict(spatial_dims=2, init_filters=4, in_channels=1, out_channels=2), (8, 8)),
    Case("SegResNetDS2", dict(spatial_dims=2, init_filters=4, in_channels=1, out_channels=2), (8, 8)),
    Case("SegResNetVAE", dict(input_image_size=(8, 8), vae_nz=8, spatial_dims=2, init_filters=8, in_channels=1,
                              out_channels=2), (8, 8)),
    Case("SwinUNETR", dict(in_channels=1, out_channels=2, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1), window_size=4,
                           feature_size=12, spatial_dims=2), (64, 64), requires=("einops",)),
    Case("UNETR", dict(in_channels=1, out_channels=2, img_size=16, feature_size=4, hidden_size=16, mlp_dim=16,
                       num_heads=2, spatial_dims=2), (16, 16), requires=("einops",)),
    Case("UNet", dict(spatial_dims=2, in_channels=1, out_channels=2, channels=(4, 8, 16), strides=(2, 2)), (8, 8)),
    Case("VNet", dict(spatial_dims=2, in_channels=1, out_channels=1), (16, 16)),
    Case("VQVAE", dict(spatial_dims=2, in_channels=1, out_channels=1, channels=(8, 8), num_res_layers=1,
                       num_res_channels=(8, 8), downsample_parameters=((2, 4, 1, 1), (2, 4, 1, 1)),
                       upsample_parameters=((2, 4, 1, 1, 0), (2, 4, 1, 1, 0)), num_embeddings=8,
                       embedding_dim=4), (4, 4)),
    Case("VarAutoEncoder", dict(spatial_dims=2, in_shape=(1, 8, 8), out_channels=1, latent_size=4, channels=(4, 8),
                                strides=(2, 2)), (8, 8)),
    Case("ViT", dict(in_channels=1, img_size=8, patch_size=4, hidden_size=16, mlp_dim=16, num_layers=1, num_heads=2,
                     spatial_dims=2), (8, 8), requires=("einops",)),
    Case("ViTAutoEnc", dict(in_channels=1, img_size=16, patch_size=16, deconv_chns=4, hidden_size=16, mlp_dim=16,
                            num_layers=1, num_heads=2, spatial_dims=2), (16, 16), requires=("einops",)),
    Case("VoxelMorphUNet", dict(spatial_dims=2, in_channels=2, unet_out_channels=4, channels=(4, 8, 8, 8),
                                final_conv_channels=(4,)), (8, 8), channels=2),
    Case("resnet10", dict(spatial_dims=2, n_input_channels=1, num_classes=2), (32, 32)),
    Case("resnet18", dict(spatial_dims=2, n_input_channels=1, num_classes=2), (32, 32)),
    Case("resnet34", dict(spatial_dims=2, n_input_channels=1, num_classes=2), (32, 32)),
    Case("resnet50", dict(spatial_dims=2, n_input_channels=1, num_classes=2), (32, 32)),
    Case("resnet101", dict(spatial_dims=2, n_input_channels=1, num_classes=2), (32, 32), slow=True),
    Case("resnet152", dict(spatial_dims=2, n_input_channels=1, num_classes=2), (32, 32), slow=True),
    Case("resnet200", dict(spatial_dims=2, n_input_channels=1, num_classes=2), (32, 32), slow=True),
]

_TEXT = "not an image network: a BERT/transformers text component"
EXCLUDED: dict[str, str] = {
    "BertAttention": _TEXT + " (forward takes hidden_states and context)",
    "BertMixedLayer": _TEXT + " (forward takes two token sequences)",
    "BertOutput": _TEXT + " (forward takes hidden_states and input_tensor)",
    "BertPreTrainedModel": "abstract base of the Transchex BERT models (needs a transformers config)",
    "Pooler": _TEXT + " (pools a token sequence)",
    "MultiModal": _TEXT + " (forward takes input_ids; needs the transformers package)",
    "Transchex": "needs the transformers package and downloads bert-base-uncased; forward takes input_ids",
    "DecoderOnlyTransformer": "not an image network: a token-sequence transformer (forward takes token ids)",
    "FullyConnectedNet": "not an image network: an MLP on (N, C) feature vectors",
    "VarFullyConnectedNet": "not an image network: a variational MLP on (N, C) feature vectors",
    "ControlNet": "forward takes several required inputs (x, timesteps, controlnet_cond)",
    "DiffusionModelUNet": "forward takes several required inputs (x, timesteps)",
    "SPADEAutoencoderKL": "forward takes several required inputs (x, seg)",
    "SPADEDiffusionModelUNet": "forward takes several required inputs (x, timesteps, seg)",
    "VoxelMorph": "forward takes several required inputs (moving, fixed); its backbone VoxelMorphUNet is a case",
    "NaViT": "forward takes a list of lists of variable-size images, not one tensor",
    "MILModel": "forward takes bags of images (B, N, C, H, W) and the default backbone needs torchvision",
    "TorchVisionFCModel": "needs torchvision (not installed: the project never installs it)",
    "VISTA3D": "promptable segmentation: needs image_encoder/class_head/point_head modules and class or point prompts",
    "vista3d132": "promptable segmentation: forward needs class or point prompts (VISTA3D)",
    "PatchMerging": "channels-last Swin building block (B, H, W, C), no convolution; covered inside SwinUNETR",
    "PatchMergingV2": "channels-last Swin building block (B, H, W, C), no convolution; covered inside SwinUNETR",
    "TopologyConstruction": "abstract base of the DiNTS search space (forward not implemented)",
    "TopologyInstance": "DiNTS search space: forward takes a list of multi-resolution feature maps; covered by DiNTS",
    "TopologySearch": "DiNTS search space: forward takes a list of multi-resolution feature maps",
    "DAF3D": "3-D only and its ResNeXt backbone needs torchvision (not installed: the project never installs it)",
    "HyenaNDUNETR": "needs the optional nvsubquadratic package (monai[hyena]) for its Hyena operators",
    "get_pretrained_resnet_medicalnet": "downloads MedicalNet weights from the Hugging Face hub",
    "get_medicalnet_pretrained_resnet_args": "not a model factory (returns a tuple of constructor arguments)",
    "get_efficientnet_image_size": "not a model factory (returns an int)",
    "drop_connect": "not a model factory (a tensor function)",
}


def public_objects() -> dict[str, Any]:
    """Every public name of monai.networks.nets that is an nn.Module class or a function."""
    out = {}
    for name in sorted(dir(N)):
        if name.startswith("_"):
            continue
        obj = getattr(N, name)
        if inspect.isclass(obj) and issubclass(obj, nn.Module):
            out[name] = obj
        elif inspect.isfunction(obj) and obj.__module__.startswith("monai.networks.nets"):
            out[name] = obj
    return out


def aliases() -> dict[str, str]:
    """alias -> the canonical name (a case or an exclusion) for the same object."""
    objs = public_objects()
    canonical = {id(objs[n]): n for n in [c.name for c in CASES] + list(EXCLUDED) if n in objs}
    return {n: canonical[id(o)] for n, o in objs.items() if id(o) in canonical and canonical[id(o)] != n}


# ------------------------------------------------------------------------------ running a case

def validate(case: Case) -> Any:
    """Build the case on the CPU and run forward() on a real tensor of its size; raises if invalid."""
    torch.manual_seed(0)
    model = case.factory()()
    model.eval()
    with torch.no_grad():
        return model(torch.randn(case.shape))


def analyze(case: Case):
    import rflint

    return rflint.analyze(case.factory(), case.size, channels=case.channels)


@dataclass
class Result:
    case: Case
    valid: str | None = None  # None: forward() ran; else why the case is invalid
    status: str = ""  # "ok", "RflintError", "CRASH" (any other exception: a bug in rflint)
    detail: str = ""  # trace method and warnings, or the error
    seconds: float = 0.0
    tb: str = ""


def survey(cases: list[Case] | None = None, check_forward: bool = True) -> list[Result]:
    from rflint.errors import RflintError

    results = []
    for case in cases or CASES:
        r = Result(case)
        results.append(r)
        if not case.available():
            r.valid, r.status = f"needs {', '.join(case.requires)}", "skipped"
            continue
        if check_forward:
            try:
                validate(case)
            except Exception as err:
                r.valid, r.status = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}", "invalid"
                continue
        clock = time.perf_counter()
        try:
            a = analyze(case)
            r.status = "ok" if a.layers else "EMPTY (no RF layer: a silent failure)"
            r.detail = f"{a.trace_method}; {len(a.layers)} RF layers; {len(a.warnings)} warnings"
            if a.warnings:
                r.detail += " [" + " | ".join(a.warnings[:3]) + (" ..." if len(a.warnings) > 3 else "") + "]"
        except RflintError as err:
            r.status, r.detail = "RflintError", str(err)
        except Exception as err:
            r.status, r.detail = "CRASH", f"{type(err).__name__}: {err}"
            r.tb = traceback.format_exc()
        r.seconds = time.perf_counter() - clock
    return results


if __name__ == "__main__":
    import sys

    names = set(sys.argv[1:])
    chosen = [c for c in CASES if not names or c.name in names]
    results = survey(chosen)
    for r in results:
        c = r.case
        print(f"| {c.name} | `{c.call}` | {'x'.join(map(str, c.shape))} | {r.status} | "
              f"{r.valid or r.detail} | {r.seconds:.2f}s |", flush=True)
        if r.tb:
            print(r.tb)
    valid = [r for r in results if r.valid is None]
    ok = [r for r in valid if r.status == "ok"]
    print(f"\n{len(ok)}/{len(valid)} valid cases analyze ({100 * len(ok) / max(len(valid), 1):.1f}%)")
    if not names:
        covered = {c.name for c in CASES} | set(EXCLUDED) | set(aliases())
        missing = sorted(set(public_objects()) - covered)
        print("public names not covered:", missing)
