"""Pictures: --plot (matplotlib), --graph (DOT / Graphviz) and --html (self-contained report).

Every number asserted here comes from the specification (shared/design/rf-semantics.md §6), not
from rflint's output:

- ResNet18 (ImageNet stem), I=32: unproductive convs = conv2 of blocks 6, 7, 8 (layer3.1.conv2,
  layer4.0.conv2, layer4.1.conv2 in torchvision's names); tail = blocks 6-8; cut = output of block 5
  (layer3.0); border = block 6 conv2; final r_min 139, r_max 435.
- DenseNet-121 at I=32: the whole 4th dense block is the tail (cut after transition 3).

System packages: Graphviz (`dot`) for the .svg/.png graph checks and Debian's `chromium` for the
browser check.  The browser test installs chromium itself (apt-get, as root) when it is missing and
skips when that is impossible; the Graphviz checks skip without `dot`.  matplotlib is a Python
extra (rflint[plot]); the plot checks skip without it.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import rflint
from rflint.errors import RflintError
from rflint.report import build_report
from rflint.report import graph as graph_mod
from rflint.report.graph import LEGEND_ID, NEUTRAL_FILL, STATUS_FILL, build_dot, render_graph
from rflint.report.html import html_document, render_html
from rflint.report.plot import render_plot

# --- rf-semantics.md §6, ResNet18 (ImageNet stem) at I=32 ------------------------------------------
RESNET18_UNPRODUCTIVE = {"layer3.1.conv2", "layer4.0.conv2", "layer4.1.conv2"}  # conv2 of blocks 6, 7, 8
RESNET18_BORDER = "layer3.1.conv2"  # block 6 conv2
RESNET18_CUT = "layer3.0"  # output of block 5 (stage 3, block 1)
RESNET18_TAIL_BLOCKS = ("layer3.1.", "layer4.0.", "layer4.1.")  # blocks 6-8
RESNET18_FINAL_R_MIN, RESNET18_FINAL_R_MAX = 139, 435
INPUT = 32

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def resnet18_32():
    return build_report(rflint.analyze("zoo:resnet18", INPUT))


# --------------------------------------------------------------------------- a small DOT reader

_NODE = re.compile(r'^\s*("(?:[^"\\]|\\.)*"|[A-Za-z_][\w.]*)\s*\[(.*)\]\s*;?\s*$')
_ATTR = re.compile(r'(\w+)\s*=\s*("(?:[^"\\]|\\.)*"|<.*>|[^,\s\]]+)')


def _unquote(value: str) -> str:
    if value.startswith('"') and value.endswith('"'):
        return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value[1:-1])
    return value


def parse_dot(text: str) -> dict[str, dict]:
    """node id -> its attributes, plus '__cluster__' (the innermost subgraph it is declared in)."""
    nodes: dict[str, dict] = {}
    stack: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        m = re.match(r"subgraph\s+(\w+)\s*\{", stripped)
        if m:
            stack.append(m.group(1))
            continue
        if stripped == "}":
            if stack:
                stack.pop()
            continue
        if "->" in stripped.split("[")[0] or stripped.startswith(("graph ", "node ", "edge ", "digraph")):
            continue
        m = _NODE.match(line)
        if m:
            attrs = {k: _unquote(v) for k, v in _ATTR.findall(m.group(2))}
            attrs["__cluster__"] = stack[-1] if stack else None
            nodes[_unquote(m.group(1))] = attrs
    return nodes


def layer_of(attrs: dict) -> str | None:
    """RF-layer boxes carry the layer name on the first line of their label."""
    if attrs.get("shape") != "box":
        return None
    return attrs["label"].split("\n")[0]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC, "not a PNG file"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# --------------------------------------------------------------------------- graph

def test_dot_colours_exactly_the_unproductive_layers_red(resnet18_32, tmp_path):
    path = tmp_path / "resnet18.dot"
    render_graph(resnet18_32, path)
    nodes = parse_dot(path.read_text(encoding="utf-8"))
    red = {layer_of(a) or node for node, a in nodes.items() if a.get("fillcolor") == STATUS_FILL["unproductive"]}
    assert red == RESNET18_UNPRODUCTIVE
    # every other RF layer is green (productive) and every other op neutral
    layers = {layer_of(a): a for a in nodes.values() if layer_of(a)}
    green = {n for n, a in layers.items() if a["fillcolor"] == STATUS_FILL["productive"]}
    assert green == set(layers) - RESNET18_UNPRODUCTIVE
    assert all(a.get("fillcolor") == NEUTRAL_FILL for a in nodes.values() if a.get("shape") == "ellipse")
    # the border is marked, the tail is the cluster, cut after block 5
    assert [n for n, a in layers.items() if "border (b_min)" in a["label"]] == [RESNET18_BORDER]
    in_tail = {n for n, a in layers.items() if a["__cluster__"] == "cluster_tail"}
    assert in_tail and all(n.startswith(RESNET18_TAIL_BLOCKS) for n in in_tail)
    assert {n for n in layers if n.startswith(RESNET18_TAIL_BLOCKS)} == in_tail
    assert f"truncate after {RESNET18_CUT})" in path.read_text(encoding="utf-8")
    # readable for ResNet18: only tensor-carrying nodes (no weights, no shape arithmetic)
    assert 60 <= len(nodes) <= 80


def test_dot_escapes_labels():
    assert graph_mod.dot_quote('a "b"\\c\nd') == '"a \\"b\\"\\\\c\\nd"'
    assert _unquote(graph_mod.dot_quote('x "y" \\N')) == 'x "y" \\N'


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's `dot` is not installed")
def test_graph_svg_and_png_through_graphviz(resnet18_32, tmp_path):
    svg_path, png_path = tmp_path / "g.svg", tmp_path / "g.png"
    render_graph(resnet18_32, svg_path)
    render_graph(resnet18_32, png_path)
    svg = svg_path.read_text(encoding="utf-8")
    assert "<svg" in svg
    # the drawn nodes filled red are exactly the unproductive layers
    names = {node: layer_of(a) or node for node, a in parse_dot(build_dot(resnet18_32)).items()}
    fills = {title: fill.lower() for title, fill in
             re.findall(r'<g id="[^"]*" class="node">\s*<title>([^<]*)</title>.*?fill="([^"]*)"', svg, flags=re.S)}
    fills.pop(LEGEND_ID, None), names.pop(LEGEND_ID, None)  # the colour key, not a graph node
    assert set(fills) == set(names)
    assert {names[t] for t, f in fills.items() if f == STATUS_FILL["unproductive"]} == RESNET18_UNPRODUCTIVE
    w, h = png_size(png_path.read_bytes())
    assert w > 200 and h > 1000  # a tall top-to-bottom drawing


def test_graph_without_graphviz(resnet18_32, tmp_path, monkeypatch):
    monkeypatch.setattr(graph_mod, "dot_executable", lambda: None)
    with pytest.raises(RflintError, match=r"--graph FILE\.svg needs Graphviz's `dot` \(apt-get install graphviz\); "
                                          r"write FILE\.dot instead"):
        render_graph(resnet18_32, tmp_path / "g.svg")
    render_graph(resnet18_32, tmp_path / "g.dot")  # no dependency
    assert (tmp_path / "g.dot").read_text(encoding="utf-8").startswith("digraph")
    html = html_document([resnet18_32])
    assert "<details>" in html and "digraph rflint" in html


def test_graph_rejects_unknown_suffix(resnet18_32, tmp_path):
    with pytest.raises(RflintError, match="use .dot, .svg or .png"):
        render_graph(resnet18_32, tmp_path / "g.pdf")


def test_densenet121_tail_is_the_fourth_dense_block(tmp_path):
    report = build_report(rflint.analyze("zoo:densenet121", INPUT))
    text = build_dot(report)
    nodes = parse_dot(text)
    layers = {layer_of(a): a for a in nodes.values() if layer_of(a)}
    in_tail = {n for n, a in layers.items() if a["__cluster__"] == "cluster_tail"}
    assert in_tail == {n for n in layers if "denseblock4" in n}
    assert "truncate after features.transition3)" in text
    if shutil.which("dot") is not None:
        render_graph(report, tmp_path / "densenet.svg")  # tolerable: lays out in seconds
        assert (tmp_path / "densenet.svg").stat().st_size > 100_000


# --------------------------------------------------------------------------- plot

def test_plot_png_is_written(resnet18_32, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "rf.png"
    render_plot(resnet18_32, path)
    data = path.read_bytes()
    w, h = png_size(data)
    assert w >= 600 and h >= 400 and len(data) > 20_000


def test_plot_svg_is_written(resnet18_32, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "rf.svg"
    render_plot(resnet18_32, path)
    svg = path.read_text(encoding="utf-8")
    assert "<svg" in svg and "border (b_min)" in svg  # matplotlib keeps each text as a comment


def test_plot_content(resnet18_32):
    pytest.importorskip("matplotlib")
    from rflint.report.plot import plot_figure

    fig = plot_figure(resnet18_32)
    ax = fig.axes[0]
    names = [t.get_text() for t in ax.get_xticklabels()]
    assert names[0] == "conv1" and names[-1] == "layer4.1.conv2"
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["r_min"].get_ydata())[-1] == RESNET18_FINAL_R_MIN
    assert list(lines["r_max"].get_ydata())[-1] == RESNET18_FINAL_R_MAX
    assert list(lines[f"input {INPUT}x{INPUT} px"].get_ydata()) == [INPUT, INPUT]
    border_x = names.index(RESNET18_BORDER)
    assert any(list(line.get_xdata()) == [border_x, border_x] for line in ax.get_lines())
    assert "border (b_min)" in [t.get_text() for t in ax.texts]
    assert ax.get_yscale() == "log"
    spans = [p for p in ax.patches if p.get_label().startswith("predicted tail")]
    assert len(spans) == 1
    box = spans[0].get_path().get_extents(spans[0].get_patch_transform())
    shaded = {n for i, n in enumerate(names) if box.x0 < i < box.x1}
    assert shaded == {n for n in names if n.startswith(RESNET18_TAIL_BLOCKS)}


def test_plot_without_matplotlib(resnet18_32, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    with pytest.raises(RflintError) as err:
        render_plot(resnet18_32, tmp_path / "rf.png")
    assert str(err.value) == "--plot needs matplotlib: pip install matplotlib"
    html = html_document([resnet18_32])
    assert "--plot needs matplotlib" in html and "RF002" in html


def test_plot_rejects_unknown_suffix(resnet18_32, tmp_path):
    with pytest.raises(RflintError, match="use .png or .svg"):
        render_plot(resnet18_32, tmp_path / "rf.jpg")


# --------------------------------------------------------------------------- html

def _external_references(html: str) -> list[str]:
    """Anything that would make a browser fetch something.  The inline SVGs carry no xmlns
    declarations (rflint strips them: HTML5 puts <svg> in the SVG namespace by itself), so no
    namespace URL needs to be allowed either."""
    found = []
    for pattern in (r"https?://", r"""(?:src|href)\s*=\s*["']?//""", r"@import", r"<link\b[^>]*\bhref",
                    r"<script\b[^>]*\bsrc", r"""\bsrc\s*=""", r"url\((?!['\"]?#)", r"""\bhref\s*=\s*(?!["']?#)"""):
        found += re.findall(pattern, html, flags=re.I)
    return found


