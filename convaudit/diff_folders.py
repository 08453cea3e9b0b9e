"""``convaudit diff`` of two folders: models paired by their path inside each folder, each pair
compared as two models are, and the models only one side has listed as added or removed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from convaudit.config import Config
from convaudit.diff import ModelDiff, compare
from convaudit.errors import ConvauditError, ModelLoadError
from convaudit.records import Finding, ModelReport


@dataclass(frozen=True, kw_only=True)
class FolderDiff:
    """BASE folder vs HEAD folder: a ModelDiff per model in both, and the rest."""

    base: str
    head: str
    pairs: tuple[tuple[str, ModelDiff], ...]  # (path inside the folders, its diff), by path
    added: tuple[tuple[str, ModelReport], ...]  # only in HEAD: scanned, its findings are new
    removed: tuple[tuple[str, ModelReport], ...]  # only in BASE (scanned for the base totals)
    errors: tuple[str, ...] = ()  # models that could not be scanned (one line each)

    @property
    def findings(self) -> tuple[Finding, ...]:
        """What the exit code looks at: each pair's new findings and budgets, and every finding
        of an added model."""
        out = [f for _, d in self.pairs for f in d.findings]
        out += [f for _, r in self.added for f in r.findings]
        return tuple(out)


def _models(folder: str, config: Config) -> dict[str, str]:
    """{path inside ``folder`` (posix): path} of the models a scan of it reads (none: empty)."""
    from convaudit.discover import discover

    try:
        found = discover(
            [folder], exclude=config.excluded, gitignore=config.respect_gitignore, root=config.root
        ).models
    except ModelLoadError:
        if not Path(folder).is_dir():
            raise
        found = ()  # an empty folder: every model of the other side is added or removed
    return {Path(os.path.relpath(m, folder)).as_posix(): m for m in found}


def diff_folders(base: str, head: str, config: Config | None = None) -> FolderDiff:
    """Pair the models of two folders by relative path and compare each pair."""
    from convaudit.audit import load_ruleset, scan_one

    config = config or Config()
    rules = load_ruleset(config)
    budget = rules.budget_rule
    increase = config.max_increase if budget is not None else None
    old, new = _models(base, config), _models(head, config)
    pairs: list[tuple[str, ModelDiff]] = []
    added: list[tuple[str, ModelReport]] = []
    errors: list[str] = []
    for rel in sorted(old.keys() & new.keys()):
        b, h = scan_one(old[rel], config, rules), scan_one(new[rel], config, rules)
        try:
            pairs.append((rel, compare(b, h, max_increase=increase, budget_rule=budget)))
        except ConvauditError as exc:
            errors.append(str(exc))
    for rel in sorted(new.keys() - old.keys()):
        report = scan_one(new[rel], config, rules)
        errors += report.errors
        added.append((rel, report))
    removed: list[tuple[str, ModelReport]] = []
    for rel in sorted(old.keys() - new.keys()):
        report = scan_one(old[rel], config, rules)
        errors += report.errors
        removed.append((rel, report))
    return FolderDiff(
        base=base,
        head=head,
        pairs=tuple(pairs),
        added=tuple(added),
        removed=tuple(removed),
        errors=tuple(errors),
    )
