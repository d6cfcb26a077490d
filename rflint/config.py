"""``[tool.rflint]`` in the nearest pyproject.toml that has one (searched from the working directory
upwards).

```toml
[tool.rflint]
select = ["RF"]            # codes or prefixes; "ALL" is the default
ignore = ["RF007"]
fail-on = "error"          # error | warning | info | never
min-tail-layers = 1
dominance-ratio = 4
warn-unused-ignores = false  # true: an ignore comment that silenced nothing is reported, exit code 1

[[tool.rflint.models]]
target = "models/net.py:build"   # relative to the pyproject.toml's directory
input = 32                       # or "32x48", or a list of sizes: [32, 64]
channels = 3
kwargs = { depth = 18 }
ignore = ["RF004"]
input-shape = ["1,3,32,32", "1,10"]  # instead of input: one full shape per forward() argument

[tool.rflint.layers]             # custom modules rflint treats as one layer
"mypkg.blocks.Down" = { kernel = 3, stride = 2, dilation = 1 }
```
Unknown keys are errors (a typo must not silently disable the gate).  No torch import here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from rflint.errors import RflintError

FAIL_ON = ("error", "warning", "info", "never")
_TOP_KEYS = {"select", "ignore", "fail-on", "min-tail-layers", "dominance-ratio", "warn-unused-ignores", "models", "layers"}
_MODEL_KEYS = {"target", "input", "channels", "kwargs", "ignore", "input-shape"}


@dataclass
class ModelConfig:
    target: str  # to load from the working directory
    label: str | None = None  # its name in reports: as the config writes it (see _relative_target)
    root: str | None = None  # where a package.module target imports from: the config's directory
    inputs: list[str] = field(default_factory=list)
    channels: int | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    ignore: list[str] = field(default_factory=list)
    input_shapes: list[str] = field(default_factory=list)


@dataclass
class Config:
    path: Path | None = None
    select: list[str] | None = None
    ignore: list[str] = field(default_factory=list)
    fail_on: str = "error"
    min_tail_layers: int = 1
    dominance_ratio: float = 4.0
    warn_unused_ignores: bool = False  # an ignore comment that silenced nothing: a note and exit code 1
    models: list[ModelConfig] = field(default_factory=list)
    layers: dict[str, dict[str, Any]] = field(default_factory=dict)  # declared custom layers


def find_pyproject(start: Path | None = None) -> Path | None:
    """The nearest pyproject.toml at or above ``start`` (the working directory) that has a
    ``[tool.rflint]`` table.  One without it is passed over, as ruff passes over a pyproject.toml
    without ``[tool.ruff]``: a sub-package's own pyproject.toml (a monorepo's ``packages/vision``)
    must not hide the repository's settings, or rflint run from there would judge the models by
    other rules than CI does.  A file that cannot be read or parsed, but mentions rflint, is taken,
    so that its error is reported rather than skipped."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file() and _has_rflint_table(candidate):
            return candidate
    return None


def _has_rflint_table(path: Path) -> bool:
    try:
        data = path.read_bytes()
    except OSError:
        return True  # load_config says what is wrong with it
    if b"rflint" not in data:  # most pyproject.toml files: no need to parse them
        return False
    try:
        tool = tomllib.loads(data.decode("utf-8")).get("tool")
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return True
    return isinstance(tool, dict) and "rflint" in tool


def _strings(value: Any, key: str, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RflintError(f"{where}: '{key}' must be a string or a list of strings")
    return list(value)


def _sizes(value: Any, where: str) -> list[str]:
    values = value if isinstance(value, list) else [value]
    if not values:  # not a model that fails at no size: a config that names none
        raise RflintError(f"{where}: 'input' lists no size; give one (32, \"32x48\") or leave input out")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, str)):
            raise RflintError(f"{where}: 'input' must be a size like 32 or \"32x48\", or a list of them")
        out.append(str(v))
    return out


