"""The stages of a ``fix`` run, each a function of the records before it (``fix.context``).

    select_layers -> probe -> factorise -> rewrite -> verify -> commit

select_layers scans the model and decides which convs to rewrite at which width (or why not);
probe runs the original model once to see what each of those convs reads; factorise fits each
conv's 1x1 + KxK factors and measures that layer alone; rewrite does the graph surgery into a
scratch file and runs onnx.checker; verify compares the two models with onnxruntime and scans
the result; commit moves the file into place or says why it did not. Nothing reaches the
user's output path before commit.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx

from convaudit.audit import analyse_model, find, load_ruleset, rules_of_kind
from convaudit.errors import ConvauditError, FixError
from convaudit.fix import plan, validate
from convaudit.fix.context import (
    Activations,
    Feeds,
    Fitted,
    FixContext,
    Rewritten,
    Selection,
)
from convaudit.fix.factorize import (
    Factors,
    SecondMoment,
    factorize,
    finite_as,
    spatial_factorize,
)
from convaudit.fix.request import refuse_overwriting_input_data
from convaudit.fix.result import FixResult, LayerFix
from convaudit.fix.rewrite import ConvRewrite, rewrite_conv
from convaudit.model.loader import LoadedModel, check_external_data, load_model
from convaudit.model.tensor_users import bn_epsilon
from convaudit.records import BOTTLENECK_KIND, ModelFacts
from convaudit.safe_io import clip, shown
from convaudit.weightmath import energy_at, fold_batchnorm, predicted_error, require_finite
from convaudit.weights import recommends_bottleneck

# -- select_layers -----------------------------------------------------------------------------


def select_layers(ctx: FixContext) -> Selection:
    """Scan the model with the configured rules; plan each candidate conv or say why not."""
    opts = ctx.options
    with load_model(ctx.src) as loaded:
        check_external_data(loaded)  # before onnx.load opens any of those files itself
        facts = analyse_model(str(ctx.src), ctx.config, loaded)
        rules = load_ruleset(ctx.config)
        rule_ids = rules_of_kind(rules, BOTTLENECK_KIND)
        plans, skipped = plan.select(
            facts,
            find(facts, ctx.config, rules),
            loaded.proto,
            plan.Options(
                nodes=opts.nodes,
                width=opts.width,
                target_saving=opts.target_saving,
                rule_ids=rule_ids,
                search=searching(ctx),
                kind=opts.kind,
            ),
        )
        skipped = [_with_energy(loaded, facts, x) for x in skipped]
        structure = loaded.proto  # payload-free: enough to find nodes and attributes
        # Each planned weight is read here, and dropped, so that an unreadable one (a missing
        # .data file) is the model's error before any work; factorise reads it again, one conv
        # at a time, so no weight is held while the probe runs.
        for p in plans:
            effective_weights(loaded, p, structure.graph)
    src_external = _uses_external_data(structure)
    if plans and src_external and not opts.in_place:
        with validate.quiet_onnx():
            refuse_overwriting_input_data(ctx.src, ctx.dst, structure)
    return Selection(
        facts=facts,
        rules=rules,
        rule_ids=rule_ids,
        plans=tuple(plans),
        skipped=tuple(skipped),
        structure=structure,
        opset=next((o.version for o in structure.opset_import if o.domain in ("", "ai.onnx")), 11),
        external=src_external or _weight_bytes(structure) > opts.external_threshold,
    )


def searching(ctx: FixContext) -> bool:
    """Whether the widths are searched: --inputs and --max-error, and no --width or
    --target-saving to pin them."""
    o = ctx.options
    return (
        o.inputs is not None
        and o.max_error is not None
        and o.width is None
        and o.target_saving is None
    )


def _with_energy(loaded: LoadedModel, facts: ModelFacts, x: LayerFix) -> LayerFix:
    """A candidate skipped at a given width still gets its E(r): every candidate is reported."""
    layer = next((y for y in facts.layers if y.name == x.name and y.graph == "main"), None)
    if x.width is None or layer is None or not layer.weight_name or plan.groups(layer) > 1:
        return x
    try:
        w = loaded.read_tensor(layer.weight_name)
        require_finite(w, layer.weight_name, loaded.path)
        energy = energy_at(w, x.width)
    except (KeyError, ConvauditError):
        return x
    return replace(x, energy=energy, predicted_error=predicted_error(energy))


def _uses_external_data(model: onnx.ModelProto) -> bool:
    from onnx.external_data_helper import uses_external_data

    return any(uses_external_data(t) for t in model.graph.initializer)


def _weight_bytes(model: onnx.ModelProto) -> int:
    # From dims and dtype, which the payload-free structure keeps: no payload is read.
    sizes = [_tensor_bytes(t) for t in model.graph.initializer]
    sizes += [_tensor_bytes(a.t) for n in model.graph.node for a in n.attribute if a.HasField("t")]
    return sum(sizes)


def _tensor_bytes(t: onnx.TensorProto) -> int:
    try:
        itemsize = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
    except (KeyError, TypeError, ValueError):
        itemsize = 8
    return int(np.prod(t.dims, dtype=np.int64)) * itemsize


def nothing_to_rewrite(ctx: FixContext, sel: Selection) -> FixResult:
    """The result when no candidate is left to rewrite: nothing is written."""
    what = (
        f"no {plan.rules_label(sel.rule_ids)} finding"
        if not sel.skipped and not ctx.options.nodes
        else "every candidate skipped"
    )
    return replace(
        _unwritten(ctx, sel),
        message=f"nothing to rewrite ({what}); no file written",
        fix_seconds=ctx.seconds(),
    )


def _unwritten(ctx: FixContext, sel: Selection) -> FixResult:
    return FixResult(
        input_path=str(ctx.src),
        output_path=str(ctx.dst),
        written=False,
        layers=sel.skipped,
        macs_before=sel.facts.totals.macs,
        params_before=sel.facts.totals.params,
        max_error=ctx.budget,
        max_error_default=ctx.options.max_error is None,
    )


# -- probe -------------------------------------------------------------------------------------


def load_feeds(ctx: FixContext) -> Feeds:
    """The runs the fit sees and the runs the outcome is measured on, in batches of the pinned
    batch: a held-out split of --inputs (``validate.split_holdout``), --eval-inputs, or one
    random-normal run when neither is given (labelled: not a measure of accuracy on real data).
    """
    opts = ctx.options
    session = validate.session(ctx.src)
    batch = validate.pinned_batch(session, ctx.input_shapes, ctx.dims)

    def read(npz: str | None) -> tuple[list[validate.Feed], str]:
        return validate.input_feeds(
            session, npz, input_shapes=ctx.input_shapes, dims=ctx.dims, seed=opts.seed
        )

    runs, source = read(opts.inputs)
    if opts.eval_inputs is not None:
        held, held_source = read(opts.eval_inputs)
        kind, fit = "eval-inputs", runs
    elif opts.inputs is not None:
        fit, held = validate.split_holdout(runs, opts.inputs)
        kind = "holdout"
        every = validate.HOLDOUT_EVERY
        rule = f"every {every}th run" if len(runs) >= every else "the last run"
        held_source = (
            f"{len(held)} held-out run{'s' if len(held) != 1 else ''} of "
            f"{Path(opts.inputs).name} ({rule}; the fit used the other {len(fit)})"
        )
    else:
        kind, fit, held = "random-normal", runs, runs
        held_source = f"{source}: not a measure of accuracy on real data"
    return Feeds(
        runs=tuple(fit),
        validation=tuple(held),
        batch=batch,
        kind=kind,
        source=source,
        validation_source=held_source,
    )


def probe(ctx: FixContext, sel: Selection, feeds: Feeds, work: Path) -> Activations:
    """The inputs each planned conv really sees on the fit's runs (for the whitened SVD and
    the per-layer error), from one session of the original with those tensors exposed.

    The full model is loaded here and again in ``rewrite`` so that no more than one copy of the
    weights is alive at a time: the probe session and the proto never coexist.
    """
    x_names = [p.layer.inputs[0] for p in sel.plans]
    full = validate.load_full(ctx.src)
    probe_path = work / "probe.onnx"
    validate.write_probe(full, x_names, probe_path)
    del full
    session = validate.session(probe_path, shown_as=ctx.src)
    calibrated = ctx.options.inputs is not None
    moments = {x: SecondMoment() for x in x_names}
    first: dict[str, np.ndarray] = {}  # first feed only: enough for a per-layer error
    for k, values in enumerate(validate.capture(session, x_names, feeds.runs)):
        for x, value in values.items():
            if calibrated:
                moments[x].add(value)
            if k == 0:
                first[x] = value
    del session
    for leftover in work.iterdir():
        leftover.unlink()
    covs = {x: m.covariance() for x, m in moments.items()} if calibrated else None
    return Activations(first=first, second_moments=covs)


# -- factorise ---------------------------------------------------------------------------------


def factorise(ctx: FixContext, sel: Selection, seen: Activations) -> Fitted:
    """Factors of every planned conv, and each one's error alone on the input it really sees.

    Weights are read one conv at a time from the input file (BatchNorm folded in first).
    """
    results: list[LayerFix] = []
    rewrites: list[ConvRewrite] = []
    graph = sel.structure.graph
    with load_model(ctx.src) as loaded:
        for p in sel.plans:
            w, b, new_bias = effective_weights(loaded, p, graph)
            x = p.layer.inputs[0]
            groups = plan.groups(p.layer)
            cov = None if seen.second_moments is None else seen.second_moments[x]
            if p.kind == plan.SPATIAL:  # whitened only by the layer-wise fit (its patches)
                factors = spatial_factorize(w, p.width)
            else:
                factors = factorize(w, p.width, cov, groups)
            dtype = np.dtype(p.layer.weight_dtype or "float32")
            if not finite_as(dtype, factors.u, factors.v):
                raise FixError(
                    f"layer {shown(p.layer.name)}: its factorised weights are not finite in "
                    f"{dtype} (inf or NaN): no file written"
                )
            conv = next(n for n in graph.node if n.output and n.output[0] == p.layer.outputs[0])
            measured = validate.layer_error(
                conv, seen.first[x], w, b, factors.u, factors.v, sel.opset, p.kind
            )
            results.append(layer_result(p, factors, measured))
            rewrites.append(
                ConvRewrite(
                    conv_output=p.layer.outputs[0],
                    u=factors.u,
                    v=factors.v,
                    bias=new_bias,
                    bn_output=p.bn_name,
                    groups=groups,
                    kind=p.kind,
                )
            )
    return Fitted(layers=tuple(results), rewrites=tuple(rewrites))


def effective_weights(
    loaded: LoadedModel, p: plan.LayerPlan, graph: onnx.GraphProto
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(W, b, new bias or None): the conv's weights with a following BatchNorm folded in."""
    layer = p.layer
    with np.errstate(all="ignore"):  # non-finite weights are refused, not warned about
        w = np.asarray(loaded.read_tensor(p.weight_name), dtype=np.float64)
        require_finite(w, p.weight_name, loaded.path)
        b_name = layer.inputs[2] if len(layer.inputs) > 2 and layer.inputs[2] else None
        b = None if b_name is None else np.asarray(loaded.read_tensor(b_name), dtype=np.float64)
        if p.bn_name is None:
            return w, b, None
        bn = next(n for n in graph.node if n.output and n.output[0] == p.bn_name)
        scale, shift, mean, var = (loaded.read_tensor(n) for n in bn.input[1:5])
        w2, b2 = fold_batchnorm(w, b, scale, shift, mean, var, bn_epsilon(bn))
    folded = f" once BatchNormalization {bn.name!r} is folded in"
    require_finite(w2, p.weight_name, loaded.path, folded)
    return w2, b2, b2


