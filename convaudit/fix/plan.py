"""Choose what ``fix`` rewrites: candidate convs, their kind and width, or why one is skipped.

Two kinds of rewrite: a 1x1 bottleneck in front of the KxK (``BOTTLENECK``, factorised along the
input channels), or Jaderberg et al. 2014's spatial factorisation (``SPATIAL``, scheme 2): a
Kh x 1 conv to r channels, then a 1 x Kw conv to Cout.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import onnx

from convaudit import cost
from convaudit.errors import FixError, nearest
from convaudit.fix.result import LayerFix
from convaudit.model.tensor_users import TensorIndex, foldable_bn
from convaudit.records import Finding, Layer, ModelFacts
from convaudit.rules import recommend
from convaudit.weights import FLOAT_DTYPES, recommends_bottleneck

QUANTIZED_OPS = {"QLinearConv", "ConvInteger"}
DEQUANTIZE_OPS = {"DequantizeLinear", "DynamicQuantizeLinear", "QuantizeLinear"}
STEP = recommend.WIDTH_MULTIPLE  # SIMD-friendly, and r=8 is already overhead-bound
BOTTLENECK = "bottleneck"
SPATIAL = "spatial"
KINDS = (BOTTLENECK, SPATIAL)


@dataclass(frozen=True, kw_only=True)
class Options:
    """What the user asked for."""

    nodes: tuple[str, ...] = ()
    width: int | None = None
    target_saving: float | None = None
    # The rules whose findings recommend a bottleneck: only to name them in messages.
    rule_ids: tuple[str, ...] = ()
    # Search the widths (--inputs and --max-error, no --width): every dense KxK conv where a
    # bottleneck can save MACs is a candidate, planned at the smallest width for now.
    search: bool = False
    # The rewrite's kind (--kind): None lets the search choose per layer, and is a bottleneck
    # when the width is pinned.
    kind: str | None = None


@dataclass(frozen=True, kw_only=True)
class LayerPlan:
    """One conv to rewrite at ``width``."""

    layer: Layer
    width: int
    width_source: str
    break_even: float
    weight_name: str
    bn_name: str | None = None  # a BatchNormalization to fold first (by node output name)
    notes: tuple[str, ...] = field(default_factory=tuple)
    kind: str = BOTTLENECK

    @property
    def after_macs(self) -> int:
        return factored_macs(self.layer, self.width, self.kind)

    @property
    def after_params(self) -> int:
        return factored_params(self.layer, self.width, self.kind)


def _bottleneck(layer: Layer, width: int, group: int) -> tuple[int, int]:
    """cost.bottleneck_macs for this layer: (1x1 MACs, KxK MACs)."""
    assert layer.input_shape is not None and layer.output_shape is not None
    assert layer.kernel_shape is not None and layer.in_channels and layer.out_channels
    return cost.bottleneck_macs(
        layer.in_channels,
        layer.input_shape[2:],
        width,
        layer.out_channels,
        layer.kernel_shape,
        layer.output_shape[2:],
        batch=layer.input_shape[0],
        group=group,
    )


def per_width_macs(layer: Layer) -> int:
    """MACs per unit of width at group 1: the 1x1 at input resolution plus the KxK."""
    return sum(_bottleneck(layer, 1, 1))


def groups(layer: Layer) -> int:
    """The conv's group count (a grouped conv is factorised group by group)."""
    return layer.group or 1


def width_step(layer: Layer) -> int:
    """Widths are multiples of 8 and of the group count (each group gets width / group)."""
    return math.lcm(STEP, groups(layer))


def bottleneck_macs(layer: Layer, width: int) -> int:
    """r·Cin·Hin·Win + Cout·r·K²·Ho·Wo (times the batch), over the group count."""
    return sum(_bottleneck(layer, width, groups(layer)))