def load_config(path: Path | None = None) -> Config:
    """Read [tool.rflint] from ``path`` or the nearest pyproject.toml that has it; defaults if there is none."""
    given = path is not None
    path = path or find_pyproject()
    if path is None:
        return Config()
    if path.is_dir():
        raise RflintError(f"config file {path} is a directory; give the pyproject.toml in it, e.g. {path / 'pyproject.toml'}")
    if not path.is_file():
        raise RflintError(f"config file not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise RflintError(f"{path}: invalid TOML: {err}") from err
    except UnicodeDecodeError as err:  # TOML is UTF-8
        raise RflintError(f"{path}: not UTF-8 text (byte {err.start})") from err
    except OSError as err:  # unreadable: permissions, I/O
        raise RflintError(f"config file {path} cannot be read: {err.strerror or err}") from err
    tool = data.get("tool", {})
    section = tool.get("rflint") if isinstance(tool, dict) else None
    if section is None:
        if given:  # --config names this file for its settings: none would be a gate silently off
            top = ", ".join(sorted(data)[:4])
            raise RflintError(f"config file {path} has no [tool.rflint] table"
                              + (f" (its top-level keys: {top})" if top else "")
                              + "; put rflint's settings under [tool.rflint], as in pyproject.toml")
        return Config(path=path)
    where = f"{path} [tool.rflint]"
    if not isinstance(section, dict):
        raise RflintError(f"{where}: must be a table, got {type(section).__name__}")
    _no_unknown_keys(section, _TOP_KEYS, where)
    cfg = Config(path=path)
    if "select" in section:
        cfg.select = _strings(section["select"], "select", where)
        if not any(code.strip() for item in cfg.select for code in item.split(",")):  # as --select "" is
            raise RflintError(f'{where}: select names no rule; give codes or prefixes (["RF001", "RF00"]) '
                              'or ["ALL"], or leave select out')
    cfg.ignore = _strings(section.get("ignore", []), "ignore", where)
    cfg.fail_on = section.get("fail-on", "error")
    if cfg.fail_on not in FAIL_ON:
        raise RflintError(f"{where}: fail-on must be one of {', '.join(FAIL_ON)}, got {cfg.fail_on!r}")
    cfg.min_tail_layers = _positive_int(section.get("min-tail-layers", 1), "min-tail-layers", where)
    ratio = section.get("dominance-ratio", 4.0)
    # "not >= 1", not "< 1": TOML's nan compares false either way (--dominance-ratio refuses it too)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not ratio >= 1:
        raise RflintError(f"{where}: dominance-ratio must be a number >= 1, got {ratio!r}")
    cfg.dominance_ratio = float(ratio)
    cfg.warn_unused_ignores = section.get("warn-unused-ignores", False)
    if not isinstance(cfg.warn_unused_ignores, bool):
        raise RflintError(f"{where}: warn-unused-ignores must be true or false, got {cfg.warn_unused_ignores!r}")
    base = path.parent
    models = section.get("models", [])
    if isinstance(models, dict):  # [tool.rflint.models] instead of [[tool.rflint.models]]
        raise RflintError(f"{where}: write each model as [[tool.rflint.models]] (two brackets: a list of tables)")
    if not isinstance(models, list):
        raise RflintError(f"{where}: models must be a list of [[tool.rflint.models]] tables, got {type(models).__name__}")
    for i, model in enumerate(models):
        mwhere = f"{path} [[tool.rflint.models]] #{i + 1}"
        if not isinstance(model, dict) or "target" not in model:
            raise RflintError(f"{mwhere}: every model needs a 'target'")
        _no_unknown_keys(model, _MODEL_KEYS, mwhere)
        target = model["target"]
        if not isinstance(target, str) or ":" not in target:
            raise RflintError(f"{mwhere}: target {target!r} names no model; write path/to/file.py:name, "
                              "package.module:name or zoo:name")
        kwargs = model.get("kwargs", {})
        if not isinstance(kwargs, dict):
            raise RflintError(f"{mwhere}: 'kwargs' must be a table")
        channels = model.get("channels")
        cfg.models.append(ModelConfig(
            target=_relative_target(str(model["target"]), base),
            label=_config_name(str(model["target"])),
            root=str(base.resolve()),
            inputs=_sizes(model["input"], mwhere) if "input" in model else [],
            channels=_positive_int(channels, "channels", mwhere) if channels is not None else None,
            kwargs=dict(kwargs),
            ignore=_strings(model.get("ignore", []), "ignore", mwhere),
            input_shapes=_strings(model.get("input-shape", []), "input-shape", mwhere),
        ))
    _no_repeated_models(cfg.models, path)
    layers = section.get("layers", {})
    if not isinstance(layers, dict) or not all(isinstance(v, dict) for v in layers.values()):
        raise RflintError(f"{where}: [tool.rflint.layers] maps class names to {{kernel, stride, dilation}} tables")
    cfg.layers = {str(k): dict(v) for k, v in layers.items()}
    from rflint.declared import checked  # no torch: a plain table check

    for name, values in cfg.layers.items():  # one config error now, not one model error per model later
        checked(name, values, f"{path} [tool.rflint.layers]")
    return cfg


def _no_unknown_keys(table: dict, known: set[str], where: str) -> None:
    """Unknown keys are errors (a typo must not silently drop a setting), with the key meant."""
    import difflib

    unknown = sorted(set(table) - known)
    if unknown:
        said = [f"{key} (did you mean {close[0]}?)" if (close := difflib.get_close_matches(key, known, 1)) else key
                for key in unknown]
        raise RflintError(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(said)}")


def _no_repeated_models(models: list[ModelConfig], path: Path) -> None:
    """Two entries of one model (target, kwargs, channels, input shapes) ran it twice and gave
    findings with one SARIF fingerprint: a copy-paste to merge (their sizes into one list)."""
    seen: dict[str, int] = {}
    for i, model in enumerate(models):
        key = repr((model.target, sorted(model.kwargs.items(), key=str), model.channels, model.input_shapes))
        if key in seen:
            raise RflintError(f"{path} [[tool.rflint.models]] #{i + 1} repeats #{seen[key] + 1} "
                              f"({model.label or model.target}): give one entry its sizes as a list, input = [32, 64]")
        seen[key] = i


def _positive_int(value: Any, key: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RflintError(f"{where}: {key} must be a positive integer, got {value!r}")
    return value


def _is_file_target(where: str, sep: str) -> bool:
    return bool(sep) and (where.endswith(".py") or "/" in where) and not os.path.isabs(where)


def _relative_target(target: str, base: Path) -> str:
    """File targets in the config are relative to the pyproject.toml, not to the working directory:
    the path to load, from the working directory (absolute when it is not below it)."""
    where, sep, attr = target.rpartition(":")
    if _is_file_target(where, sep):
        path = os.path.normpath(base / where)
        relative = os.path.relpath(path)
        return f"{path if relative.startswith('..') else relative}:{attr}"
    return target


def _config_name(target: str) -> str | None:
    """A file target's name in every report: its path from the pyproject.toml, as written there
    (normalised), wherever rflint runs from.  The name goes into SARIF's fingerprints, which must
    not change with the working directory or with where the checkout lies."""
    where, sep, attr = target.rpartition(":")
    if _is_file_target(where, sep):
        return f"{Path(os.path.normpath(where)).as_posix()}:{attr}"
    return None
