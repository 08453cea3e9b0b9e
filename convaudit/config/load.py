"""Finding, reading and validating the config file, and putting the flags on top.

Read from ``[tool.convaudit]`` in ``pyproject.toml`` or from a ``convaudit.toml`` (top-level
keys), found upward from the model (or the current folder), or named with ``--config``.
Flags override the file. Every unknown key is an error naming the file and the nearest key;
every value goes through the parser the flags and ``Config(...)`` use (config.values).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from convaudit.config import values as v
from convaudit.config.records import (
    CONFIG_NAMES,
    KEYS,
    SUPPRESSION_KEYS,
    Config,
    ModelShapes,
    Suppression,
)
from convaudit.errors import ConfigError, nearest
from convaudit.safe_io import shown

# -- finding and reading the file -------------------------------------------------------------


def _read_toml(path: Path, data: bytes) -> dict[str, Any]:
    """The parsed TOML of ``data`` (read from ``path``), or a ConfigError naming it."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(data.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", path=path) from None
    except UnicodeDecodeError:
        raise ConfigError("config is not UTF-8 text", path=path) from None
    except RecursionError:
        raise ConfigError("invalid TOML: nested too deeply", path=path) from None
    except ValueError as exc:  # an integer of more than 4,300 digits
        raise ConfigError(f"invalid TOML: {exc}", path=path) from None


# The convaudit table of a file whose bytes were parsed before, as JSON in the user cache keyed
# by the bytes' sha256 (and the kind of file: a pyproject's table is one part of it), so a scan
# whose config has not changed imports no TOML parser. Only a table parsed without error is
# stored; one holding what JSON cannot (a TOML date) is parsed every time.
CACHE_KIND = "config-table-1"  # bump when what is stored changes


def _table(path: Path, *, discovering: bool = False) -> dict[str, Any] | None:
    """The convaudit table of a config file (None for a pyproject without one).

    When ``discovering``, a pyproject.toml whose bytes never name convaudit cannot hold its
    table (no TOML spelling of the key avoids the word except an escaped quoted key): it is
    skipped without parsing.
    """
    from convaudit import usercache
    from convaudit.identity import sha256_hex
    from convaudit.safe_io import read_regular

    data = read_regular(path, error=ConfigError, what="config")  # a FIFO must not block
    pyproject = path.name == "pyproject.toml"
    escaped = b"\\u" in data or b"\\U" in data
    if discovering and pyproject and b"convaudit" not in data and not escaped:
        return None
    key = sha256_hex((b"pyproject\0" if pyproject else b"convaudit.toml\0") + data)
    stored = usercache.read_json(CACHE_KIND, key)
    if isinstance(stored, dict) and isinstance(stored.get("table", 0), dict | None):
        table: dict[str, Any] | None = stored["table"]
        return table
    doc = _read_toml(path, data)
    if not pyproject:
        table = doc
    else:
        tool = doc.get("tool")
        found = tool.get("convaudit") if isinstance(tool, dict) else None
        if found is not None and not isinstance(found, dict):
            raise ConfigError("[tool.convaudit] must be a table", path=path)
        table = found
    usercache.write_json(CACHE_KIND, key, {"table": table})
    return table


def find_config(start: str | Path) -> Path | None:
    """The nearest convaudit.toml, or pyproject.toml with [tool.convaudit], upward of ``start``."""
    here = Path(start).resolve()
    if here.is_file() or not here.exists():
        here = here.parent
    for folder in (here, *here.parents):
        for name in CONFIG_NAMES:
            candidate = folder / name
            if candidate.is_file() and _table(candidate, discovering=True) is not None:
                return candidate
    return None


def load_config(path: str | Path) -> Config:
    """The validated Config of one file (a pyproject without [tool.convaudit] gives defaults)."""
    p = Path(path)
    if not p.exists():  # a FIFO or device exists: read_regular then says what it is
        raise ConfigError("config file does not exist", path=p)
    table = _table(p) or {}
    return from_table(table, source=str(p), root=str(p.resolve().parent))


# -- the table -> Config ----------------------------------------------------------------------


