"""The ``fix`` run: its stages in order (``fix.stages``), sharing the records of ``fix.context``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from convaudit.config import Config
from convaudit.fix import request, search, sequential, stages, tune
from convaudit.fix.context import (
    DEFAULT_MAX_ERROR,
    EXTERNAL_THRESHOLD,
    Feeds,
    FixContext,
    FixOptions,
    Rewritten,
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
            fitted = tune.tune(ctx, selection, fitted, feeds, work)
        else:
            activations = stages.probe(ctx, selection, feeds, work)
            fitted = stages.factorise(ctx, selection, activations)
            del activations  # freed before the rewrite loads the full model again
        rewritten = stages.rewrite(ctx, selection, fitted, work)
        del fitted  # the factors now live in the written model
        result = stages.verify(ctx, selection, rewritten, feeds)
        return stages.commit(ctx, result, rewritten)


def _searched(ctx: FixContext, selection: Selection, feeds: Feeds, work: Path) -> FixResult:
    """search -> fit_layerwise -> rewrite -> verify, as fitted trials: the allocation predicted
    within the budget first; then, while the fitted model passes on the held-out runs, looser
    ones (``search.LOOSER``), keeping the one that saves most; while it fails, tighter ones
    (``search.TIGHTER``). Commit the best that passes, or the last that failed."""
    searcher = search.Searcher(ctx, selection, feeds, work)
    tried: dict[tuple[tuple[str, int, str], ...], _Tried] = {}

    def attempt(share: float) -> _Tried | None:
        target = ctx.budget * share
        trial = searcher.best(target)
        chosen = search.chosen(selection, trial, target)
        if trial is None or not chosen.plans:
            return None
        key = tuple(sorted((k, r, trial.kinds.get(k, "")) for k, r in trial.widths.items()))
        if key not in tried:  # each trial in its own folder: an earlier one may be committed
            folder = work / f"trial{len(tried)}"
            folder.mkdir()
            fitted = sequential.fit_layerwise(ctx, chosen, feeds, folder)
            fitted = tune.tune(ctx, chosen, fitted, feeds, folder)
            rewritten = stages.rewrite(ctx, chosen, fitted, folder)
            tried[key] = _Tried(stages.verify(ctx, chosen, rewritten, feeds), rewritten)
        return tried[key]

    first = attempt(search.FIRST)
    if first is not None and first.result.exceeded:
        last = first
        for share in search.TIGHTER:
            t = attempt(share)
            if t is None:
                break
            last = t
            if not t.result.exceeded:
                break
        return stages.commit(ctx, last.result, last.rewritten)
    best = first
    for share in search.LOOSER:
        t = attempt(share)
        if t is None:
            continue
        if t.result.exceeded:
            break
        if best is None or _saved(t) > _saved(best):
            best = t
    if best is None:
        nothing = search.chosen(selection, None, ctx.budget)
        return replace(
            stages.nothing_to_rewrite(ctx, nothing),
            message=f"nothing to rewrite: no width keeps the error within {ctx.budget:g} "
            "on the calibration runs; no file written",
        )
    return stages.commit(ctx, best.result, best.rewritten)


@dataclass(frozen=True)
class _Tried:
    """One fitted trial: its held-out verdict, and the model it wrote into its folder."""

    result: FixResult
    rewritten: Rewritten


def _saved(t: _Tried) -> int:
    return t.result.macs_before - (t.result.macs_after or t.result.macs_before)


__all__: Sequence[str] = ["DEFAULT_MAX_ERROR", "EXTERNAL_THRESHOLD", "FixOptions", "run_fix"]
