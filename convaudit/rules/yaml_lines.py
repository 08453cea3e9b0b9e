"""YAML rule files parsed into LineDicts: a ``yaml.SafeLoader`` subclass that records where each
mapping starts and refuses duplicate keys. Imported only when a rule file is not in the user
cache (``loader``): importing PyYAML costs a scan more than parsing the whole pack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from convaudit.errors import RuleFileError
from convaudit.rules.schema import LineDict
from convaudit.safe_io import clip

# libyaml's parser when the wheel has it (about 10x faster: rule loading is on every scan's
# critical path); same safe constructors either way.
_SafeBase: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LineLoader(_SafeBase):  # type: ignore[valid-type,misc]
    """SafeLoader that records line numbers and refuses duplicate keys."""


def _construct_mapping(loader: LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(
                None, None, f"keys must be text, not {key!r}", key_node.start_mark
            )
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = line
    return out


LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse(text: str, p: Path) -> Any:
    """The plain data of one YAML document, mappings as LineDicts; RuleFileError naming the
    line on invalid YAML."""
    try:
        # LineLoader is a SafeLoader: it builds plain data only (object tags are refused).
        loader = LineLoader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        raise RuleFileError(f"invalid YAML: {what}", path=f"{p}:{line}") from None
    except yaml.YAMLError as exc:
        raise RuleFileError(f"invalid YAML: {clip(str(exc))}", path=p) from None
    except RecursionError:
        raise RuleFileError("invalid YAML: nested too deeply", path=p) from None