def test_html_is_self_contained(resnet18_32, tmp_path):
    path = tmp_path / "report.html"
    render_html([resnet18_32], path)
    html = path.read_text(encoding="utf-8")
    assert _external_references(html) == []
    assert "xmlns" not in html
    assert "RF002" in html and RESNET18_BORDER in html
    assert "truncate" in html.lower() and RESNET18_CUT in html
    assert f"r_min {RESNET18_FINAL_R_MIN}x{RESNET18_FINAL_R_MIN}, r_max {RESNET18_FINAL_R_MAX}x{RESNET18_FINAL_R_MAX} px" in html
    expected_svgs = (shutil.which("dot") is not None) + importable("matplotlib")  # graph, plot
    assert html.count("<svg") == expected_svgs
    assert html_document([resnet18_32]) == html  # reproducible, byte for byte


def importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def test_html_escapes_text(resnet18_32):
    resnet18_32.notes.append("<script>alert(1)</script> & co")
    try:
        html = html_document([resnet18_32])
    finally:
        resnet18_32.notes.pop()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html


# --------------------------------------------------------------------------- browser

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium; installed with apt-get when missing and we are root, else the test skips."""
    exe = shutil.which("chromium")
    if exe:
        return exe
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("chromium is not installed (apt-get install chromium) and cannot be installed here")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        proc = subprocess.run("apt-get update -qq && apt-get install -y -qq chromium", shell=True, env=env,
                              capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        pytest.skip("installing chromium with apt-get took more than 600 s")
    exe = shutil.which("chromium")
    if proc.returncode != 0 or exe is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        pytest.skip(f"could not install chromium (exit {proc.returncode}): {' | '.join(tail)}")
    return exe


def _run_chromium(exe: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
                          capture_output=True, text=True, timeout=180, cwd=tmp)


def test_html_renders_in_headless_chromium(resnet18_32, chromium, tmp_path):
    page = tmp_path / "report.html"
    render_html([resnet18_32], page)
    url = page.resolve().as_uri()
    shot = tmp_path / "shot.png"
    proc = _run_chromium(chromium, tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", url)
    assert shot.exists(), f"no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
    data = shot.read_bytes()
    assert png_size(data) == (1280, 2000) and len(data) > 50_000

    dom = _run_chromium(chromium, tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "RF002" in dom.stdout and RESNET18_BORDER in dom.stdout

    pil = pytest.importorskip("PIL.Image")  # pillow comes with matplotlib
    with pil.open(shot) as im:
        rgb = im.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50  # not a blank page
    # the red "error" badge of the RF002 finding is visible in the first screen
    assert any(count > 100 and abs(r - 0xC6) < 12 and abs(g - 0x28) < 12 and abs(b - 0x28) < 12
               for count, (r, g, b) in colours)
