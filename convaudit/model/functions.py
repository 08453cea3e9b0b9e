"""Model-local functions: one body instance per call site, with attribute references bound."""

from __future__ import annotations

import onnx


def instantiate(fn: onnx.FunctionProto, call: onnx.NodeProto) -> list[onnx.NodeProto]:
    """The function's nodes with ``ref_attr_name`` attributes replaced by the call's values."""
    bound: dict[str, onnx.AttributeProto] = {a.name: a for a in fn.attribute_proto}
    bound.update({a.name: a for a in call.attribute})
    nodes = []
    for node in fn.node:
        if not any(a.ref_attr_name for a in node.attribute):
            nodes.append(node)
            continue
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        del copy.attribute[:]
        for a in node.attribute:
            if not a.ref_attr_name:
                copy.attribute.append(a)
                continue
            value = bound.get(a.ref_attr_name)
            if value is None:  # unset optional attribute: the op's own default applies
                continue
            new = onnx.AttributeProto()
            new.CopyFrom(value)
            new.name = a.name
            copy.attribute.append(new)
        nodes.append(copy)
    return nodes
