"""What a user installs: the sdist and the wheel hatchling builds from the project.

The wheel must carry everything ``rflint`` reads at run time (the rule docs behind ``rflint rule``
and SARIF's rule help, the licence), and no tests; the sdist must rebuild it and run the tests, and
take nothing a run of the README's commands leaves in the checkout (a 7.5 MB fixed model, a SARIF
file, an HTML report), which it did while hatchling took every file git does not ignore."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
# what running the README's examples in the checkout writes there (none of it is git-ignored)
STRAYS = ["resnet18_32x32_truncated.pt", "rflint.sarif", "report.html", "net.dot", "rflint/zoo/graph.dot"]

pytestmark = pytest.mark.skipif(importlib.util.find_spec("hatchling") is None,
                                reason="hatchling is not installed (the dev extra has it)")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[set[str], set[str]]:
    """The names in the sdist (without its top directory) and in the wheel, built from a copy of
    the project with the strays written into it."""
    root = tmp_path_factory.mktemp("packaging")
    src = root / "src"
    shutil.copytree(PROJECT, src, ignore=shutil.ignore_patterns(
        ".venv", ".git", "__pycache__", ".pytest_cache", ".hypothesis", "build", "dist", "*.egg-info"))
    for stray in STRAYS:
        (src / stray).write_text("output of a README command\n")
    dist = root / "dist"
    done = subprocess.run([sys.executable, "-m", "hatchling", "build", "-d", str(dist)], cwd=src,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (sdist,), (wheel,) = dist.glob("*.tar.gz"), dist.glob("*.whl")
    with tarfile.open(sdist) as tar:
        in_sdist = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    with zipfile.ZipFile(wheel) as whl:
        in_wheel = set(whl.namelist())
    return in_sdist, in_wheel


def test_the_wheel_carries_the_rule_docs_and_the_licence_and_no_tests(built):
    _, wheel = built
    for doc in sorted((PROJECT / "rules").glob("RF*.md")):
        assert f"rflint/_rules/{doc.name}" in wheel, doc.name  # `rflint rule`, SARIF's help text
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in wheel)
    assert "rflint/zoo/resnet.py" in wheel and "rflint/cli/app.py" in wheel
    assert not [name for name in wheel if name.startswith(("tests/", "bench/")) or "__pycache__" in name]
    assert not [stray for stray in STRAYS if stray in wheel]


def test_the_sdist_has_what_rebuilds_and_tests_rflint_and_no_command_output(built):
    sdist, _ = built
    for needed in ("pyproject.toml", "README.md", "LICENSE", "Makefile", ".pre-commit-hooks.yaml", ".ci/run",
                   "rules/RF001.md", "tests/test_packaging.py", "tests/conftest.py", "bench/run.py",
                   "rflint/__init__.py"):
        assert needed in sdist, needed
    assert not [stray for stray in STRAYS if stray in sdist]
    assert not [name for name in sdist if "__pycache__" in name or name.endswith(".pyc")]


@pytest.mark.skipif(shutil.which("git") is None or not (PROJECT / ".git").exists(), reason="not a git checkout")
def test_every_file_the_repository_tracks_is_in_the_sdist(built):
    # the sdist names what it takes: a file added at the top of the repository must be named too
    sdist, _ = built
    tracked = subprocess.run(["git", "ls-files"], cwd=PROJECT, capture_output=True, text=True, check=True).stdout
    missing = [name for name in tracked.splitlines() if name and name not in sdist
               and (PROJECT / name).exists()]  # (a tracked file deleted in the working tree: not built)
    assert not missing
