"""The lite path of a scan: read the model with the wire reader, resolve shapes with our own
rules and the cached schema table, and give the same ModelFacts as the full path, without
``import onnx`` (which costs more than the rest of a small model's scan).

It either proves it handles the model or defers: the reader defers what it does not cover
(liteproto.Defer), and any error the walk raises sends the model to the full path, which stays
the reference and gives every error message. A node no rule covers goes to onnx's own inference
(importing onnx then) through its own bytes, so a deferred node costs time, never exactness.
``CONVAUDIT_NO_LITE=1`` turns the lite path off.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from convaudit.errors import ConvauditError
from convaudit.model.fold import NOT_FOLDABLE, NUMPY_FAST
from convaudit.model.infer import ONNX_DOMAINS, fast_outputs, infer_outputs
from convaudit.model.liteproto import Defer, LiteModel, LiteNode, read_model, tensor_keys
from convaudit.model.schemas import Schema, SchemaTable, table
from convaudit.model.shaperules import NodeLike
from convaudit.model.shaperules import infer as rule_outputs
from convaudit.model.walk import Walker
from convaudit.model.walkstate import Env, Scope
from convaudit.records import ModelFacts
from convaudit.safe_io import open_regular

if TYPE_CHECKING:
    import onnx

    from convaudit.model.contrib import StandardShapes
    from convaudit.model.liteproto import LiteTensor
    from convaudit.model.tensors import TensorInfo

# opset versions outside this range are left to onnx.defs (its lookups differ at the extremes)
_MAX_OPSET = 1000


class LiteWalker(Walker):
    """The walker over a LiteModel: schema facts from the table, shapes from shaperules.

    ``fallbacks`` lists what went to onnx after all (op names): empty when the model was
    handled without importing it. Shape arithmetic folds in Python (``pure_fold``): numpy is
    imported only for a fold model/fold.py leaves to it (``numpy_folds``).
    """

    pure_fold = True

    def __init__(
        self,
        model: LiteModel,
        schemas: SchemaTable,
        *,
        input_shapes: Mapping[str, tuple[int, ...]] | None = None,
        dims: Mapping[str, int] | None = None,
        default_dim: int | None = None,
    ) -> None:
        keys = tensor_keys(model.graph)

        def has_data(name: str) -> bool:
            tensor = keys.get(name)
            return tensor is not None and not tensor.data_location and not tensor.stripped()

        # The one place a LiteModel stands in for an onnx.ModelProto: it offers the fields the
        # walker reads under the same names (liteproto's docstrings list them).
        proto = cast("onnx.ModelProto", model)
        super().__init__(
            proto, has_data, input_shapes=input_shapes, dims=dims, default_dim=default_dim
        )
        self.schemas = schemas
        self.fallbacks: list[str] = []
        self._types: dict[tuple[str, str, int], Mapping[str, int] | None] = {}

    def _attribute_types(self, node: onnx.NodeProto, scope: Scope) -> Mapping[str, int] | None:
        domain = "" if node.domain == "ai.onnx" else node.domain
        if domain not in ONNX_DOMAINS:
            return None
        version = scope.opsets.get(domain, scope.opsets.get("ai.onnx", 1))
        key = (node.op_type, domain, version)
        if key not in self._types:  # as schema_attribute_types' lru_cache on the full path
            self._types[key] = self.schemas.attribute_types(node.op_type, domain, version)
        return self._types[key]

    def _resolve(
        self,
        node: onnx.NodeProto,
        node_id: str,
        name: str,
        attrs: dict[str, Any],
        ins: list[TensorInfo],
        env: Env,
        scope: Scope,
    ) -> list[TensorInfo]:
        op = node.op_type
        if op == "Constant" and node.domain in ("", "ai.onnx"):
            for a in cast(LiteNode, node).attribute:
                if a.name == "value" and a.t is None:
                    raise Defer("a Constant whose value is not a tensor")
                if a.name.startswith("value_"):
                    self.fallbacks.append(op)  # value_float & co go through onnx.helper
        elif (
            node.domain in ("", "ai.onnx")
            and (op not in NUMPY_FAST or "" in node.input)
            and op not in NOT_FOLDABLE
            and op not in ("ConstantOfShape", "Shape", "Size")
            and all(i.value is not None for i in ins)
        ):
            self.fallbacks.append(f"fold {op}")  # folded by onnx's reference evaluator
        return super()._resolve(node, node_id, name, attrs, ins, env, scope)

    def _rules(self) -> StandardShapes:
        return self._standard_shapes

    def _standard_shapes(
        self, op: str, attrs: dict[str, Any], ins: list[TensorInfo]
    ) -> list[TensorInfo] | None:
        """A contrib op's standard op (opset 21, one output) by the rules; None: onnx decides."""
        node = StandardNode(op, len(ins), attrs)
        schema = self.schemas.get(op, "", 21)
        outs = None
        if schema is not None:
            outs = fast_outputs(node, ins, {"": 21})
            typed = all(_attribute_type(v) == schema.attributes.get(k) for k, v in attrs.items())
            usable = outs is None and typed and not schema.deprecated
            if usable and types_ok(self.schemas, schema, node, ins):
                outs = rule_outputs(node, schema.since_version, attrs, ins)
        if outs is None:
            self.fallbacks.append(f"standard {op}")
        return outs

    def _infer(
        self,
        node: onnx.NodeProto,
        ins: list[TensorInfo],
        attrs: dict[str, Any],
        scope: Scope,
        conflicts: list[str],
    ) -> list[TensorInfo] | None:
        lite = cast(LiteNode, node)
        domain = "" if node.domain == "ai.onnx" else node.domain
        version = scope.opsets.get(domain, scope.opsets.get("ai.onnx", 1))
        schema = self.schemas.get(node.op_type, domain, version)
        if schema is None:
            return None
        fast = fast_outputs(node, ins, scope.opsets)
        if fast is not None:
            return fast
        if domain == "" and not schema.deprecated and types_ok(self.schemas, schema, lite, ins):
            outs = rule_outputs(lite, schema.since_version, attrs, ins)
            if outs is not None:
                return outs
        self.fallbacks.append(node.op_type)
        return infer_outputs(lite.to_proto(), ins, scope.opsets, conflicts)


