"""Find and read YAML rule files: the built-in pack, user folders, one file at a time.

Files are read with a ``yaml.SafeLoader`` subclass that only records where each mapping starts
and refuses duplicate keys (it constructs nothing SafeLoader would not); ``validate`` then
checks the content. Every problem is a RuleFileError reading
``file:line: rule ID: what is wrong (did you mean X?)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import yaml

from convaudit.errors import RuleFileError
from convaudit.rules.schema import Rule
from convaudit.rules.validate import LineDict, validate_document
from convaudit.safe_io import clip, read_regular

RULE_SUFFIXES = (".yaml", ".yml")
# Values one rule file may hold once aliases are expanded: a built-in rule file has ~120.
MAX_VALUES = 100_000


# libyaml's parser when the wheel has it (about 10x faster: rule loading is on every scan's
# critical path); same safe constructors either way.
_SafeBase: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LineLoader(_SafeBase):  # type: ignore[valid-type,misc]
    """SafeLoader that records line numbers and refuses duplicate keys."""


def _construct_mapping(loader: LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(
                None, None, f"keys must be text, not {key!r}", key_node.start_mark
            )
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = line
    return out


LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_file(path: str | Path, *, builtin: bool = False) -> list[Rule]:
    """Validated rules of one YAML file."""
    p = Path(path)
    try:
        text = read_regular(p, error=RuleFileError, what="rule file").decode("utf-8")
    except UnicodeDecodeError:
        raise RuleFileError("rule file is not UTF-8 text", path=p) from None
    try:
        # LineLoader is a SafeLoader: it builds plain data only (object tags are refused).
        loader = LineLoader(text)
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        raise RuleFileError(f"invalid YAML: {what}", path=f"{p}:{line}") from None
    except yaml.YAMLError as exc:
        raise RuleFileError(f"invalid YAML: {clip(str(exc))}", path=p) from None
    except RecursionError:
        raise RuleFileError("invalid YAML: nested too deeply", path=p) from None
    _refuse_expansion(data, p)
    return validate_document(p, data, builtin=builtin)


def _refuse_expansion(data: object, path: Path) -> None:
    """Refuse a document that expands to more than MAX_VALUES values anywhere (params, messages,
    match alike). YAML aliases share one object per anchor, so nine lists of nine aliases are a
    few hundred bytes that a validator or a ``!r`` echo would walk a billion times."""
    count, stack = 0, [data]
    while stack:
        item = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise RuleFileError(
                f"rule file expands to more than {MAX_VALUES:,} values (YAML aliases?)", path=path
            )
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


# -- packs ------------------------------------------------------------------------------------


def builtin_dir() -> Path:
    """The shipped rule pack: ``convaudit/_builtin_rules`` in a wheel, ``rules/`` in a checkout."""
    try:
        packaged = resources.files("convaudit") / "_builtin_rules"
        if packaged.is_dir():
            return Path(str(packaged))
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - a broken install
        pass
    return Path(__file__).resolve().parent.parent.parent / "rules"


def rule_files(directory: str | Path) -> list[Path]:
    """The YAML files of a rule directory, sorted (a file may also be given directly)."""
    d = Path(directory)
    if d.is_file():
        return [d]
    if not d.is_dir():
        raise RuleFileError("rule directory does not exist", path=d)
    return sorted(p for p in d.iterdir() if p.suffix in RULE_SUFFIXES and p.is_file())


def load_rules(dirs: Sequence[str | Path] = (), *, builtin: bool = True) -> dict[str, Rule]:
    """Built-in rules then those of ``dirs``, by id; an id defined twice is an error."""
    sources: list[tuple[Path, bool]] = []
    if builtin:
        sources += [(p, True) for p in rule_files(builtin_dir())]
    for d in dirs:
        sources += [(p, False) for p in rule_files(d)]
    rules: dict[str, Rule] = {}
    for path, is_builtin in sources:
        for rule in load_file(path, builtin=is_builtin):
            if rule.id in rules:
                first = rules[rule.id]
                raise RuleFileError(
                    f"rule {rule.id}: id already defined at {first.source}:{first.line}",
                    path=f"{rule.source}:{rule.line}",
                )
            rules[rule.id] = rule
    return dict(sorted(rules.items()))
