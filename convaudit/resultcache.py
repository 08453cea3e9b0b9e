"""The result cache: one model's report stored as JSON, reused while nothing it depends on changed.

In the style of ruff's cache. An entry is named by a hash of everything a model's report depends
on: the model file as ``os.stat`` sees it (path as given and resolved, device, inode, size,
mtime_ns, ctime_ns), the scan's context (the rule pack and effective config, canonicalised; the
``--weights`` flag; the working folder, since reports quote relative paths) and the code that
computes it (the signature of convaudit's own source files, the installed onnx's stamp, Python's
version). A changed input is a different name, so nothing is ever invalidated in place; an entry
also lists the files it read besides the model (external data under ``--weights``) with their
stat, checked on every hit. A model modified within ``RACY_NS`` of its scan is not stored (the
file system's clock may not tell two quick writes apart). Values are tagged JSON rebuilt into
the same records (never pickle: a CI cache may be restored from an untrusted artifact); anything
that does not decode is a miss. A hit reads no model and imports no onnx.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convaudit import usercache
from convaudit.identity import sha256_hex
from convaudit.model.schemas import onnx_stamp
from convaudit.records import (
    Category,
    CategoryTotals,
    Finding,
    Layer,
    ModelFacts,
    ModelReport,
    Recommendation,
    ScanProblem,
    Severity,
    Totals,
)
from convaudit.safe_io import BUDGET_ENV

if TYPE_CHECKING:
    from convaudit.rules.engine import RuleSet

KIND = "results-1"  # bump when the encoding or the key changes
# Bounds of the cache folder: past either, the oldest entries go until it is under 3/4 of both.
MAX_ENTRIES = 4096
MAX_BYTES = 256 * 1024 * 1024
# A model written less than this before its scan ends is not stored: two writes within one tick
# of the file system's clock (1 s on some, a few ms on ext4) leave the same mtime, so an entry
# made in between would outlive the second write (git's "racy clean" problem).
RACY_NS = 2_000_000_000

_RECORDS: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        ModelReport,
        ModelFacts,
        Layer,
        Totals,
        CategoryTotals,
        ScanProblem,
        Finding,
        Recommendation,
    )
}
_ENUMS: dict[str, type[Enum]] = {"Category": Category, "Severity": Severity}
_NOT_STORED = frozenset({"node_graph"})  # the walk's graph: rules read it, reporters never do


# -- the codec ---------------------------------------------------------------------------------
# JSON objects are always tags: {"t": [...]} a tuple, {"d": [[k, v], ...]} a dict (any keys, in
# order), {"e": [enum, value]}, {"n": "nan"} a non-finite float, {"r": [record, [[field, v], ...]]}.
# Plain JSON lists, strings, ints, bools and null are themselves, so a float stays a float and a
# tuple a tuple: every reporter renders the decoded report byte for byte as the original. Since
# every object is a tag, json's C decoder rebuilds the records through ``_hook`` bottom-up.


def encode(item: Any) -> Any:
    """``item`` (a record, or what records hold) as tagged JSON; TypeError on anything else."""
    kind = type(item)
    if item is None or kind in (str, int, bool):
        return item
    if kind is float:
        return item if math.isfinite(item) else {"n": repr(item)}
    if kind is list:
        return [encode(x) for x in item]
    if kind is tuple:
        return {"t": [encode(x) for x in item]}
    if kind is dict:
        return {"d": [[encode(k), encode(v)] for k, v in item.items()]}
    if _ENUMS.get(kind.__name__) is kind:
        return {"e": [kind.__name__, item.value]}
    if _RECORDS.get(kind.__name__) is kind:
        names = [f.name for f in fields(item) if f.name not in _NOT_STORED]
        return {"r": [kind.__name__, [[n, encode(getattr(item, n))] for n in names]]}
    raise TypeError(f"not cacheable: {kind.__name__}")


def _hook(obj: dict[str, Any]) -> Any:
    try:
        ((tag, value),) = obj.items()
        if tag == "t":
            return tuple(value)
        if tag == "d":
            return {k: v for k, v in value}
        if tag == "e":
            return _ENUMS[value[0]](value[1])
        if tag == "n" and value in ("nan", "inf", "-inf"):
            return float(value)
        if tag == "r":
            return _RECORDS[value[0]](**{str(k): v for k, v in value[1]})
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        raise ValueError(f"not a cache entry: {exc}") from None
    raise ValueError(f"not a cache entry: tag {tag!r}")


def decode(text: str) -> Any:
    """The value ``encode`` made, from its JSON text; ValueError if ``encode`` made none."""
    return json.loads(text, object_hook=_hook)


# -- the key -----------------------------------------------------------------------------------


def canonical(item: Any) -> Any:
    """A JSON-able form of a config or rule pack that is the same in every process (sets sorted,
    records by field): what the scan's context hash is made of. TypeError on an unknown type."""
    if item is None or isinstance(item, (str, int, bool)):
        return [type(item).__name__, item] if isinstance(item, Enum) else item
    if isinstance(item, float):
        return repr(item)
    if isinstance(item, Path):
        return ["path", str(item)]
    if isinstance(item, (list, tuple)):
        return [type(item).__name__, [canonical(x) for x in item]]
    if isinstance(item, (set, frozenset)):
        return ["set", sorted(json.dumps(canonical(x), sort_keys=True) for x in item)]
    if isinstance(item, dict) or hasattr(item, "items"):
        pairs = [[canonical(k), canonical(v)] for k, v in item.items()]
        return ["dict", sorted(pairs, key=lambda p: json.dumps(p[0], sort_keys=True))]
    if is_dataclass(item) and not isinstance(item, type):
        return [
            type(item).__name__,
            {f.name: canonical(getattr(item, f.name)) for f in fields(item)},
        ]
    raise TypeError(f"no canonical form for {type(item).__name__}")