def layer_result(p: plan.LayerPlan, factors: Factors, measured: float | None) -> LayerFix:
    layer = p.layer
    cout = layer.out_channels or 0
    return replace(
        plan.original(layer),
        rewritten=True,
        width=p.width,
        width_source=p.width_source,
        break_even=p.break_even,
        after_macs=p.after_macs,
        # Folding a BatchNorm into a conv without bias gives it one.
        after_params=p.after_params + (0 if layer.has_bias or p.bn_name is None else cout),
        energy=factors.energy,
        predicted_error=factors.predicted_error,
        whitened=factors.whitened,
        measured_error=measured,
        folded_bn=p.bn_name,
        notes=p.notes,
        spectrum=factors.spectrum,
        kind=p.kind,
    )


# -- rewrite -----------------------------------------------------------------------------------


def rewrite(ctx: FixContext, sel: Selection, fitted: Fitted, work: Path) -> Rewritten:
    """The surgery on a fresh full copy of the input, written into ``work`` and checked."""
    full = validate.load_full(ctx.src)
    dtypes = {p.layer.outputs[0]: p.layer.weight_dtype for p in sel.plans}
    for rw in fitted.rewrites:
        dtype = np.dtype(dtypes.get(rw.conv_output) or "float32")
        rewrite_conv(full.graph, rw, dtype, declare_inputs=full.ir_version < 4)
    tmp = work / ctx.dst.name
    _write(full, tmp, sel.external)
    del full
    return Rewritten(
        model=tmp,
        layers=fitted.layers,
        skipped=fitted.skipped,
        notes=(*fitted.notes, *checker_notes(ctx.src, tmp)),
        tuning=fitted.tuning,
    )