def from_table(table: Mapping[str, Any], *, source: str | None, root: str | None) -> Config:
    """Validate a convaudit table (the ``[tool.convaudit]`` contents) into a Config."""
    where = "[tool.convaudit]" if source and source.endswith("pyproject.toml") else "config"
    for key in table:
        if key not in KEYS:
            raise ConfigError(
                f"{where}: unknown key {shown(key)}{nearest(key, KEYS, quote=True)}", path=source
            )
    base = Path(root) if root else Path.cwd()
    baseline = table.get("baseline")
    if baseline is not None and not isinstance(baseline, str):
        raise ConfigError("baseline must be a path", path=source)
    dirs = table.get("rule-dirs", [])
    if not isinstance(dirs, list) or not all(isinstance(d, str) for d in dirs):
        raise ConfigError("rule-dirs must be a list of paths", path=source)
    budgets: dict[str, Any] = {}
    for key in ("max-macs", "max-params"):
        if key in table:
            budgets[key.replace("-", "_")] = v.parse_count(table[key], key, source)
    if "max-increase" in table:
        budgets["max_increase"] = v.parse_percent(table["max-increase"], "max-increase", source)
    default_dim = v.parse_default_dim(table.get("default-dim"), "default-dim", source)
    dims_table = table.get("dims")
    # dims."*" = 1 sets every symbol (like --dim '*=1'); [dims."*"] as a table is a model glob.
    if isinstance(dims_table, dict) and not isinstance(dims_table.get(v.EVERY_DIM, {}), dict):
        every = v.parse_default_dim(dims_table[v.EVERY_DIM], 'dims."*"', source)
        if default_dim is not None and default_dim != every:
            raise ConfigError(
                f'dims."*" = {every} and default-dim = {default_dim} disagree: give one',
                path=source,
            )
        default_dim = every
    return Config(
        source=source,
        root=root,
        select=v.parse_codes(table.get("select", []), "select", source),
        ignore=v.parse_codes(table.get("ignore", []), "ignore", source),
        severity=v.parse_severities(table.get("severity", {}), "severity", source),
        params=v.parse_params(table.get("params", {}), "params", source),
        model_shapes=_model_shapes(table, source),
        fail_on=v.parse_fail_on(table.get("fail-on", "warning"), "fail-on", source),
        baseline=None if baseline is None else str(base / baseline),
        rule_dirs=tuple(str(base / d) for d in dirs),
        suppressions=_suppressions(table, source),
        exclude=v.parse_globs(table.get("exclude", []), "exclude", source),
        extend_exclude=v.parse_globs(table.get("extend-exclude", []), "extend-exclude", source),
        respect_gitignore=v.parse_bool(
            table.get("respect-gitignore", True), "respect-gitignore", source
        ),
        default_dim=default_dim,
        **budgets,
    )


