"""The ``fix`` request, checked before any work: where to read and write, and a scratch folder
beside the output. Every refusal here happens before the model is scanned or rewritten."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import onnx

from convaudit.config import Config
from convaudit.errors import FixError, ModelLoadError
from convaudit.fix.context import FixContext, FixOptions
from convaudit.safe_io import check_output_path


def context(
    path: str | Path, output: str | Path | None, options: FixOptions, config: Config
) -> FixContext:
    """The checked request: input and output paths (refusing to replace the input unless
    ``in_place``), a valid --max-error, and the config's shapes for the input."""
    src, dst = _paths(path, output, options)
    if options.max_error is not None and not options.max_error >= 0:
        raise FixError(f"--max-error must be >= 0, got {options.max_error}")
    if options.tune_steps < 0:
        raise FixError(f"--tune-steps must be >= 0, got {options.tune_steps}")
    if options.tune_steps and options.inputs is None:
        raise FixError("--tune-steps needs --inputs: it tunes towards real outputs, not noise")
    input_shapes, dims = config.shapes_for(str(src))
    return FixContext(
        src=src, dst=dst, options=options, config=config, input_shapes=input_shapes, dims=dims
    )


def _same_file(a: Path, b: Path) -> bool:
    if not b.exists():
        return a.resolve() == b.resolve()
    return os.path.samefile(a, b)


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
    check_output_path(dst, error=FixError)  # never a device or FIFO (-o /dev/null)
    if _same_file(src, dst) and not options.in_place:
        raise FixError(
            "output is the input model: pass a different -o, or --in-place to replace it",
            path=dst,
        )
    return src, dst


def refuse_overwriting_input_data(src: Path, dst: Path, model: onnx.ModelProto) -> None:
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


@contextmanager
def scratch(ctx: FixContext) -> Iterator[Path]:
    """A temporary folder beside the output (so the final os.replace is a same-disk rename),
    removed with whatever is left in it."""
    try:
        ctx.dst.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{ctx.dst.name}.", suffix=".tmp", dir=ctx.dst.parent))
    except OSError as exc:  # the user's -o, not a bug
        raise FixError(
            f"cannot write the output here ({exc.strerror or exc})", path=ctx.dst
        ) from None
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