def _code_signature() -> list[Any]:
    """Every source file of convaudit (name, size, mtime_ns) and the installed onnx (found, not
    imported): a release, an upgrade or an edit in an editable install each change the key."""
    root = Path(__file__).resolve().parent
    files: list[Any] = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
        for name in sorted(names):
            if name.endswith((".py", ".yaml", ".yml")):
                st = os.stat(os.path.join(folder, name))
                files.append(
                    [os.path.relpath(os.path.join(folder, name), root), st.st_size, st.st_mtime_ns]
                )
    return [files, onnx_stamp(), sys.version, sys.platform]


def enabled() -> bool:
    """Whether results can be cached at all (a cache folder, CONVAUDIT_NO_CACHE unset)."""
    return usercache.cache_dir() is not None


def context_key(rules: RuleSet, *, weights: bool) -> str | None:
    """The hash of what every model's report in this scan depends on besides the model itself,
    or None when results cannot be cached (caching is off, or the context has no canonical form)."""
    if usercache.cache_dir() is None:
        return None
    try:
        context = {
            "rules": canonical(rules),  # the enabled and available rules, and the config
            "weights": weights,
            # a weight over this budget is an error in the report (scan --weights)
            "memory_budget": os.environ.get(BUDGET_ENV),
            "cwd": os.getcwd(),
            "code": _code_signature(),
        }
        text = json.dumps(context, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError, OSError):
        return None
    return sha256_hex(text.encode("utf-8"))


def _stat(path: str) -> list[Any] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def model_key(context: str, path: str) -> str | None:
    """The entry name of ``path`` in ``context``: None when the model cannot be stat-ed (its scan
    says why) or is not a regular file."""
    stat = _stat(path)
    if stat is None or not os.path.isfile(path):
        return None
    text = json.dumps([context, path, os.path.abspath(path), stat])
    return sha256_hex(text.encode("utf-8"))


# -- reading and writing -----------------------------------------------------------------------


def lookup(context: str, path: str) -> tuple[str | None, ModelReport | None]:
    """(entry name, cached report or None). The name is None when the model cannot be cached."""
    key = model_key(context, path)
    if key is None:
        return None, None
    stored = usercache.read_json(KIND, key, object_hook=_hook)
    if not isinstance(stored, dict):
        return key, None  # missing, unreadable, or not one we wrote
    report, deps = stored.get("report"), stored.get("deps")
    if not isinstance(report, ModelReport) or report.path != path or not isinstance(deps, tuple):
        return key, None
    try:
        if any(_stat(str(d)) != s for d, s in deps):
            return key, None  # an external-data file changed
    except (TypeError, ValueError):
        return key, None
    return key, report


def store(
    context: str, key: str, path: str, report: ModelReport, deps: tuple[str, ...] = ()
) -> None:
    """Keep ``report`` under ``key`` if the model is still what the key describes (a file
    rewritten during its scan is not cached under its old stat); ``deps`` are the other files
    the scan read, checked on every hit. A model that failed to load is not kept."""
    if report.facts is None or model_key(context, path) != key:
        return
    try:
        if time.time_ns() - os.stat(path).st_mtime_ns < RACY_NS:
            return
    except OSError:
        return
    try:
        value = encode({"deps": tuple((d, _stat(d)) for d in deps), "report": report})
    except (TypeError, RecursionError):
        return
    usercache.write_json(KIND, key, value)


def prune() -> None:
    """Drop the oldest entries once the cache passes its bounds."""
    usercache.prune(KIND, max_entries=MAX_ENTRIES, max_bytes=MAX_BYTES)