def bottleneck_params(layer: Layer, width: int) -> int:
    """(r·Cin + Cout·r·K²) / group (+ the bias, which stays on the KxK conv)."""
    assert layer.kernel_shape is not None and layer.in_channels and layer.out_channels
    bias = layer.out_channels if layer.has_bias else 0
    weights = cost.bottleneck_params(
        layer.in_channels, width, layer.out_channels, layer.kernel_shape, groups(layer)
    )
    return weights + bias


def spatial_reason(layer: Layer) -> str | None:
    """Why ``layer`` cannot be factorised spatially (Kh x 1 then 1 x Kw), or None."""
    if groups(layer) != 1:
        return "spatial factorisation needs a dense conv (group 1)"
    k = layer.kernel_shape or ()
    if len(k) != 2:
        return f"spatial factorisation needs a 2-D kernel, not {len(k)}-D"
    if min(k) < 2:
        return f"spatial factorisation needs a kernel at least 2 tall and wide, not {k[0]}x{k[1]}"
    if layer.input_shape is None or layer.output_shape is None or len(layer.output_shape) != 4:
        return "spatial factorisation needs the conv's input and output shapes"
    return None


def _mid(layer: Layer) -> tuple[int, int]:
    """The Kh x 1 conv's output map: the original's output height, the input's width."""
    assert layer.input_shape is not None and layer.output_shape is not None
    return layer.output_shape[2], layer.input_shape[3]


def spatial_macs(layer: Layer, width: int) -> int:
    """r·Cin·Kh·Ho·Win + Cout·r·Kw·Ho·Wo (times the batch): cost.spatial_macs for this layer."""
    assert layer.output_shape is not None and layer.kernel_shape is not None
    assert layer.in_channels and layer.out_channels
    return sum(
        cost.spatial_macs(
            layer.in_channels,
            _mid(layer),
            width,
            layer.out_channels,
            layer.kernel_shape,
            layer.output_shape[2:],
            batch=layer.output_shape[0],
        )
    )


def factored_macs(layer: Layer, width: int, kind: str) -> int:
    """The rewritten pair's MACs at ``width``, for either kind."""
    return spatial_macs(layer, width) if kind == SPATIAL else bottleneck_macs(layer, width)


def factored_params(layer: Layer, width: int, kind: str) -> int:
    """The rewritten pair's parameters (+ the bias, which stays on the second conv)."""
    if kind != SPATIAL:
        return bottleneck_params(layer, width)
    assert layer.kernel_shape is not None and layer.in_channels and layer.out_channels
    bias = layer.out_channels if layer.has_bias else 0
    return (
        cost.spatial_params(layer.in_channels, width, layer.out_channels, layer.kernel_shape) + bias
    )


def kind_break_even(layer: Layer, kind: str) -> float:
    """The width at which the pair of ``kind`` costs as many MACs as the original conv."""
    if kind != SPATIAL:
        return break_even(layer)
    assert layer.output_shape is not None and layer.kernel_shape is not None
    assert layer.in_channels and layer.out_channels
    return cost.spatial_break_even_width(
        layer.in_channels,
        layer.out_channels,
        layer.kernel_shape,
        _mid(layer),
        layer.output_shape[2:],
    )


def break_even(layer: Layer) -> float:
    """The width at which the bottleneck costs as many MACs as the original conv."""
    assert layer.input_shape is not None and layer.output_shape is not None
    assert layer.kernel_shape is not None and layer.in_channels and layer.out_channels
    return cost.break_even_width(
        layer.in_channels,
        layer.out_channels,
        layer.kernel_shape,
        layer.input_shape[2:],
        layer.output_shape[2:],
    )


def round_width(width: float, step: int = STEP) -> int:
    """Nearest multiple of ``step`` (halves round up), at least ``step``: as the rules round."""
    return recommend.round_width(width, step)


