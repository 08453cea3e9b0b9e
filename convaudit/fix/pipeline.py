"""The ``fix`` run: plan, factorise, rewrite, write to a temp file, check, measure, then commit."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from convaudit.config import Config
from convaudit.errors import ConvauditError, FixError, ModelLoadError
from convaudit.fix import factorize, plan, rewrite, validate
from convaudit.fix.result import FixResult, LayerFix
from convaudit.model.tensor_users import bn_epsilon
from convaudit.weightmath import energy_at, fold_batchnorm

# Protobuf cannot serialise 2 GB; leave room for the graph itself.
EXTERNAL_THRESHOLD = 2**31 - 2**26


@dataclass(frozen=True, kw_only=True)
class FixOptions:
    """Everything ``fix`` can be asked (the CLI flags, as data)."""

    nodes: tuple[str, ...] = ()
    width: int | None = None
    target_saving: float | None = None
    max_error: float | None = None
    force: bool = False
    inputs: str | None = None  # calibration .npz keyed by input name
    in_place: bool = False
    seed: int = 0
    external_threshold: int = EXTERNAL_THRESHOLD
    measure_latency: bool = True


def _same_file(a: Path, b: Path) -> bool:
    if not b.exists():
        return a.resolve() == b.resolve()
    return os.path.samefile(a, b)


def _uses_external_data(model: onnx.ModelProto) -> bool:
    from onnx.external_data_helper import uses_external_data

    return any(uses_external_data(t) for t in model.graph.initializer)


def _refuse_overwriting_input_data(src: Path, dst: Path, model: onnx.ModelProto) -> None:
    """The output or its OUT.onnx.data must not land on a file the input's weights live in."""
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    tensors = [*model.graph.initializer]
    tensors += [a.t for n in model.graph.node for a in n.attribute if a.HasField("t")]
    ours = {dst.resolve(), (dst.parent / (dst.name + ".data")).resolve()}
    for t in tensors:
        if uses_external_data(t):
            data = src.parent / ExternalDataInfo(t).location
            if data.resolve() in ours or any(_same_file(data, o) for o in ours if o.exists()):
                raise FixError(
                    f"writing the output would replace the input's external data file {data}: "
                    "pass a different -o",
                    path=dst,
                )


def _layer_result(p: plan.Plan, factors: factorize.Factors, measured: float | None) -> LayerFix:
    layer = p.layer
    cout = layer.out_channels or 0
    return LayerFix(
        **plan.layer_fields(layer),
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
    )


