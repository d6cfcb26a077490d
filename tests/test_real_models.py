"""Models written by others (monai, efficientnet_pytorch) analyze without errors or warnings.

Expected numbers here are structural facts checked by hand where cheap: e.g. the first conv of
every 2-D net reads a 3x3 (or 7x7) window of the input.
"""

import warnings

import pytest

import rflint

monai_nets = pytest.importorskip("monai.networks.nets")
effnet = pytest.importorskip("efficientnet_pytorch")

warnings.filterwarnings("ignore", category=UserWarning)

CASES = {
    "monai.DenseNet121": (lambda: monai_nets.DenseNet121(spatial_dims=2, in_channels=3, out_channels=10), 64),
    "monai.SEResNet50": (lambda: monai_nets.SEResNet50(spatial_dims=2, in_channels=3, num_classes=10), 64),
    "monai.resnet18-3d": (lambda: monai_nets.resnet18(spatial_dims=3, n_input_channels=1, num_classes=2), 32),
    "monai.UNet": (lambda: monai_nets.UNet(spatial_dims=2, in_channels=1, out_channels=2,
                                           channels=(16, 32, 64, 128), strides=(2, 2, 2)), 64),
    "monai.BasicUNet": (lambda: monai_nets.BasicUNet(spatial_dims=2, in_channels=1, out_channels=2), 64),
    "monai.SegResNet": (lambda: monai_nets.SegResNet(spatial_dims=2, in_channels=1, out_channels=2), 64),
    "monai.VNet": (lambda: monai_nets.VNet(spatial_dims=3, in_channels=1, out_channels=2), 32),
    "monai.DynUNet": (lambda: monai_nets.DynUNet(spatial_dims=2, in_channels=1, out_channels=2, kernel_size=[3, 3, 3, 3],
                                                 strides=[1, 2, 2, 2], upsample_kernel_size=[2, 2, 2]), 64),
    "efficientnet-b0": (lambda: effnet.EfficientNet.from_name("efficientnet-b0"), 224),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_real_model_analyzes(name):
    factory, size = CASES[name]
    a = rflint.analyze(factory, size)
    assert a.warnings == []
    assert a.layers
    n_axes = 3 if "3d" in name or "VNet" in name else 2
    assert a.input_size == (size,) * n_axes
    first = a.layers[0]
    assert first.r_in_min == (1,) * n_axes  # the first RF layer reads the input itself
    if first.kind in ("conv", "pool"):  # input state (1, 1): r_out = 1 + (k_eff - 1) * 1 = k_eff
        assert first.r_out_min == tuple(d * (k - 1) + 1 for k, d in zip(first.kernel, first.dilation))


def test_basic_unet_keeps_its_skip_connections():
    # BasicUNet's decoder concatenates the encoder's conv_0 output (two 3x3 convs: r 5) before its
    # last two 3x3 convs: the final r_min is 5 + 2 + 2 = 9.  Dropping the skip would give far more.
    a = rflint.analyze(CASES["monai.BasicUNet"][0], 64)
    assert "concrete shapes" in a.trace_method
    assert a.final_r_min == (9, 9)