class StandardNode:
    """The node contrib builds for a contrib op's standard op: inputs i0.., one output."""

    __slots__ = ("attribute", "domain", "input", "op_type", "output")

    def __init__(self, op: str, n_in: int, attrs: Mapping[str, Any]) -> None:
        self.op_type, self.domain = op, ""
        self.input = tuple(f"i{k}" for k in range(n_in))
        self.output = ("o0",)
        self.attribute = [_NamedAttribute(name) for name in attrs]


class _NamedAttribute:
    __slots__ = ("name", "t")

    def __init__(self, name: str) -> None:
        self.name = name
        self.t: LiteTensor | None = None


def _attribute_type(value: Any) -> int | None:
    """The AttributeProto type onnx.helper.make_attribute gives a plain value, where it is
    unambiguous (the rules then read the same value onnx does)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return 2  # INT
    if isinstance(value, float):
        return 1  # FLOAT
    if isinstance(value, str):
        return 3  # STRING
    if isinstance(value, list) and value:
        kinds = {_attribute_type(v) for v in value}
        return {2: 7, 1: 6, 3: 8}.get(kinds.pop() or 0) if len(kinds) == 1 else None  # INTS...
    return None


def types_ok(
    schemas: SchemaTable, schema: Schema, node: NodeLike, ins: Sequence[TensorInfo]
) -> bool:
    """The input counts and types onnx's inference accepts (OpSchema's type check)."""
    if not schema.min_input <= len(node.input) <= schema.max_input:
        return False
    if not schema.min_output <= len(node.output) <= schema.max_output:
        return False
    if any(a.name not in schema.attributes for a in node.attribute):
        return False  # onnx's inference refuses an attribute its schema lacks
    if not schema.inputs:
        return not node.input
    bound: dict[str, str] = {}
    for k, (name, info) in enumerate(zip(node.input, ins, strict=True)):
        if k < len(schema.inputs):
            type_str, option, homogeneous = schema.inputs[k]
        elif schema.inputs[-1][1] == 2:  # variadic: the last formal takes the rest
            type_str, option, homogeneous = schema.inputs[-1]
        else:
            return False
        if not name:
            if option == 0:  # a required input left out
                return False
            continue
        dtype = schemas.dtypes.get(info.elem_type)
        if info.kind != "tensor" or dtype is None:
            return False
        actual = f"tensor({dtype})"
        if actual not in schema.constraints.get(type_str, frozenset({type_str})):
            return False
        if homogeneous and bound.setdefault(type_str, actual) != actual:
            return False
    return True


FactsOf = Callable[[str | Path, Walker], ModelFacts]


def analyse_lite(
    path: str | Path,
    facts_of: FactsOf,
    *,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    dims: Mapping[str, int] | None = None,
    default_dim: int | None = None,
) -> ModelFacts | None:
    """The model's facts by the lite path, or None when it defers to the full path.

    ``facts_of`` is analyse.facts_of_walk (passed in: analyse imports this module, not the
    reverse): what the two paths share once the walker is built."""
    if os.environ.get("CONVAUDIT_NO_LITE"):
        return None
    outcome = run_lite(
        path, facts_of, input_shapes=input_shapes, dims=dims, default_dim=default_dim
    )
    return outcome.facts


class LiteOutcome:
    """What the lite path did with one model: its facts, or why it deferred; the ops that went
    to onnx on the way (``fallbacks``)."""

    def __init__(
        self, facts: ModelFacts | None, deferred: str | None, fallbacks: Sequence[str] = ()
    ) -> None:
        self.facts = facts
        self.deferred = deferred
        self.fallbacks = tuple(fallbacks)


def run_lite(
    path: str | Path,
    facts_of: FactsOf,
    *,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    dims: Mapping[str, int] | None = None,
    default_dim: int | None = None,
    strict: bool = False,
) -> LiteOutcome:
    """The lite path on one model. ``strict`` (tests) lets an unexpected exception through
    instead of deferring, so a bug in the lite path cannot hide behind the full one."""
    schemas = table()
    if schemas is None:
        return LiteOutcome(None, "onnx is not installed")
    file = Path(path)
    try:
        handle = open_regular(file, error=ConvauditError, what="model")
    except (ConvauditError, OSError):
        return LiteOutcome(None, "cannot open the file")
    walker: LiteWalker | None = None
    try:
        with handle:
            size = os.fstat(handle.fileno()).st_size
            if size == 0:
                return LiteOutcome(None, "empty file")
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                model = read_model(buf)
                for opset in model.opset_import:
                    if not 1 <= opset.version <= _MAX_OPSET:
                        raise Defer(f"opset version {opset.version}")
                walker = LiteWalker(
                    model,
                    schemas,
                    input_shapes=input_shapes,
                    dims=dims,
                    default_dim=default_dim,
                )
                facts = facts_of(path, walker)
    except Defer as exc:
        return LiteOutcome(None, str(exc), walker.fallbacks if walker else ())
    except ConvauditError as exc:  # the full path gives the reference message
        return LiteOutcome(None, f"error: {exc}", walker.fallbacks if walker else ())
    except Exception as exc:
        if strict:
            raise
        return LiteOutcome(None, f"internal: {type(exc).__name__}: {exc}")
    return LiteOutcome(facts, None, walker.fallbacks)
