"""The ``fix`` run: its stages in order (``fix.stages``), sharing the records of ``fix.context``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from convaudit.config import Config
from convaudit.fix import request, sequential, stages
from convaudit.fix.context import DEFAULT_MAX_ERROR, EXTERNAL_THRESHOLD, FixOptions
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


__all__: Sequence[str] = ["DEFAULT_MAX_ERROR", "EXTERNAL_THRESHOLD", "FixOptions", "run_fix"]
