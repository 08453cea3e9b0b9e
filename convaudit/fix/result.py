"""Records of a ``fix`` run: what each candidate layer became, and what the rewrite measured."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class LayerFix:
    """One candidate conv: rewritten (with its figures) or skipped (with the reason)."""

    name: str
    op_type: str
    kernel_shape: tuple[int, ...] | None
    in_channels: int | None
    out_channels: int | None
    rewritten: bool
    reason: str | None = None  # why it was skipped
    width: int | None = None
    width_source: str | None = None  # "--width", "--target-saving", or the recommending rule
    break_even: float | None = None  # widths at or above this save no MACs
    before_macs: int | None = None
    after_macs: int | None = None
    before_params: int | None = None
    after_params: int | None = None
    energy: float | None = None  # E(r): kept share of squared singular values
    predicted_error: float | None = None  # √(1−E)
    whitened: bool = False  # factorised against calibration covariance
    measured_error: float | None = None  # this layer alone, on the inputs it really sees
    folded_bn: str | None = None  # the BatchNormalization folded into the conv first
    # Squared singular values, largest first (whitened when calibrated): E(r) at any width.
    spectrum: tuple[float, ...] | None = field(default=None, repr=False)
    notes: tuple[str, ...] = ()
    # "bottleneck" (1x1 then KxK) or "spatial" (Kh x 1 then 1 x Kw); None when not rewritten.
    kind: str | None = None

    @property
    def saving_factor(self) -> float | None:
        """before / after MACs of this layer."""
        if self.before_macs is None or not self.after_macs:
            return None
        return self.before_macs / self.after_macs


@dataclass(frozen=True, kw_only=True)
class TuneOutcome:
    """``--tune-steps``: the end-to-end steps on the rewritten layers' factors (``fix.tune``)."""

    steps: int
    runs: int  # the fit's runs they stepped through
    applied: bool  # the tuned factors are the ones written
    error_before: float | None = None  # the outputs' error on the fit's runs (root mean square
    error_after: float | None = None  # of each channel's relative L2), before and after
    seconds: float | None = None
    reason: str | None = None  # why not applied


@dataclass(frozen=True, kw_only=True)
class FixResult:
    """The whole rewrite: per-layer outcomes, model totals, onnxruntime measurements."""

    input_path: str
    output_path: str
    written: bool
    layers: tuple[LayerFix, ...]
    macs_before: int
    macs_after: int | None = None
    params_before: int
    params_after: int | None = None
    output_errors: dict[str, float] = field(default_factory=dict)  # relative L2 per output
    # Per output, the relative L2 error of each channel along axis 1 (empty below rank 2).
    channel_errors: dict[str, tuple[float, ...]] = field(default_factory=dict)
    latency_before: float | None = None  # median seconds per run
    latency_after: float | None = None
    inputs_source: str = ""  # "calib.npz (8 samples)" or "random (seed 0)"
    validation_source: str = ""  # "holdout" | "eval-inputs" | "random-normal"
    validation_inputs: str = ""  # what the deciding error was measured on, in words
    batch: int | None = None  # the batch size every run used (latency too)
    channel_axis: int = 1  # the axis channel_errors run along
    max_error_default: bool = False  # max_error is the default budget, not --max-error
    external_data: bool = False
    fix_seconds: float | None = None
    max_error: float | None = None  # the --max-error the run was held to
    exceeded: bool = False  # measured error above max_error
    message: str = ""  # why nothing was written, or what was written
    remaining_findings: tuple[str, ...] = ()  # rewritten convs still given a bottleneck
    remaining_rules: tuple[str, ...] = ()  # the rules that still give them one
    notes: tuple[str, ...] = ()  # caveats about the run (an input that fails onnx.checker, ...)
    tuning: TuneOutcome | None = None  # None unless --tune-steps asked for it

    @property
    def rewritten(self) -> tuple[LayerFix, ...]:
        """Layers that were rewritten."""
        return tuple(x for x in self.layers if x.rewritten)

    @property
    def error(self) -> float | None:
        """End-to-end error: the worst relative L2 error over the graph outputs and their
        channels (NaN or inf counts as infinite: it is never within a budget)."""
        values = [*self.output_errors.values()]
        values += [v for c in self.channel_errors.values() for v in c]
        if not values:
            return None
        return max(math.inf if not math.isfinite(v) else v for v in values)

    @property
    def worst(self) -> tuple[str, int | None] | None:
        """(output, channel or None) where ``error`` is reached."""
        best: tuple[float, str, int | None] | None = None
        for name, e in sorted(self.output_errors.items()):
            cands = [(e, None), *((c, k) for k, c in enumerate(self.channel_errors.get(name, ())))]
            for v, k in cands:
                v = math.inf if not math.isfinite(v) else v
                if best is None or v > best[0]:
                    best = (v, name, k)
        return None if best is None else (best[1], best[2])

    @property
    def speedup(self) -> float | None:
        """Latency before / after (> 1 means the rewrite is faster)."""
        if not self.latency_before or not self.latency_after:
            return None
        return self.latency_before / self.latency_after
