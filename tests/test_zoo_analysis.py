"""Every zoo model analyzes at its natural size without warnings; VGG16's RF sequence; no weights."""

import subprocess
import sys
import textwrap

import pytest

import rflint
from rflint.zoo import ZOO


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_model_analyzes_cleanly(name):
    entry = ZOO[name]
    a = rflint.analyze(f"zoo:{name}", entry.input_size)
    assert a.warnings == []
    assert a.device == "meta"  # built without allocating weights
    assert a.layers and a.final_r_min is not None
    assert a.input_size == tuple(entry.input_size) and a.channels == entry.channels


def test_vgg16_output_rf_sequence():
    # rf-semantics.md §6: 3x3 s1 convs and 2x2 s2 pools, the last one is pool5
    a = rflint.analyze("zoo:vgg16", 224)
    features = [layer for layer in a.layers if layer.name.startswith("features.")]
    assert [int(layer.r_out_min[0]) for layer in features] == [
        3, 5, 6, 10, 14, 16, 24, 32, 40, 44, 60, 76, 92, 100, 132, 164, 196, 212,
    ]
    assert features[-1].name == "features.30" and features[-1].op == "MaxPool2d"


def test_vgg19_at_224_last_conv_input_rf():
    # rf-semantics.md §6: VGG19's last conv has input RF 220 at 224 (so no conv is unproductive)
    a = rflint.analyze("zoo:vgg19", 224)
    last_conv = [layer for layer in a.layers if layer.op == "Conv2d"][-1]
    assert last_conv.r_in_min == (220, 220)


def test_building_vgg16_allocates_no_weight_memory():
    # VGG16 has 138,357,544 float32 weights = 553 MB.  Analyzing it must not allocate them: peak RSS
    # after the analysis stays within 150 MB of the peak after merely importing torch and rflint.
    script = textwrap.dedent("""
        import resource, torch, rflint, rflint.zoo, rflint.rules
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        a = rflint.analyze("zoo:vgg16", 224)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(a.params, a.device, base, peak)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    params, device, base_kb, peak_kb = int(out[0]), out[1], int(out[2]), int(out[3])
    assert params == 138_357_544 and device == "meta"
    assert (peak_kb - base_kb) * 1024 < 150 * 2**20, f"peak RSS grew by {(peak_kb - base_kb) / 1024:.0f} MB"
