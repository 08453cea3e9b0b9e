"""The records ``fix``'s stages hand each other: what was asked, and what each stage produced.

select_layers -> probe -> factorise -> rewrite -> verify -> commit (see ``fix.stages``). Every
record is frozen: a stage reads the ones before it and returns a new one, never edits them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from convaudit.config import Config
from convaudit.fix.plan import LayerPlan
from convaudit.fix.result import LayerFix, TuneOutcome
from convaudit.fix.rewrite import ConvRewrite
from convaudit.fix.validate import Feed
from convaudit.records import ModelFacts
from convaudit.rules.engine import RuleSet

# Protobuf cannot serialise 2 GB; leave room for the graph itself.
EXTERNAL_THRESHOLD = 2**31 - 2**26
# The budget a run is held to without --max-error: safe by default (issue 9). 5% relative L2 on
# the worst output or channel is where trained detectors and OCR models still give the same
# boxes and strings in the benchmarks (benchmarks/README.md).
DEFAULT_MAX_ERROR = 0.05


@dataclass(frozen=True, kw_only=True)
class FixOptions:
    """Everything ``fix`` can be asked (the CLI flags, as data)."""

    nodes: tuple[str, ...] = ()
    width: int | None = None
    target_saving: float | None = None
    max_error: float | None = None
    force: bool = False
    inputs: str | None = None  # calibration .npz keyed by input name
    eval_inputs: str | None = None  # validation .npz: the fit never sees it
    # The outputs' feature axis, along which each channel's error is reported (1: NCHW; a
    # detector laid out [N, anchors, attributes] has its features on the last axis, -1).
    channel_axis: int = 1
    in_place: bool = False
    seed: int = 0
    kind: str | None = None  # "bottleneck" | "spatial"; None: the search picks, else bottleneck
    external_threshold: int = EXTERNAL_THRESHOLD
    measure_latency: bool = True
    # Adam steps on the rewritten layers' factors against the original outputs (fix.tune); 0: off
    tune_steps: int = 0


@dataclass(frozen=True, kw_only=True)
class FixContext:
    """What every stage reads: the request, checked and resolved once."""

    src: Path
    dst: Path  # equal to src with --in-place
    options: FixOptions
    config: Config
    # The config's shapes and dims for the input's path (the temp files' paths match no glob).
    input_shapes: Mapping[str, tuple[int, ...]]
    dims: Mapping[str, int]
    started: float = field(default_factory=time.perf_counter)

    @property
    def budget(self) -> float:
        """The error budget the outcome is held to: --max-error, or the default."""
        m = self.options.max_error
        return DEFAULT_MAX_ERROR if m is None else m

    def seconds(self) -> float:
        """Time since the run started (the report's fix_seconds)."""
        return time.perf_counter() - self.started


@dataclass(frozen=True, kw_only=True)
class Selection:
    """select_layers: the scanned model, the convs to rewrite and the candidates declined."""

    facts: ModelFacts
    rules: RuleSet  # the configured rules, loaded once: the scan before and after use them
    rule_ids: tuple[str, ...]  # the rules that recommend bottlenecks, to name them in messages
    plans: tuple[LayerPlan, ...]
    skipped: tuple[LayerFix, ...]  # with the reason, and E(r) at their width when readable
    structure: onnx.ModelProto = field(repr=False)  # payload-free: nodes, attributes, dims
    opset: int  # the default domain's opset (the per-layer check models use it)
    external: bool  # write the output with external data (the input has it, or it is > 2 GB)


@dataclass(frozen=True, kw_only=True)
class Feeds:
    """The model inputs the fit and the verification run on, and where they came from."""

    runs: tuple[Feed, ...]  # what the fit sees (calibration), or the one random feed
    validation: tuple[Feed, ...]  # what the outcome is measured on: never seen by the fit
    batch: int  # the pinned batch every run uses
    kind: str  # "holdout" | "eval-inputs" | "random-normal"
    source: str  # "calib.npz (8 runs)" or "random normal (seed 0)"
    validation_source: str = ""  # "2 held-out runs of calib.npz", "eval.npz (4 runs)"


@dataclass(frozen=True, kw_only=True)
class Activations:
    """probe: what each planned conv's data input holds when the original model runs."""

    first: Mapping[str, np.ndarray] = field(repr=False)  # on the first run: per-layer error
    # E[x xᵀ] over every run, for the whitened factorisation: only with calibration inputs.
    second_moments: Mapping[str, np.ndarray] | None = field(default=None, repr=False)


@dataclass(frozen=True, kw_only=True)
class Fitted:
    """factorise: each planned conv's factors (for the surgery) and its figures (for the report)."""

    layers: tuple[LayerFix, ...]
    rewrites: tuple[ConvRewrite, ...] = field(repr=False)
    skipped: tuple[LayerFix, ...] = ()  # planned, but the fit declined them (with the reason)
    notes: tuple[str, ...] = ()  # about the fit as a whole (fix.tune's outcome)
    tuning: TuneOutcome | None = None


@dataclass(frozen=True, kw_only=True)
class Rewritten:
    """rewrite: the rewritten model, written beside the output but not yet in its place."""

    model: Path  # in the scratch folder; OUT.onnx.data beside it when ``external``
    layers: tuple[LayerFix, ...]  # the rewritten convs' figures (from Fitted)
    skipped: tuple[LayerFix, ...] = ()  # planned convs the fit declined (from Fitted)
    notes: tuple[str, ...] = ()  # e.g. an input that already failed onnx.checker
    tuning: TuneOutcome | None = None  # from Fitted
