"""Configuration: records (``Config``), one parser per value, loading with flags on top, rendering.

Layers inside the package run one way: values -> globs -> records -> load / render.
"""

from __future__ import annotations

from convaudit.config.load import find_config, from_table, load_config, resolve
from convaudit.config.records import (
    CONFIG_NAMES,
    KEYS,
    SUPPRESSION_KEYS,
    Config,
    ModelShapes,
    Suppression,
)
from convaudit.config.render import render
from convaudit.config.values import (
    CODE,
    FAIL_ON,
    SEVERITIES,
    check_codes,
    parse_count,
    parse_dim_flags,
    parse_input_shape_flags,
    parse_percent,
)

__all__ = [
    "CODE",
    "CONFIG_NAMES",
    "FAIL_ON",
    "KEYS",
    "SEVERITIES",
    "SUPPRESSION_KEYS",
    "Config",
    "ModelShapes",
    "Suppression",
    "check_codes",
    "find_config",
    "from_table",
    "load_config",
    "parse_count",
    "parse_dim_flags",
    "parse_input_shape_flags",
    "parse_percent",
    "render",
    "resolve",
]
