"""ONNX's operator schemas as a compact table read from the user cache, so that a scan can check
attribute types, tell unknown ops and check input types without ``import onnx``.

The table is built once from ``onnx.defs`` (which imports onnx) and stored as JSON by
``usercache``, keyed by the installed onnx: its folder, dist-info and ``__init__.py`` stamp,
found without importing it. A missing, unreadable or malformed table is built again.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from typing import Any

from convaudit import usercache
from convaudit.identity import sha256_hex

_FORMAT = 1
# the domains onnx.defs knows (model/infer.py ONNX_DOMAINS without the "ai.onnx" alias)
DOMAINS = ("", "ai.onnx.ml", "ai.onnx.preview.training")


class Schema:
    """One version of one op: what the lite path checks before it infers shapes itself."""

    __slots__ = (
        "attributes",
        "constraints",
        "deprecated",
        "inputs",
        "max_input",
        "max_output",
        "min_input",
        "min_output",
        "outputs",
        "since_version",
    )

    def __init__(self, row: list[Any], types: list[str]) -> None:
        since, deprecated, counts, inputs, outputs, constraints, attributes = row
        self.since_version = int(since)
        self.deprecated = bool(deprecated)
        self.min_input, self.max_input, self.min_output, self.max_output = (int(c) for c in counts)
        # (type string, option: 0 single, 1 optional, 2 variadic, homogeneous)
        self.inputs = [(str(t), int(o), bool(h)) for t, o, h in inputs]
        self.outputs = [(str(t), int(o), bool(h)) for t, o, h in outputs]
        self.constraints = {
            str(k): frozenset(types[int(i)] for i in v) for k, v in constraints.items()
        }
        self.attributes: dict[str, int] = {str(k): int(v) for k, v in attributes.items()}


class SchemaTable:
    """Every schema version of every op of the ONNX domains, looked up as onnx.defs would.

    Rows become Schema records on first lookup: a scan meets a few dozen of the ~200 ops.
    """

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._types = [str(t) for t in data["types"]]
        self.dtypes: dict[int, str] = {int(k): str(v) for k, v in data["dtypes"].items()}
        self._rows: dict[tuple[str, str], list[Any]] = {}
        for domain, ops in data["ops"].items():
            for op, rows in ops.items():
                if not isinstance(rows, list) or not rows:
                    raise ValueError("an op without schemas")
                if any(not isinstance(r, list) or len(r) != 7 for r in rows):
                    raise ValueError("a malformed schema row")
                self._rows[(str(domain), str(op))] = rows
        self._ops: dict[tuple[str, str], list[Schema] | None] = {}

    def _versions(self, domain: str, op: str) -> list[Schema] | None:
        key = (domain, op)
        if key not in self._ops:
            rows = self._rows.get(key)
            self._ops[key] = (
                None if rows is None else sorted((Schema(r, self._types) for r in rows), key=_since)
            )
        return self._ops[key]

    def get(self, op: str, domain: str, version: int) -> Schema | None:
        """``infer.get_schema``: the newest schema at or below ``version``; for the default
        domain, the op's newest one when it only came later (onnxruntime-optimised exports)."""
        versions = self._versions(domain, op)
        if versions is None:
            return None
        found = None
        for schema in versions:
            if schema.since_version <= version:
                found = schema
        if found is None and domain == "":
            return versions[-1]
        return found

    def attribute_types(self, op: str, domain: str, version: int) -> Mapping[str, int] | None:
        """``walkstate.schema_attribute_types``: this version's attribute types, plus the types of
        attributes only a later version names."""
        schema = self.get(op, domain, version)
        if schema is None:
            return None
        latest = self._versions(domain, op)[-1]  # type: ignore[index]  # get found one
        if latest.since_version != schema.since_version:
            return {**latest.attributes, **schema.attributes}
        return schema.attributes


def _since(schema: Schema) -> int:
    return schema.since_version


def onnx_stamp() -> str | None:
    """A key for the installed onnx, read from its files without importing it (None: none)."""
    try:
        spec = importlib.util.find_spec("onnx")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    package = next(iter(spec.submodule_search_locations))
    try:
        site = os.path.dirname(package)
        dists = sorted(n for n in os.listdir(site) if n.startswith("onnx-") and "dist-info" in n)
        st = os.stat(os.path.join(package, "__init__.py"))
    except OSError:
        return None
    raw = f"{_FORMAT}|{package}|{'|'.join(dists)}|{st.st_size}|{st.st_mtime_ns}"
    return sha256_hex(raw.encode())[:32]


_TABLE: SchemaTable | None = None


def table() -> SchemaTable | None:
    """The schema table of the installed onnx: from the user cache, else built (imports onnx)
    and stored. None when onnx is not installed."""
    global _TABLE
    if _TABLE is not None:
        return _TABLE
    stamp = onnx_stamp()
    if stamp is None:
        return None
    data = usercache.read_json("schemas", stamp)
    if data is not None:
        try:
            if data.get("format") == _FORMAT:
                _TABLE = SchemaTable(data)
                return _TABLE
        except (AttributeError, KeyError, TypeError, ValueError):
            pass  # a corrupt entry: build it again
    data = build()
    usercache.write_json("schemas", stamp, data)
    _TABLE = SchemaTable(data)
    return _TABLE


def build() -> dict[str, Any]:
    """The table's JSON from onnx.defs (imports onnx)."""
    import onnx

    proto_types = _proto_types()
    types: dict[str, int] = {}

    def type_index(name: str) -> int:
        return types.setdefault(name, len(types))

    ops: dict[str, dict[str, list[Any]]] = {}
    for s in onnx.defs.get_all_schemas_with_history():
        if s.domain not in DOMAINS:
            continue

        def params(formals: Any) -> list[Any]:
            return [[p.type_str, int(p.option.value), bool(p.is_homogeneous)] for p in formals]

        row = [
            int(s.since_version),
            bool(s.deprecated),
            [int(s.min_input), int(s.max_input), int(s.min_output), int(s.max_output)],
            params(s.inputs),
            params(s.outputs),
            {
                c.type_param_str: [type_index(t) for t in c.allowed_type_strs]
                for c in s.type_constraints
            },
            {
                name: proto_types[a.type]
                for name, a in s.attributes.items()
                if a.type in proto_types
            },
        ]
        ops.setdefault(s.domain, {}).setdefault(s.name, []).append(row)
    dtypes = {
        str(number): str(name).lower()
        for name, number in onnx.TensorProto.DataType.items()
        if number
    }
    return {
        "format": _FORMAT,
        "onnx": onnx.__version__,
        "types": sorted(types, key=types.__getitem__),
        "dtypes": dtypes,
        "ops": ops,
    }


def _proto_types() -> dict[Any, int]:
    import onnx

    # OpSchema.AttrType -> AttributeProto.AttributeType: the two enums share their names
    return {
        getattr(onnx.defs.OpSchema.AttrType, name): number
        for name, number in onnx.AttributeProto.AttributeType.items()
        if hasattr(onnx.defs.OpSchema.AttrType, name)
    }
