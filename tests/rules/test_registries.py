"""The fact table and the recommendation-kind registry: explicit, complete in any import order,
one entry per kind, and no rule ids in the engine's code."""

from __future__ import annotations

import dataclasses
import itertools
import re
import subprocess
import sys
from pathlib import Path

import pytest

from convaudit.config import Config
from convaudit.errors import ConfigError
from convaudit.rules import kinds
from convaudit.rules.engine import RuleSet
from convaudit.rules.facts import FACTS, fact_table
from convaudit.rules.facts.layer import LAYER_FACTS

PACKAGE = Path(__file__).resolve().parents[2] / "convaudit"
# The entry points a caller might import first; the leaves are covered one at a time below.
PIECES = (
    "convaudit.rules.facts.graph",
    "convaudit.rules.kinds.bottleneck",
    "convaudit.rules.kinds",
    "convaudit.rules.facts",
)
LEAVES = (
    "convaudit.rules.subject",
    "convaudit.rules.facts.layer",
    "convaudit.rules.kinds.base",
    "convaudit.rules.kinds.head",
    "convaudit.rules.kinds.factorize",
    "convaudit.rules.kinds.separable",
)
# 35 from the layer record + 10 from the graph (the 45 an early plan_facts import used to leave)
# + 22 from the kinds: 7 bottleneck, 3 global-pool-head, 7 factorize-kernel, 5 separable.
EXPECTED_COUNT = 69
ONE_PER_TABLE = ("op", "fed_by_1x1", "bottleneck_width", "head_saving", "stacked_3x3_count")


def _facts_after_importing(order: tuple[str, ...]) -> list[str]:
    script = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
        "from convaudit.rules.facts import FACTS\n"
        "print(' '.join(sorted(FACTS)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, *order], capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def test_every_import_order_gives_the_same_complete_fact_table() -> None:
    orders = list(itertools.permutations(PIECES))
    orders += [(leaf, *PIECES) for leaf in LEAVES]
    seen = {tuple(_facts_after_importing(order)) for order in orders}
    assert len(seen) == 1
    names = seen.pop()
    assert len(names) == EXPECTED_COUNT
    assert set(ONE_PER_TABLE) <= set(names)
    assert list(names) == sorted(FACTS)


def test_the_table_is_the_union_of_its_pieces() -> None:
    provided = [f.name for kind in kinds.KINDS.values() for f in kind.provides]
    from convaudit.rules.facts.graph import GRAPH_FACTS

    assert len(LAYER_FACTS) + len(GRAPH_FACTS) + len(provided) == len(FACTS) == EXPECTED_COUNT
    assert {f.name for f in (*LAYER_FACTS, *GRAPH_FACTS)} | set(provided) == set(FACTS)


def test_a_fact_defined_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="fact 'op' is defined twice"):
        fact_table(LAYER_FACTS, LAYER_FACTS[:1])


def test_the_kinds_keep_their_names_and_order() -> None:
    # Rule files and the JSON's recommendation.kind use these strings: they never change.
    assert kinds.KIND_NAMES == ("bottleneck", "global-pool-head", "factorize-kernel", "separable")
    assert [k.name for k in kinds.KINDS.values()] == list(kinds.KIND_NAMES)


def test_every_kind_reads_only_known_facts() -> None:
    for kind in kinds.KINDS.values():
        assert kind.provides, kind.name
        assert all(f.name in FACTS for f in kind.provides)
        assert all(name in FACTS for name in kind.needs)


def test_a_kind_registered_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="'separable' is registered twice"):
        kinds._table(kinds.KINDS["separable"], kinds.KINDS["separable"])


def test_kind_params_have_their_defaults_and_types() -> None:
    got = {n: (p.type, p.default) for n, p in kinds.KIND_PARAMS.items()}
    assert got == {
        "width_policy": ("str", "ratio"),
        "width_ratio": ("float", None),  # null: the published ratio for the kernel (issue 9)
        "small_kernel_ratio": ("float", 0.25),  # ResNet's Cin/4 before a 3x3
        "large_kernel_ratio": ("float", 0.0333),  # GoogLeNet 4a's 5x5 reduction, 480 -> 16
        "large_kernel_area": ("int", 25),
        "target_saving": ("float", 4.0),
        "drop_in_error": ("float", 0.05),  # scan --weights: a rewrite without retraining
        "mac_budget": ("int", None),
    }


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"width_policy": "ratoi"},
            "param width_policy 'ratoi' must be one of ratio, saving, budget (did you mean ratio?)",
        ),
        ({"width_ratio": 0}, "param width_ratio 0 must be a number in (0, 1]"),
        ({"width_ratio": True}, "param width_ratio True must be a number in (0, 1]"),
        ({"target_saving": 1}, "param target_saving 1 must be a number above 1"),
        ({"mac_budget": 0}, "param mac_budget 0 must be a positive integer or null"),
        ({"mac_budget": 2.5}, "param mac_budget 2.5 must be a positive integer or null"),
    ],
)
def test_kind_params_are_checked_with_their_own_messages(
    params: dict[str, object], message: str
) -> None:
    config = Config(params={"CA101": params}, source="pyproject.toml")
    with pytest.raises(ConfigError) as err:
        RuleSet.from_config(config)
    assert str(err.value).endswith(f"params.CA101: {message}")


def test_valid_kind_params_load() -> None:
    # width_ratio 1 saves at most 1x: it loads only with a min_saving it can meet (issue 9)
    params = {"mac_budget": None, "width_ratio": 1, "target_saving": 1.5, "min_saving": 1}
    config = Config(params={"CA101": params})
    rule = RuleSet.from_config(config).available["CA101"]
    assert rule.params["mac_budget"] is None and rule.params["width_ratio"] == 1


def test_no_rule_id_in_the_rules_code() -> None:
    # The engine knows facts, operators and kinds; rule ids live in the YAML catalogue.
    rule_id = re.compile(r"\bCA\d{3}\b")
    hits = [
        f"{path.relative_to(PACKAGE)}:{n}"
        for path in sorted((PACKAGE / "rules").rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if rule_id.search(line)
    ]
    assert hits == []


def test_recommendation_needs_known_before_figures() -> None:
    @dataclasses.dataclass
    class Unknown:
        total_macs: int | None = None
        params: int | None = 10

    class View:
        layer = Unknown()

    assert kinds.recommendation("bottleneck", View()) is None  # type: ignore[arg-type]
    assert kinds.recommendation(None, View()) is None  # type: ignore[arg-type]


def test_width_policies_are_one_table() -> None:
    from convaudit.rules import recommend

    assert recommend.WIDTH_POLICIES == ("ratio", "saving", "budget")
    assert kinds.KIND_PARAMS["width_policy"].choices == recommend.WIDTH_POLICIES
    shape = recommend.ConvShape(
        in_channels=480, out_channels=48, kernel=(5, 5), in_spatial=(14, 14), out_spatial=(14, 14)
    )
    with pytest.raises(ValueError, match="unknown width policy 'widest'"):
        recommend.bottleneck_width(shape, policy="widest")
