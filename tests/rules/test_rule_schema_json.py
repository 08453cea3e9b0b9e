"""rules/schema.json: current with the code, a valid draft 2020-12 schema, accepting the
built-in rule files and rejecting malformed ones (checked by the jsonschema package)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from convaudit.rules.json_schema import render, rule_file_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "rules" / "schema.json"


def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_published_schema_is_current() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render(), (
        "regenerate: python -m convaudit.rules.json_schema > rules/schema.json"
    )
    assert json.loads(render()) == rule_file_schema()


@pytest.mark.parametrize("path", sorted((ROOT / "rules").glob("*.yaml")), ids=lambda p: p.name)
def test_builtin_rule_files_validate(path: Path) -> None:
    errors = list(validator().iter_errors(yaml.safe_load(path.read_text(encoding="utf-8"))))
    assert errors == []


def _rule(**changes: Any) -> dict[str, Any]:
    rule = {
        "id": "MY001",
        "name": "my-rule",
        "summary": "s",
        "severity": "info",
        "match": {"all": [{"fact": "in_channels", "op": "ge", "value": 3}]},
        "message": "{in_channels}",
        "docs": {"what": "w", "why": "y", "example": "e", "fix": "f"},
    }
    rule.update(changes)
    return {"schema_version": 1, "rules": [rule]}


@pytest.mark.parametrize(
    "doc",
    [
        _rule(severity="fatal"),
        _rule(match={"all": [{"fact": "kernal", "op": "ge", "value": 3}]}),
        _rule(match={"all": [{"fact": "in_channels", "op": "gte", "value": 3}]}),
        _rule(match={"every": []}),
        _rule(extra=1),
        _rule(name="Not_Kebab"),
        _rule(docs={"what": "w"}),
    ],
)
def test_schema_rejects_malformed_rules(doc: dict[str, Any]) -> None:
    assert list(validator().iter_errors(doc))


def test_schema_accepts_a_minimal_user_rule() -> None:
    assert list(validator().iter_errors(_rule())) == []
