"""The ``fix`` run: its stages in order (``fix.stages``), sharing the records of ``fix.context``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from convaudit.config import Config
from convaudit.fix import request, search, sequential, stages
from convaudit.fix.context import (
    DEFAULT_MAX_ERROR,
    EXTERNAL_THRESHOLD,
    Feeds,
    FixContext,
    FixOptions,
    Selection,
)
from convaudit.fix.result import FixResult


def run_fix(
    path: str | Path, output: str | Path | None, options: FixOptions, config: Config
) -> FixResult:
    """Rewrite the planned convs of ``path`` into ``output``; see ``convaudit.api.fix``."""
    ctx = request.context(path, output, options, config)
    selection = stages.select_layers(ctx)
    if not selection.plans:
        return stages.nothing_to_rewrite(ctx, selection)
    with request.scratch(ctx) as work:
        feeds = stages.load_feeds(ctx)
        if stages.searching(ctx):
            return _searched(ctx, selection, feeds, work)
        if options.inputs is not None:  # calibrated: layer after layer on the partly rewritten net
            fitted = sequential.fit_layerwise(ctx, selection, feeds, work)
        else:
            activations = stages.probe(ctx, selection, feeds, work)
            fitted = stages.factorise(ctx, selection, activations)
            del activations  # freed before the rewrite loads the full model again
        rewritten = stages.rewrite(ctx, selection, fitted, work)
        del fitted  # the factors now live in the written model
        result = stages.verify(ctx, selection, rewritten, feeds)
        return stages.commit(ctx, result, rewritten)


def _searched(ctx: FixContext, selection: Selection, feeds: Feeds, work: Path) -> FixResult:
    """search -> fit_layerwise -> rewrite -> verify, tightening the search's target while the
    held-out check fails (``search.TIGHTER``); commit the first that passes, or the last."""
    searcher = search.Searcher(ctx, selection, feeds, work)
    result: FixResult | None = None
    for share in search.TIGHTER:
        target = ctx.budget * share
        chosen = search.chosen(selection, searcher.best(target), target)
        if not chosen.plans:
            return replace(
                stages.nothing_to_rewrite(ctx, chosen),
                message=f"nothing to rewrite: no width keeps the error within {ctx.budget:g} "
                "on the calibration runs; no file written",
            )
        fitted = sequential.fit_layerwise(ctx, chosen, feeds, work)
        rewritten = stages.rewrite(ctx, chosen, fitted, work)
        result = stages.verify(ctx, chosen, rewritten, feeds)
        if not result.exceeded or share == search.TIGHTER[-1]:
            return stages.commit(ctx, result, rewritten)
    raise AssertionError("unreachable: the last target commits")


__all__: Sequence[str] = ["DEFAULT_MAX_ERROR", "EXTERNAL_THRESHOLD", "FixOptions", "run_fix"]