def _write(model: onnx.ModelProto, path: Path, external: bool) -> None:
    if external:
        onnx.save_model(
            model,
            str(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=path.name + ".data",
            size_threshold=1024,
        )
    else:
        onnx.save_model(model, str(path))


# full_check runs shape inference too, which raises its own error type.
_CHECKER_ERRORS = (onnx.checker.ValidationError, onnx.shape_inference.InferenceError)


def checker_notes(src: Path, tmp: Path) -> tuple[str, ...]:
    """Run onnx.checker (full) on the rewritten model; refuse unless the input fails the same way.

    An input that already fails the checker (an exporter's output without a declared shape, say)
    cannot give an output that passes: then the rewrite must only add no new problem.
    """
    try:
        onnx.checker.check_model(str(tmp), full_check=True)
        return ()
    except _CHECKER_ERRORS as exc:
        problem = clip(str(exc))
    try:
        onnx.checker.check_model(str(src), full_check=True)
    except _CHECKER_ERRORS as exc:
        if clip(str(exc)) == problem:
            return (
                f"the input model already fails onnx.checker ({problem}); the rewrite adds "
                "no new problem",
            )
    raise FixError(f"the rewritten model fails onnx.checker ({problem})")


# -- verify ------------------------------------------------------------------------------------


def verify(ctx: FixContext, sel: Selection, done: Rewritten, feeds: Feeds) -> FixResult:
    """Both models on the validation runs (output and per-channel error, latency at the pinned
    batch), and the rewritten one scanned again: its totals and the rewritten convs its rules
    still flag. Nothing written yet."""
    original, rewritten = validate.session(ctx.src), validate.session(done.model)
    compared = validate.compare_outputs(
        original, rewritten, feeds.validation, ctx.options.channel_axis
    )
    lat = (
        validate.latency(original, rewritten, feeds.validation[0])
        if ctx.options.measure_latency
        else (None, None)
    )
    del original, rewritten
    # The input's shapes and dims: config globs match the input's path, not the temp file's.
    after = analyse_model(str(done.model), ctx.config, shapes_of=str(ctx.src))
    names = {x.name for x in done.layers}
    still = [
        f
        for f in find(after, ctx.config, sel.rules)
        if recommends_bottleneck(f) and f.node in names
    ]
    result = replace(
        _unwritten(ctx, sel),
        layers=done.layers + done.skipped + sel.skipped,
        macs_after=after.totals.macs,
        params_after=after.totals.params,
        output_errors={k: v.error for k, v in compared.items()},
        channel_errors={k: v.channels for k, v in compared.items() if v.channels},
        latency_before=lat[0],
        latency_after=lat[1],
        inputs_source=feeds.source,
        validation_source=feeds.kind,
        validation_inputs=feeds.validation_source,
        batch=feeds.batch,
        channel_axis=ctx.options.channel_axis,
        external_data=sel.external,
        remaining_findings=tuple(sorted(f.node or "" for f in still)),
        remaining_rules=tuple(sorted({f.rule for f in still})),
        notes=done.notes,
        tuning=done.tuning,
    )
    worst = result.error
    return replace(result, exceeded=worst is not None and not worst <= ctx.budget)


# -- commit ------------------------------------------------------------------------------------


def commit(ctx: FixContext, result: FixResult, done: Rewritten) -> FixResult:
    """Move the rewritten model onto the output, unless its error is above the budget (and
    not --force): then nothing is written and the message says why and what would pass."""
    if result.exceeded and not ctx.options.force:
        return replace(
            result,
            message=_over_budget(ctx, result),
            fix_seconds=ctx.seconds(),
        )
    dst = ctx.dst
    if result.external_data:  # the data file first: the model must never point at a missing file
        os.replace(done.model.parent / (dst.name + ".data"), dst.parent / (dst.name + ".data"))
    os.replace(done.model, dst)
    return replace(
        result,
        written=True,
        message=f"wrote {dst}" + (f" (+ {dst.name}.data)" if result.external_data else ""),
        fix_seconds=ctx.seconds(),
    )


def _over_budget(ctx: FixContext, result: FixResult) -> str:
    """'measured error … is above --max-error …', where it is worst, and what would pass."""
    where = ""
    if result.worst is not None:
        out, channel = result.worst
        where = f" (output {out!r}" + ("" if channel is None else f", channel {channel}") + ")"
    budget = f"--max-error {ctx.budget:g}" + (
        " (the default budget)" if ctx.options.max_error is None else ""
    )
    error = result.error or 0.0
    over = f"above {budget}" if math.isfinite(error) else "not finite"
    text = (
        f"measured error {error:.4g}{where} is {over}: no file written (--force writes it anyway)"
    )
    hints = []
    suggested = suggest_width(result, ctx.budget)
    if suggested is not None:
        spatial = any(x.kind == plan.SPATIAL for x in result.rewritten)
        pin = f"--width {suggested}" + (" --kind spatial" if spatial else "")
        hints.append(f"{pin} keeps every layer's predicted error within it")
    if ctx.options.inputs is None:
        hints.append(
            "pass --inputs with real samples (the random-normal inputs are not a measure of "
            "accuracy on real data, and calibration lowers the error)"
        )
    elif ctx.options.width is not None or ctx.options.target_saving is not None:
        hints.append("drop --width/--target-saving to search widths within the budget")
    return text + ("; try: " + "; or ".join(hints) if hints else "")


def suggest_width(result: FixResult, budget: float) -> int | None:
    """The smallest common width whose predicted error is within ``budget`` on every rewritten
    layer and still below each one's break-even; None when there is none."""
    done = result.rewritten
    if not done or any(x.spectrum is None or x.break_even is None for x in done):
        return None
    if len({x.kind for x in done}) > 1:  # one --width cannot stand for both kinds' spectra
        return None
    need = 0
    for x in done:
        assert x.spectrum is not None and x.break_even is not None
        width = width_within(x.spectrum, budget)
        if width is None or width >= x.break_even:
            return None
        need = max(need, width)
    return need


def width_within(spectrum: tuple[float, ...], budget: float, step: int = plan.STEP) -> int | None:
    """The smallest multiple of ``step`` whose predicted error √(1−E(r)) is within ``budget``."""
    total = float(sum(spectrum))
    if total <= 0:
        return step
    kept = np.cumsum(np.asarray(spectrum, dtype=np.float64))
    for r in range(step, len(spectrum) + step, step):
        energy = kept[min(r, len(spectrum)) - 1] / total
        if predicted_error(float(min(energy, 1.0))) <= budget:
            return r
    return None
