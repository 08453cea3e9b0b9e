"""Validation of a parsed rule file: every key, fact, operator, param and placeholder.

Each problem is a RuleFileError reading ``file:line: rule ID: what is wrong (did you mean X?)``;
the lines come from the LineDict mappings the loader builds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from convaudit.errors import RuleFileError, nearest
from convaudit.rules import schema
from convaudit.rules.facts import FACTS
from convaudit.rules.kinds import KIND_NAMES, KIND_PARAMS, KINDS
from convaudit.rules.kinds.base import Floor
from convaudit.rules.schema import Group, Leaf, LineDict, Param, Rule
from convaudit.rules.template import TemplateError, check_spec, parse
from convaudit.safe_io import shown

# A match tree larger than this is no hand-written rule: YAML aliases (&a / *a) can make a
# few lines expand to 10^8 conditions, which would hang every scan evaluating them.
MAX_CONDITIONS = 1000


class _File:
    """Validation context for one file: raises errors that carry file, line and rule id."""

    def __init__(self, path: Path, builtin: bool) -> None:
        self.path = path
        self.builtin = builtin
        self.rule_id = "?"
        self.conditions = 0  # match-tree nodes seen in the current rule

    def fail(self, line: int, what: str) -> RuleFileError:
        prefix = f"rule {self.rule_id}: " if self.rule_id != "?" else ""
        return RuleFileError(f"{prefix}{what}", path=f"{self.path}:{line}")

    def keys(self, data: LineDict, allowed: Sequence[str], where: str) -> None:
        for key in data:
            if key not in allowed:
                line = data.key_lines.get(key, data.line)
                raise self.fail(line, f"unknown key {shown(key)} in {where}{nearest(key, allowed)}")

    def require(self, data: LineDict, required: Sequence[str], where: str) -> None:
        for key in required:
            if key not in data:
                raise self.fail(data.line, f"{where} is missing the key {shown(key)}")


def validate_document(path: Path, data: Any, *, builtin: bool) -> list[Rule]:
    """Check a parsed rule file and build its rules (errors carry file:line and rule id)."""
    f = _File(path, builtin)
    if not isinstance(data, LineDict):
        raise f.fail(1, "a rule file is a mapping with schema_version and rules")
    f.keys(data, schema.FILE_KEYS, "the file")
    f.require(data, schema.FILE_KEYS, "the file")
    version = data["schema_version"]
    if version != schema.SCHEMA_VERSION or isinstance(version, bool):
        raise f.fail(
            data.key_lines["schema_version"],
            f"schema_version {shown(version)} is not supported (this convaudit reads "
            f"{schema.SCHEMA_VERSION})",
        )
    rules = data["rules"]
    if not isinstance(rules, list):
        raise f.fail(data.key_lines["rules"], "rules must be a list of rules")
    out = []
    for item in rules:
        f.rule_id = "?"
        if not isinstance(item, LineDict):
            raise f.fail(data.key_lines["rules"], "each entry of rules must be a mapping")
        out.append(_rule(f, item))
    return out


def _text(f: _File, data: LineDict, key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise f.fail(data.key_lines.get(key, data.line), f"{key} must be non-empty text")
    return value.strip()


def _rule(f: _File, data: LineDict) -> Rule:
    raw_id = data.get("id")
    if isinstance(raw_id, str):
        f.rule_id = raw_id
    f.require(data, ["id"], "a rule")
    f.keys(data, schema.RULE_KEYS, "a rule")
    check = data.get("check", "match")
    if check not in schema.CHECKS:
        raise f.fail(
            data.key_lines["check"],
            f"check {shown(check)} must be one of {', '.join(schema.CHECKS)}"
            f"{nearest(str(check), schema.CHECKS)}",
        )
    if check != "match":
        return _outside_rule(f, data, check)
    f.require(data, schema.REQUIRED_RULE_KEYS, "the rule")
    line = data.key_lines
    rule_id, name, severity = _header(f, data)
    params, types = _params(f, data)
    f.conditions = 0
    match = _condition(f, data["match"], line["match"], params, types)
    message_text = _text(f, data, "message")
    try:
        message = parse(message_text)
        for ph in message.parts:
            if isinstance(ph, str):
                continue
            if ph.name in types:
                check_spec(types[ph.name], ph.spec)
            elif ph.name in FACTS:
                check_spec(FACTS[ph.name].type, ph.spec)
            else:
                raise TemplateError(
                    f"message placeholder {{{ph.name}}} is not a fact or param"
                    f"{nearest(ph.name, [*FACTS, *params])}"
                )
    except TemplateError as exc:
        raise f.fail(line["message"], str(exc)) from None
    docs = _docs(f, data)
    rec = data.get("recommendation")
    if rec is not None and rec not in KIND_NAMES:
        raise f.fail(
            line["recommendation"],
            f"recommendation {shown(rec)} must be one of {', '.join(KIND_NAMES)}"
            f"{nearest(str(rec), KIND_NAMES)}",
        )
    rule = Rule(
        id=rule_id,
        name=name,
        summary=_text(f, data, "summary"),
        severity=severity,
        params=params,
        match=match,
        message=message,
        message_text=message_text,
        docs=docs,
        recommendation=rec,
        source=str(f.path),
        line=data.line,
        builtin=f.builtin,
        param_types=types,
    )
    problem = incoherence(rule)
    if problem is not None:
        raise f.fail(line.get("params", line["recommendation"]), problem)
    used = {leaf.value.name for leaf in rule.leaves() if isinstance(leaf.value, Param)}
    used |= set(message.names)
    for pname in params:
        if pname not in used and pname not in KIND_PARAMS:
            raise f.fail(
                data["params"].key_lines[pname],
                f"param {shown(pname)} is never used: refer to it as ${pname} in match or "
                f"{{{pname}}} in the message",
            )
    return rule


def _header(f: _File, data: LineDict) -> tuple[str, str, str]:
    """The checked id, name and severity every rule has."""
    line = data.key_lines
    rule_id = _text(f, data, "id")
    if not schema.RULE_ID.fullmatch(rule_id):
        raise f.fail(
            line["id"], f"id {shown(rule_id)} must be a prefix of capitals and digits (ABC123)"
        )
    if f.builtin and not schema.BUILTIN_ID.fullmatch(rule_id):
        raise f.fail(line["id"], "built-in rule ids are CA and three digits")
    if not f.builtin and rule_id.startswith("CA"):
        raise f.fail(line["id"], "the CA prefix is reserved for built-in rules: use your own")
    name = _text(f, data, "name")
    if not schema.RULE_NAME.fullmatch(name):
        raise f.fail(line["name"], f"name {shown(name)} must be kebab-case, naming the problem")
    severity = _text(f, data, "severity")
    if severity not in schema.SEVERITIES:
        raise f.fail(
            line["severity"],
            f"severity {shown(severity)} must be one of {', '.join(schema.SEVERITIES)}"
            f"{nearest(severity, schema.SEVERITIES)}",
        )
    return rule_id, name, severity


def _outside_rule(f: _File, data: LineDict, check: str) -> Rule:
    """A rule evaluated outside the matcher (``check: budget``): its catalogue entry only.

    Its match is an empty ``any`` (true of nothing), so even a caller that forgot to skip it
    could not produce a finding from it.
    """
    if not f.builtin:  # convaudit evaluates it, so only its own pack can declare one
        raise f.fail(data.key_lines["check"], f"check: {check} is reserved for built-in rules")
    for key in schema.MATCH_ONLY_KEYS:
        if key in data:
            raise f.fail(
                data.key_lines[key],
                f"{key} does not apply to a rule with check: {check} (convaudit evaluates it)",
            )
    f.require(
        data, [k for k in schema.REQUIRED_RULE_KEYS if k not in schema.MATCH_ONLY_KEYS], "the rule"
    )
    rule_id, name, severity = _header(f, data)
    return Rule(
        id=rule_id,
        name=name,
        summary=_text(f, data, "summary"),
        severity=severity,
        params={},
        match=Group("any", (), data.line),
        message=parse(""),
        message_text="",
        docs=_docs(f, data),
        recommendation=None,
        source=str(f.path),
        line=data.line,
        builtin=f.builtin,
        check=check,
    )


def floors(rule: Rule) -> dict[str, Floor]:
    """Lower bounds every finding of ``rule`` meets: ``ge``/``gt`` leaves on numbers reached
    through ``all`` groups only (a bound under ``any`` or ``not`` binds nothing)."""
    out: dict[str, Floor] = {}
    stack: list[schema.Condition] = [rule.match]
    while stack:
        node = stack.pop()
        if isinstance(node, Group):
            if node.kind == "all":
                stack.extend(node.children)
            continue
        if node.op not in ("ge", "gt"):
            continue
        param = node.value.name if isinstance(node.value, Param) else None
        value = rule.params.get(param) if param is not None else node.value
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        if node.fact not in out or float(value) > out[node.fact].value:
            out[node.fact] = Floor(fact=node.fact, value=float(value), param=param)
    return out


def incoherence(rule: Rule) -> str | None:
    """Why ``rule``'s recommendation params can never yield a finding under its own match
    (``width_policy = saving`` aiming below ``min_saving``), or None."""
    if rule.recommendation is None:
        return None
    kind = KINDS[rule.recommendation]
    params = {p.name: rule.params.get(p.name, p.default) for p in kind.params}
    return kind.check(params, floors(rule))


def _params(f: _File, data: LineDict) -> tuple[dict[str, Any], dict[str, str]]:
    raw = data.get("params", LineDict())
    if raw is None:
        raw = LineDict()
    if not isinstance(raw, LineDict):
        raise f.fail(data.key_lines.get("params", data.line), "params must be a mapping")
    params: dict[str, Any] = {}
    types: dict[str, str] = {}
    for pname, value in raw.items():
        pline = raw.key_lines[pname]
        if not schema.PARAM_NAME.fullmatch(pname) or pname in FACTS:
            raise f.fail(pline, f"param name {shown(pname)} must be snake_case and not a fact name")
        try:
            check_param(pname, value, None)
        except ValueError as exc:
            raise f.fail(pline, str(exc)) from None
        params[pname] = value
        types[pname] = param_type(pname, value)
    return params, types


def param_type(name: str, value: Any) -> str:
    """The type a param keeps when overridden: a recommendation param's, or its value's."""
    if name in KIND_PARAMS:
        return KIND_PARAMS[name].type
    return schema.value_type(value) or "str"


def check_param(name: str, value: Any, expected: str | None) -> None:
    """Raise ValueError when ``value`` is not a valid value for param ``name``."""
    kind_param = KIND_PARAMS.get(name)
    if kind_param is not None:
        choices = kind_param.choices
        if choices and value not in choices:
            raise ValueError(
                f"param {name} {shown(value)} must be one of {', '.join(choices)}"
                f"{nearest(str(value), choices)}"
            )
        if not kind_param.valid(value):
            raise ValueError(f"param {name} {shown(value)} must be {kind_param.allowed}")
        return
    vt = schema.value_type(value)
    if vt is None or vt == "ints":
        raise ValueError(f"param {name} {shown(value)} must be a number, text or true/false")
    if expected is not None and not schema.fits(expected, value):
        raise ValueError(f"param {name} {shown(value)} must be a {expected} like its default")


def _condition(
    f: _File, node: Any, line: int, params: dict[str, Any], types: dict[str, str]
) -> schema.Condition:
    if not isinstance(node, LineDict):
        raise f.fail(line, "a match is a mapping: all/any/not, or {fact, op, value}")
    f.conditions += 1
    if f.conditions > MAX_CONDITIONS:
        raise f.fail(
            line, f"the match has more than {MAX_CONDITIONS} conditions (YAML aliases expanding?)"
        )
    if any(k in node for k in schema.GROUP_KEYS):
        if len(node) != 1:
            raise f.fail(node.line, "all/any/not must be the only key of its mapping")
        kind = next(iter(node))
        body = node[kind]
        kline = node.key_lines[kind]
        if kind == "not":
            return Group("not", (_condition(f, body, kline, params, types),), kline)
        if not isinstance(body, list) or not body:
            raise f.fail(kline, f"{kind} must be a non-empty list of conditions")
        return Group(kind, tuple(_condition(f, c, kline, params, types) for c in body), kline)
    f.keys(node, schema.LEAF_KEYS + schema.GROUP_KEYS, "a condition")
    f.require(node, schema.LEAF_KEYS, "a condition")
    fact, op, value = node["fact"], node["op"], node["value"]
    lines = node.key_lines
    if not isinstance(fact, str) or fact not in FACTS:
        raise f.fail(lines["fact"], f"unknown fact {shown(fact)}{nearest(str(fact), FACTS)}")
    if not isinstance(op, str) or op not in schema.OPS:
        raise f.fail(lines["op"], f"unknown op {shown(op)}{nearest(str(op), schema.OPS)}")
    ftype = FACTS[fact].type
    if ftype not in schema.OPS[op]:
        raise f.fail(lines["op"], f"op {op} does not apply to fact {fact} ({ftype})")
    if isinstance(value, str) and value.startswith("$"):
        pname = value[1:]
        if pname not in params:
            raise f.fail(
                lines["value"], f"param {value} is not defined in params{nearest(pname, params)}"
            )
        _check_value(f, lines["value"], fact, ftype, op, params[pname], f"param {pname}")
        return Leaf(fact, op, Param(pname), node.line)
    _check_value(f, lines["value"], fact, ftype, op, value, "value")
    return Leaf(fact, op, value, node.line)


def _check_value(
    f: _File, line: int, fact: str, ftype: str, op: str, value: Any, what: str
) -> None:
    if value is None:
        if op in ("eq", "ne"):
            return
        raise f.fail(line, f"{what} null only works with eq/ne")
    if op in ("in", "not_in"):
        ok = isinstance(value, list) and bool(value) and all(schema.fits(ftype, v) for v in value)
        expected = f"a list of {ftype} values"
    else:
        ok = schema.fits(ftype, value)
        expected = f"a {ftype} value" if ftype != "ints" else "a list of integers"
    if not ok:
        raise f.fail(line, f"{what} {shown(value)} for fact {fact} must be {expected}")


def _docs(f: _File, data: LineDict) -> dict[str, Any]:
    docs = data["docs"]
    dline = data.key_lines["docs"]
    if not isinstance(docs, LineDict):
        raise f.fail(dline, "docs must be a mapping with what, why, example and fix")
    f.keys(docs, schema.DOC_KEYS + schema.OPTIONAL_DOC_KEYS, "docs")
    f.require(docs, schema.DOC_KEYS, "docs")
    out: dict[str, Any] = {}
    for key in schema.DOC_KEYS:
        out[key] = _text(f, docs, key)
    options = docs.get("options")
    if options is not None:
        out["options"] = _text(f, docs, "options")
    refs = docs.get("references")
    if refs is not None:
        if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
            raise f.fail(docs.key_lines["references"], "references must be a list of text")
        out["references"] = list(refs)
    return out