def _model_shapes(table: Mapping[str, Any], source: str | None) -> tuple[ModelShapes, ...]:
    """Plain entries apply to every model ("*"); a table keyed by a glob to matching models."""
    shapes: dict[str, dict[str, tuple[int, ...]]] = {"*": {}}
    dims: dict[str, dict[str, int]] = {"*": {}}
    for key, into in (("input-shapes", shapes), ("dims", dims)):
        value = table.get(key, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a table", path=source)
        for name, item in value.items():
            if isinstance(item, dict):  # a model glob
                label = f"{key}.{v.toml_key(name)}"
                parsed: dict[str, Any] = (
                    v.parse_shapes(item, label, source)
                    if key == "input-shapes"
                    else v.parse_dim_table(item, label, source)
                )
                into.setdefault(name, {}).update(parsed)
                (shapes if key == "dims" else dims).setdefault(name, {})
            elif key == "input-shapes":
                shapes["*"][name] = v.parse_shape(item, f"{key}.{name}", source)
            elif key == "dims" and name == v.EVERY_DIM:
                continue  # dims."*" = 1 is default-dim = 1 (read by from_table)
            else:
                dims["*"][name] = v.parse_dim(item, f"{key}.{name}", source)
    entries = (
        ModelShapes(
            pattern=pattern,
            input_shapes=shapes[pattern],
            dims=dims[pattern],
            key="" if pattern == "*" else v.toml_key(pattern),
        )
        for pattern in shapes
    )
    return tuple(e for e in entries if e.input_shapes or e.dims)


def _suppressions(table: Mapping[str, Any], source: str | None) -> tuple[Suppression, ...]:
    raw = table.get("suppressions", [])
    if not isinstance(raw, list):
        raise ConfigError(
            "suppressions must be an array of tables ([[...suppressions]])", path=source
        )
    out = []
    for i, item in enumerate(raw):
        where = f"suppressions[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where} must be a table", path=source)
        for key in item:
            if key not in SUPPRESSION_KEYS:
                hint = nearest(key, SUPPRESSION_KEYS, quote=True)
                raise ConfigError(f"{where}: unknown key {shown(key)}{hint}", path=source)
        for key in ("rule", "reason"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                raise ConfigError(f"{where}: {key!r} is required (non-empty text)", path=source)
        for key in ("model", "node"):
            if key in item and not isinstance(item[key], str):
                raise ConfigError(f"{where}: {key!r} must be a glob", path=source)
        v.check_codes([item["rule"]], f"{where}.rule", source)
        out.append(
            Suppression(
                rule=item["rule"],
                reason=item["reason"].strip(),
                model=item.get("model", "*"),
                node=item.get("node", "*"),
                key=where,
            )
        )
    return tuple(out)


# -- flags over file --------------------------------------------------------------------------


def resolve(
    paths: Sequence[str] = (),
    config_file: str | None = None,
    *,
    select: Sequence[str] | None = None,
    ignore: Sequence[str] | None = None,
    fail_on: str | None = None,
    baseline: str | None = None,
    rule_dirs: Sequence[str] = (),
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    dims: Mapping[str, int] | None = None,
    max_macs: str | None = None,
    max_params: str | None = None,
    max_increase: str | None = None,
    exclude: Sequence[str] | None = None,
    extend_exclude: Sequence[str] = (),
    respect_gitignore: bool | None = None,
    default_dim: int | None = None,
) -> Config:
    """The effective Config: ``--config`` or the nearest config file, then the flags on top.

    ``select`` / ``ignore`` items may be comma-separated; given, they replace the file's lists.
    ``rule_dirs`` are added to the file's. Budget flags are text as typed ("4.1G", "2%").
    ``exclude`` replaces the file's list, ``extend_exclude`` adds to it (ruff's flags);
    ``default_dim`` (or ``*`` in ``dims``) sets every symbolic dim nothing else sets.
    """
    if config_file is not None:
        config = load_config(config_file)
    else:
        found = None
        if paths and Path(paths[0]).exists():
            found = find_config(paths[0])
        found = found or find_config(Path.cwd())
        config = load_config(found) if found else Config()
    changes: dict[str, Any] = {}
    if select is not None:
        changes["select"] = v.check_codes(v.split_codes(select), "--select")
    if ignore is not None:
        changes["ignore"] = v.check_codes(v.split_codes(ignore), "--ignore")
    if fail_on is not None:
        changes["fail_on"] = v.parse_fail_on(fail_on, "--fail-on")
    if baseline is not None:
        changes["baseline"] = baseline
    if rule_dirs:
        changes["rule_dirs"] = (*config.rule_dirs, *rule_dirs)
    if input_shapes:
        changes["input_shapes"] = {**config.input_shapes, **input_shapes}
    if dims:
        dims = dict(dims)
        every = dims.pop(v.EVERY_DIM, None)
        if every is not None:
            if default_dim is not None and default_dim != every:
                raise ConfigError(
                    f"--dim '*={every}' and --default-dim {default_dim} disagree: give one"
                )
            default_dim = every
        changes["dims"] = {**config.dims, **dims}
    if default_dim is not None:
        changes["default_dim"] = v.parse_default_dim(default_dim, "--default-dim")
    if exclude is not None:
        changes["exclude"] = v.parse_globs(list(exclude), "--exclude")
    if extend_exclude:
        changes["extend_exclude"] = (
            *config.extend_exclude,
            *v.parse_globs(list(extend_exclude), "--extend-exclude"),
        )
    if respect_gitignore is not None:
        changes["respect_gitignore"] = respect_gitignore
    for key, text in (("max-macs", max_macs), ("max-params", max_params)):
        if text is not None:
            changes[key.replace("-", "_")] = v.parse_count(text, f"--{key} {shown(text, 60)}")
    if max_increase is not None:
        changes["max_increase"] = v.parse_percent(max_increase, "--max-increase")
    return replace(config, **changes)