def width_for_saving(layer: Layer, target: float, kind: str = BOTTLENECK) -> int | None:
    """The widest allowed width that saves at least ``target``x MACs, None if none does."""
    step = width_step(layer)
    if kind == SPATIAL:
        r = math.floor((layer.macs or 0) / (target * spatial_macs(layer, 1)))
    else:
        r = math.floor(groups(layer) * (layer.macs or 0) / (target * per_width_macs(layer)))
    r = step * (r // step)
    return r if r >= step else None


def rules_label(rule_ids: Sequence[str]) -> str:
    """How messages name the rules behind bottleneck recommendations (the built-in one's id)."""
    return " or ".join(rule_ids) or "bottleneck"


def original(layer: Layer) -> LayerFix:
    """A candidate as first described: the original conv, not rewritten; the stages add their
    figures (or the reason it is skipped) with ``dataclasses.replace``."""
    return LayerFix(
        name=layer.name,
        op_type=layer.op_type,
        kernel_shape=layer.kernel_shape,
        in_channels=layer.in_channels,
        out_channels=layer.out_channels,
        before_macs=layer.total_macs,
        before_params=layer.params,
        rewritten=False,
    )


def decline_reason(layer: Layer, index: TensorIndex) -> str | None:
    """Why ``layer`` cannot be rewritten, or None."""
    if layer.graph != "main":
        return "inside a subgraph or function: only the main graph is rewritten"
    if layer.op_type in QUANTIZED_OPS:
        return f"quantized conv ({layer.op_type})"
    if layer.op_type != "Conv" or layer.domain not in ("", "ai.onnx"):
        op = f"{layer.domain}.{layer.op_type}" if layer.domain else layer.op_type
        return f"{op} is not rewritten (only ONNX Conv)"
    if layer.weight_dtype not in FLOAT_DTYPES:
        return f"quantized or non-float weights ({layer.weight_dtype})"
    if layer.group is not None and layer.group > 1 and layer.group == layer.in_channels:
        return "depthwise conv: no input channels to reduce"
    w = layer.weight_name or ""
    if w in index.producer:
        producer = index.producer[w]
        if producer.op_type in DEQUANTIZE_OPS:
            return f"quantized weights (produced by {producer.op_type})"
        if producer.op_type == "Identity" and producer.input:
            # Exporters de-duplicate equal weights into one tensor fanned out through Identity.
            fanout = len(index.consumers.get(producer.input[0], []))
            if fanout > 1:
                return f"weights shared by {fanout} nodes (through Identity)"
            return "weights come through an Identity node: not rewritten"
        if producer.op_type != "Constant":
            return f"weights are computed by a {producer.op_type} node, not stored constants"
    elif w in index.graph_inputs:
        return "weights are a graph input (can be replaced at run time)"
    elif w not in index.initializers:
        return "weights are not constant"
    users = index.consumers.get(w, [])
    if len(users) > 1:
        return f"weights shared by {len(users)} nodes"
    if (
        layer.macs is None
        or layer.input_shape is None
        or layer.output_shape is None
        or not layer.kernel_shape
        or not layer.in_channels
        or not layer.out_channels
    ):
        return f"cost unknown ({layer.note or 'shapes unresolved'})"
    if layer.multiplier != 1 or not layer.counted:
        return "inside a loop or an untaken branch"
    return None


def searchable(layer: Layer, index: TensorIndex, kinds: Sequence[str] = KINDS) -> bool:
    """A width-search candidate: a dense (group 1) conv with a kernel of more than one tap that
    can be rewritten, where the smallest width of one of ``kinds`` still saves MACs."""
    if layer.category != "conv" or groups(layer) != 1 or not layer.kernel_shape:
        return False
    if math.prod(layer.kernel_shape) <= 1 or decline_reason(layer, index) is not None:
        return False
    return any(saves(layer, k) for k in kinds)


def saves(layer: Layer, kind: str) -> bool:
    """Whether the narrowest pair of ``kind`` costs fewer MACs than ``layer`` (and applies)."""
    if kind == SPATIAL and spatial_reason(layer) is not None:
        return False
    return kind_break_even(layer, kind) > width_step(layer)


def select(
    facts: ModelFacts,
    findings: Sequence[Finding],
    proto: onnx.ModelProto,
    options: Options,
) -> tuple[list[LayerPlan], list[LayerFix]]:
    """The convs to rewrite (with widths) and the candidates skipped (with reasons)."""
    if options.width is not None and options.width < 1:
        raise FixError(f"--width must be a positive integer, got {options.width}")
    if options.kind is not None and options.kind not in KINDS:
        raise FixError(f"--kind must be one of {', '.join(KINDS)}, got {options.kind!r}")
    if options.target_saving is not None and not options.target_saving > 1:
        raise FixError(
            f"--target-saving must be above 1 (a MAC ratio), got {options.target_saving}"
        )
    index = TensorIndex(proto.graph, proto.ir_version)
    by_name = {layer.name: layer for layer in facts.layers}
    # (width, id of the rule that recommends it) per flagged conv: the id is the width's source.
    recommended = {
        (f.graph or "main", f.node): (f.recommendation.width, f.rule)
        for f in findings
        if recommends_bottleneck(f) and f.recommendation is not None and f.node
    }
    if options.nodes:
        candidates: list[Layer] = []
        for name in options.nodes:
            if name not in by_name:
                convs = [x.name for x in facts.layers if x.category == "conv"]
                hint = nearest(name, convs, quote=True)
                raise FixError(f"--node {name!r}: no such costed layer{hint}", path=facts.path)
            candidates.append(by_name[name])
    elif options.search:
        kinds = KINDS if options.kind is None else (options.kind,)
        candidates = [x for x in facts.layers if searchable(x, index, kinds)]
    else:
        flagged = set(recommended)
        candidates = [x for x in facts.layers if (x.graph, x.name) in flagged]
    plans: list[LayerPlan] = []
    skipped: list[LayerFix] = []
    for layer in dict.fromkeys(candidates):
        reason = decline_reason(layer, index)
        if reason is not None:
            skipped.append(replace(original(layer), reason=reason))
            continue
        searched = options.search and options.width is None and options.target_saving is None
        # Searched with no --kind: provisionally a kind that saves; fix.search picks each one's.
        kind = options.kind or BOTTLENECK
        if searched and options.kind is None and not saves(layer, BOTTLENECK):
            kind = SPATIAL
        if kind == SPATIAL and (why := spatial_reason(layer)) is not None:
            skipped.append(replace(original(layer), reason=why))
            continue
        limit = kind_break_even(layer, kind)
        notes: list[str] = []
        step = width_step(layer)
        if searched:
            width, source = step, "search"  # provisional: fix.search picks the width
        elif options.width is not None:
            width, source = round_width(options.width, step), "--width"
            if width != options.width:
                notes.append(f"width {options.width} rounded to {width} (a multiple of {step})")
        elif options.target_saving is not None:
            found = width_for_saving(layer, options.target_saving, kind)
            if found is None:
                saved = (layer.macs or 0) / factored_macs(layer, step, kind)
                skipped.append(
                    replace(
                        original(layer),
                        reason=f"no width saves {options.target_saving:g}x: width {step} saves "
                        f"only {saved:.1f}x",
                        break_even=limit,
                    )
                )
                continue
            width, source = found, "--target-saving"
        elif recommended.get((layer.graph, layer.name), (None, ""))[0]:
            given, rule = recommended[(layer.graph, layer.name)]
            assert given is not None
            width, source = round_width(given, step), rule
        else:
            raise FixError(
                f"--node {layer.name!r} has no {rules_label(options.rule_ids)} recommendation: "
                "pass --width N or --target-saving X",
                path=facts.path,
            )
        if width >= limit:
            skipped.append(
                replace(
                    original(layer),
                    reason=f"width {width} is at or above the break-even width {limit:.1f}: "
                    f"the {'spatial pair' if kind == SPATIAL else 'bottleneck'} would not save "
                    "MACs",
                    width=width,
                    width_source=source,
                    break_even=limit,
                )
            )
            continue
        plans.append(
            LayerPlan(
                layer=layer,
                width=width,
                width_source=source,
                break_even=limit,
                weight_name=layer.weight_name or "",
                bn_name=foldable_bn(layer, index),
                notes=tuple(notes),
                kind=kind,
            )
        )
    return plans, skipped
