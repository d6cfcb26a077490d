"""Test-suite settings shared by every module.

Hypothesis draws new examples on every run, which is what finds bugs on a developer's machine; a
CI gate must not fail on one unlucky draw that no one can reproduce.  With ``CI`` set (``.ci/run``
runs on a clean clone with ``CI=true``) the property tests are derandomized: the same examples on
every run, so a red CI run is red again on a rerun and on the developer's machine with ``CI=true``.
"""

import os

import pytest
from hypothesis import settings

from stale_jit_ids import drop_stale_jit_builtin_ids

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
    settings.load_profile("ci")


@pytest.fixture
def scriptable():
    """For a test that calls torch.jit.script: drops the ids torch.jit keeps of freed operators
    first, so the script does not fail at random (see stale_jit_ids.py)."""
    drop_stale_jit_builtin_ids()
