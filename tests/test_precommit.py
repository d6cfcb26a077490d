"""End to end with the real pre-commit tool: the hook gates a repository on its configured models."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
pre_commit = shutil.which("pre-commit", path=os.path.dirname(sys.executable)) or shutil.which("pre-commit")

MODEL = textwrap.dedent("""
    import torch.nn as nn


    def build():
        layers = [nn.Conv2d(3, 8, 3, padding=1)]
        for _ in range(6):
            layers.append(nn.Conv2d(8, 8, 3, padding=1))  # r_out 3, 5, ..., 15: input RFs up to 13
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
""")
# seven 3x3 convs: input RFs 1, 3, 5, 7, 9, 11, 13.  At 8 px the convs reading 9, 11, 13 form a tail.

PYPROJECT = '[tool.rflint]\n\n[[tool.rflint.models]]\ntarget = "net.py:build"\ninput = {size}\n'


def _run(cmd, cwd, env):
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _git_repo(repo, tmp_path) -> dict:
    """``repo`` made a git repository with its files staged; the environment to run git and
    pre-commit in (this interpreter's scripts first, a pre-commit cache of the test's own)."""
    env = {
        **os.environ,
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
        "PRE_COMMIT_HOME": str(tmp_path / "cache"),
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    assert _run(["git", "init", "-q"], repo, env).returncode == 0
    assert _run(["git", "add", "."], repo, env).returncode == 0
    return env


def _hook_repo(tmp_path, env) -> str:
    """A git repository holding the project's hook manifest, for ``pre-commit try-repo``: the hook
    is ``language: system``, so the manifest is all pre-commit takes from it.  (try-repo on the
    project itself needs a git checkout, and the tests also run from an unpacked sdist.)"""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / ".pre-commit-hooks.yaml").write_text((PROJECT / ".pre-commit-hooks.yaml").read_text())
    _git_repo(hooks, tmp_path)
    assert _run(["git", "commit", "-qm", "hooks"], hooks, env).returncode == 0
    return str(hooks)


@pytest.mark.skipif(pre_commit is None, reason="pre-commit is not installed")
def test_pre_commit_try_repo_gates_on_the_configured_model(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "net.py").write_text(MODEL)
    (repo / "pyproject.toml").write_text(PYPROJECT.format(size=8))
    env = _git_repo(repo, tmp_path)
    hooks = _hook_repo(tmp_path, env)

    failing = _run([pre_commit, "try-repo", hooks, "rflint", "--all-files"], repo, env)
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "RF002" in failing.stdout
    assert "RF in / RF out" not in failing.stdout  # the hook's --no-layers: findings and fix, no tables

    # `rflint` with no arguments inside the repo analyzes the configured model
    direct = _run([os.path.join(os.path.dirname(sys.executable), "rflint"), "--format", "json"], repo, env)
    assert direct.returncode == 1 and '"target":' in direct.stdout and "net.py:build" in direct.stdout

    (repo / "pyproject.toml").write_text(PYPROJECT.format(size=224))
    assert _run(["git", "add", "."], repo, env).returncode == 0
    passing = _run([pre_commit, "try-repo", hooks, "rflint", "--all-files"], repo, env)
    assert passing.returncode == 0, passing.stdout + passing.stderr


YAML_MODEL = textwrap.dedent("""
    from pathlib import Path

    import torch.nn as nn


    def build():
        depth = int(Path(__file__).with_name("net.yaml").read_text().split(":")[1])
        layers = [nn.Conv2d(3, 8, 3, padding=1)] + [nn.Conv2d(8, 8, 3, padding=1) for _ in range(depth)]
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
""")


@pytest.mark.skipif(pre_commit is None, reason="pre-commit is not installed")
def test_pre_commit_checks_a_commit_that_touches_no_python_file(tmp_path):
    """The hook ran only for .py and pyproject.toml files: a commit that deepened the model in the
    YAML its factory reads (or deleted a configured model file, which pre-commit hands no hook)
    was "Skipped" and passed.  By hand: at 8 px a conv reading more than 8 is unproductive; depth
    2 gives input RFs 1, 3, 5 (clean), depth 6 gives 1, 3, ..., 13 (a tail from the one reading 9)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "net.py").write_text(YAML_MODEL)
    (repo / "net.yaml").write_text("depth: 2\n")
    (repo / "pyproject.toml").write_text(PYPROJECT.format(size=8))
    env = _git_repo(repo, tmp_path)
    assert _run(["git", "commit", "-qm", "clean"], repo, env).returncode == 0
    (repo / "net.yaml").write_text("depth: 6\n")
    assert _run(["git", "add", "net.yaml"], repo, env).returncode == 0
    staged = _run([pre_commit, "try-repo", _hook_repo(tmp_path, env), "rflint"], repo, env)  # the staged files only
    assert staged.returncode == 1, staged.stdout + staged.stderr
    assert "RF002" in staged.stdout
