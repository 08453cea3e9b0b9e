"""Find and read YAML rule files: the built-in pack, user folders, one file at a time.

Files are read with a ``yaml.SafeLoader`` subclass that only records where each mapping starts
and refuses duplicate keys (it constructs nothing SafeLoader would not; ``yaml_lines``), and the
parsed data is kept as JSON in the user cache keyed by the file's sha256, so a scan whose rule
files have not changed imports no YAML parser at all. ``validate`` then checks the content,
cached or not, so a cached file gives the same rules and the same errors. The rules a file's
validation produced are kept too (``rules.compiled``): while its bytes and its place stay the
same, a scan reads them back without parsing or validating, nor importing the validator (and
the fact and kind tables it checks names against). Every problem is a RuleFileError reading
``file:line: rule ID: what is wrong (did you mean X?)``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from convaudit import usercache
from convaudit.errors import RuleFileError
from convaudit.identity import sha256_hex
from convaudit.rules import compiled
from convaudit.rules.schema import LineDict, Rule
from convaudit.safe_io import read_regular

RULE_SUFFIXES = (".yaml", ".yml")
# Values one rule file may hold once aliases are expanded: a built-in rule file has ~120.
MAX_VALUES = 100_000


def load_file(path: str | Path, *, builtin: bool = False) -> list[Rule]:
    """Validated rules of one YAML file."""
    p = Path(path)
    try:
        text = read_regular(p, error=RuleFileError, what="rule file").decode("utf-8")
    except UnicodeDecodeError:
        raise RuleFileError("rule file is not UTF-8 text", path=p) from None
    key = sha256_hex(text.encode("utf-8"))
    entry = usercache.read_bytes(CACHE_KIND, key)
    if entry is not None:
        stored = usercache.read_json(compiled.KIND, _compiled_key(entry, p, builtin))
        if stored is not None:
            try:
                return compiled.decode(stored)
            except (TypeError, ValueError, KeyError, IndexError, RecursionError):
                pass  # not one we wrote: validate the file
    from convaudit.rules.validate import validate_document

    data, entry = _cached_parse(text, p, key, entry)
    _refuse_expansion(data, p)
    rules = validate_document(p, data, builtin=builtin)
    if entry is not None:
        with contextlib.suppress(TypeError, RecursionError):  # a value JSON cannot hold
            usercache.write_json(
                compiled.KIND, _compiled_key(entry, p, builtin), compiled.encode(rules)
            )
    return rules


def _compiled_key(entry: bytes, path: Path, builtin: bool) -> str:
    """What validation produced depends on the parsed data (the parse entry's bytes), the path
    it names and whether the file is built in: a changed entry is another key."""
    where = f"{int(builtin)}\0{path}\0".encode("utf-8", "surrogatepass")
    return sha256_hex(where + entry)


# -- the parse cache ---------------------------------------------------------------------------
# A mapping is {"m": [[key, value], ...], "l": line, "k": [key lines]}; every mapping the loader
# builds is a LineDict, so a JSON object always means one. Only the types below are cached: a
# file with anything else (a date, a set, !!binary) is parsed every time.
CACHE_KIND = "rules-parsed-1"  # bump when the encoding changes


def _cached_parse(text: str, path: Path, key: str, entry: bytes | None) -> tuple[Any, bytes | None]:
    """The parsed data of ``text`` and the parse entry's bytes (None when not cacheable):
    decoded from ``entry``, the stored bytes for ``key``, or parsed and stored."""
    if entry is not None:
        try:
            return _decode(json.loads(entry)), entry
        except (TypeError, ValueError, KeyError, IndexError, RecursionError):
            pass  # not one we wrote: parse the file
    from convaudit.rules.yaml_lines import parse

    data = parse(text, path)
    _refuse_expansion(data, path)  # before encoding: an alias bomb must not be expanded
    try:
        encoded = json.dumps(_encode(data), separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError, RecursionError):
        return data, None
    usercache.write_bytes(CACHE_KIND, key, encoded)
    return data, encoded


def _encode(item: Any) -> Any:
    if isinstance(item, LineDict):
        return {
            "m": [[k, _encode(v)] for k, v in item.items()],
            "l": item.line,
            "k": [item.key_lines[k] for k in item],
        }
    if isinstance(item, list):
        return [_encode(x) for x in item]
    if item is None or type(item) in (str, int, float, bool):
        return item
    raise TypeError(type(item).__name__)


def _decode(item: Any) -> Any:
    if isinstance(item, dict):
        out = LineDict()
        out.line = int(item["l"])
        out.key_lines = {}
        for (key, value), line in zip(item["m"], item["k"], strict=True):
            if not isinstance(key, str):
                raise TypeError("key")
            out[key] = _decode(value)
            out.key_lines[key] = int(line)
        return out
    if isinstance(item, list):
        return [_decode(x) for x in item]
    return item


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
    """The shipped rule pack: ``convaudit/_builtin_rules`` in a wheel, ``rules/`` in a checkout.

    Found beside the package's own files (the rules are read from disk, so a zipped install
    could not read them either way): ``importlib.resources`` would add its imports (tempfile,
    random, zipfile machinery) to every scan.
    """
    package = Path(__file__).resolve().parent.parent
    packaged = package / "_builtin_rules"
    if packaged.is_dir():
        return packaged
    return package.parent / "rules"


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
