"""The JSON Schema of rule files (published as rules/schema.json for editors).

Generated from the same vocabulary the loader checks (keys, facts, operators, severities), so
the published schema cannot drift from the code; a test compares it with the file.
``python -m convaudit.rules.json_schema > rules/schema.json`` regenerates it.
"""

from __future__ import annotations

import json
from typing import Any

from convaudit.rules import schema
from convaudit.rules.facts import FACTS
from convaudit.rules.kinds import KIND_NAMES


def rule_file_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) for a convaudit rule file."""
    text = {"type": "string", "minLength": 1}
    scalar = {"type": ["number", "string", "boolean", "null"]}
    value = {
        "description": "a number, text, true/false, null, a list, or $param",
        "anyOf": [
            scalar,
            {"type": "array", "items": scalar, "minItems": 1},
        ],
    }
    leaf = {
        "type": "object",
        "description": "a test of one fact: {fact, op, value}",
        "additionalProperties": False,
        "required": list(schema.LEAF_KEYS),
        "properties": {
            "fact": {"enum": sorted(FACTS), "description": "a per-layer fact"},
            "op": {"enum": list(schema.OPS)},
            "value": value,
        },
    }
    condition_ref = {"$ref": "#/$defs/condition"}
    group = {
        "all": {"type": "array", "items": condition_ref, "minItems": 1},
        "any": {"type": "array", "items": condition_ref, "minItems": 1},
        "not": condition_ref,
    }
    condition = {
        "oneOf": [
            leaf,
            *(
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": [k],
                    "properties": {k: v},
                }
                for k, v in group.items()
            ),
        ]
    }
    docs = {
        "type": "object",
        "additionalProperties": False,
        "required": list(schema.DOC_KEYS),
        "properties": {
            "what": {**text, "description": "What it does"},
            "why": {**text, "description": "Why is this bad?"},
            "example": {**text, "description": "An example that triggers the rule"},
            "fix": {**text, "description": "What to do instead, with the arithmetic"},
            "references": {"type": "array", "items": {"type": "string"}},
            "options": {**text, "description": "Config keys of a rule convaudit evaluates"},
        },
    }
    match_only = list(schema.MATCH_ONLY_KEYS)
    always = [k for k in schema.REQUIRED_RULE_KEYS if k not in match_only]
    rule = {
        "type": "object",
        "additionalProperties": False,
        "required": always,
        # check: budget (and any check but match) -> no match, message or params; else both
        # match and message are required.
        "if": {
            "properties": {"check": {"not": {"const": "match"}}},
            "required": ["check"],
        },
        "then": {"not": {"anyOf": [{"required": [k]} for k in match_only]}},
        "else": {"required": [k for k in schema.REQUIRED_RULE_KEYS if k in match_only]},
        "properties": {
            "id": {
                "type": "string",
                "pattern": f"^{schema.RULE_ID.pattern}$",
                "description": "CA + three digits for built-ins; your own prefix otherwise",
            },
            "name": {
                "type": "string",
                "pattern": f"^{schema.RULE_NAME.pattern}$",
                "description": "kebab-case, naming the problem",
            },
            "summary": text,
            "severity": {"enum": list(schema.SEVERITIES)},
            "params": {
                "type": ["object", "null"],
                "propertyNames": {"pattern": f"^{schema.PARAM_NAME.pattern}$"},
                "additionalProperties": scalar,
            },
            "match": condition_ref,
            "message": {
                **text,
                "description": "text with {fact} or {fact:spec} placeholders only",
            },
            "docs": docs,
            "recommendation": {"enum": [*KIND_NAMES, None]},
            "check": {
                "enum": list(schema.CHECKS),
                "description": "match (default): the match tree over layers; budget: the "
                "model's totals against max-macs / max-params / max-increase",
            },
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "convaudit rule file",
        "type": "object",
        "additionalProperties": False,
        "required": list(schema.FILE_KEYS),
        "properties": {
            "schema_version": {"const": schema.SCHEMA_VERSION},
            "rules": {"type": "array", "items": {"$ref": "#/$defs/rule"}},
        },
        "$defs": {"rule": rule, "condition": condition},
    }


def render() -> str:
    """The schema as the text of rules/schema.json."""
    return json.dumps(rule_file_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(render(), end="")
