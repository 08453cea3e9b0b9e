"""SARIF: the fields GitHub code scanning requires (RESEARCH.md), on every result and rule."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from reportkit import textbook_finding, with_findings

from convaudit.records import AuditResult, ModelReport, RuleInfo
from convaudit.report import sarif


def _doc(result: AuditResult, **kw: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(sarif.render(result, **kw))
    return data


def _assert_github_shape(doc: dict[str, Any]) -> None:
    assert doc["version"] == "2.1.0"
    assert doc["$schema"].endswith("sarif-2.1.0.json")
    (run,) = doc["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "convaudit"
    rule_ids = [r["id"] for r in driver["rules"]]
    assert len(rule_ids) == len(set(rule_ids))
    for rule in driver["rules"]:
        assert rule["name"]
        assert rule["shortDescription"]["text"]
        assert rule["fullDescription"]["text"]
        assert rule["help"]["text"] and rule["help"]["markdown"]
        assert rule["defaultConfiguration"]["level"] in {"error", "warning", "note"}
    for res in run["results"]:
        assert res["ruleId"] in rule_ids
        assert driver["rules"][res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["level"] in {"error", "warning", "note"}
        assert res["message"]["text"]
        assert res["partialFingerprints"]
        (loc,) = res["locations"]
        phys = loc["physicalLocation"]
        assert phys["artifactLocation"]["uri"]
        assert phys["region"]["startLine"] == 1


def test_textbook_finding_has_every_required_field(textbook_flagged: AuditResult) -> None:
    doc = _doc(textbook_flagged)
    _assert_github_shape(doc)
    (res,) = doc["runs"][0]["results"]
    assert res["ruleId"] == "CA101"
    assert res["level"] == "warning"
    loc = res["locations"][0]
    assert loc["physicalLocation"]["artifactLocation"]["uri"] == "sample_models/textbook_5x5.onnx"
    assert loc["logicalLocations"] == [
        {"name": "conv5x5", "fullyQualifiedName": "main/conv5x5", "kind": "member"}
    ]
    assert res["partialFingerprints"] == {"convaudit/v1": "ca101-textbook-conv5x5"}
    assert "112,896,000 → 5,268,480" in res["message"]["text"]
    rec = res["properties"]["recommendation"]
    assert rec["before"]["macs"] == 112_896_000 and rec["after"]["macs"] == 5_268_480


def test_two_findings_in_one_model_keep_separate_fingerprints(
    textbook_flagged: AuditResult,
) -> None:
    second = dataclasses.replace(
        textbook_finding(),
        rule="CA105",
        name="compute-hotspot",
        severity="info",
        fingerprint="other",
        recommendation=None,
        message="hotspot",
    )
    doc = _doc(with_findings(textbook_flagged, second))
    _assert_github_shape(doc)
    prints = [r["partialFingerprints"]["convaudit/v1"] for r in doc["runs"][0]["results"]]
    assert sorted(prints) == ["ca101-textbook-conv5x5", "other"]
    levels = {r["ruleId"]: r["level"] for r in doc["runs"][0]["results"]}
    assert levels == {"CA101": "warning", "CA105": "note"}


def test_rule_catalogue_passed_in_describes_rules() -> None:
    info = RuleInfo(
        id="CA101",
        name="wide-kxk-conv-without-bottleneck",
        summary="Wide KxK conv without a 1x1 bottleneck",
        severity="warning",
        description="A KxK conv with many input channels.",
        help_markdown="**Fix**: add a 1x1 reduction.",
    )
    doc = _doc(AuditResult(reports=(), tool_version="9"), rules=[info])
    (rule,) = doc["runs"][0]["tool"]["driver"]["rules"]
    assert rule["id"] == "CA101"
    assert rule["shortDescription"]["text"] == "Wide KxK conv without a 1x1 bottleneck"
    assert rule["fullDescription"]["text"] == "A KxK conv with many input channels."
    assert rule["help"]["markdown"] == "**Fix**: add a 1x1 reduction."
    assert rule["help"]["text"] == "Fix: add a 1x1 reduction."
    assert rule["defaultConfiguration"]["level"] == "warning"


def test_failed_model_is_a_tool_notification_not_a_result() -> None:
    bad = ModelReport(path="models/bad.onnx", facts=None, errors=("models/bad.onnx: truncated",))
    doc = _doc(AuditResult(reports=(bad,), tool_version="1"))
    run = doc["runs"][0]
    assert run["results"] == []
    (inv,) = run["invocations"]
    assert inv["executionSuccessful"] is False
    note = inv["toolExecutionNotifications"][0]
    assert note["level"] == "error"
    assert note["message"]["text"] == "models/bad.onnx: truncated"


def test_artifact_uri_is_relative_posix_or_file_uri() -> None:
    assert sarif.artifact_uri("models/a.onnx") == "models/a.onnx"
    assert sarif.artifact_uri("models\\sub\\a.onnx") == "models/sub/a.onnx"
    assert sarif.artifact_uri("/abs/a b.onnx") == "file:///abs/a%20b.onnx"


def test_relative_uri_is_percent_encoded_like_the_absolute_one() -> None:
    # A raw space is not a valid URI reference, and '#' would make the rest a fragment.
    assert sarif.artifact_uri("models/my model#2.onnx") == "models/my%20model%232.onnx"
    assert sarif.artifact_uri("models/résumé.onnx") == "models/r%C3%A9sum%C3%A9.onnx"
    assert sarif.artifact_uri("models\\a b.onnx") == "models/a%20b.onnx"


def test_budget_rule_is_always_described(samples: dict[str, AuditResult]) -> None:
    doc = _doc(samples["inception_block"])
    ids = [r["id"] for r in doc["runs"][0]["tool"]["driver"]["rules"]]
    assert "CA900" in ids
    _assert_github_shape(doc)


def test_results_capped_at_githubs_limit_with_a_notification(
    textbook_flagged: AuditResult,
) -> None:
    many = [dataclasses.replace(textbook_finding(), fingerprint=str(i)) for i in range(5)]
    doc = sarif.document(with_findings(textbook_flagged, *many), max_results=4)
    run = doc["runs"][0]
    assert len(run["results"]) == 4
    (inv,) = run["invocations"]
    assert inv["executionSuccessful"] is True  # every model scanned; only the upload is cut
    (note,) = inv["toolExecutionNotifications"]
    assert note["level"] == "warning"
    assert note["message"]["text"].startswith("2 results left out")
    assert sarif.MAX_RESULTS == 25_000
