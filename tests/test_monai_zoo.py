"""rflint on every network of ``monai.networks.nets`` that can be built with simple arguments.

The cases, the exclusions (with reasons) and the known failures live in tests/monai_cases.py
(``python tests/monai_cases.py`` prints the survey table).  Each case is first checked to be valid
(its forward() runs on a real CPU tensor of that size), then analyzed: it must return an Analysis
with at least one RF layer (every case has a convolution).  Known failures are ``xfail(strict=True)``
with rflint's error as the reason, so a fix turns them into an XPASS that asks for the marker to go;
``test_success_rate`` keeps the ratio over all valid cases at or above 95 % either way.
"""

from __future__ import annotations

import pytest

pytest.importorskip("monai.networks.nets")

import monai_cases as mc  # noqa: E402
from rflint.errors import RflintError  # noqa: E402
from rflint.trace.metaspec import is_tensor_like  # noqa: E402

# forward() of these on a real CPU tensor takes seconds (HoVerNet FAST needs 256x256; the big SENets
# and ResNets allocate real weights); the survey (python tests/monai_cases.py) checks them
_SKIP_FORWARD = {"HoVerNet", "SENet154", "SEResNeXt101", "SEResNet101", "SEResNet152", "resnet101", "resnet152",
                 "resnet200", "DenseNet264", "AHNet"}

_RESULTS: dict[str, str | None] = {}  # case -> None (ok) or why it failed; shared with the rate test


def _run(case: mc.Case) -> str | None:
    """None when rflint analyzes the case, else the failure (a crash is marked as such)."""
    if case.name in _RESULTS:
        return _RESULTS[case.name]
    try:
        analysis = mc.analyze(case)
        failure = None if analysis.layers else f"no RF layer found ({analysis.trace_method})"
    except RflintError as err:
        failure = f"RflintError: {err}"
    except Exception as err:  # noqa: BLE001 - anything else is a bug in rflint: a traceback escaped
        failure = f"CRASH {type(err).__name__}: {err}"
    _RESULTS[case.name] = failure
    return failure


def _param(case: mc.Case):
    marks = []
    if not case.available():
        marks.append(pytest.mark.skip(reason=f"needs {', '.join(case.requires)}"))
    elif case.known_failure:
        marks.append(pytest.mark.xfail(strict=True, reason=case.known_failure))
    return pytest.param(case, id=case.name, marks=marks)


def test_every_public_network_is_accounted_for():
    """Each public nn.Module class/factory is a case, an exclusion with a reason, or an alias."""
    covered = {c.name for c in mc.CASES} | set(mc.EXCLUDED) | set(mc.aliases())
    missing = sorted(set(mc.public_objects()) - covered)
    assert not missing, f"monai.networks.nets names with no case and no exclusion: {missing}"
    assert all(reason.strip() for reason in mc.EXCLUDED.values())
    assert not {c.name for c in mc.CASES} & set(mc.EXCLUDED)


@pytest.mark.parametrize("case", [_param(c) for c in mc.CASES])
def test_monai_network_analyzes(case: mc.Case):
    if case.name not in _SKIP_FORWARD:
        mc.validate(case)  # the case itself is valid: forward() runs at this size
    failure = _run(case)
    assert failure is None, failure
    assert not (failure or "").startswith("CRASH"), "a traceback escaped rflint"


def test_success_rate():
    cases = [c for c in mc.CASES if c.available()]
    if len(cases) < len(mc.CASES) / 2:
        pytest.skip("most optional packages of the cases are missing")
    failures = {c.name: f for c in cases if (f := _run(c)) is not None}
    rate = 1 - len(failures) / len(cases)
    detail = "; ".join(f"{name}: {text[:160]}" for name, text in sorted(failures.items()))
    assert rate >= 0.95, f"{len(cases) - len(failures)}/{len(cases)} monai networks analyze ({rate:.1%}); {detail}"


_SHAPE_CASES = ["AttentionUnet", "BasicUNet", "DenseNet121", "DynUNet", "EfficientNetBN", "HighResNet", "SEResNet50",
                "SegResNet", "UNet", "VNet", "UNETR", "SwinUNETR"]


@pytest.mark.parametrize("name", _SHAPE_CASES)
def test_shape_rules_agree_with_torch_on_monai_networks(name, monkeypatch):
    """Networks written by others, propagated with rflint's arithmetic shape rules and with torch's
    meta kernels alone: every node gets the same shape and dtype."""
    import torch

    import rflint.trace.shapes as S
    from rflint.engine import prepare

    case = next(c for c in mc.CASES if c.name == name)
    prepared = prepare(case.factory(), channels=case.channels)
    traced = prepared.traced_at(((1, prepared.channels, *case.size),))

    def shapes():
        values = S.propagate(traced.gm, [torch.empty((1, prepared.channels, *case.size), device="meta")], traced.modules)
        return {n.name: (tuple(v.shape), v.dtype) for n, v in values.items() if is_tensor_like(v)}

    fast = shapes()
    for table in ("FUNCTION_SHAPE_RULES", "METHOD_SHAPE_RULES", "MODULE_SHAPE_RULES"):
        monkeypatch.setattr(S, table, {})
    monkeypatch.setattr(S, "SAME_SHAPE_MODULES", frozenset())
    assert fast == shapes()