def _effective_weights(
    loaded: Any, p: plan.Plan, graph: onnx.GraphProto
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(W, b, new bias or None): the conv's weights with a following BatchNorm folded in."""
    layer = p.layer
    w = np.asarray(loaded.read_tensor(p.weight_name), dtype=np.float64)
    b_name = layer.inputs[2] if len(layer.inputs) > 2 and layer.inputs[2] else None
    b = None if b_name is None else np.asarray(loaded.read_tensor(b_name), dtype=np.float64)
    if p.bn_name is None:
        return w, b, None
    bn = next(n for n in graph.node if n.output and n.output[0] == p.bn_name)
    scale, shift, mean, var = (loaded.read_tensor(n) for n in bn.input[1:5])
    w2, b2 = fold_batchnorm(w, b, scale, shift, mean, var, bn_epsilon(bn))
    return w2, b2, b2


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


def _weight_bytes(model: onnx.ModelProto) -> int:
    # From dims and dtype: touching raw_data would copy every payload.
    sizes = [_tensor_bytes(t) for t in model.graph.initializer]
    sizes += [_tensor_bytes(a.t) for n in model.graph.node for a in n.attribute if a.HasField("t")]
    return sum(sizes)


def _tensor_bytes(t: onnx.TensorProto) -> int:
    try:
        itemsize = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
    except (KeyError, TypeError, ValueError):
        itemsize = 8
    return int(np.prod(t.dims, dtype=np.int64)) * itemsize


def _with_energy(loaded: Any, facts: Any, x: LayerFix) -> LayerFix:
    """A candidate skipped at a given width still gets its E(r): every candidate is reported."""
    layer = next((y for y in facts.layers if y.name == x.name and y.graph == "main"), None)
    if x.width is None or layer is None or not layer.weight_name or plan.groups(layer) > 1:
        return x
    try:
        energy = energy_at(loaded.read_tensor(layer.weight_name), x.width)
    except (KeyError, ConvauditError):
        return x
    return replace(x, energy=energy, predicted_error=float(np.sqrt(max(0.0, 1.0 - energy))))


def _check(src: Path, tmp: Path) -> tuple[str, ...]:
    """Run onnx.checker (full) on the rewritten model; refuse unless the input fails the same way.

    An input that already fails the checker (an exporter's output without a declared shape, say)
    cannot give an output that passes: then the rewrite must only add no new problem.
    """
    try:
        onnx.checker.check_model(str(tmp), full_check=True)
        return ()
    except onnx.checker.ValidationError as exc:
        problem = str(exc).strip()
    try:
        onnx.checker.check_model(str(src), full_check=True)
    except onnx.checker.ValidationError as exc:
        if str(exc).strip() == problem:
            return (
                f"the input model already fails onnx.checker ({problem}); the rewrite adds "
                "no new problem",
            )
    raise FixError(f"the rewritten model fails onnx.checker ({problem})")


def _paths(path: str | Path, output: str | Path | None, options: FixOptions) -> tuple[Path, Path]:
    """(input, output); refuses to replace the input unless ``in_place``."""
    src = Path(path)
    if not src.is_file():
        raise ModelLoadError("no such file", path=src)
    if output is None:
        if not options.in_place:
            raise FixError("no output: pass -o OUT.onnx (or --in-place to replace the input)")
        return src, src
    dst = Path(output)
    if dst.is_dir():  # refused before the rewrite and its measurements, not at the final rename
        raise FixError("is a directory: -o names the output model file", path=dst)
    if _same_file(src, dst) and not options.in_place:
        raise FixError(
            "output is the input model: pass a different -o, or --in-place to replace it",
            path=dst,
        )
    return src, dst


def _factorise(
    plans: Sequence[plan.Plan],
    weights: dict[str, tuple[np.ndarray, np.ndarray | None, np.ndarray | None]],
    seen: dict[str, np.ndarray],
    covs: dict[str, np.ndarray] | None,
    graph: onnx.GraphProto,
    opset: int,
) -> tuple[list[LayerFix], list[rewrite.ConvRewrite]]:
    """Factors of every planned conv, and each one's error alone on the input it really sees."""
    results: list[LayerFix] = []
    rewrites: list[rewrite.ConvRewrite] = []
    for p in plans:
        w, b, new_bias = weights[p.layer.name]
        x = p.layer.inputs[0]
        groups = plan.groups(p.layer)
        factors = factorize.factorize(w, p.width, None if covs is None else covs[x], groups)
        conv = next(n for n in graph.node if n.output and n.output[0] == p.layer.outputs[0])
        measured = validate.layer_error(conv, seen[x], w, b, factors.u, factors.v, opset)
        results.append(_layer_result(p, factors, measured))
        rewrites.append(
            rewrite.ConvRewrite(
                conv_output=p.layer.outputs[0],
                u=factors.u,
                v=factors.v,
                bias=new_bias,
                bn_output=p.bn_name,
                groups=groups,
            )
        )
    return results, rewrites


def run_fix(
    path: str | Path, output: str | Path | None, options: FixOptions, config: Config
) -> FixResult:
    """Rewrite the planned convs of ``path`` into ``output``; see ``convaudit.api.fix``."""
    from convaudit.audit import analyse_model, find
    from convaudit.model.analyse import analyse
    from convaudit.model.loader import load_model

    started = time.perf_counter()
    src, dst = _paths(path, output, options)
    if options.max_error is not None and not options.max_error >= 0:
        raise FixError(f"--max-error must be >= 0, got {options.max_error}")

    with load_model(src) as loaded:
        facts = analyse_model(str(src), config, loaded)
        findings = find(facts, config)
        plans, skipped = plan.select(
            facts,
            findings,
            loaded.proto,
            plan.Options(
                nodes=options.nodes, width=options.width, target_saving=options.target_saving
            ),
        )
        skipped = [_with_energy(loaded, facts, x) for x in skipped]
        base = FixResult(
            input_path=str(src),
            output_path=str(dst),
            written=False,
            layers=tuple(skipped),
            macs_before=facts.totals.macs,
            params_before=facts.totals.params,
            max_error=options.max_error,
        )
        if not plans:
            what = (
                "no CA101 finding"
                if not skipped and not options.nodes
                else "every candidate skipped"
            )
            return replace(
                base,
                message=f"nothing to rewrite ({what}); no file written",
                fix_seconds=time.perf_counter() - started,
            )
        src_external = _uses_external_data(loaded.proto)
        if src_external and not options.in_place:
            _refuse_overwriting_input_data(src, dst, loaded.proto)
        structure = loaded.proto  # payload-free: enough to find nodes and attributes
        opset = next((o.version for o in structure.opset_import if o.domain in ("", "ai.onnx")), 11)
        weights = {p.layer.name: _effective_weights(loaded, p, structure.graph) for p in plans}

    # The temp files live beside the output so the final os.replace is a same-disk rename.
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent))
    except OSError as exc:  # the user's -o, not a bug
        raise FixError(f"cannot write the output here ({exc.strerror or exc})", path=dst) from None
    try:
        # The inputs each rewritten conv really sees: for the whitened SVD and the per-layer error.
        # One session of the original with those exposed; freed before the comparison runs.
        # The full model is loaded twice (probe, then surgery) so that no more than one copy of
        # the weights is alive at a time: the probe session and the proto never coexist.
        x_names = [p.layer.inputs[0] for p in plans]
        full = onnx.load(str(src), load_external_data=True)
        external = src_external or _weight_bytes(full) > options.external_threshold
        probe_path = workdir / "probe.onnx"
        validate.write_probe(full, x_names, probe_path)
        del full
        probe = validate.session(probe_path)
        input_shapes, dims = config.shapes_for(str(src))
        feeds, source = validate.input_feeds(
            probe, options.inputs, input_shapes=input_shapes, dims=dims, seed=options.seed
        )
        cov_acc = {x: factorize.SecondMoment() for x in x_names}
        seen: dict[str, np.ndarray] = {}  # first feed only: enough for a per-layer error
        for k, values in enumerate(validate.capture(probe, x_names, feeds)):
            for x, value in values.items():
                if options.inputs is not None:
                    cov_acc[x].add(value)
                if k == 0:
                    seen[x] = value
        del probe
        for leftover in workdir.iterdir():
            leftover.unlink()
        covs = None
        if options.inputs is not None:
            covs = {x: acc.covariance() for x, acc in cov_acc.items()}
        results, rewrites = _factorise(plans, weights, seen, covs, structure.graph, opset)
        del seen, covs
        full = onnx.load(str(src), load_external_data=True)
        for p, rw in zip(plans, rewrites, strict=True):
            dtype = np.dtype(p.layer.weight_dtype or "float32")
            rewrite.rewrite_conv(full.graph, rw, dtype, declare_inputs=full.ir_version < 4)
        del weights, rewrites

        tmp = workdir / dst.name
        _write(full, tmp, external)
        del full
        notes = _check(src, tmp)
        original, rewritten = validate.session(src), validate.session(tmp)
        errors = validate.output_errors(original, rewritten, feeds)
        lat = (
            validate.latency(original, rewritten, feeds[0])
            if options.measure_latency
            else (None, None)
        )
        del original, rewritten
        # The input's shapes and dims: config globs match the input's path, not the temp file's.
        after = analyse(tmp, input_shapes=input_shapes, dims=dims)
        names = {r.name for r in results}
        remaining = tuple(
            sorted(
                f.node or ""
                for f in find(after, config)
                if f.rule == plan.BOTTLENECK_RULE and f.node in names
            )
        )
        worst = max(errors.values()) if errors else 0.0
        exceeded = options.max_error is not None and worst > options.max_error
        result = replace(
            base,
            layers=tuple(results) + tuple(skipped),
            macs_after=after.totals.macs,
            params_after=after.totals.params,
            output_errors=errors,
            latency_before=lat[0],
            latency_after=lat[1],
            inputs_source=source,
            external_data=external,
            exceeded=exceeded,
            remaining_findings=remaining,
            notes=notes,
        )
        if exceeded and not options.force:
            return replace(
                result,
                message=f"measured error {worst:.4g} is above --max-error {options.max_error:g}: "
                "no file written (--force writes it anyway)",
                fix_seconds=time.perf_counter() - started,
            )
        if external:  # the data file first: the model must never point at a missing file
            os.replace(workdir / (dst.name + ".data"), dst.parent / (dst.name + ".data"))
        os.replace(tmp, dst)
        return replace(
            result,
            written=True,
            message=f"wrote {dst}" + (f" (+ {dst.name}.data)" if external else ""),
            fix_seconds=time.perf_counter() - started,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


__all__: Sequence[str] = ["FixOptions", "run_fix"]
